"""System calls that Python 3.11's os module lacks, through the cffi shim.

Every function raises OSError with the kernel's errno on failure. The shim
is imported on first use, so commands that never call these pay nothing.
"""
from pyoci import fastos as os

# clone/unshare flags
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_NEWTIME = 0x00000080

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# new mount API
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40

# prctl
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

_lib = None
_ffi = None


def _load():
    global _lib, _ffi
    from pyoci._shim import ffi, lib

    _ffi, _lib = ffi, lib
    return lib


def _check(ret, what, path=None):
    if ret < 0:
        err = _ffi.errno
        if path is not None:
            raise OSError(err, "%s %s: %s" % (what, path, os.strerror(err)), path)
        raise OSError(err, "%s: %s" % (what, os.strerror(err)))
    return ret


def _b(s):
    if s is None:
        return _ffi.NULL
    return os.fsencode(s)


def unshare(flags):
    lib = _lib or _load()
    _check(lib.pyoci_unshare(flags), "unshare")


def setns(fd, nstype=0):
    lib = _lib or _load()
    _check(lib.pyoci_setns(fd, nstype), "setns")


def mount(source, target, fstype, flags=0, data=None):
    lib = _lib or _load()
    ret = lib.pyoci_mount(_b(source), _b(target), _b(fstype), flags, _b(data))
    _check(ret, "mount", target)


def umount2(target, flags=0):
    lib = _lib or _load()
    _check(lib.pyoci_umount2(_b(target), flags), "umount", target)


def pivot_root(new_root, put_old):
    lib = _lib or _load()
    _check(lib.pyoci_pivot_root(_b(new_root), _b(put_old)), "pivot_root", new_root)


def openat2(dirfd, path, flags, mode=0, resolve=0):
    lib = _lib or _load()
    return _check(lib.pyoci_openat2(dirfd, _b(path), flags | os.O_CLOEXEC, mode, resolve), "open", path)


def open_tree(dirfd, path, flags):
    lib = _lib or _load()
    return _check(lib.pyoci_open_tree(dirfd, _b(path), flags), "open_tree", path)


def mount_setattr(dirfd, path, flags, attr_set=0, attr_clr=0, propagation=0, userns_fd=0):
    lib = _lib or _load()
    ret = lib.pyoci_mount_setattr(dirfd, _b(path), flags, attr_set, attr_clr, propagation, userns_fd)
    _check(ret, "mount_setattr", path)


def move_mount(from_dirfd, from_path, to_dirfd, to_path, flags):
    lib = _lib or _load()
    ret = lib.pyoci_move_mount(from_dirfd, _b(from_path), to_dirfd, _b(to_path), flags)
    _check(ret, "move_mount", to_path)


def prctl(option, a2=0, a3=0, a4=0, a5=0):
    lib = _lib or _load()
    return _check(lib.pyoci_prctl(option, a2, a3, a4, a5), "prctl")


def sethostname(name):
    lib = _lib or _load()
    b = name.encode()
    _check(lib.pyoci_sethostname(b, len(b)), "sethostname")


def setdomainname(name):
    lib = _lib or _load()
    b = name.encode()
    _check(lib.pyoci_setdomainname(b, len(b)), "setdomainname")


def close_range(first, last=0xFFFFFFFF, flags=0):
    lib = _lib or _load()
    _check(lib.pyoci_close_range(first, last, flags), "close_range")


def fd_path(fd):
    """The magic-link path through which a mount syscall reaches an fd."""
    return "/proc/self/fd/%d" % fd


def fstatfs_type(fd):
    """The filesystem magic number (statfs f_type) of the file behind fd."""
    lib = _lib or _load()
    return _check(lib.pyoci_fstatfs_type(fd), "fstatfs")


def keyctl_join_session(name):
    lib = _lib or _load()
    return _check(lib.pyoci_keyctl_join_session(_b(name)), "keyctl join session keyring")


def sched_setattr(policy, flags=0, nice=0, priority=0, runtime=0, deadline=0, period=0):
    lib = _lib or _load()
    _check(lib.pyoci_sched_setattr(policy, flags, nice, priority, runtime, deadline, period), "sched_setattr")


def ioprio_set(ioprio):
    lib = _lib or _load()
    _check(lib.pyoci_ioprio_set(1, 0, ioprio), "ioprio_set")   # IOPRIO_WHO_PROCESS, self


def personality(persona):
    """Sets the persona (0xffffffff only queries); returns the previous one."""
    lib = _lib or _load()
    return _check(lib.pyoci_personality(persona), "personality")


def set_mempolicy(mode, nodes):
    """mode includes the MPOL_F_* flags; nodes: a set of node numbers."""
    lib = _lib or _load()
    if nodes:
        words = max(nodes) // 64 + 1
        mask = _ffi.new("unsigned long[]", words)
        for n in nodes:
            mask[n // 64] |= 1 << (n % 64)
        ret = lib.pyoci_set_mempolicy(mode, mask, words * 64 + 1)
    else:
        ret = lib.pyoci_set_mempolicy(mode, _ffi.NULL, 0)
    _check(ret, "set_mempolicy")


FSOPEN_CLOEXEC = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1


def fresh_mount(fstype, attrs=0):
    """A new, detached instance of a filesystem (fsopen + fsmount): an fd to
    its root that no path of any mount namespace reaches."""
    lib = _lib or _load()
    fs = _check(lib.pyoci_fsopen(_b(fstype), FSOPEN_CLOEXEC), "fsopen", fstype)
    try:
        _check(lib.pyoci_fsconfig(fs, FSCONFIG_CMD_CREATE, _ffi.NULL, _ffi.NULL, 0), "fsconfig", fstype)
        return _check(lib.pyoci_fsmount(fs, FSMOUNT_CLOEXEC, attrs), "fsmount", fstype)
    finally:
        os.close(fs)
