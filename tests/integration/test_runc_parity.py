"""Behaviour runc's own integration suite (tests/integration/*.bats, v1.1.5)
checks, each class checked here by its effect: mounts and rootfs
(read-only /dev, --no-pivot and a bare /proc, proc on a symlink), cgroups
(frozen or shared cgroup, unified keys on v1, sub-cgroups at delete), exec
(debug lines, --cgroup wording), the default spec."""
import json
import os
import subprocess

import pytest

from conftest import PYOCI
from pyoci.linux.cgroups import layout
from test_cgroups import cg_dir, start_sleeping


def _caps(c, *names):
    for k in ("bounding", "effective", "permitted"):
        c["process"]["capabilities"].setdefault(k, [])
        c["process"]["capabilities"][k] += list(names)


def test_read_only_dev_mount_made_read_only_last(runtime, make_bundle):
    """runc issue 3248: /dev asked read-only gets devpts, the devices and the
    symlinks first, then becomes read-only."""
    def ch(c):
        for m in c["mounts"]:
            if m["destination"] == "/dev":
                m["options"] = m.get("options", []) + ["ro"]
    b = make_bundle(["sh", "-c", "grep '^tmpfs /dev ' /proc/mounts; ls /dev/pts/ptmx /dev/null >/dev/null && "
                     "echo devs; touch /dev/x 2>/dev/null || echo refused"], ch)
    p = runtime.cmd("run", "-b", b, "rodev")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert " ro," in lines[0] and lines[1:] == ["devs", "refused"], p.stdout


def test_no_pivot_does_not_expose_a_bare_proc(runtime, make_bundle):
    """Regression test (runc's no_pivot.bats): with --no-pivot the host's
    mounts stay in the container's mount namespace under the chroot; a full
    procfs among them let a process in a new user namespace mount a fresh,
    unmasked proc and write /proc/sysrq-trigger. pyoci unmounts (or covers)
    every full proc and sysfs outside the rootfs first."""
    def ch(c):
        _caps(c, "CAP_SETFCAP")
    b = make_bundle(["/bin/busybox", "unshare", "-mrpf", "sh", "-euxc", "mount -t proc none /proc && echo h > /proc/sysrq-trigger"],
                    ch)
    p = runtime.cmd("run", "--no-pivot", "-b", b, "nopiv")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "mount: permission denied" in p.stdout + p.stderr, p.stdout + p.stderr
    # the host's own /proc and /sys are untouched
    assert os.path.exists("/proc/self/status") and os.path.isdir("/sys/fs/cgroup")


@pytest.mark.parametrize("prop", ["private", "rprivate"])
def test_no_pivot_with_a_private_root_refused(runtime, make_bundle, prop):
    b = make_bundle(["true"], lambda c: c["linux"].update(rootfsPropagation=prop))
    p = runtime.cmd("run", "--no-pivot", "-b", b, "nopivp")
    assert p.returncode == 1 and "rootfsPropagation of [r]private is not safe without pivot_root" in p.stderr
    assert runtime.ids() == []
    assert runtime.cmd("run", "-b", b, "pivp").returncode == 0   # with pivot_root it is fine


def test_proc_on_a_symlink_refused_in_runcs_words(runtime, make_bundle):
    b = make_bundle(["true"])
    rootfs = os.path.join(b, "rootfs")
    os.rmdir(os.path.join(rootfs, "proc")) if os.path.isdir(os.path.join(rootfs, "proc")) else None
    os.symlink("/symlink", os.path.join(rootfs, "proc"))
    p = runtime.cmd("run", "-b", b, "procsym")
    assert p.returncode == 1 and "filesystem" in p.stderr and "must be mounted on ordinary directory" in p.stderr
    assert runtime.ids() == []


def _freezer_dir(rel):
    for h in layout():
        if (h.version == 1 and "freezer" in h.controllers) or (h.version == 2 and not any(
                x.version == 1 and "freezer" in x.controllers for x in layout())):
            return os.path.join(h.mountpoint, rel.lstrip("/")), h.version
    pytest.skip("no freezer")


def test_pre_existing_frozen_cgroup_refused_not_hung(runtime, make_bundle):
    rel = "/pyoci-frozen-test-%d" % os.getpid()
    d, ver = _freezer_dir(rel)
    os.mkdir(d)
    try:
        with open(os.path.join(d, "freezer.state" if ver == 1 else "cgroup.freeze"), "w") as f:
            f.write("FROZEN" if ver == 1 else "1")
        b = make_bundle(["true"], lambda c: c["linux"].update(cgroupsPath=rel))
        for cmd in ("run", "create"):
            p = runtime.cmd(cmd, "-b", b, "frz", timeout=30)
            assert p.returncode == 1 and "container's cgroup unexpectedly frozen" in p.stderr, p.stderr
            assert runtime.ids() == []
        # the cgroup pyoci did not make is left as it was: frozen
        with open(os.path.join(d, "freezer.state" if ver == 1 else "cgroup.freeze")) as f:
            assert f.read().strip() in ("FROZEN", "1")
    finally:
        with open(os.path.join(d, "freezer.state" if ver == 1 else "cgroup.freeze"), "w") as f:
            f.write("THAWED" if ver == 1 else "0")
        os.rmdir(d)


def test_shared_cgroup_warned_as_runc(runtime, make_bundle):
    rel = "/pyoci-shared-test-%d" % os.getpid()
    b = make_bundle(["sleep", "100"], lambda c: c["linux"].update(cgroupsPath=rel))
    runtime.cmd("run", "-d", "-b", b, "sh1", check=True)
    p = runtime.cmd("create", "-b", b, "sh2")
    assert p.returncode == 0, p.stderr
    assert "container's cgroup is not empty: 1 process(es) found" in p.stderr and "level=warning" in p.stderr
    runtime.cmd("delete", "-f", "sh2", check=True)
    runtime.cmd("delete", "-f", "sh1", check=True)


def test_unified_keys_on_a_v1_host_are_an_invalid_configuration(runtime, make_bundle):
    if not any(h.version == 1 and "memory" in h.controllers for h in layout()):
        pytest.skip("the memory controller is not on cgroup v1 here")
    b = make_bundle(["true"], lambda c: c["linux"]["resources"].update(unified={"memory.min": "131072"}))
    p = runtime.cmd("run", "-b", b, "uni")
    assert p.returncode == 1 and "invalid configuration" in p.stderr and "linux.resources.unified" in p.stderr
    assert runtime.ids() == []


def test_delete_removes_sub_cgroups_the_container_made(runtime, make_bundle):
    pid = start_sleeping(runtime, make_bundle, "subcg", {})
    made = []
    for ctrl in ("memory", "freezer", ""):
        try:
            d = cg_dir(pid, ctrl)
        except LookupError:
            continue
        sub = os.path.join(d, "foo", "bar")
        os.makedirs(sub)
        made.append(sub)
        with open(os.path.join(sub, "cgroup.procs"), "w") as f:
            f.write(str(pid))
    assert made
    runtime.cmd("delete", "--force", "subcg", check=True)
    assert not [m for m in made if os.path.exists(m)]
    assert runtime.ids() == []


def test_exec_debug_lines_and_cgroup_wording(runtime, make_bundle):
    start_sleeping(runtime, make_bundle, "exdbg", {})
    p = runtime.cmd("--debug", "exec", "exdbg", "true")
    assert p.returncode == 0, p.stderr
    for stage in ("nsexec container setup", "child process in init()", "setns_init: about to exec"):
        assert stage in p.stderr, p.stderr
    p = runtime.cmd("exec", "--cgroup", "..", "exdbg", "true")
    assert p.returncode == 255 and " .. is not a sub cgroup path" in p.stderr
    p = runtime.cmd("exec", "--cgroup", "nonexistent", "exdbg", "true")
    assert p.returncode == 255 and " adding pid " in p.stderr and "/nonexistent/cgroup.procs: no such file " in p.stderr
    p = runtime.cmd("exec", "--cgroup", "whaaat:/", "exdbg", "true")
    assert p.returncode == 255 and "unknown controller " in p.stderr
    runtime.cmd("delete", "-f", "exdbg", check=True)


def test_default_spec_is_runcs_namespaces(tmp_path):
    """runc 1.1.5's spec has no cgroup namespace (runc's suite appends one,
    and a duplicate is refused)."""
    subprocess.run([PYOCI, "spec", "--bundle", str(tmp_path)], check=True)
    with open(tmp_path / "config.json") as f:
        spec = json.load(f)
    assert [n["type"] for n in spec["linux"]["namespaces"]] == ["pid", "network", "ipc", "uts", "mount"]
    assert "ambient" not in spec["process"]["capabilities"]


def test_terminal_owned_by_the_process_user(runtime, make_bundle, tmp_path):
    """runc's tty.bats: the pty slave belongs to the process's uid (so it
    can use its terminal); the group stays devpts' gid=5 (tty)."""
    import socket

    from test_terminal import listen, read_until_eof

    def ch(c):
        c["process"]["terminal"] = True
        c["process"]["user"] = {"uid": 1000, "gid": 100}
    b = make_bundle(["sh", "-c", "stat -c %u:%g $(tty)"], ch)
    srv, path = listen(tmp_path)
    with srv:
        runtime.cmd("create", "--console-socket", path, "-b", b, "ttyown", check=True)
        conn, _ = srv.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
    master = fds[0]
    try:
        pid = runtime.state("ttyown")["pid"]
        runtime.cmd("start", "ttyown", check=True)
        out = read_until_eof(master)
    finally:
        os.close(master)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    assert out.strip() == "1000:5", out
    runtime.cmd("delete", "-f", "ttyown", check=True)


def test_empty_intermediate_cpuset_cgroups_get_cpus_and_mems(runtime, make_bundle):
    """A pod cgroup an engine made and left empty (v1 cpuset): the cgroups
    on the way get cpus/mems before the join, as runc's cpusetEnsureParent
    (create failed with "No space left on device")."""
    h = [x for x in layout() if x.version == 1 and "cpuset" in x.controllers]
    if not h:
        pytest.skip("no v1 cpuset hierarchy")
    pod = os.path.join(h[0].mountpoint, "pyoci-pod-%d" % os.getpid())
    os.mkdir(pod)
    try:
        with open(os.path.join(pod, "cpuset.cpus")) as f:
            assert f.read().strip() == ""
        rel = "/pyoci-pod-%d/ctr" % os.getpid()
        b = make_bundle(["true"], lambda c: c["linux"].update(cgroupsPath=rel))
        p = runtime.cmd("run", "-b", b, "cpupod")
        assert p.returncode == 0, p.stderr
        with open(os.path.join(pod, "cpuset.cpus")) as f, open(os.path.join(h[0].mountpoint, "cpuset.cpus")) as g:
            assert f.read().strip() == g.read().strip()
    finally:
        for hh in layout():
            for d in (os.path.join(hh.mountpoint, "pyoci-pod-%d" % os.getpid(), "ctr"),
                      os.path.join(hh.mountpoint, "pyoci-pod-%d" % os.getpid())):
                if os.path.isdir(d):
                    os.rmdir(d)


def test_device_access_strings_as_runc_takes_them(runtime, make_bundle):
    """'rwa' is 'rw' (runc ignores letters other than r, w, m); an empty
    access is refused in runc's words."""
    res = {"devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwa"}]}
    b = make_bundle(["sh", "-c", "echo x > /dev/null && echo ok"],
                    lambda c: c["linux"]["resources"].update(res))
    p = runtime.cmd("run", "-b", b, "acc1")
    assert p.returncode == 0 and p.stdout.strip() == "ok", p.stderr
    res["devices"][1].pop("access")
    b = make_bundle(["true"], lambda c: c["linux"]["resources"].update(res))
    p = runtime.cmd("run", "-b", b, "acc2")
    assert p.returncode == 1 and "device access at 1 field cannot be empty" in p.stderr, p.stderr
    assert runtime.ids() == []


def test_console_socket_made_just_after_the_runtime_starts(runtime, make_bundle, tmp_path):
    """runc's suite starts its console receiver in the background right
    before the runtime: a socket that appears within a second is used; one
    that never does is a clear error."""
    import socket
    import time

    b = make_bundle(["true"], lambda c: c["process"].update(terminal=True))
    path = str(tmp_path / "late.sock")
    argv = [PYOCI, "--root", runtime.root, "create", "--console-socket", path, "-b", b, "late"]
    with open(tmp_path / "err", "w") as err:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        time.sleep(0.2)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        with srv:
            conn, _ = srv.accept()
            with conn:
                _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        assert p.wait(30) == 0, (tmp_path / "err").read_text()
    for fd in fds:
        os.close(fd)
    runtime.cmd("delete", "-f", "late", check=True)
    t0 = time.monotonic()
    p = runtime.cmd("create", "--console-socket", str(tmp_path / "never.sock"), "-b", b, "never")
    assert p.returncode == 1 and "connect: No such file or directory" in p.stderr
    assert time.monotonic() - t0 < 5
    assert runtime.ids() == []
