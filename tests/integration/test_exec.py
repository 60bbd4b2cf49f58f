"""`pyoci exec`: each flag checked from inside the container and from
outside, exit status, signals, detach + pid file, the terminal through a
console socket, errors with the words the engines match."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import PYOCI, our_children, unified

NS = ("pid", "net", "ipc", "uts", "mnt", "cgroup")


def status_fields(text):
    return dict(l.split(":\t", 1) for l in text.splitlines() if ":\t" in l)


def force_delete(runtime, cid):
    """delete --force while reaping: detached exec'd processes are our
    children (we are the subreaper), and the container's init cannot finish
    dying until every process of its pid namespace has been reaped."""
    p = subprocess.Popen([PYOCI, "--root", runtime.root, "delete", "--force", cid])
    while p.poll() is None:
        for pid, _ in our_children():
            if pid != p.pid:
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
        time.sleep(0.005)
    assert p.returncode == 0


def wait_exe(pid, name):
    deadline = time.monotonic() + 10
    while not open("/proc/%d/cmdline" % pid).read().startswith(name):
        assert time.monotonic() < deadline
        time.sleep(0.002)


@pytest.fixture
def running(runtime, make_bundle):
    """A running busybox container `x1` (sleep); returns its init pid."""
    def make(changes=None, cid="x1"):
        b = make_bundle(["sleep", "1000"], changes)
        runtime.cmd("run", "-d", "-b", b, cid, check=True)
        return runtime.state(cid)["pid"]
    return make


def test_exec_runs_inside_every_namespace_and_cgroup(runtime, running, tmp_path):
    init = running(lambda c: c["linux"]["namespaces"].append({"type": "cgroup"}))
    pid_file = tmp_path / "e.pid"
    p = runtime.cmd("exec", "--detach", "--pid-file", pid_file, "x1", "sleep", "100")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "" and p.stderr == ""
    raw = pid_file.read_text()
    assert raw.isdigit(), "pid file must hold the pid without a newline: %r" % raw
    pid = int(raw)
    for n in NS:
        assert os.readlink("/proc/%d/ns/%s" % (pid, n)) == os.readlink("/proc/%d/ns/%s" % (init, n))
        assert os.readlink("/proc/%d/ns/%s" % (pid, n)) != os.readlink("/proc/self/ns/" + n)
    with open("/proc/%d/cgroup" % init) as a, open("/proc/%d/cgroup" % pid) as b:
        assert a.read() == b.read()
    assert os.path.samestat(os.stat("/proc/%d/root/" % pid), os.stat("/proc/%d/root/" % init))
    # detached: re-parented to the caller's subreaper (this test process), no pyoci left
    with open("/proc/%d/stat" % pid) as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    assert [c for c in our_children() if c[0] == pid]
    assert not [c for c in our_children() if "pyoci" in c[1] or "python" in c[1]]
    # what the process itself sees, and that it is counted by ps
    out = runtime.cmd("exec", "x1", "sh", "-c", "echo $$; cat /proc/1/cmdline; echo; cat /proc/self/cgroup",
                      check=True).stdout.splitlines()
    assert int(out[0]) > 1 and out[1].startswith("sleep")
    assert all(l.endswith(":/") for l in out[2:] if l)
    ps = json.loads(runtime.cmd("ps", "--format", "json", "x1", check=True).stdout)
    assert pid in ps and init in ps
    os.kill(pid, 9)
    force_delete(runtime, "x1")


def test_exec_process_settings_from_flags(runtime, running):
    running(lambda c: c["process"].update(env=["PATH=/bin", "A=1"]))
    p = runtime.cmd("exec", "--user", "65534:65534", "--additional-gids", "5", "-g", "7", "--cwd", "/tmp",
                    "--env", "FOO=bar", "-e", "A=2", "x1", "sh", "-c",
                    "id -u; id -g; id -G; pwd; echo $FOO $A; echo $HOME")
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert out[:5] == ["65534", "65534", "65534 5 7", "/tmp", "bar 2"]
    assert out[5] == "/nonexistent"   # HOME from the container's /etc/passwd
    # the container's own process is unchanged by an exec's flags
    assert runtime.cmd("exec", "x1", "sh", "-c", "id -u; pwd; echo $A", check=True).stdout.split() == ["0", "/", "1"]
    force_delete(runtime, "x1")


def test_exec_caps_and_no_new_privs(runtime, running):
    running()
    base = status_fields(runtime.cmd("exec", "x1", "cat", "/proc/self/status", check=True).stdout)
    assert not int(base["CapEff"], 16) & (1 << 21)
    assert base["NoNewPrivs"].strip() == "1"     # the config's noNewPrivileges
    f = status_fields(runtime.cmd("exec", "--cap", "CAP_SYS_ADMIN", "-c", "CAP_NET_ADMIN", "--no-new-privs=false",
                                  "x1", "cat", "/proc/self/status", check=True).stdout)
    for bit in (21, 12):
        for s in ("CapBnd", "CapEff", "CapPrm"):
            assert int(f[s], 16) & (1 << bit), (s, bit)
    assert int(f["CapEff"], 16) == int(base["CapEff"], 16) | (1 << 21) | (1 << 12)
    assert f["NoNewPrivs"].strip() == "0"
    # the added capability works: only CAP_SYS_ADMIN may mount
    assert runtime.cmd("exec", "x1", "mount", "-t", "tmpfs", "t", "/root").returncode != 0
    assert runtime.cmd("exec", "--cap", "CAP_SYS_ADMIN", "x1", "sh", "-c",
                       "mount -t tmpfs t /root && umount /root").returncode == 0
    force_delete(runtime, "x1")


def test_exec_no_new_privs_flag_sets_it(runtime, running):
    running(lambda c: c["process"].update(noNewPrivileges=False))
    f = status_fields(runtime.cmd("exec", "x1", "cat", "/proc/self/status", check=True).stdout)
    assert f["NoNewPrivs"].strip() == "0"
    f = status_fields(runtime.cmd("exec", "--no-new-privs", "x1", "cat", "/proc/self/status", check=True).stdout)
    assert f["NoNewPrivs"].strip() == "1"
    force_delete(runtime, "x1")


def test_exec_process_file(runtime, running, tmp_path):
    running()
    proc = {"args": ["sh", "-c", "id -u; id -G; pwd; echo $X; ulimit -n; grep -E '^(CapEff|NoNewPrivs)' "
                     "/proc/self/status"],
            "env": ["PATH=/bin", "X=from-file"], "cwd": "/etc",
            "user": {"uid": 1000, "gid": 1000, "additionalGids": [1001]},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 77, "soft": 66}],
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
            "noNewPrivileges": True}
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(proc))
    p = runtime.cmd("exec", "--process", pf, "x1")
    assert p.returncode == 0, p.stderr
    out = p.stdout.splitlines()
    assert out[:5] == ["1000", "1000 1001", "/etc", "from-file", "66"]
    f = status_fields("\n".join(out[5:]))
    assert int(f["CapEff"], 16) == 0   # uid 1000 without ambient: no effective capabilities
    assert f["NoNewPrivs"].strip() == "1"
    force_delete(runtime, "x1")


def test_exec_seccomp_of_the_container_applies(runtime, running):
    def deny_mkdir(c):
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                                 "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}
    running(deny_mkdir)
    p = runtime.cmd("exec", "x1", "mkdir", "/tmp/nope")
    assert p.returncode == 1 and "Operation not permitted" in p.stderr
    assert runtime.cmd("exec", "x1", "sh", "-c", "grep ^Seccomp: /proc/self/status",
                       check=True).stdout.split() == ["Seccomp:", "2"]
    force_delete(runtime, "x1")


def test_exec_exit_status_and_signal_status(runtime, running):
    running()
    assert runtime.cmd("exec", "x1", "sh", "-c", "exit 42").returncode == 42
    assert runtime.cmd("exec", "x1", "sh", "-c", "kill -9 $$").returncode == 128 + 9
    force_delete(runtime, "x1")


def test_exec_relays_signals(runtime, running):
    running()
    p = subprocess.Popen([PYOCI, "--root", runtime.root, "exec", "x1", "sh", "-c",
                          "trap 'echo got; exit 7' USR1 TERM; echo ready; while :; do sleep 0.05; done"],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGUSR1)
        assert p.wait(10) == 7
        assert p.stdout.read() == "got\n"
    finally:
        p.kill()
        p.wait()
    force_delete(runtime, "x1")


def test_exec_preserve_fds(runtime, running, tmp_path):
    running()
    extra = tmp_path / "extra"
    extra.write_text("shared-data")
    # fd 3 of pyoci is the file (set by a shell: our own fd 3 is pytest's)
    argv = ["sh", "-c", 'exec "$@" 3<"$EXTRA"', "sh", PYOCI, "--root", runtime.root, "exec"]
    env = dict(os.environ, EXTRA=str(extra))
    cmd = ["x1", "sh", "-c", "ls /proc/self/fd; cat /proc/self/fd/3 2>/dev/null"]
    p = subprocess.run(argv + cmd, env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 1 and sorted(int(x) for x in p.stdout.split()) == [0, 1, 2, 3]
    p = subprocess.run(argv + ["--preserve-fds", "1"] + cmd, env=env, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[-1] == "shared-data"
    assert sorted(int(x) for x in p.stdout.split()[:-1]) == [0, 1, 2, 3, 4]
    force_delete(runtime, "x1")


def test_exec_tty_through_console_socket(runtime, running, tmp_path):
    running()
    path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    try:
        p = runtime.cmd("exec", "-d", "-t", "--console-socket", path, "--pid-file", tmp_path / "t.pid", "x1",
                        "sh", "-c", "tty; test -t 0 && test -t 1 && echo isatty; sleep 0.2")
        assert p.returncode == 0, p.stderr
        conn, _ = srv.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 4096, 2)
        conn.close()
        assert msg and len(fds) == 1
        master = fds[0]
        import termios

        termios.tcgetattr(master)
        buf = b""
        deadline = time.monotonic() + 10
        while b"isatty" not in buf and time.monotonic() < deadline:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            buf += chunk
        os.close(master)
        lines = buf.decode().split()
        assert lines[0].startswith("/dev/pts/") and "isatty" in lines
    finally:
        srv.close()
    # the container's /dev/console was not taken over by the exec
    assert runtime.cmd("exec", "x1", "sh", "-c", "test -c /dev/console || test ! -e /dev/console").returncode == 0
    force_delete(runtime, "x1")
    # detached, a tty needs a console socket; a console socket needs a tty
    running(cid="x2")
    p = runtime.cmd("exec", "-d", "-t", "x2", "true")
    assert p.returncode == 255 and "console socket" in p.stderr
    p = runtime.cmd("exec", "--console-socket", path, "x2", "true")
    assert p.returncode == 255 and "console socket" in p.stderr
    force_delete(runtime, "x2")


def test_exec_tty_in_the_foreground_is_relayed(runtime, running):
    """exec -t without --console-socket (not detached): pyoci relays the
    pty, as runc does."""
    running()
    p = runtime.cmd("exec", "-t", "x1", "sh", input="tty; test -t 0 && echo isatty; exit 3\n")
    assert p.returncode == 3, p.stderr
    out = p.stdout.replace("\r", "")
    assert "/dev/pts/" in out and "isatty" in out
    force_delete(runtime, "x1")


def test_exec_pidfd_socket(runtime, running, tmp_path):
    running()
    path = str(tmp_path / "pidfd.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    try:
        p = runtime.cmd("exec", "-d", "--pidfd-socket", path, "--pid-file", tmp_path / "e.pid", "x1", "sleep", "100")
        assert p.returncode == 0, p.stderr
        conn, _ = srv.accept()
        _, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        conn.close()
        with open("/proc/self/fdinfo/%d" % fds[0]) as f:
            pid = int([l for l in f if l.startswith("Pid:")][0].split()[1])
        os.close(fds[0])
        assert pid == int((tmp_path / "e.pid").read_text())
        assert open("/proc/%d/cmdline" % pid).read().startswith("sleep")
    finally:
        srv.close()
    force_delete(runtime, "x1")


def test_exec_sub_cgroup(runtime, running, tmp_path):
    running()
    state = json.load(open(os.path.join(runtime.root, "x1", "state.json")))
    paths = state["cgroup"]["paths"]
    # cgroup v1: the pids hierarchy's sub-cgroup; v2: the one hierarchy's (no controller prefix)
    v2 = unified()
    key = "" if v2 else next(k for k in paths if "pids" in k.split(","))
    sub = os.path.join(paths[key], "sub")
    os.mkdir(sub)
    try:
        p = runtime.cmd("exec", "-d", "--cgroup", "sub" if v2 else "pids:sub", "--pid-file", tmp_path / "c.pid",
                        "x1", "sleep", "100")
        assert p.returncode == 0, p.stderr
        pid = int((tmp_path / "c.pid").read_text())
        cg = dict((l.split(":")[1], l.split(":")[2]) for l in open("/proc/%d/cgroup" % pid).read().splitlines())
        init_cg = dict((l.split(":")[1], l.split(":")[2])
                       for l in open("/proc/%d/cgroup" % state["pid"]).read().splitlines())
        assert cg[key] == init_cg[key].rstrip("/") + "/sub"
        others = [k for k in cg if k != key and k in init_cg]
        assert (others or v2) and all(cg[k] == init_cg[k] for k in others)
        with open(os.path.join(sub, "cgroup.procs")) as f:
            assert str(pid) in f.read().split()
        p = runtime.cmd("exec", "--cgroup", "nonexistent" if v2 else "pids:nonexistent", "x1", "true")
        assert p.returncode == 255 and "adding pid to cgroup" in p.stderr and "nonexistent/cgroup.procs: no such file" in p.stderr
        os.kill(pid, 9)
        for _ in range(500):
            if not open(os.path.join(sub, "cgroup.procs")).read().strip():
                break
            time.sleep(0.01)
    finally:
        os.rmdir(sub)
    force_delete(runtime, "x1")


def test_exec_paused_and_ignore_paused(runtime, running, tmp_path):
    running(lambda c: c["root"].update(readonly=False))
    runtime.cmd("pause", "x1", check=True)
    p = runtime.cmd("exec", "x1", "true")
    assert p.returncode == 255 and "paused" in p.stderr
    marker = "/tmp/ran"
    p = runtime.cmd("exec", "-d", "--ignore-paused", "--pid-file", tmp_path / "p.pid", "x1",
                    "touch", marker)
    assert p.returncode == 0, p.stderr
    pid = int((tmp_path / "p.pid").read_text())
    time.sleep(0.2)
    init = runtime.state("x1")["pid"]
    assert not os.path.exists("/proc/%d/root%s" % (init, marker))   # frozen with the container
    runtime.cmd("resume", "x1", check=True)
    deadline = time.monotonic() + 10
    while not os.path.exists("/proc/%d/root%s" % (init, marker)):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert pid > 0
    force_delete(runtime, "x1")


def test_exec_into_created_container_works_and_stopped_fails(runtime, make_bundle, tmp_path):
    """As runc: exec into a created container runs in its namespaces and
    root (its init still waits for start); into a stopped one it fails."""
    b = make_bundle(["true"], lambda c: c.update(hostname="x3host"))
    with open(os.path.join(b, "rootfs", "marker"), "w") as f:
        f.write("in-rootfs\n")
    runtime.cmd("create", "-b", b, "x3", check=True)
    p = runtime.cmd("exec", "x3", "sh", "-c", "hostname; cat /marker")
    assert p.returncode == 0 and p.stdout.split() == ["x3host", "in-rootfs"], p.stderr
    assert runtime.state("x3")["status"] == "created"
    # a pid file in a missing directory is a clear error, not a traceback
    p = runtime.cmd("exec", "--pid-file", str(tmp_path / "no" / "pid"), "x3", "true")
    assert p.returncode == 255 and "--pid-file" in p.stderr and "No such file" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    runtime.cmd("start", "x3", check=True)
    for _ in range(500):
        if runtime.state("x3")["status"] == "stopped":
            break
        time.sleep(0.01)
    p = runtime.cmd("exec", "x3", "true")
    assert p.returncode == 255 and "cannot exec in a stopped container" in p.stderr
    p = runtime.cmd("exec", "nope", "true")
    assert p.returncode == 255 and "container does not exist" in p.stderr
    runtime.cmd("delete", "x3", check=True)


@pytest.mark.parametrize("args,words", [
    (["nonexistent"], "executable file not found in $PATH"),
    (["/nonexistent"], "no such file or directory"),
    (["/etc/passwd"], "permission denied"),
])
def test_exec_failure_words_in_json_log(runtime, running, tmp_path, args, words):
    running()
    log = tmp_path / "oci-log"
    p = subprocess.run([PYOCI, "--root", runtime.root, "--log", str(log), "--log-format=json", "exec", "x1"] + args,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 255
    entry = json.loads(log.read_text())   # exactly one JSON object: podman reads it whole
    assert entry["level"] == "error" and words in entry["msg"]
    assert entry["msg"].startswith("exec failed: unable to start container process: ")
    force_delete(runtime, "x1")


def test_exec_error_after_python_is_reported(runtime, running):
    """An error in pyoci-init (after the Python part) reaches the runtime
    through the report pipe: exit 255 with the reason, nothing on the
    process's own stderr."""
    from pyoci.linux.capabilities import CAPS, last_cap

    with open("/proc/self/status") as f:
        bnd = int(status_fields(f.read())["CapBnd"], 16)
    missing = [n for n, v in CAPS.items() if v <= last_cap() and not bnd & (1 << v)]
    if not missing:
        pytest.skip("every capability is in this host's bounding set")
    running()
    p = runtime.cmd("exec", "--cap", missing[0], "x1", "true")
    assert p.returncode == 255
    assert "exec failed: unable to start container process: capset: operation not permitted" in p.stderr
    assert "pyoci-init" not in p.stderr
    force_delete(runtime, "x1")


def test_exec_lsm_flags_without_the_lsm(runtime, running):
    from pyoci.config import features

    running()
    if not features.apparmor_enabled():
        p = runtime.cmd("exec", "--apparmor", "unconfined", "x1", "true")
        assert p.returncode == 255 and "AppArmor is not enabled" in p.stderr
    if not features.selinux_enabled():
        # as runc and crun: an SELinux label without SELinux is skipped (debug line)
        p = runtime.cmd("--debug", "exec", "--process-label", "system_u:system_r:container_t:s0", "x1", "true")
        assert p.returncode == 0 and "not applied: SELinux is not enabled" in p.stderr
    force_delete(runtime, "x1")


def test_exec_into_a_user_namespace(runtime, tmp_path):
    """The user namespace is joined first: ids inside are the mapped ones,
    the host sees the mapped host ids."""
    import shutil
    import tempfile

    import make_bundle as bundle_maker
    from test_userns import HOST, userns

    d = tempfile.mkdtemp(prefix="pyoci-userns-")
    try:
        os.chmod(d, 0o755)
        b = bundle_maker.make(os.path.join(d, "b"), ["sleep", "1000"], "/bin/busybox", lambda c: userns(c))
        for top, dirs, files in os.walk(os.path.join(b, "rootfs")):
            for n in [top] + [os.path.join(top, x) for x in dirs + files]:
                os.lchown(n, HOST, HOST)
        runtime.cmd("run", "-d", "-b", b, "xu", check=True)
        init = runtime.state("xu")["pid"]
        p = runtime.cmd("exec", "-d", "--pid-file", tmp_path / "u.pid", "-u", "5:6", "xu", "sleep", "100")
        assert p.returncode == 0, p.stderr
        pid = int((tmp_path / "u.pid").read_text())
        assert os.readlink("/proc/%d/ns/user" % pid) == os.readlink("/proc/%d/ns/user" % init)
        wait_exe(pid, "sleep")
        f = status_fields(open("/proc/%d/status" % pid).read())
        assert f["Uid"].split()[0] == str(HOST + 5) and f["Gid"].split()[0] == str(HOST + 6)
        out = runtime.cmd("exec", "xu", "sh", "-c", "id -u; cat /proc/self/uid_map", check=True).stdout.split()
        assert out == ["0", "0", str(HOST), "65536"]
        force_delete(runtime, "xu")
    finally:
        shutil.rmtree(d)


def test_exec_never_shows_a_host_binary_to_the_container(runtime, running):
    """CVE-2019-5736: while exec sets up inside the container's pid
    namespace, a process of a fully privileged container (CAP_SYS_PTRACE:
    non-dumpable would not stop it) watches every new pid and resolves its
    /proc/PID/exe. It must never see the host's Python: the Python part of
    exec never enters the container's pid namespace, only pyoci-init's
    fork does, from a read-only mount."""
    from pyoci.linux.capabilities import CAPS, last_cap

    with open("/proc/self/status") as f:
        bnd = int(status_fields(f.read())["CapBnd"], 16)
    allcaps = [n for n, v in CAPS.items() if v <= last_cap() and bnd & (1 << v)]

    def privileged(c):
        c["process"]["capabilities"] = {s: allcaps for s in ("bounding", "effective", "permitted")}
        c["process"]["noNewPrivileges"] = False
        c["root"]["readonly"] = False
    running(privileged)
    watcher = ("while [ ! -e /tmp/stop ]; do for p in /proc/[0-9]*; do "
               "readlink $p/exe 2>/dev/null; done; done | grep -v -e busybox -e pyoci-init "
               "| sort -u > /tmp/seen; touch /tmp/done")
    runtime.cmd("exec", "-d", "x1", "sh", "-c", watcher, check=True)
    for _ in range(15):
        runtime.cmd("exec", "x1", "true", check=True)
    runtime.cmd("exec", "x1", "touch", "/tmp/stop", check=True)
    init = runtime.state("x1")["pid"]
    deadline = time.monotonic() + 10
    while not os.path.exists("/proc/%d/root/tmp/done" % init):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    seen = open("/proc/%d/root/tmp/seen" % init).read().split()
    assert not [s for s in seen if "python" in s], seen
    force_delete(runtime, "x1")


def test_exec_into_a_no_pivot_container(runtime, make_bundle):
    """--no-pivot (MS_MOVE + chroot): the exec'd process gets the init's
    root, not the mount namespace's."""
    b = make_bundle(["sleep", "100"])
    runtime.cmd("run", "-d", "--no-pivot", "-b", b, "xn", check=True)
    out = runtime.cmd("exec", "xn", "sh", "-c", "ls /; test -e /bin/busybox && echo ok", check=True).stdout.split()
    assert out[-1] == "ok" and "bin" in out and "tmp" in out
    force_delete(runtime, "xn")
