"""LSM exec labels: process.apparmorProfile and process.selinuxLabel.

The label is written by pyoci-init (after the uid switch, capabilities and
no_new_privs, right before seccomp and execve) to an fd that the runtime
opened here, in the container's init, on the task's own attr file:

  <procfs>/<pid>/attr/apparmor/exec  ("exec PROFILE"; attr/exec on old kernels)
  <procfs>/<pid>/attr/exec           (the SELinux context)

<procfs> is a fresh procfs instance (fsopen + fsmount): a detached mount
no path reaches, so no mount of the image or of config.json (a tmpfs or a
bind of another procfs file over /proc/self/attr, CVE-2019-16884) can
redirect the write; the path is resolved with openat2 without symlinks,
magic links or mount crossings, and the fd is checked to be on a procfs.
When a fresh procfs cannot be made (no fsopen, or a user namespace that may
not mount one), the container's own /proc is used, with the same checks.

Host support, as runc and crun behave: AppArmor asked for but not enabled
is an error at create; an SELinux label when SELinux is off is not applied,
said at debug level, and the container starts.
"""
import os

from pyoci.errors import ConfigError

PROC_SUPER_MAGIC = 0x9FA0


def mount_types(mountinfo="/proc/self/mountinfo"):
    """{filesystem type: [mount points]} of the calling process's mount namespace."""
    out = {}
    try:
        with open(mountinfo) as f:
            for line in f:
                fields = line.split()
                try:
                    sep = fields.index("-")
                except ValueError:
                    continue
                out.setdefault(fields[sep + 1], []).append(fields[4])
    except OSError:
        pass
    return out


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def apparmor_enabled():
    return _read("/sys/module/apparmor/parameters/enabled") == "Y" and os.path.isdir(
        "/sys/kernel/security/apparmor")


def selinux_enabled(types=None):
    types = mount_types() if types is None else types
    return bool(types.get("selinuxfs")) and _read("/sys/fs/selinux/enforce") is not None


def plan(process, log=None):
    """[(attr path under <pid>/attr, alternative path or None, payload)]
    for the labels this host applies; raises for AppArmor without AppArmor.
    Runs in the parent, before anything is built."""
    out = []
    profile = (process or {}).get("apparmorProfile")
    if profile:
        if not apparmor_enabled():
            raise ConfigError("process.apparmorProfile",
                              "AppArmor is not enabled on this host: cannot apply profile %r" % profile)
        out.append(("apparmor/exec", "exec", "exec " + profile))
    label = (process or {}).get("selinuxLabel")
    if label:
        if selinux_enabled():
            out.append(("exec", None, label))
        elif log is not None:
            log.debug("process.selinuxLabel %r not applied: SELinux is not enabled on this host" % label)
    return out


def _verified(fd, path):
    from pyoci.linux import sys as lsys

    if lsys.fstatfs_type(fd) != PROC_SUPER_MAGIC:
        os.close(fd)
        raise OSError(22, "%s is not on a procfs" % path)
    return fd


def open_attr(name, alt=None):
    """An O_WRONLY fd on this task's attr/<name> (attr/<alt> when the first
    is absent), on a procfs no mount can redirect."""
    from pyoci.linux import sys as lsys

    pid = os.getpid()
    resolve = lsys.RESOLVE_BENEATH | lsys.RESOLVE_NO_SYMLINKS | lsys.RESOLVE_NO_MAGICLINKS | lsys.RESOLVE_NO_XDEV
    try:
        root = lsys.fresh_mount("proc", lsys.MOUNT_ATTR_NOSUID | lsys.MOUNT_ATTR_NODEV | lsys.MOUNT_ATTR_NOEXEC)
    except OSError:
        root = None
    if root is not None:
        try:
            for n in (name, alt):
                if n is None:
                    continue
                path = "%d/attr/%s" % (pid, n)
                try:
                    return _verified(lsys.openat2(root, path, os.O_WRONLY, 0, resolve), path)
                except FileNotFoundError:
                    continue
            raise FileNotFoundError(2, "attr/%s: no such file" % name)
        finally:
            os.close(root)
    # fall back on the container's /proc, checked the same way
    base = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        _verified(os.dup(base), "/proc")
        for n in (name, alt):
            if n is None:
                continue
            path = "%d/attr/%s" % (pid, n)
            try:
                return _verified(lsys.openat2(base, path, os.O_WRONLY, 0, resolve), "/proc/" + path)
            except FileNotFoundError:
                continue
        raise FileNotFoundError(2, "/proc/%d/attr/%s: no such file" % (pid, name))
    finally:
        os.close(base)
