"""The plan handed to pyoci-init: what it applies right before execve.

Records of a one-byte tag, a native-endian uint32 length and the payload,
written to a memfd whose number is pyoci-init's only argument. The reader
is parse() in cffi_build/init.c; the tags are listed there too.
"""
import struct

from pyoci import fastos as os


class Plan:
    def __init__(self):
        self.parts = []
        self.fds = []   # fds the records refer to: the caller keeps them open

    def _rec(self, tag, payload):
        self.parts.append(tag + struct.pack("=I", len(payload)) + payload)

    def program(self, exe, args, env):
        self._rec(b"x", os.fsencode(exe))
        for a in args:
            self._rec(b"a", os.fsencode(a))
        for e in env:
            self._rec(b"e", os.fsencode(e))

    def user(self, uid, gid):
        self._rec(b"u", struct.pack("=II", uid, gid))

    def groups(self, gids):
        self._rec(b"G", struct.pack("=%dI" % len(gids), *gids))

    def caps(self, sets, last_cap):
        self._rec(b"c", struct.pack("=5QI", *sets, last_cap))

    def no_new_privileges(self):
        self._rec(b"n", b"")

    def seccomp(self, bpf, flags=0):
        self._rec(b"s", struct.pack("=I", flags) + bpf)

    def seccomp_listener(self, sock_fd, state_json):
        """Load the filter with a listener and send its fd, with state_json,
        over the connected unix socket sock_fd (SCMP_ACT_NOTIFY)."""
        self._rec(b"L", struct.pack("=I", sock_fd) + state_json.encode())

    def exec_fifo(self, fd, dir_fd=-1):
        """fd: an O_PATH fd of the fifo, reopened through /proc/self/fd;
        dir_fd: the state directory's O_PATH fd, for a container without
        a mount namespace of its own, whose chroot has no /proc."""
        self._rec(b"f", struct.pack("=Ii", fd, dir_fd))

    def keep_fds(self, n):
        """Close every fd >= n before execve."""
        self._rec(b"k", struct.pack("=I", n))

    def umask(self, mask):
        self._rec(b"m", struct.pack("=I", mask))

    def exec_label(self, dir_fd, name, label, what):
        """Write `label` to attr/`name` beneath dir_fd (a verified
        <procfs>/<pid>/attr); errors start with `what`."""
        self._rec(b"l", struct.pack("=I", dir_fd) + what.encode() + b"\0" + os.fsencode(name) + b"\0"
                  + label.encode())

    def setup_report(self, fd):
        """create: report an error of the steps before the wait for start
        (the exec label) as a JSON line on fd, closed once they are done."""
        self._rec(b"R", struct.pack("=I", fd))

    def fork_report(self, fd):
        """exec: fork into the joined pid namespace; pid and errors go to fd."""
        self._rec(b"F", struct.pack("=I", fd))

    def go_fd(self, fd, before_fork):
        """exec: wait for one byte on fd, before forking or in the forked
        process."""
        self._rec(b"W", struct.pack("=II", fd, 1 if before_fork else 0))

    def controlling_terminal(self):
        """exec with a terminal: the forked process makes fd 0 its controlling
        terminal in a new session."""
        self._rec(b"T", b"")

    def to_memfd(self):
        """An inheritable memfd holding the plan, at offset 0."""
        fd = os.memfd_create("pyoci-plan", 0)
        os.write(fd, b"".join(self.parts))
        return fd
