"""The binary that becomes the container's process: pyoci-init, exposed so
that the container can never write to it (CVE-2019-5736).

The container can reach its init's executable through /proc/PID/exe. If
that were the installed pyoci-init (or python), container root could
reopen it for writing and replace the host's binary. pyoci executes it
through a clone of its mount taken with open_tree(OPEN_TREE_CLONE) and made
read-only with mount_setattr: a detached, read-only mount that exists in no
mount namespace, so /proc/PID/exe is a file on a read-only mount and nobody
can mount over or write to it. Kernels without the new mount API get a
sealed memfd copy instead (what runc >= 1.2 does).
"""

from pyoci import fastos as os
from pyoci.linux import sys as s

INIT_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_libexec", "pyoci-init")

MFD_CLOEXEC = 0x1
MFD_ALLOW_SEALING = 0x2
MFD_EXEC = 0x10
F_ADD_SEALS = 1033
F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE = 1, 2, 4, 8


def open_init():
    """An fd to execute pyoci-init from (close-on-exec)."""
    try:
        fd = s.open_tree(-100, INIT_PATH, s.OPEN_TREE_CLONE | s.OPEN_TREE_CLOEXEC)
    except OSError:
        return _memfd_copy()
    try:
        s.mount_setattr(fd, "", s.AT_EMPTY_PATH, attr_set=s.MOUNT_ATTR_RDONLY | s.MOUNT_ATTR_NOSUID | s.MOUNT_ATTR_NODEV)
    except OSError:
        os.close(fd)
        return _memfd_copy()
    return fd


def _memfd_copy():
    import fcntl

    try:
        fd = os.memfd_create("pyoci-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC)
    except OSError:
        fd = os.memfd_create("pyoci-init", MFD_CLOEXEC | MFD_ALLOW_SEALING)
    with open(INIT_PATH, "rb") as f:
        data = f.read()
    os.write(fd, data)
    fcntl.fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)
    return fd
