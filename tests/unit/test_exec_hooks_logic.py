"""Pure logic of exec and hooks: the process built from flags, --cgroup
parsing, a hook's env, run_one's verdicts, fd closing."""
import json
import os
import time

import pytest

from pyoci.errors import PyociError
from pyoci.linux.cgroups import Cgroup
from pyoci.runtime import final, hooks
from pyoci.runtime.exec import ExecOptions, build_process, sub_cgroup
from pyoci.runtime.state import State

BASE = {"args": ["sleep", "1"], "cwd": "/", "env": ["PATH=/bin", "A=1"],
        "user": {"uid": 0, "gid": 0},
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
        "noNewPrivileges": True}


class FakeContainer:
    def __init__(self, process):
        self.state = State("x", process=process, bundle="/nonexistent")


def build(**kw):
    return build_process(FakeContainer(json.loads(json.dumps(BASE))), ExecOptions(**kw))


def test_flags_applied_to_the_containers_process():
    p = build(args=["sh", "-c", "x"], cwd="/tmp", env=["B=2"], user="5:6", additional_gids=["7", "8"],
              caps=["CAP_SYS_ADMIN"], no_new_privs=False, tty=True)
    assert p["args"] == ["sh", "-c", "x"] and p["cwd"] == "/tmp"
    assert p["env"] == ["PATH=/bin", "A=1", "B=2"]
    assert p["user"] == {"uid": 5, "gid": 6, "additionalGids": [7, 8]}
    caps = p["capabilities"]
    assert all("CAP_SYS_ADMIN" in caps[s] for s in ("bounding", "effective", "permitted"))
    assert "ambient" not in caps   # no inheritable set: no ambient (as runc)
    assert p["noNewPrivileges"] is False and p["terminal"] is True
    # unset flags leave the container's values
    p = build(args=["true"])
    assert p["noNewPrivileges"] is True and p["user"] == {"uid": 0, "gid": 0} and p["terminal"] is False


def test_bad_flags_are_refused():
    with pytest.raises(PyociError, match="exec args cannot be empty"):
        build()
    with pytest.raises(PyociError, match="must be UID"):
        build(args=["true"], user="root")
    with pytest.raises(PyociError, match="additional-gids"):
        build(args=["true"], additional_gids=["-1"])
    with pytest.raises(PyociError, match="cwd: must be an absolute path"):
        build(args=["true"], cwd="tmp")


def test_process_file(tmp_path):
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"args": ["id"], "cwd": "/", "terminal": False}))
    p = build_process(FakeContainer(BASE), ExecOptions(process=str(f), tty=True, cwd="/ignored"))
    assert p == {"args": ["id"], "cwd": "/", "terminal": True}
    f.write_text("[1]")
    with pytest.raises(PyociError, match="not a JSON object"):
        build_process(FakeContainer(BASE), ExecOptions(process=str(f)))
    f.write_text(json.dumps({"args": [], "cwd": "/"}))
    with pytest.raises(PyociError, match="process.args"):
        build_process(FakeContainer(BASE), ExecOptions(process=str(f)))


def test_sub_cgroup(tmp_path):
    paths = {}
    for key in ("cpu,cpuacct", "pids", ""):
        d = tmp_path / (key.replace(",", "_") or "unified")
        (d / "sub").mkdir(parents=True)
        paths[key] = str(d)
    cg = Cgroup(paths)
    assert sub_cgroup(cg, []) is cg
    got = sub_cgroup(cg, ["cpu:sub"]).paths
    assert got["cpu,cpuacct"] == paths["cpu,cpuacct"] + "/sub" and got["pids"] == paths["pids"]
    assert all(v.endswith("/sub") for v in sub_cgroup(cg, ["sub"]).paths.values())
    for bad, msg in ((["a", "b"], "missing <controller>"), ([":x"], "empty <controller>"),
                     (["pids:a", "pids:b"], "specified multiple times"), (["pids:../x"], "is not a sub cgroup path"),
                     (["pids:nope"], "adding pid to cgroup: open .*nope/cgroup.procs: no such file")):
        with pytest.raises(PyociError, match=msg):
            sub_cgroup(cg, bad)


def test_hook_env():
    assert hooks._env(["A=1", "B", "=x", "C=2=3"]) == {"A": "1", "C": "2=3"}
    # no env at all: the runtime's environment, as runc's hooks get it; [] is empty
    assert hooks._env(None) == dict(os.environ)
    assert hooks._env([]) == {}


def test_run_one_verdicts():
    data = json.dumps({"id": "x"}).encode()
    out = hooks.run_one({"path": "/bin/sh", "args": ["sh", "-c", "cat; echo; echo $K"], "env": ["K=v"]}, data)
    assert out == data + b"\nv\n"
    with pytest.raises(PyociError, match="exit status 3, output: boom"):
        hooks.run_one({"path": "/bin/sh", "args": ["sh", "-c", "echo boom >&2; exit 3"]}, data)
    with pytest.raises(PyociError, match="killed by signal 9"):
        hooks.run_one({"path": "/bin/sh", "args": ["sh", "-c", "kill -9 $$"]}, data)
    with pytest.raises(PyociError, match="no such file or directory"):
        hooks.run_one({"path": "/nonexistent/hook"}, data)
    with pytest.raises(PyociError, match="not absolute"):
        hooks.run_one({"path": "relative"}, data)
    t0 = time.monotonic()
    with pytest.raises(PyociError, match="timed out after 1 s"):
        hooks.run_one({"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}, data)
    assert time.monotonic() - t0 < 5
    big = json.dumps({"annotations": {"k": "v" * 200000}}).encode()   # more than a pipe holds
    assert hooks.run_one({"path": "/bin/sh", "args": ["sh", "-c", "wc -c"]}, big).strip() == str(len(big)).encode()


def test_run_stops_at_the_first_failure_or_warns(tmp_path):
    log = tmp_path / "log"
    ok = {"path": "/bin/sh", "args": ["sh", "-c", "echo ran >> %s" % log]}
    bad = {"path": "/bin/false"}
    with pytest.raises(PyociError, match=r"error running hook #1 \(poststart, /bin/false\): exit status 1"):
        hooks.run("poststart", [ok, bad, ok], {"id": "x"})
    assert log.read_text() == "ran\n"
    warned = []
    hooks.run("poststop", [bad, ok], {"id": "x"}, warn=warned.append)
    assert log.read_text() == "ran\nran\n" and "hook #0 (poststop" in warned[0]


def test_close_all_but():
    fds = [os.open("/dev/null", os.O_RDONLY) for _ in range(4)]
    pid = os.fork()
    if pid == 0:
        final.close_all_but(fds[0], {fds[1], None, fds[3]})
        alive = []
        for fd in fds:
            try:
                os.fstat(fd)
                alive.append(fd)
            except OSError:
                pass
        os._exit(0 if alive == [fds[1], fds[3]] else 1)
    _, status = os.waitpid(pid, 0)
    for fd in fds:
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
