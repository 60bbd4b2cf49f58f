"""LSM exec labels: host support handled as runc (AppArmor) and crun
(SELinux) do, and the label's procfs file cannot be redirected by a mount."""
import os
import subprocess
import sys

import pytest

from pyoci.config import features


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
fd = lsm.open_attr("exec")
print("ours", os.fstat(fd).st_ino == decoy, lsys.fstatfs_type(fd) == lsm.PROC_SUPER_MAGIC,
      os.readlink("/proc/self/fd/%d" % fd).endswith("/%d/attr/exec" % os.getpid()))
# a tmpfs over the attr directory
lsys.mount("tmpfs", "/proc/%d/attr" % os.getpid(), "tmpfs")
open("/proc/%d/attr/exec" % os.getpid(), "w").close()
fd = lsm.open_attr("exec")
print("tmpfs", lsys.fstatfs_type(fd) == lsm.PROC_SUPER_MAGIC)
"""


def test_label_attr_cannot_be_redirected_by_a_mount(host_guard):
    p = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=30, cwd="/")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    # the trick fools a path-based open, even one that checks statfs
    assert lines[0] == "naive True True"
    assert lines[1] == "verified refused"   # pyoci.linux.procfs sees the mount
    # lsm.open_attr reaches the real attr file through a fresh procfs
    assert lines[2] == "ours False True True"
    assert lines[3] == "tmpfs True"
