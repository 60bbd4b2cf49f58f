"""The cgroup freezer: whether a container's cgroup is frozen, and freezing
or thawing it (pause, resume, and kill --all and delete of a paused
container). The same files for every cgroup driver: the v1 freezer
hierarchy's freezer.state, else cgroup2's cgroup.freeze (also on a hybrid
host). `paths` is a Cgroup's {hierarchy key: directory} (key "" is cgroup2),
as its state document records it.

A module of its own, not a Cgroup method only: `state` and `start` ask
whether a container is paused, and the cgroups package costs them more to
import than all their other work.
"""
import time

from pyoci import fastos as os
from pyoci.errors import PyociError


def where(paths):
    """(directory, 1 or 2) of the freezer; (None, 0) if there is none."""
    for key, d in paths.items():
        if "freezer" in key.split(","):
            return d, 1
    if "" in paths:
        return paths[""], 2
    return None, 0


def frozen(paths):
    d, ver = where(paths)
    try:
        if ver == 1:
            with open(os.path.join(d, "freezer.state")) as f:
                return f.read().strip() != "THAWED"
        if ver == 2:
            with open(os.path.join(d, "cgroup.freeze")) as f:
                return f.read().strip() == "1"
    except OSError:
        pass
    return False


def freeze(paths, on, timeout=5.0):
    """Freeze or thaw, and wait until the kernel says FROZEN / THAWED
    (v1 freezer.state; v2 cgroup.events "frozen"). A freeze that does
    not complete in time is undone, so nothing stays half-frozen."""
    d, ver = where(paths)
    if not ver:
        raise PyociError("no freezer cgroup: cannot %s" % ("pause" if on else "resume"))
    deadline = time.monotonic() + timeout
    if ver == 1:
        want = "FROZEN" if on else "THAWED"
        path = os.path.join(d, "freezer.state")
        while True:
            _write_file(path, want)
            with open(path) as f:
                if f.read().strip() == want:
                    return
            if time.monotonic() > deadline:
                break
            time.sleep(0.001)
        if on:
            _write_file(path, "THAWED")
        raise PyociError("freezer: the cgroup did not become %s" % want)
    _write_file(os.path.join(d, "cgroup.freeze"), "1" if on else "0")
    events = os.path.join(d, "cgroup.events")
    while True:
        with open(events) as f:
            if ("frozen %d" % (1 if on else 0)) in f.read().split("\n"):
                return
        if time.monotonic() > deadline:
            break
        time.sleep(0.001)
    if on:
        _write_file(os.path.join(d, "cgroup.freeze"), "0")
    raise PyociError("freezer: the cgroup did not %s" % ("freeze" if on else "thaw"))


def _write_file(path, value):
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)
