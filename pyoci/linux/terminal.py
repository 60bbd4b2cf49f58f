"""process.terminal: a pty allocated inside the container's devpts, made
the init's controlling terminal, its master sent over --console-socket.

Protocol (what containerd's go-runc and conmon expect): one sendmsg on the
unix socket, data = a non-empty name, one SCM_RIGHTS carrying the master.
"""
import fcntl
import os
import struct
import termios

from pyoci.errors import PyociError

TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430


def connect(path):
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise PyociError("--console-socket %s: connect: %s" % (path, e.strerror))
    return s


def setup(console, size=None):
    if console is None:
        raise PyociError("process.terminal is true but no --console-socket was given")
    import socket

    master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
        slave_path = "/dev/pts/%d" % n
        slave = os.open(slave_path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        if size:
            fcntl.ioctl(slave, termios.TIOCSWINSZ,
                        struct.pack("HHHH", size.get("height", 0), size.get("width", 0), 0, 0))
        _bind_console(slave_path)
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for fd in (0, 1, 2):
            os.dup2(slave, fd)
        os.close(slave)
        socket.send_fds(console, [b"/dev/ptmx"], [master])
    except OSError as e:
        raise PyociError("set up the terminal: %s" % (e.strerror or e))
    finally:
        os.close(master)
        console.close()


def _bind_console(slave_path):
    """/dev/console in the container is the pty (as runc makes it)."""
    from pyoci.linux import sys as lsys

    try:
        if not os.path.exists("/dev/console"):
            os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        lsys.mount(slave_path, "/dev/console", None, lsys.MS_BIND)
    except OSError:
        pass   # a read-only /dev: the terminal still works through 0/1/2
