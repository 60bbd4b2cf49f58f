"""The lifecycle's state machine (runtime/status.py): which operation each
status allows, and the refusals in runc's words."""
import pytest

from pyoci.errors import ContainerBroken, InvalidStatus
from pyoci.runtime import status as S

REFUSALS = [
    ("start", S.STOPPED, "cannot start a container that has stopped"),
    ("start", S.RUNNING, "cannot start an already running container"),
    ("start", S.PAUSED, "cannot start a container in the paused state"),
    ("kill", S.STOPPED, "container not running"),
    ("delete", S.RUNNING, "cannot delete container c1 that is not stopped: running"),
    ("delete", S.PAUSED, "cannot delete container c1 that is not stopped: paused"),
    ("pause", S.PAUSED, "container not running"),
    ("pause", S.STOPPED, "container not running"),
    ("resume", S.RUNNING, "container not paused"),
    ("update", S.STOPPED, "container not running"),
    ("exec", S.STOPPED, "cannot exec in a stopped container"),
    ("exec", S.PAUSED, "cannot exec in a paused container (use --ignore-paused to override)"),
    ("exec-paused", S.STOPPED, "cannot exec in a stopped container"),
    ("events", S.STOPPED, "container with id c1 is not running"),
]


@pytest.mark.parametrize("op,status,words", REFUSALS)
def test_refusals_in_runcs_words(op, status, words):
    with pytest.raises(InvalidStatus) as e:
        S.check(op, status, "c1")
    assert str(e.value) == words and e.value.operation == op and e.value.status == status


@pytest.mark.parametrize("op,status", [
    ("start", S.CREATED), ("kill", S.CREATED), ("kill", S.PAUSED), ("kill-all", S.STOPPED),
    ("delete", S.CREATED), ("delete", S.STOPPED), ("pause", S.CREATED), ("pause", S.RUNNING),
    ("resume", S.PAUSED), ("exec", S.CREATED), ("exec-paused", S.PAUSED), ("update", S.PAUSED),
] + [("delete-force", s) for s in (S.CREATED, S.RUNNING, S.PAUSED, S.STOPPED, S.BROKEN)])
def test_allowed(op, status):
    S.check(op, status, "c1")


def test_a_broken_container_allows_only_delete_force():
    for op in S.ALLOWED:
        if op == "delete-force":
            S.check(op, S.BROKEN, "c1")
            continue
        with pytest.raises(ContainerBroken, match="container c1 is broken \\(no state.json\\)"):
            S.check(op, S.BROKEN, "c1", "no state.json")


def test_a_container_being_created_does_not_exist_yet():
    from pyoci.errors import ContainerNotExist

    for op in S.ALLOWED:
        if op != "delete-force":
            with pytest.raises(ContainerNotExist):
                S.check(op, S.CREATING, "c1")


def test_every_operation_refuses_something_or_is_delete_force():
    for op, allowed in S.ALLOWED.items():
        assert allowed <= {S.CREATING, S.CREATED, S.RUNNING, S.PAUSED, S.STOPPED, S.BROKEN}
        if op != "delete-force":
            assert S.BROKEN not in allowed and S.CREATING not in allowed, op
