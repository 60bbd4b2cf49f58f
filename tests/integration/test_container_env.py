"""What the container sees and what the host sees of it: namespaces,
cgroups, mounts, devices, fds, and the CVE-2019-5736 guard on the init."""
import json
import os
import subprocess

from conftest import PYOCI, unified


def run_out(runtime, make_bundle, script, cid="e1", changes=None, **kw):
    b = make_bundle(["sh", "-c", script], changes)
    p = runtime.cmd("run", "-b", b, cid, **kw)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_namespaces_are_new(runtime, make_bundle):
    # the default spec has no cgroup namespace (as runc's): asked for here
    out = run_out(runtime, make_bundle, "for n in pid net ipc uts mnt cgroup; do readlink /proc/self/ns/$n; done",
                  changes=lambda c: c["linux"]["namespaces"].append({"type": "cgroup"}))
    inside = out.split()
    outside = [os.readlink("/proc/self/ns/" + n) for n in ("pid", "net", "ipc", "uts", "mnt", "cgroup")]
    assert len(inside) == 6
    for a, b in zip(inside, outside):
        assert a != b


def test_loopback_up_and_only_interface(runtime, make_bundle):
    out = run_out(runtime, make_bundle, "ls /sys/class/net; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags")
    words = out.split()
    assert words[0] == "lo" and len(words) == 3
    assert int(words[2], 16) & 1   # IFF_UP


def test_rootfs_readonly_and_mounts(runtime, make_bundle):
    out = run_out(runtime, make_bundle, "touch /x 2>&1; echo rc=$?; cat /proc/self/mounts")
    assert "rc=1" in out and "Read-only file system" in out
    mounts = {l.split()[1]: l.split() for l in out.splitlines() if l.count(" ") >= 5}
    for d, t in (("/proc", "proc"), ("/dev", "tmpfs"), ("/dev/pts", "devpts"), ("/dev/shm", "tmpfs"),
                 ("/dev/mqueue", "mqueue"), ("/sys", "sysfs"),
                 # v1: a tmpfs of one mount per hierarchy; v2: the one cgroup2
                 ("/sys/fs/cgroup", "cgroup2" if unified() else "tmpfs")):
        assert mounts[d][2] == t, (d, mounts.get(d))
    assert mounts["/"][3].startswith("ro")
    assert mounts["/sys"][3].startswith("ro")


def test_masked_and_readonly_paths(runtime, make_bundle):
    out = run_out(runtime, make_bundle, "wc -c < /proc/timer_list; grep -c ' /proc/keys ' /proc/self/mounts; "
                  "echo 1 > /proc/sys/kernel/ostype 2>/dev/null; echo rc=$?")
    # timer_list (a file) reads as /dev/null; writes to the read-only /proc/sys fail
    assert out.split() == ["0", "1", "rc=1"]


def test_devices_and_symlinks(runtime, make_bundle):
    out = run_out(runtime, make_bundle,
                  "for d in null zero full random urandom tty; do stat -c '%n %t:%T %a' /dev/$d; done; "
                  "for l in ptmx fd stdin; do readlink /dev/$l; done")
    lines = out.splitlines()
    assert lines[:6] == ["/dev/null 1:3 666", "/dev/zero 1:5 666", "/dev/full 1:7 666",
                         "/dev/random 1:8 666", "/dev/urandom 1:9 666", "/dev/tty 5:0 666"]
    assert lines[6:] == ["pts/ptmx", "/proc/self/fd", "/proc/self/fd/0"]


def test_cgroup_placement_every_hierarchy(runtime, make_bundle):
    b = make_bundle(["sleep", "100"])
    runtime.cmd("run", "-d", "-b", b, "cg1", check=True)
    pid = runtime.state("cg1")["pid"]
    with open("/proc/%d/cgroup" % pid) as f:
        lines = [l.strip().split(":", 2) for l in f]
    from pyoci.linux.cgroups import layout

    mounted = {h.key for h in layout()}
    placed = [(ctrl, path) for _, ctrl, path in lines if ctrl in mounted]
    assert {c for c, _ in placed} == mounted
    for ctrl, path in placed:
        assert path.endswith("/cg1"), (ctrl, path)
    # inside, the cgroup namespace makes it the root
    p = subprocess.run(["nsenter", "-t", str(pid), "-C", "-m", "cat", "/proc/self/cgroup"],
                       capture_output=True, text=True)
    if p.returncode == 0:
        assert all(l.endswith(":/") for l in p.stdout.split())
    runtime.cmd("delete", "-f", "cg1", check=True)


def test_hostname_user_cwd_env(runtime, make_bundle):
    def changes(c):
        c["hostname"] = "box1"
        c["process"]["user"] = {"uid": 65534, "gid": 65534, "additionalGids": [5]}
        c["process"]["cwd"] = "/work/dir"
        c["process"]["env"].append("FOO=bar")
        c["root"]["readonly"] = False
    out = run_out(runtime, make_bundle, "hostname; id -u; id -g; id -G; pwd; echo $FOO $HOME", changes=changes)
    assert out.split("\n")[:6] == ["box1", "65534", "65534", "65534 5", "/work/dir", "bar /nonexistent"]


def test_capabilities_and_no_new_privs(runtime, make_bundle):
    out = run_out(runtime, make_bundle, "grep -E '^(Cap|NoNewPrivs)' /proc/self/status")
    f = dict(l.split(":\t") for l in out.splitlines())
    want = (1 << 29) | (1 << 5) | (1 << 10)
    assert int(f["CapBnd"], 16) == want and int(f["CapEff"], 16) == want and int(f["CapPrm"], 16) == want
    assert int(f["CapInh"], 16) == 0
    assert f["NoNewPrivs"].strip() == "1"


def test_inherited_fds_are_closed(runtime, make_bundle, tmp_path):
    b = make_bundle(["sh", "-c", "ls /proc/self/fd"])
    extra = open(tmp_path / "leak", "w")
    try:
        os.set_inheritable(extra.fileno(), True)
        p = subprocess.run([PYOCI, "--root", runtime.root, "run", "-b", b, "f1"], pass_fds=[extra.fileno()],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        fds = sorted(int(x) for x in p.stdout.split())
        assert fds == [0, 1, 2, 3]   # 3 is ls's own directory fd
        # with --preserve-fds 1 the caller's fd 3 reaches the container
        os.dup2(extra.fileno(), 3) if extra.fileno() != 3 else None
        p = subprocess.run([PYOCI, "--root", runtime.root, "run", "--preserve-fds", "1", "-b", b, "f2"],
                           pass_fds=[3], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stderr
        assert sorted(int(x) for x in p.stdout.split()) == [0, 1, 2, 3, 4]
    finally:
        extra.close()


def test_waiting_init_is_small_and_not_a_writable_host_binary(runtime, make_bundle):
    """CVE-2019-5736: the created init's /proc/PID/exe must not be a host
    binary the container could reopen for writing; and it costs little."""
    b = make_bundle(["sleep", "100"])
    runtime.cmd("create", "-b", b, "m1", check=True)
    pid = runtime.state("m1")["pid"]
    exe = "/proc/%d/exe" % pid
    st = os.stat(exe)
    ro = bool(os.statvfs(exe).f_flag & os.ST_RDONLY)
    assert st.st_nlink == 0 or ro
    try:
        fd = os.open(exe, os.O_WRONLY)
    except OSError as e:
        assert e.errno in (30, 26, 13), e   # EROFS, ETXTBSY, EACCES
    else:
        os.close(fd)
        raise AssertionError("the init's executable opened for writing")
    for host in ("/usr/bin/python3", os.path.realpath(PYOCI)):
        if os.path.exists(host):
            assert not os.path.samestat(st, os.stat(host))
    with open("/proc/%d/smaps_rollup" % pid) as f:
        pss = {l.split(":")[0]: int(l.split()[1]) for l in f if l.startswith("Pss:")}["Pss"]
    assert pss <= 1536, "created init PSS %d kB" % pss
    with open("/proc/%d/cmdline" % pid) as f:
        assert f.read().split("\0")[0] == "pyoci-init"
    runtime.cmd("delete", "m1", check=True)
