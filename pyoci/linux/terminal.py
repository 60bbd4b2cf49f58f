"""process.terminal: a pty allocated inside the container's devpts, made
the init's controlling terminal, its master sent over --console-socket.

Protocol (what containerd's go-runc and conmon expect): one sendmsg on the
unix socket, data = a non-empty name, one SCM_RIGHTS carrying the master.
"""
import errno
import fcntl
import os
import stat
import struct
import termios

from pyoci.errors import PyociError

TIOCSPTLCK = 0x40045431
TIOCGPTN = 0x80045430


def connect(path, grace=1.0):
    """The connected --console-socket. A socket that is not there yet, or
    not listening yet, gets `grace` seconds: scripts start their receiver in
    the background just before the runtime (runc's suite does), and pyoci
    reaches this point sooner than runc does."""
    import socket
    import time

    deadline = time.monotonic() + grace
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError as e:
            s.close()
            if e.errno not in (errno.ENOENT, errno.ECONNREFUSED) or time.monotonic() >= deadline:
                raise PyociError("--console-socket %s: connect: %s" % (path, e.strerror))
        time.sleep(0.01)


PTY_SLAVE_MAJORS = range(136, 144)   # Unix98 pty slaves


def setup(console, size=None, bind_console=True, session=True, owner=0):
    """In the container, after pivot_root: allocate the pty from its devpts,
    make the slave our controlling terminal and stdio, /dev/console a bind
    of it (not for exec: bind_console=False), and send the master over the
    console socket."""
    import socket

    try:
        master = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        console.close()
        raise PyociError("set up the terminal: /dev/ptmx: %s" % e.strerror)
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        n = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, struct.pack("I", 0)))[0]
        slave = os.open("/dev/pts/%d" % n, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW)
        st = os.fstat(slave)
        if not (stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) in PTY_SLAVE_MAJORS):
            raise PyociError("set up the terminal: /dev/pts/%d is not a pty slave" % n)
        if size:
            set_size(slave, size.get("height", 0), size.get("width", 0))
        if owner:
            # The process's user owns its terminal (so it can use it), as
            # runc's fixStdioPermissions makes it; the group stays devpts'
            # (gid=5, tty, in the default mount).
            try:
                os.fchown(slave, owner, -1)
            except OSError as e:
                if e.errno not in (errno.EINVAL, errno.EPERM, errno.EROFS):
                    raise
        if bind_console:
            _bind_console(slave)
        if session:
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


def set_size(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_size(fd):
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols


def _bind_console(slave):
    """/dev/console in the container becomes the pty slave (as runc makes it).

    The bind is made from the verified slave fd onto an O_PATH fd of the
    target opened without following symlinks: a /dev/console that the image
    made a symlink (say, to /proc/sys/kernel/core_pattern) is refused rather
    than followed (CVE-2025-52565)."""
    from pyoci.linux import sys as lsys

    flags = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        target = os.open("/dev/console", flags)
    except FileNotFoundError:
        try:
            os.close(os.open("/dev/console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o600))
        except OSError:
            return   # a read-only /dev: the terminal still works through 0/1/2
        target = os.open("/dev/console", flags)
    try:
        st = os.fstat(target)
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode)):
            raise PyociError("/dev/console in the container is not a file or a device (a symlink?): "
                             "refusing to mount the terminal over it")
        lsys.mount("/proc/self/fd/%d" % slave, "/proc/self/fd/%d" % target, None, lsys.MS_BIND)
    finally:
        os.close(target)


def console_socketpair():
    """For `run` in the foreground: a connected pair standing in for the
    console socket; pyoci keeps one end and receives the master on it."""
    import socket

    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)


def receive_master(sock, timeout=None):
    import socket

    sock.settimeout(timeout)
    _, fds, _, _ = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise PyociError("the container sent no terminal")
    return fds[0]
