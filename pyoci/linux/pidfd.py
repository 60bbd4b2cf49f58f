"""--pidfd-socket: a pidfd of the container's process, sent over a unix
socket (runc >= 1.2)."""
import os

from pyoci.errors import PyociError


def send(path, pid):
    import socket

    fd = os.pidfd_open(pid)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            socket.send_fds(s, [b"pidfd"], [fd])
    except OSError as e:
        raise PyociError("--pidfd-socket %s: %s" % (path, e.strerror))
    finally:
        os.close(fd)
