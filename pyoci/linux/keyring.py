"""The container's own session keyring (runc's default; --no-new-keyring
keeps the caller's)."""
import errno

from pyoci.errors import PyociError
from pyoci.linux import sys as lsys


def join_session(hostname, cid):
    try:
        lsys.keyctl_join_session("_ses." + cid)
    except OSError as e:
        # Kernels without keyrings, or a seccomp profile of the host that
        # forbids keyctl: runc goes on without a keyring too.
        if e.errno in (errno.ENOSYS, errno.EPERM, errno.EACCES):
            return
        raise PyociError("create session keyring: %s" % e.strerror)
