"""Writes to /proc that the runtime makes, through a verified procfs.

A hostile image or mount configuration can put another file where a procfs
file should be (CVE-2019-16884, CVE-2025-52881). Every file written here is
reached from the root of a real procfs (statfs magic, root inode) by
openat2 with RESOLVE_NO_XDEV | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS:
no mount on the way (a file of another procfs, or a regular file, bound over
it), no symlink but the pid of /proc/self, and the file found is on procfs.
"""
import errno

from pyoci import fastos as os
from pyoci.errors import PyociError
from pyoci.linux import sys as lsys

PROC_SUPER_MAGIC = 0x9FA0
PROC_ROOT_INO = 1
_RESOLVE = (lsys.RESOLVE_NO_XDEV | lsys.RESOLVE_NO_SYMLINKS | lsys.RESOLVE_NO_MAGICLINKS
            | lsys.RESOLVE_BENEATH)


def _proc_root():
    fd = os.open("/proc", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    if lsys.fstatfs_type(fd) != PROC_SUPER_MAGIC or os.fstat(fd).st_ino != PROC_ROOT_INO:
        os.close(fd)
        raise PyociError("/proc is not the root of a procfs: refusing to write to it")
    return fd


def open_verified(path, flags=os.O_WRONLY):
    if not path.startswith("/proc/"):
        raise PyociError("%s is not under /proc: refusing to write to it" % path)
    root = _proc_root()
    try:
        rel = path[len("/proc/"):]
        first, _, rest = rel.partition("/")
        if first in ("self", "thread-self"):
            # the one symlink allowed, read from this very procfs
            rel = os.readlink(first, dir_fd=root) + "/" + rest
        try:
            fd = lsys.openat2(root, rel, flags | os.O_NOFOLLOW, 0, _RESOLVE)
        except OSError as e:
            if e.errno in (errno.EXDEV, errno.ELOOP):
                raise PyociError("%s: a mount or symlink covers it: refusing to write to it" % path)
            raise
    finally:
        os.close(root)
    try:
        if lsys.fstatfs_type(fd) != PROC_SUPER_MAGIC:
            raise PyociError("%s is not on a procfs: refusing to write to it" % path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write(path, data):
    fd = open_verified(path)
    try:
        os.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        os.close(fd)
