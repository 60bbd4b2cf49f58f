"""LSM exec labels: host support handled as runc (AppArmor) and crun
(SELinux) do, and the label's procfs file cannot be redirected by a mount."""
import os
import subprocess
import sys

import pytest

from pyoci.config import features
from test_exec import force_delete


def test_apparmor_without_apparmor_is_a_clear_error(runtime, make_bundle):
    if features.apparmor_enabled():
        pytest.skip("AppArmor is enabled here")
    b = make_bundle(["true"], lambda c: c["process"].update(apparmorProfile="pyoci-test"))
    p = runtime.cmd("run", "-b", b, "aa1")
    assert p.returncode == 1
    assert "process.apparmorProfile" in p.stderr and "AppArmor is not enabled" in p.stderr
    assert runtime.ids() == []


def test_selinux_label_without_selinux_starts_and_says_so(runtime, make_bundle):
    if features.selinux_enabled():
        pytest.skip("SELinux is enabled here")
    b = make_bundle(["sh", "-c", "cat /proc/self/attr/current 2>/dev/null; echo ok"],
                    lambda c: c["process"].update(selinuxLabel="system_u:system_r:container_t:s0"))
    p = runtime.cmd("--debug", "run", "-b", b, "se1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[-1] == "ok"
    assert "level=debug" in p.stderr and "selinuxLabel" in p.stderr and "not applied" in p.stderr


def _selinux_enforcing():
    try:
        with open("/sys/fs/selinux/enforce") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


PROBE = r"""
import os, sys
from pyoci.linux import lsm, procfs
from pyoci.linux import sys as lsys
lsys.unshare(lsys.CLONE_NEWNS | lsys.CLONE_NEWUTS)
lsys.mount(None, "/", None, lsys.MS_REC | lsys.MS_PRIVATE)
target = "/proc/%d/attr/exec" % os.getpid()
# the trick: a real procfs file (passes a statfs check) bound over attr/exec
lsys.mount("/proc/sys/kernel/domainname", target, None, lsys.MS_BIND)
decoy = os.stat("/proc/sys/kernel/domainname").st_ino
naive = os.open("/proc/self/attr/exec", os.O_WRONLY)
print("naive", os.fstat(naive).st_ino == decoy, lsys.fstatfs_type(naive) == lsm.PROC_SUPER_MAGIC)
try:
    procfs.open_verified("/proc/self/attr/exec")
    print("verified opened")
except Exception as e:
    print("verified refused")
# the directory pyoci-init opens the attr file beneath, and the same open
fd = lsm.open_attr(lsm.attr_dir(), "exec")
print("ours", os.fstat(fd).st_ino == decoy, lsys.fstatfs_type(fd) == lsm.PROC_SUPER_MAGIC,
      os.readlink("/proc/self/fd/%d" % fd).endswith("/%d/attr/exec" % os.getpid()))
# a tmpfs over the attr directory
lsys.mount("tmpfs", "/proc/%d/attr" % os.getpid(), "tmpfs")
open("/proc/%d/attr/exec" % os.getpid(), "w").close()
fd = lsm.open_attr(lsm.attr_dir(), "exec")
print("tmpfs", lsys.fstatfs_type(fd) == lsm.PROC_SUPER_MAGIC)
# the container's own /proc when no fresh procfs can be made: the bind over
# attr/exec is a mount crossing, refused
lsys.umount2("/proc/%d/attr" % os.getpid())
def no_fresh_mount(*a):
    raise OSError(1, "no fsopen here")
lsys.fresh_mount = no_fresh_mount
d = lsm.attr_dir()
try:
    lsm.open_attr(d, "exec")
    print("fallback opened")
except OSError as e:
    print("fallback", e.errno == 18)
"""


def test_label_attr_cannot_be_redirected_by_a_mount(host_guard):
    if _selinux_enforcing():
        pytest.skip("SELinux enforcing refuses the decoy mounts over /proc/PID/attr themselves")
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=30, cwd="/")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    # the trick fools a path-based open, even one that checks statfs
    assert lines[0] == "naive True True"
    assert lines[1] == "verified refused"   # pyoci.linux.procfs sees the mount
    # lsm.open_attr reaches the real attr file through a fresh procfs
    assert lines[2] == "ours False True True"
    assert lines[3] == "tmpfs True"
    assert lines[4] == "fallback True"   # EXDEV


# -- AppArmor, where it is enabled (the Debian 12 guest) -------------------

PROFILE = """profile %s flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  signal,
  ptrace,
  unix,
  mount,
  umount,
  pivot_root,
  deny /denied rw,
}
"""


@pytest.fixture
def aa_profile(tmp_path, host_guard):
    """aa_profile() -> the name of a profile loaded for this test (every file
    allowed but /denied in the container), unloaded afterwards."""
    import shutil

    if not features.apparmor_enabled():
        pytest.skip("AppArmor is not enabled here")
    parser = shutil.which("apparmor_parser") or "/sbin/apparmor_parser"
    if not os.path.exists(parser):
        pytest.skip("apparmor_parser is not installed")
    loaded = []

    def load(suffix=""):
        name = "pyoci-test-%d%s" % (os.getpid(), suffix)
        path = str(tmp_path / ("profile" + suffix))
        with open(path, "w") as f:
            f.write(PROFILE % name)
        subprocess.run([parser, "-r", "-K", path], check=True, capture_output=True, timeout=120)
        loaded.append(path)
        return name

    yield load
    for path in loaded:
        subprocess.run([parser, "-R", "-K", path], capture_output=True, timeout=120)


def _with_files(bundle):
    for name in ("allowed", "denied"):
        with open(os.path.join(bundle, "rootfs", name), "w") as f:
            f.write(name + "-content\n")
    return bundle


def _attr_current(pid):
    with open("/proc/%d/attr/current" % pid) as f:
        return f.read().strip("\0\n ")


PROBE_SH = "cat /proc/self/attr/current; cat /allowed; cat /denied || echo read-denied; " \
           "echo x >/denied || echo write-denied"


def test_apparmor_profile_confines_the_process(runtime, make_bundle, aa_profile):
    """The init runs under the profile (inside and from the host) and what
    the profile denies is denied; as a user other than root, with
    no_new_privs and no capabilities too (the profile is set while pyoci-init
    still has the caller's privileges, a transition from unconfined stays
    allowed under no_new_privs)."""
    name = aa_profile()
    b = _with_files(make_bundle(["sh", "-c", PROBE_SH],
                                lambda c: c["process"].update(apparmorProfile=name)))
    p = runtime.cmd("run", "-b", b, "aa2")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["%s (enforce)" % name, "allowed-content", "read-denied", "write-denied"]
    assert "Permission denied" in p.stderr

    def unprivileged(c):
        c["process"].update(apparmorProfile=name, noNewPrivileges=True, user={"uid": 1000, "gid": 1000},
                            capabilities={})
    b = _with_files(make_bundle(["sh", "-c", PROBE_SH + "; id -u"], unprivileged))
    os.chmod(os.path.join(b, "rootfs", "denied"), 0o666)
    p = runtime.cmd("run", "-b", b, "aa3")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["%s (enforce)" % name, "allowed-content", "read-denied", "write-denied",
                                     "1000"]


def test_apparmor_profile_seen_from_the_host_and_in_exec(runtime, make_bundle, aa_profile):
    """The host sees the init confined; exec takes the container's profile
    unless --apparmor names another, and --apparmor confines an exec into an
    unconfined container (runc's flags)."""
    name, other = aa_profile(), aa_profile("-b")
    b = _with_files(make_bundle(["sleep", "300"], lambda c: c["process"].update(apparmorProfile=name)))
    assert runtime.cmd("create", "-b", b, "aa4").returncode == 0
    pid = runtime.state("aa4")["pid"]
    assert runtime.cmd("start", "aa4").returncode == 0
    assert _attr_current(pid) == "%s (enforce)" % name
    p = runtime.cmd("exec", "aa4", "sh", "-c", "cat /proc/self/attr/current; cat /denied || echo read-denied")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["%s (enforce)" % name, "read-denied"]
    p = runtime.cmd("exec", "--apparmor", other, "aa4", "cat", "/proc/self/attr/current")
    assert p.returncode == 0 and p.stdout.strip() == "%s (enforce)" % other, p.stderr
    p = runtime.cmd("exec", "--apparmor", "unconfined", "aa4", "sh", "-c", "cat /proc/self/attr/current /denied")
    assert p.returncode == 0 and p.stdout.splitlines() == ["unconfined", "denied-content"], p.stderr
    assert runtime.cmd("delete", "--force", "aa4").returncode == 0

    b = _with_files(make_bundle(["sleep", "300"]))
    assert runtime.cmd("run", "-d", "-b", b, "aa5").returncode == 0
    assert _attr_current(runtime.state("aa5")["pid"]) == "unconfined"
    p = runtime.cmd("exec", "-d", "--pid-file", str(b) + "/exec.pid", "--apparmor", name, "aa5", "sleep", "300")
    assert p.returncode == 0, p.stderr
    with open(str(b) + "/exec.pid") as f:
        assert _attr_current(int(f.read())) == "%s (enforce)" % name
    p = runtime.cmd("exec", "--apparmor", name, "aa5", "sh", "-c", "cat /denied || echo read-denied")
    assert p.returncode == 0 and p.stdout.strip() == "read-denied", p.stderr
    force_delete(runtime, "aa5")   # reaps the detached exec'd process (we are its subreaper)


def test_apparmor_profile_not_loaded_is_refused(runtime, make_bundle, aa_profile):
    """A profile that is not loaded fails create naming the field, nothing
    left behind; one the kernel refuses later (past the check: a stack of
    a missing profile) fails create with pyoci-init's report, not start."""
    aa_profile()
    b = make_bundle(["true"], lambda c: c["process"].update(apparmorProfile="pyoci-no-such-profile"))
    p = runtime.cmd("run", "-b", b, "aa6")
    assert p.returncode == 1
    assert "process.apparmorProfile" in p.stderr and "'pyoci-no-such-profile' is not loaded" in p.stderr
    assert runtime.ids() == []
    p = runtime.cmd("validate", "--bundle", b, "--host")
    assert p.returncode == 1 and "process.apparmorProfile: AppArmor profile 'pyoci-no-such-profile' is not " \
        "loaded" in p.stdout + p.stderr
    b = make_bundle(["true"], lambda c: c["process"].update(apparmorProfile="&pyoci-no-such-profile"))
    p = runtime.cmd("create", "-b", b, "aa7")
    assert p.returncode == 1
    assert "process.apparmorProfile: apply AppArmor profile '&pyoci-no-such-profile': no such file" in p.stderr
    assert runtime.ids() == []
    p = runtime.cmd("run", "-d", "-b", make_bundle(["sleep", "300"]), "aa8")
    assert p.returncode == 0, p.stderr
    p = runtime.cmd("exec", "--apparmor", "pyoci-no-such-profile", "aa8", "true")
    assert p.returncode == 255 and "'pyoci-no-such-profile' is not loaded" in p.stderr
    assert runtime.cmd("delete", "--force", "aa8").returncode == 0


# -- SELinux, where it is enabled (the guest's SELinux boot) ---------------

SE_PROC = "system_u:system_r:container_t:s0:c1,c2"
SE_FILE = "system_u:object_r:container_file_t:s0:c1,c2"


@pytest.fixture
def selinux(host_guard):
    if not features.selinux_enabled():
        pytest.skip("SELinux is not enabled here")
    from pyoci.errors import ConfigError
    from pyoci.linux import lsm

    try:
        lsm.check_context("x", SE_PROC)
        lsm.check_context("x", SE_FILE)
    except ConfigError:
        pytest.skip("the loaded policy has no container_t / container_file_t")


def _add_host_program(rootfs, path):
    """Copy a dynamically linked host program and its libraries (ldd) into
    the rootfs, under the same paths: coreutils' ls and procps' ps, which
    show SELinux labels (busybox-static does not)."""
    import shutil

    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    files = [path] + [w for w in out.split() if w.startswith("/")]
    for f in files:
        dst = os.path.join(rootfs, f.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.realpath(f), dst)


def _key_label(cid):
    """The SELinux label of the container's session keyring, read from the
    host (/proc/keys for its id, keyctl(KEYCTL_GET_SECURITY))."""
    import ctypes

    with open("/proc/keys") as f:
        # ID FLAGS USAGE TIMEOUT PERM UID GID TYPE DESCRIPTION ("_ses.ID: empty")
        ids = [int(w[0], 16) for w in (line.split(None, 8) for line in f)
               if len(w) == 9 and w[7] == "keyring" and w[8].split(":")[0] == "_ses." + cid]
    assert ids, "no session keyring _ses.%s in /proc/keys" % cid
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)
    n = libc.syscall(250, 17, ids[0], buf, 256)   # keyctl(KEYCTL_GET_SECURITY)
    assert n > 0, os.strerror(ctypes.get_errno())
    return buf.value.decode()


def test_selinux_labels_of_process_mounts_and_keyring(runtime, make_bundle, selinux):
    """process.selinuxLabel is the init's label (ps -Z inside and on the
    host, /proc/PID/attr/current) and its session keyring's; mountLabel is on
    the tmpfs, devpts and mqueue mounts (ls -Z inside and on the host); exec
    takes the container's label unless --process-label names another."""
    def labels(c):
        c["process"]["selinuxLabel"] = SE_PROC
        c["linux"]["mountLabel"] = SE_FILE
        c["mounts"].append({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
                            "options": ["nosuid", "nodev"]})
    b = make_bundle(["sleep", "300"], labels)
    for prog in ("/usr/bin/ls", "/usr/bin/ps"):
        _add_host_program(os.path.join(b, "rootfs"), prog)
    assert runtime.cmd("create", "-b", b, "se2").returncode == 0
    assert runtime.cmd("start", "se2").returncode == 0
    pid = runtime.state("se2")["pid"]
    assert _attr_current(pid) == SE_PROC
    ps = subprocess.run(["ps", "-o", "label=", "-p", str(pid)], capture_output=True, text=True)
    assert ps.stdout.strip() == SE_PROC
    dirs = ["/dev", "/dev/shm", "/dev/pts", "/dev/mqueue", "/scratch"]
    out = subprocess.run(["ls", "-Zd"] + ["/proc/%d/root%s" % (pid, d) for d in dirs],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    assert [line.split()[0] for line in out if line] == [SE_FILE] * len(dirs)
    assert _key_label("se2") == SE_PROC

    p = runtime.cmd("exec", "se2", "sh", "-c",
                    "cat /proc/self/attr/current; echo; /usr/bin/ps -o label=,args= -p 1; "
                    "/usr/bin/ls -Zd " + " ".join(dirs))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].strip("\0") == SE_PROC
    assert lines[1].split() == [SE_PROC, "sleep", "300"]
    assert [line.split()[0] for line in lines[2:]] == [SE_FILE] * len(dirs)
    other = "system_u:system_r:container_t:s0:c3,c4"
    p = runtime.cmd("exec", "--process-label", other, "se2", "cat", "/proc/self/attr/current")
    assert p.returncode == 0 and p.stdout.strip("\0\n") == other, p.stderr
    assert runtime.cmd("delete", "--force", "se2").returncode == 0


def test_selinux_label_unknown_to_the_policy_is_refused(runtime, make_bundle, selinux):
    for field, change in (("process.selinuxLabel", lambda c: c["process"].update(
                              selinuxLabel="system_u:system_r:pyoci_no_such_t:s0")),
                          ("linux.mountLabel", lambda c: c["linux"].update(
                              mountLabel="system_u:object_r:pyoci_no_such_t:s0"))):
        b = make_bundle(["true"], change)
        p = runtime.cmd("run", "-b", b, "se3")
        assert p.returncode == 1
        assert field in p.stderr and "not a valid SELinux context" in p.stderr
        assert runtime.ids() == []
        p = runtime.cmd("validate", "--bundle", b, "--host")
        assert p.returncode == 1 and field + ": 'system_u:" in p.stdout + p.stderr


def test_selinux_label_is_enforced(runtime, make_bundle, selinux):
    """In enforcing mode the policy confines the labelled process: in the
    guest policy's test domain (pyoci_test_t: creates files only on
    container_file_t) it writes to its /dev/shm (labelled by mountLabel) and
    may not create a file in its rootfs; an unlabelled container may."""
    from pyoci.errors import ConfigError
    from pyoci.linux import lsm

    if not _selinux_enforcing():
        pytest.skip("SELinux is permissive here")
    label = "system_u:system_r:pyoci_test_t:s0:c1,c2"
    try:
        lsm.check_context("x", label)
    except ConfigError:
        pytest.skip("the loaded policy has no pyoci_test_t (.ci/guest.d/selinux-container.cil)")
    probe = ("cat /proc/self/attr/current; echo; echo x >/dev/shm/w && echo shm-written; "
             "touch /new && echo rootfs-created || echo rootfs-create-denied")

    def labels(c):
        c["process"]["selinuxLabel"] = label
        c["linux"]["mountLabel"] = SE_FILE
        c["root"]["readonly"] = False
    b = make_bundle(["sh", "-c", probe], labels)
    p = runtime.cmd("run", "-b", b, "se4")
    assert p.returncode == 0, p.stderr
    assert [x.strip("\0") for x in p.stdout.splitlines()] == [label, "shm-written", "rootfs-create-denied"]
    assert "Permission denied" in p.stderr and not os.path.exists(os.path.join(b, "rootfs", "new"))
    b = make_bundle(["sh", "-c", probe], lambda c: c["root"].update(readonly=False))
    p = runtime.cmd("run", "-b", b, "se5")
    assert p.returncode == 0 and p.stdout.splitlines()[-2:] == ["shm-written", "rootfs-created"], p.stderr
