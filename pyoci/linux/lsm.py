"""Linux security modules: process.apparmorProfile, process.selinuxLabel
(exec labels and the SELinux key label) and the checks made before them.

An exec label takes effect at the next execve of the task that wrote it, so
pyoci-init writes it, from the plan: the runtime's Python is replaced by
pyoci-init's own execve, which would consume (AppArmor) or reset (SELinux)
a label written before it. pyoci-init also opens the attr file itself: since
Linux 5.9 a /proc/PID/attr file may be written only with the credentials
that opened it (proc_pid_attr_write compares file->f_cred with the writer's,
EPERM otherwise), and every execve, setresuid or capset makes new ones.
What the runtime opens here is the directory <procfs>/<pid>/attr:

  apparmor/exec  "exec PROFILE" (attr/exec on kernels before 5.8)
  exec           the SELinux context
  keycreate      the SELinux context of keys created next (written here,
                 in Python, before the session keyring is made)

<procfs> is a fresh procfs instance (fsopen + fsmount): a detached mount
no path reaches, so no mount of the image or of config.json (a tmpfs or a
bind of another procfs file over /proc/self/attr, CVE-2019-16884) can
redirect the write; the directory is reached with openat2 without symlinks,
magic links or mount crossings and checked to be on a procfs, and
pyoci-init opens the file beneath it the same way. When a fresh procfs
cannot be made (no fsopen, or a user namespace that may not mount one), the
container's own /proc is used, with the same checks.

Host support, as runc and crun behave: AppArmor asked for but not enabled is
an error at create, and so is a profile that is not loaded (runc fails the
same way, later and in less words); an SELinux label when SELinux is off is
not applied, said at debug level, and the container starts; an SELinux
context the loaded policy does not know is an error at create.
"""
import errno

from pyoci import fastos as os
from pyoci.errors import ConfigError, PyociError

PROC_SUPER_MAGIC = 0x9FA0
APPARMOR_PROFILES = "/sys/kernel/security/apparmor/profiles"
SELINUX_CONTEXT = "/sys/fs/selinux/context"


class ExecLabel:
    """One exec label: the attr file (under <pid>/attr) and its alternative
    on older kernels, the payload, and the field it comes from."""

    def __init__(self, field, attr, alt, payload, lsm):
        self.field, self.attr, self.alt, self.payload, self.lsm = field, attr, alt, payload, lsm

    def describe(self):
        """What pyoci-init prefixes its error with."""
        if self.lsm == "apparmor":
            return "%s: apply AppArmor profile %r" % (self.field, self.payload[len("exec "):])
        return "%s: set SELinux exec label %r" % (self.field, self.payload)


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
    """The exec labels this host applies for `process` (a runtime-spec
    process object), checked: raises ConfigError for AppArmor without
    AppArmor, a profile that is not loaded, or an SELinux context the policy
    rejects. Runs in the runtime, before anything is built."""
    out = []
    profile = (process or {}).get("apparmorProfile")
    if profile:
        if not apparmor_enabled():
            raise ConfigError("process.apparmorProfile",
                              "AppArmor is not enabled on this host: cannot apply profile %r" % profile)
        check_profile(profile)
        out.append(ExecLabel("process.apparmorProfile", "apparmor/exec", "exec", "exec " + profile, "apparmor"))
    label = (process or {}).get("selinuxLabel")
    if label:
        if selinux_enabled():
            check_context("process.selinuxLabel", label)
            out.append(ExecLabel("process.selinuxLabel", "exec", None, label, "selinux"))
        elif log is not None:
            log.debug("process.selinuxLabel %r not applied: SELinux is not enabled on this host" % label)
    return out


def loaded_profiles():
    """The names of the AppArmor profiles loaded (in this task's policy
    namespace), or None when the list cannot be read."""
    try:
        with open(APPARMOR_PROFILES, "rb") as f:
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    names = set()
    for line in data.splitlines():
        # "NAME (MODE)"; a name may hold spaces
        name, sep, _ = line.rpartition(" (")
        if sep:
            names.add(name)
    return names


def check_profile(profile):
    """A profile the kernel would not find is refused here, with its name
    (the write of "exec PROFILE" would fail with ENOENT at start).
    'unconfined' always exists; stacks (&) and namespaced names (:ns:) are
    left to the kernel."""
    if profile == "unconfined" or profile.startswith((":", "&")) or "//&" in profile:
        return
    names = loaded_profiles()
    if names is not None and profile not in names:
        raise ConfigError("process.apparmorProfile",
                          "AppArmor profile %r is not loaded (load it with apparmor_parser first)" % profile)


def check_context(field, context):
    """The loaded SELinux policy's verdict on a context (selinuxfs's context
    file, as libselinux's security_check_context): an unknown user, role,
    type or level is refused here, naming the field."""
    try:
        fd = os.open(SELINUX_CONTEXT, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, context.encode() + b"\0")
    except OSError as e:
        if e.errno == errno.EINVAL:
            raise ConfigError(field, "%r is not a valid SELinux context for the loaded policy" % context)
        raise ConfigError(field, "cannot check SELinux context %r: %s" % (context, e.strerror))
    finally:
        os.close(fd)


def _verified(fd, path):
    from pyoci.linux import sys as lsys

    if lsys.fstatfs_type(fd) != PROC_SUPER_MAGIC:
        os.close(fd)
        raise OSError(errno.EINVAL, "%s is not on a procfs" % path)
    return fd


def _resolve():
    from pyoci.linux import sys as lsys

    return lsys.RESOLVE_BENEATH | lsys.RESOLVE_NO_SYMLINKS | lsys.RESOLVE_NO_MAGICLINKS | lsys.RESOLVE_NO_XDEV


def attr_dir():
    """An O_PATH fd of this task's <procfs>/<pid>/attr, on a procfs no mount
    can redirect (see the module's doc)."""
    from pyoci.linux import sys as lsys

    rel = "%d/attr" % os.getpid()
    flags = os.O_PATH | os.O_DIRECTORY
    try:
        root = lsys.fresh_mount("proc", lsys.MOUNT_ATTR_NOSUID | lsys.MOUNT_ATTR_NODEV | lsys.MOUNT_ATTR_NOEXEC)
    except OSError:
        root = None
    if root is not None:
        try:
            return _verified(lsys.openat2(root, rel, flags, 0, _resolve()), rel)
        finally:
            os.close(root)
    # the container's /proc, checked the same way
    base = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        _verified(os.dup(base), "/proc")
        return _verified(lsys.openat2(base, rel, flags, 0, _resolve()), "/proc/" + rel)
    finally:
        os.close(base)


def attr_name(dirfd, label):
    """The attr file of `label` that this kernel has under dirfd."""
    for name in (label.attr, label.alt):
        if name is None:
            continue
        try:
            os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            return name
        except FileNotFoundError:
            continue
    raise OSError(errno.ENOENT, "no attr/%s in this kernel's procfs" % label.attr)


def open_attr(dirfd, name):
    """An O_WRONLY fd of attr/<name> beneath dirfd, as pyoci-init opens it
    (for the runtime's own writes: the key label)."""
    from pyoci.linux import sys as lsys

    return _verified(lsys.openat2(dirfd, name, os.O_WRONLY, 0, _resolve()), "attr/" + name)


def set_key_label(labels):
    """SELinux: the label of the session keyring made next, the process's
    (runc's SetKeyLabel, before it joins a new session keyring). Written
    here: the keyring is made by this very task, with these credentials.
    `labels`: the ExecLabels of plan(), made in the runtime (SELinux on)."""
    for label in labels:
        if label.lsm != "selinux":
            continue
        try:
            d = attr_dir()
            try:
                fd = open_attr(d, "keycreate")
            finally:
                os.close(d)
            try:
                os.write(fd, label.payload.encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise PyociError("%s: set the session keyring's label %r: %s"
                             % (label.field, label.payload, e.strerror or e))


XATTR_SELINUX = "security.selinux"


def set_file_label(path, label):
    """SELinux: label one file (a mount's root whose filesystem takes no
    context= option, e.g. mqueue, whose superblock exists before the mount)."""
    os.setxattr(path, XATTR_SELINUX, label.encode() + b"\0")
