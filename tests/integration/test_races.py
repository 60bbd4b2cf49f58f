"""The lifecycle under concurrency and signals: commands lock the state
directory before they read it, so racing commands on one id have one
winner; `run` forwards signals from its first instruction and `create`
turns a terminating signal into a clean failure."""
import json
import os
import subprocess
import time

import pytest

from conftest import PYOCI

HOST_NS = ["mount", "pid", "ipc", "uts"]


def wait_for(path, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "%s never appeared" % path
        time.sleep(0.01)


class Cmd:
    """A pyoci command in the background. Its stderr goes to a file, not a
    pipe: after create the container's init holds create's stdio."""

    def __init__(self, runtime, *args):
        import tempfile

        self.err = tempfile.TemporaryFile("w+")
        self.p = subprocess.Popen([PYOCI, "--root", runtime.root] + [str(a) for a in args],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.err)

    def send_signal(self, sig):
        self.p.send_signal(sig)

    def wait(self, timeout=60):
        """(exit code, stderr)"""
        code = self.p.wait(timeout)
        self.err.seek(0)
        text = self.err.read()
        self.err.close()
        return code, text


def spawn(runtime, *args):
    return Cmd(runtime, *args)


def test_parallel_creates_of_one_id_have_one_winner(runtime, make_bundle):
    b = make_bundle(["sleep", "100"])
    procs = [spawn(runtime, "create", "-b", b, "same") for _ in range(20)]
    results = [p.wait() for p in procs]
    winners = [r for r in results if r[0] == 0]
    assert len(winners) == 1, results
    for code, err in results:
        if code != 0:
            assert code == 1 and "container with given ID already exists" in err, err
    st = runtime.state("same")
    assert st["status"] == "created" and st["pid"] > 0
    assert runtime.ids() == ["same"]
    runtime.cmd("delete", "--force", "same", check=True)


def test_racing_deletes_run_the_poststop_hooks_once(runtime, make_bundle, tmp_path):
    log = tmp_path / "poststop.log"
    b = make_bundle(["sleep", "100"], lambda c: c.update(hooks={"poststop": [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo ran >> %s" % log]}]}))
    for i in range(3):
        cid = "pd%d" % i
        runtime.cmd("run", "-d", "-b", b, cid, check=True)
        procs = [spawn(runtime, "delete", "--force", cid) for _ in range(4)]
        for p in procs:
            code, err = p.wait()
            assert code == 0, err
        assert log.read_text() == "ran\n" * (i + 1)
    assert runtime.ids() == []


def test_start_racing_delete_has_one_winner(runtime, make_bundle, tmp_path):
    out = tmp_path / "out"
    out.mkdir()

    def bind(c):
        c["mounts"].append({"destination": "/out", "type": "bind", "source": str(out), "options": ["bind"]})
    b = make_bundle(["sh", "-c", "touch /out/started; sleep 100"], bind)
    outcomes = set()
    for i in range(6):
        cid = "sd%d" % i
        marker = out / "started"
        if marker.exists():
            marker.unlink()
        runtime.cmd("create", "-b", b, cid, check=True)
        start = spawn(runtime, "start", cid)
        delete = spawn(runtime, "delete", cid)
        s_code, s_err = start.wait()
        d_code, d_err = delete.wait()
        if d_code == 0:
            # delete won: the created container is gone and start found nothing
            assert s_code == 1 and "container does not exist" in s_err, s_err
            assert not marker.exists()
            outcomes.add("delete")
        else:
            # start won: the program ran, and delete refused a running container
            assert s_code == 0, s_err
            assert "cannot delete container %s that is not stopped: running" % cid in d_err, d_err
            wait_for(str(marker))
            runtime.cmd("delete", "--force", cid, check=True)
            outcomes.add("start")
    assert runtime.ids() == []
    assert outcomes   # either may win; never both, never neither


def _blocking_hook(tmp_path):
    """A createRuntime hook that says it runs, then waits for a file."""
    reached, release = tmp_path / "reached", tmp_path / "release"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", "touch %s; while [ ! -e %s ]; do sleep 0.01; done"
                                        % (reached, release)]}
    return hook, str(reached), str(release)


def test_run_forwards_a_sigterm_sent_during_create(runtime, make_bundle, tmp_path):
    hook, reached, release = _blocking_hook(tmp_path)

    def change(c):
        c["hooks"] = {"createRuntime": [hook]}
        # no pid namespace: the program is not a pid 1, so SIGTERM's default
        # action applies to it
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
    b = make_bundle(["sleep", "100"], change)
    p = spawn(runtime, "run", "-b", b, "rt1")
    wait_for(reached)
    p.send_signal(15)
    open(release, "w").close()
    code, err = p.wait()
    assert code == 128 + 15, err
    assert runtime.ids() == []


@pytest.mark.parametrize("cmd", [["create"], ["run", "-d"]])
def test_a_sigterm_during_create_leaves_nothing(runtime, make_bundle, tmp_path, cmd):
    hook, reached, release = _blocking_hook(tmp_path)
    b = make_bundle(["sleep", "100"], lambda c: c.update(hooks={"createRuntime": [hook]}))
    p = spawn(runtime, *cmd, "-b", b, "ct1")
    wait_for(reached)
    p.send_signal(15)
    code, err = p.wait()
    assert code == 128 + 15, err
    assert runtime.ids() == []
    assert runtime.cmd("state", "ct1").returncode == 1


def test_a_create_under_way_is_listed_as_creating(runtime, make_bundle, tmp_path):
    hook, reached, release = _blocking_hook(tmp_path)
    b = make_bundle(["sleep", "100"], lambda c: c.update(hooks={"createRuntime": [hook]}))
    p = spawn(runtime, "create", "-b", b, "cr1")
    try:
        wait_for(reached)
        items = json.loads(runtime.cmd("list", "--format", "json").stdout)
        assert [(i["id"], i["status"], i["pid"]) for i in items] == [("cr1", "creating", 0)]
        st = runtime.cmd("state", "cr1")
        assert st.returncode == 1 and "container does not exist" in st.stderr
        # a delete waits for the create to finish, then deletes it
        d = spawn(runtime, "delete", "--force", "cr1")
    finally:
        open(release, "w").close()
    assert p.wait()[0] == 0
    assert d.wait() == (0, "")
    assert runtime.ids() == []


def test_list_shows_a_broken_container_and_delete_force_removes_it(runtime, make_bundle):
    b = make_bundle(["sleep", "100"])
    runtime.cmd("run", "-d", "-b", b, "bk1", check=True)
    pid = runtime.state("bk1")["pid"]
    with open(os.path.join(runtime.root, "bk1", "state.json"), "w") as f:
        f.write('{"id": "bk1", "pi')
    items = json.loads(runtime.cmd("list", "--format", "json").stdout)
    assert [(i["id"], i["status"], i["pid"]) for i in items] == [("bk1", "broken", 0)]
    p = runtime.cmd("state", "bk1")
    assert p.returncode == 1 and "broken" in p.stderr
    for cmd in (["start"], ["kill"], ["pause"], ["delete"]):
        p = runtime.cmd(*cmd, "bk1")
        assert p.returncode == 1 and "broken" in p.stderr, (cmd, p.stderr)
    assert runtime.cmd("delete", "--force", "bk1").returncode == 0
    assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split(") ")[1][0] == "Z"
    assert runtime.ids() == []
