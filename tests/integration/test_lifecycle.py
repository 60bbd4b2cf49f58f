"""A busybox container through create → start → state → kill → delete, and
`run`, checked from inside and outside."""
import json
import os
import re
import signal
import time

import pytest

from conftest import our_children


def wait_status(rt, cid, want, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        p = rt.cmd("state", cid)
        st = json.loads(p.stdout) if p.returncode == 0 else {"status": p.stderr.strip()}
        if st["status"] == want:
            return st
        assert time.monotonic() < deadline, "status %s, want %s" % (st["status"], want)
        time.sleep(0.01)


def test_run_prints_from_inside(runtime, make_bundle):
    b = make_bundle(["sh", "-c", "hostname; echo pid=$$; id -u; id -g; cat /proc/1/cmdline | tr '\\0' ' '"])
    p = runtime.cmd("run", "--bundle", b, "r1")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "pyoci"
    assert lines[1] == "pid=1"
    assert lines[2:4] == ["0", "0"]
    assert lines[4].startswith("sh -c")
    assert p.stderr == ""
    assert runtime.ids() == []


def test_run_exit_status_and_keep(runtime, make_bundle):
    b = make_bundle(["sh", "-c", "exit 3"])
    assert runtime.cmd("run", "-b", b, "r2").returncode == 3
    p = runtime.cmd("run", "--keep", "--bundle=" + b, "r3")
    assert p.returncode == 3
    assert runtime.state("r3")["status"] == "stopped"
    assert runtime.cmd("delete", "r3").returncode == 0


def test_run_killed_by_signal_exit_code(runtime, make_bundle):
    import subprocess

    from conftest import PYOCI

    b = make_bundle(["sleep", "100"])
    p = subprocess.Popen([PYOCI, "--root", runtime.root, "run", "-b", b, "r4"])
    wait_status(runtime, "r4", "running")
    assert runtime.cmd("kill", "r4", "KILL").returncode == 0
    assert p.wait(10) == 128 + 9


def test_run_forwards_signals(runtime, make_bundle):
    import subprocess

    from conftest import PYOCI

    b = make_bundle(["sh", "-c", "trap 'exit 7' USR1; while :; do sleep 0.05; done"])
    p = subprocess.Popen([PYOCI, "--root", runtime.root, "run", "-b", b, "r5"])
    wait_status(runtime, "r5", "running")
    time.sleep(0.2)
    p.send_signal(signal.SIGUSR1)
    assert p.wait(10) == 7


def test_lifecycle(runtime, make_bundle, tmp_path):
    # it runs until the test says stop (a file in its rootfs), then exits
    b = make_bundle(["sh", "-c", "read x < /dev/zero & while [ ! -e /stop ]; do sleep 0.01; done; echo done"])
    pid_file = tmp_path / "init.pid"
    p = runtime.cmd("create", "--bundle", b, "--pid-file", pid_file, "c1")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""
    raw = pid_file.read_text()
    assert raw.isdigit(), "pid file must hold the decimal pid without newline: %r" % raw
    pid = int(raw)
    st = runtime.state("c1")
    assert st["status"] == "created" and st["pid"] == pid and st["id"] == "c1"
    assert st["bundle"] == b and st["ociVersion"] == "1.3.0"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$", st["created"])
    # descent: the init was re-parented to us (the subreaper); no pyoci process is left
    assert [c for c in our_children() if c[0] == pid]
    with open("/proc/%d/stat" % pid) as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    assert runtime.cmd("start", "c1").returncode == 0
    assert runtime.state("c1")["status"] == "running"
    p = runtime.cmd("start", "c1")
    assert p.returncode == 1 and "cannot start an already running container" in p.stderr
    open(os.path.join(b, "rootfs", "stop"), "w").close()
    st = wait_status(runtime, "c1", "stopped")
    assert st["pid"] == 0
    assert runtime.cmd("delete", "c1").returncode == 0
    p = runtime.cmd("state", "c1")
    assert p.returncode == 1 and "container does not exist" in p.stderr


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_state_validates_against_the_state_schema(runtime, make_bundle):
    jsonschema = pytest.importorskip("jsonschema")
    schema_dir = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "runtime-spec-schema")
    path = os.path.join(schema_dir, "state-schema.json")
    if not os.path.exists(path):
        pytest.skip("../shared/runtime-spec-schema is not here")
    with open(path) as f:
        schema = json.load(f)
    b = make_bundle(["sleep", "10"], lambda c: c.update(annotations={"a": "b"}))
    runtime.cmd("create", "-b", b, "s1", check=True)
    st = runtime.state("s1")
    assert st["annotations"] == {"a": "b"}
    oci = {k: st[k] for k in ("ociVersion", "id", "status", "pid", "bundle", "annotations")}
    resolver = jsonschema.RefResolver(base_uri="file://" + os.path.abspath(schema_dir) + "/", referrer=schema)
    jsonschema.Draft4Validator(schema, resolver=resolver).validate(oci)
    runtime.cmd("delete", "--force", "s1", check=True)


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_kill_by_name_and_number(runtime, make_bundle, sig):
    b = make_bundle(["sleep", "100"])
    runtime.cmd("run", "-d", "-b", b, "k1", check=True)
    assert runtime.state("k1")["status"] == "running"
    assert runtime.cmd("kill", "k1", sig).returncode == 0
    wait_status(runtime, "k1", "stopped")
    p = runtime.cmd("kill", "k1", "9")
    assert p.returncode == 1 and "container not running" in p.stderr
    runtime.cmd("delete", "k1", check=True)


def test_kill_default_sigterm_reaches_a_handler(runtime, make_bundle):
    b = make_bundle(["sh", "-c", "trap 'exit 42' TERM; while :; do sleep 0.05; done"])
    runtime.cmd("run", "-d", "-b", b, "k2", check=True)
    time.sleep(0.2)
    assert runtime.cmd("kill", "k2").returncode == 0
    wait_status(runtime, "k2", "stopped")
    runtime.cmd("delete", "k2", check=True)


def test_kill_all(runtime, make_bundle):
    b = make_bundle(["sh", "-c", "sleep 100 & sleep 100 & wait"])
    runtime.cmd("run", "-d", "-b", b, "k3", check=True)
    deadline = time.monotonic() + 5
    while len(json.loads(runtime.cmd("ps", "--format", "json", "k3").stdout)) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert runtime.cmd("kill", "--all", "k3", "KILL").returncode == 0
    wait_status(runtime, "k3", "stopped")
    runtime.cmd("delete", "k3", check=True)


def _pids_of(argv):
    want = "\0".join(argv).encode() + b"\0"
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/cmdline" % d, "rb") as f:
                    if f.read() == want:
                        out.append(int(d))
            except OSError:
                pass
    return out


@pytest.mark.parametrize("sig", ["TERM", "KILL"])
def test_kill_all_of_a_stopped_container_signals_what_is_left(runtime, make_bundle, sig):
    """As runc: `kill --all` on a container whose init has exited signals
    the processes left in its cgroup and exits 0 (containerd's shim calls it
    so when a pod's container stops; an error made it wait out its I/O
    timeout). Without --all it stays 'container not running'."""
    def no_pidns(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]
    argv = ["sleep", "3131"]
    b = make_bundle(["sh", "-c", "sleep 3131 </dev/null >/dev/null 2>&1 & exit 0"], no_pidns)
    runtime.cmd("create", "-b", b, "k5", check=True)
    assert runtime.cmd("kill", "k5", "0").returncode == 0     # signal 0: is it alive
    runtime.cmd("start", "k5", check=True)
    wait_status(runtime, "k5", "stopped")
    deadline = time.monotonic() + 10
    while not _pids_of(argv):
        assert time.monotonic() < deadline, "the container's background sleep never ran"
        time.sleep(0.01)
    left = _pids_of(argv)
    p = runtime.cmd("kill", "k5", sig)
    assert p.returncode == 1 and "container not running" in p.stderr
    p = runtime.cmd("kill", "--all", "k5", sig)
    assert p.returncode == 0, p.stderr
    deadline = time.monotonic() + 10
    while [pid for pid in left if os.path.exists("/proc/%d" % pid) and
           open("/proc/%d/stat" % pid).read().split(") ")[1][0] not in "ZX"]:
        assert time.monotonic() < deadline, "the leftover process survived kill --all"
        time.sleep(0.01)
    # nothing left: still no error
    assert runtime.cmd("kill", "-a", "k5", sig).returncode == 0
    runtime.cmd("delete", "k5", check=True)


def test_unknown_signal(runtime, make_bundle):
    b = make_bundle(["sleep", "100"])
    runtime.cmd("run", "-d", "-b", b, "k4", check=True)
    p = runtime.cmd("kill", "k4", "SIGNOPE")
    assert p.returncode == 1 and "unknown signal" in p.stderr
    runtime.cmd("delete", "-f", "k4", check=True)


def test_list_formats(runtime, make_bundle):
    b = make_bundle(["sleep", "100"])
    runtime.cmd("create", "-b", b, "l1", check=True)
    runtime.cmd("run", "-d", "-b", b, "l2", check=True)
    p = runtime.cmd("list")
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert [l.split()[0] for l in lines[1:]] == ["l1", "l2"]
    assert [l.split()[2] for l in lines[1:]] == ["created", "running"]
    assert runtime.cmd("list", "-q").stdout == "l1\nl2\n"
    items = json.loads(runtime.cmd("list", "--format", "json").stdout)
    assert [(i["id"], i["status"], i["owner"]) for i in items] == [("l1", "created", "root"), ("l2", "running", "root")]
    for cid in ("l1", "l2"):
        runtime.cmd("delete", "--force", cid, check=True)
    assert runtime.cmd("list", "--format=json").stdout.strip() == "null"


def test_delete_rules(runtime, make_bundle):
    b = make_bundle(["sleep", "100"])
    runtime.cmd("run", "-d", "-b", b, "d1", check=True)
    p = runtime.cmd("delete", "d1")
    assert p.returncode == 1 and "not stopped" in p.stderr
    assert runtime.cmd("delete", "--force", "d1").returncode == 0
    # a created, never started container is deleted (its init killed), as runc does
    runtime.cmd("create", "-b", b, "d2", check=True)
    pid = runtime.state("d2")["pid"]
    assert runtime.cmd("delete", "d2").returncode == 0
    assert not os.path.exists("/proc/%d/exe" % pid) or open("/proc/%d/stat" % pid).read().split(") ")[1][0] == "Z"
    p = runtime.cmd("delete", "nonexistent")
    assert p.returncode == 1 and "container does not exist" in p.stderr
    assert runtime.cmd("delete", "--force", "nonexistent").returncode == 0


def test_pause_resume(runtime, make_bundle):
    b = make_bundle(["sleep", "100"])
    runtime.cmd("run", "-d", "-b", b, "p1", check=True)
    assert runtime.cmd("pause", "p1").returncode == 0
    assert runtime.state("p1")["status"] == "paused"
    assert runtime.cmd("resume", "p1").returncode == 0
    assert runtime.state("p1")["status"] == "running"
    runtime.cmd("delete", "-f", "p1", check=True)


def test_ps_json_lists_host_pids(runtime, make_bundle):
    b = make_bundle(["sleep", "100"])
    runtime.cmd("run", "-d", "-b", b, "ps1", check=True)
    pid = runtime.state("ps1")["pid"]
    assert json.loads(runtime.cmd("ps", "--format", "json", "ps1").stdout) == [pid]
    p = runtime.cmd("ps", "ps1")
    assert p.stdout.splitlines()[0].split()[:2] == ["UID", "PID"]
    assert str(pid) in p.stdout
    runtime.cmd("delete", "-f", "ps1", check=True)


def test_no_namespaces_at_all_waits_and_starts(runtime, make_bundle):
    """A config with no namespace of its own (runtime-tools linux_ns_itype):
    the container is a plain chroot in the host's namespaces, with no /proc
    of its own, and its init must still wait for `start` on the exec fifo
    (reached through the state directory, not /proc/self/fd)."""
    def changes(c):
        c["linux"]["namespaces"] = []
        c.pop("hostname", None)
        c["mounts"] = []
        c["linux"].pop("maskedPaths", None)
        c["linux"].pop("readonlyPaths", None)
        c["root"]["readonly"] = False
    b = make_bundle(["sh", "-c", "echo started > /started"], changes)
    runtime.cmd("create", "-b", b, "nons", check=True)
    st = runtime.state("nons")
    assert st["status"] == "created" and st["pid"] > 0
    for ns in ("pid", "mnt", "net", "uts", "ipc", "cgroup"):
        assert os.readlink("/proc/%d/ns/%s" % (st["pid"], ns)) == os.readlink("/proc/self/ns/" + ns)
    assert not os.path.exists(os.path.join(b, "rootfs", "started"))
    runtime.cmd("start", "nons", check=True)
    for _ in range(500):
        if runtime.state("nons")["status"] == "stopped":
            break
        time.sleep(0.01)
    with open(os.path.join(b, "rootfs", "started")) as f:
        assert f.read() == "started\n"
    runtime.cmd("delete", "nons", check=True)
