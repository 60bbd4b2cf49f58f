"""Lifecycle hooks: every kind at its point and in its namespace, the state
on stdin, order, env and args, output kept out of the container's stdio,
timeouts, and the failure rules of runtime-spec 1.3.0 with nothing left
behind."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import PYOCI

# A hook in the runtime's namespaces: records what it was given and where it ran.
RECORD = r"""
import json, os, sys
st = json.loads(sys.stdin.read())
env = dict(os.environ)
env.pop("LC_CTYPE", None)   # Python's own C-locale coercion (PEP 538) adds it
rec = {"kind": sys.argv[2], "state": st, "argv": sys.argv[1:], "env": env, "cwd": os.getcwd(),
       "mnt": os.readlink("/proc/self/ns/mnt"), "pidns": os.readlink("/proc/self/ns/pid"),
       "fds": sorted(int(x) for x in os.listdir("/proc/self/fd"))}
if st.get("pid"):
    try:
        rec["init"] = open("/proc/%d/cmdline" % st["pid"]).read().split("\0")[0]
        rec["init_mnt"] = os.readlink("/proc/%d/ns/mnt" % st["pid"])
    except OSError:
        pass
with open(sys.argv[1], "a") as f:
    f.write(json.dumps(rec) + "\n")
sys.exit(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
"""


def rec_hook(log, kind, code=0, **kw):
    h = {"path": sys.executable, "args": ["python3", "-c", RECORD, str(log), kind, str(code)]}
    h.update(kw)
    return h


def records(log):
    try:
        with open(log) as f:
            return [json.loads(l) for l in f]
    except FileNotFoundError:
        return []


def kinds(log):
    return [r["kind"] for r in records(log)]


def wait_status(runtime, cid, want, timeout=10):
    deadline = time.monotonic() + timeout
    while runtime.state(cid)["status"] != want:
        assert time.monotonic() < deadline
        time.sleep(0.01)


# startContainer runs in the container: its path is the container's busybox
START_IN_CONTAINER = {"path": "/bin/sh", "args": ["sh", "-c",
                      "cat > /start.json; readlink /proc/self/ns/mnt > /start.ns; "
                      "cat /proc/1/cmdline | tr '\\0' ' ' > /start.init; echo \"$PATH $TERM\" > /start.env; "
                      "echo startContainer >> /order"]}


def test_every_kind_in_order_with_state_and_namespace(runtime, make_bundle, tmp_path):
    log = tmp_path / "hooks.log"

    def changes(c):
        c["root"]["readonly"] = False
        c["annotations"] = {"org.test": "hooks"}
        c["hooks"] = {
            "prestart": [rec_hook(log, "prestart"), rec_hook(log, "prestart2")],
            "createRuntime": [rec_hook(log, "createRuntime")],
            "createContainer": [rec_hook(log, "createContainer")],
            "startContainer": [START_IN_CONTAINER],
            "poststart": [rec_hook(log, "poststart")],
            "poststop": [rec_hook(log, "poststop"), rec_hook(log, "poststop2")],
        }
    b = make_bundle(["sh", "-c", "echo process >> /order; sleep 100"], changes)
    rootfs = os.path.join(b, "rootfs")
    p = runtime.cmd("create", "-b", b, "h1")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""
    pid = runtime.state("h1")["pid"]
    host_mnt = os.readlink("/proc/self/ns/mnt")
    ctr_mnt = os.readlink("/proc/%d/ns/mnt" % pid)
    assert kinds(log) == ["prestart", "prestart2", "createRuntime", "createContainer"]
    for r in records(log):
        assert r["state"] == {"ociVersion": "1.3.0", "id": "h1", "status": "created", "pid": pid, "bundle": b,
                              "annotations": {"org.test": "hooks"}}
        # no env in the hook: as runc gives it, the runtime's environment
        # to the runtime's hooks, the container process's to createContainer
        if r["kind"] == "createContainer":
            assert r["env"] == {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "TERM": "xterm"}, r["env"]
        else:
            want = {k: v for k, v in os.environ.items() if k not in ("LC_CTYPE", "COLUMNS", "LINES")}
            assert {k: r["env"].get(k) for k in want} == want
        assert r["fds"] == [0, 1, 2, 3]   # 3: listdir's own
        # runc's cwd: the bundle in the runtime, the rootfs for createContainer
        assert r["cwd"] == (rootfs if r["kind"] == "createContainer" else b), r
    by = {r["kind"]: r for r in records(log)}
    # runtime namespace for prestart/createRuntime, the container's for createContainer
    assert by["prestart"]["mnt"] == by["createRuntime"]["mnt"] == host_mnt
    assert by["createContainer"]["mnt"] == ctr_mnt != host_mnt
    assert by["createContainer"]["pidns"] == os.readlink("/proc/%d/ns/pid" % pid)
    assert not os.path.exists(os.path.join(rootfs, "order"))   # nothing ran in the container yet

    assert runtime.cmd("start", "h1").returncode == 0
    # startContainer: in the container, before the user's program, while pyoci-init waited
    with open(os.path.join(rootfs, "order")) as f:
        assert f.read().split() == ["startContainer", "process"]
    with open(os.path.join(rootfs, "start.json")) as f:
        st = json.load(f)
    assert st["status"] == "created" and st["pid"] == pid and st["id"] == "h1"
    with open(os.path.join(rootfs, "start.ns")) as f:
        assert f.read().strip() == ctr_mnt
    with open(os.path.join(rootfs, "start.init")) as f:
        assert f.read().split()[0] == "pyoci-init"
    # no env in the hook: the container process's (as runc's init runs it)
    with open(os.path.join(rootfs, "start.env")) as f:
        assert f.read().split() == ["/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "xterm"]
    # poststart: in the runtime, once the user's program was executed
    post = records(log)[-1]
    assert post["kind"] == "poststart" and post["mnt"] == host_mnt
    assert post["state"]["status"] == "running" and post["state"]["pid"] == pid
    assert post["init"] in ("sh", "sleep")   # not pyoci-init any more

    runtime.cmd("kill", "h1", "KILL", check=True)
    wait_status(runtime, "h1", "stopped")
    assert kinds(log)[-1] == "poststart"
    p = runtime.cmd("delete", "h1")
    assert p.returncode == 0, p.stderr
    assert kinds(log)[-2:] == ["poststop", "poststop2"]
    st = records(log)[-1]["state"]
    assert st["status"] == "stopped" and st["id"] == "h1" and st["bundle"] == b
    assert records(log)[-1]["mnt"] == host_mnt


def test_hook_args_env_and_output_stay_out_of_container_stdio(runtime, make_bundle, tmp_path):
    log = tmp_path / "hooks.log"
    rlog = tmp_path / "runtime.log"
    noisy = {"path": "/bin/sh", "args": ["hookname", "-c", "echo out-$0-$A; echo err-$B >&2"],
             "env": ["A=1", "B=2"]}

    def changes(c):
        c["hooks"] = {"prestart": [noisy, rec_hook(log, "prestart", env=["ONLY=this"])],
                      "poststart": [noisy], "poststop": [noisy]}
    b = make_bundle(["sh", "-c", "echo container-output"], changes)
    p = runtime.cmd("--log", rlog, "--debug", "run", "-b", b, "h2")
    assert p.returncode == 0, p.stderr
    # the container's stdio carries the container's output only
    assert p.stdout == "container-output\n"
    assert "out-" not in p.stderr and "err-" not in p.stderr
    text = rlog.read_text()
    assert "prestart hook #0 (/bin/sh) output: out-hookname-1" in text and "err-2" in text
    assert "poststop hook #0" in text
    r = records(log)[0]
    assert r["env"] == {"ONLY": "this"} and r["argv"][:2] == [str(log), "prestart"]


def test_timeout_kills_the_hook_and_fails_create(runtime, make_bundle, tmp_path):
    log = tmp_path / "hooks.log"
    marker = tmp_path / "child-alive"

    def changes(c):
        c["hooks"] = {
            "createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "(sleep 30; touch %s) & sleep 30" % marker],
                               "timeout": 1}, rec_hook(log, "after")],
            "poststop": [rec_hook(log, "poststop")]}
    b = make_bundle(["true"], changes)
    t0 = time.monotonic()
    p = runtime.cmd("create", "-b", b, "h3")
    took = time.monotonic() - t0
    assert p.returncode == 1
    assert "error running hook #0 (createRuntime, /bin/sh): timed out after 1 s" in p.stderr
    assert 1 <= took < 5
    assert kinds(log) == ["poststop"]    # the next hook did not run; the lifecycle went on at destroy
    assert runtime.cmd("state", "h3").returncode == 1
    # the hook's whole process group was killed (host_guard also sees no leftover process)
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(marker) not in out


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_create_hook_failure_tears_down(runtime, make_bundle, tmp_path, kind):
    log = tmp_path / "hooks.log"

    def changes(c):
        c["root"]["readonly"] = False
        c["hooks"] = {kind: [rec_hook(log, kind), rec_hook(log, "failing", 3), rec_hook(log, "never")],
                      "poststop": [rec_hook(log, "poststop")]}
        if kind != "createContainer":
            c["hooks"]["createContainer"] = [rec_hook(log, "createContainer")]
    b = make_bundle(["touch", "/ran"], changes)
    p = runtime.cmd("create", "-b", b, "h4")
    assert p.returncode == 1
    assert "error running hook #1 (%s," % kind in p.stderr and "exit status 3" in p.stderr
    assert kinds(log) == [kind, "failing", "poststop"]
    assert runtime.cmd("state", "h4").returncode == 1 and runtime.ids() == []
    assert not os.path.exists(os.path.join(b, "rootfs", "ran"))


def test_start_container_failure_destroys(runtime, make_bundle, tmp_path):
    log = tmp_path / "hooks.log"

    def changes(c):
        c["root"]["readonly"] = False
        c["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 4"]}],
                      "poststart": [rec_hook(log, "poststart")], "poststop": [rec_hook(log, "poststop")]}
    b = make_bundle(["touch", "/ran"], changes)
    runtime.cmd("create", "-b", b, "h5", check=True)
    p = runtime.cmd("start", "h5")
    assert p.returncode == 1 and "error running hook #0 (startContainer, /bin/sh): exit status 4" in p.stderr
    assert kinds(log) == ["poststop"]
    assert runtime.cmd("state", "h5").returncode == 1
    assert not os.path.exists(os.path.join(b, "rootfs", "ran"))
    # a path that does not resolve in the container fails the same way
    def missing(c):
        c["hooks"] = {"startContainer": [{"path": sys.executable}]}
    b = make_bundle(["true"], missing)
    runtime.cmd("create", "-b", b, "h6", check=True)
    p = runtime.cmd("start", "h6")
    assert p.returncode == 1 and "no such file or directory" in p.stderr
    assert runtime.ids() == []


def test_poststart_failure_fails_start_and_destroys(runtime, make_bundle, tmp_path):
    log = tmp_path / "hooks.log"

    def changes(c):
        c["hooks"] = {"poststart": [rec_hook(log, "poststart", 1), rec_hook(log, "never")],
                      "poststop": [rec_hook(log, "poststop")]}
    b = make_bundle(["sleep", "100"], changes)
    runtime.cmd("create", "-b", b, "h7", check=True)
    pid = runtime.state("h7")["pid"]
    p = runtime.cmd("start", "h7")
    assert p.returncode == 1 and "error running hook #0 (poststart" in p.stderr
    assert kinds(log) == ["poststart", "poststop"]
    assert records(log)[0]["init"] == "sleep"   # the user's program had started
    assert runtime.cmd("state", "h7").returncode == 1
    assert not os.path.exists("/proc/%d/cmdline" % pid) or open("/proc/%d/cmdline" % pid).read() == ""
    # `run` reports it the same way and leaves nothing either
    p = runtime.cmd("run", "-b", b, "h8")
    assert p.returncode == 1 and "error running hook #0 (poststart" in p.stderr
    assert runtime.ids() == []


def test_poststart_hook_may_call_the_runtime_on_its_container(runtime, make_bundle, tmp_path):
    """A poststart hook that signals or execs into its own container (as
    tools that set a container up once it runs do) is not locked out by the
    start that runs it: start holds the container's lock shared while its
    poststart hooks run, so kill and exec go ahead; with the lock held
    exclusive the hook would wait forever (or until its timeout)."""
    out = tmp_path / "hook.out"
    call = ("{p} --root {r} kill h10 0 && {p} --root {r} exec h10 echo from-exec > {o}"
            ).format(p=PYOCI, r=runtime.root, o=out)

    def changes(c):
        c["hooks"] = {"poststart": [{"path": "/bin/sh", "args": ["sh", "-c", call], "timeout": 20}]}
    b = make_bundle(["sleep", "100"], changes)
    runtime.cmd("create", "-b", b, "h10", check=True)
    p = runtime.cmd("start", "h10", timeout=40)
    assert p.returncode == 0, p.stderr
    assert out.read_text() == "from-exec\n"
    assert runtime.state("h10")["status"] == "running"
    runtime.cmd("delete", "--force", "h10", check=True)


def test_poststop_failure_only_warns(runtime, make_bundle, tmp_path):
    log = tmp_path / "hooks.log"

    def changes(c):
        c["hooks"] = {"poststop": [{"path": "/bin/false"}, rec_hook(log, "poststop-after")]}
    b = make_bundle(["true"], changes)
    runtime.cmd("create", "-b", b, "h9", check=True)
    runtime.cmd("start", "h9", check=True)
    wait_status(runtime, "h9", "stopped")
    p = runtime.cmd("delete", "h9")
    assert p.returncode == 0
    assert "level=warning" in p.stderr and "error running hook #0 (poststop, /bin/false): exit status 1" in p.stderr
    assert kinds(log) == ["poststop-after"]
    assert runtime.ids() == []


def test_delete_force_of_running_container_runs_poststop(runtime, make_bundle, tmp_path):
    log = tmp_path / "hooks.log"
    b = make_bundle(["sleep", "100"], lambda c: c.update(hooks={"poststop": [rec_hook(log, "poststop")]}))
    runtime.cmd("run", "-d", "-b", b, "h10", check=True)
    p = subprocess.run([PYOCI, "--root", runtime.root, "delete", "--force", "h10"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert kinds(log) == ["poststop"] and records(log)[0]["state"]["status"] == "stopped"
