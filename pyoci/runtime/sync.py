"""The hand-off between the runtime and its children (create's C1 and C2,
exec's C1 and the process pyoci-init forks): named, typed messages, one
JSON object per line over a pipe (close-on-exec, so a successful exec of
pyoci-init shows up as end-of-file), and typed records for what a child
is given at fork.

A receiver says which messages it expects (Channel.expect); anything else
is a ProtocolError naming what came and what was expected, and a Failed
message becomes the PyociError it carries. The C side (pyoci-init's
report, cffi_build/init.c) writes InitPid and Failed in the same form.

    create   C1 -> P   UsernsMade        the user namespace exists: map it
             P -> C1   Mapped
             C1 -> P   InitPid(pid)      C2 was forked (C1 exits)
             P -> C2   Go(seccomp_state) C2 may build the container
             P -> C2   Joined            C2 is in its cgroups
             C2 -> P   HooksDue          mounts prepared: run prestart and
                                         createRuntime now (with hooks)
             P -> C2   HookState(state)  for the createContainer hooks
             C2 -> P   Ready             executing pyoci-init next
             any       Failed(error)
    exec     C1 -> P   Failed, or end-of-file at its exec of pyoci-init
             init -> P InitPid(pid), then Failed or end-of-file at execve
"""

from pyoci import fastos as os
from pyoci import jsonio as json
from pyoci.errors import ProtocolError, PyociError


class Record:
    """A typed record: the fields in __slots__, each given by keyword
    (DEFAULTS for the optional ones); a missing or unknown field is a
    TypeError at once, not an AttributeError in a child later."""

    __slots__ = ()
    DEFAULTS = {}

    def __init__(self, **kw):
        for k in self.__slots__:
            if k in kw:
                setattr(self, k, kw.pop(k))
            elif k in self.DEFAULTS:
                setattr(self, k, self.DEFAULTS[k])
            else:
                raise TypeError("%s: missing field %s" % (type(self).__name__, k))
        if kw:
            raise TypeError("%s: unknown fields %s" % (type(self).__name__, ", ".join(sorted(kw))))


class Message(Record):
    TYPE = None

    def to_json(self):
        d = {"type": self.TYPE}
        for k in self.__slots__:
            d[k] = getattr(self, k)
        return d

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % (k, getattr(self, k)) for k in self.__slots__))


class UsernsMade(Message):
    TYPE = "userns"
    __slots__ = ()


class Mapped(Message):
    TYPE = "mapped"
    __slots__ = ()


class InitPid(Message):
    TYPE = "pid"
    __slots__ = ("pid",)


class Go(Message):
    TYPE = "go"
    __slots__ = ("seccomp_state",)
    DEFAULTS = {"seccomp_state": None}


class Joined(Message):
    TYPE = "joined"
    __slots__ = ()


class HooksDue(Message):
    TYPE = "hooks"
    __slots__ = ()


class HookState(Message):
    TYPE = "state"
    __slots__ = ("state",)


class Ready(Message):
    TYPE = "ready"
    __slots__ = ()


class Failed(Message):
    TYPE = "error"
    __slots__ = ("error",)


TYPES = {c.TYPE: c for c in (UsernsMade, Mapped, InitPid, Go, Joined, HooksDue, HookState, Ready, Failed)}


def decode(line):
    try:
        obj = json.loads(line)
    except ValueError:
        raise ProtocolError("sync", repr(line[:80]), "a JSON message")
    cls = TYPES.get(obj.get("type")) if isinstance(obj, dict) else None
    if cls is None:
        raise ProtocolError("sync", repr(line[:80]), "one of " + ", ".join(sorted(TYPES)))
    obj.pop("type")
    try:
        return cls(**obj)
    except TypeError as e:
        raise ProtocolError("sync", repr(line[:80]), str(e))


class Channel:
    def __init__(self):
        self.rfd, self.wfd = os.pipe()
        self.buf = b""

    def send(self, msg):
        if not isinstance(msg, Message):
            raise TypeError("Channel.send takes a sync.Message, not %r" % (msg,))
        os.write(self.wfd, json.dumps(msg.to_json()).encode() + b"\n")

    def recv(self):
        """The next message, or None at end-of-file."""
        while b"\n" not in self.buf:
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return decode(line)

    def expect(self, where, *types, eof=False):
        """The next message, which must be one of `types` (None at
        end-of-file when eof is true). A Failed message raises its error;
        anything else is a ProtocolError."""
        msg = self.recv()
        names = " or ".join(t.TYPE for t in types) + (" or end-of-file" if eof else "")
        if msg is None:
            if eof:
                return None
            raise ProtocolError(where, "end-of-file", names)
        if isinstance(msg, Failed) and Failed not in types:
            raise PyociError(msg.error)
        if not isinstance(msg, types):
            raise ProtocolError(where, msg.TYPE, names)
        return msg

    def close_read(self):
        if self.rfd >= 0:
            os.close(self.rfd)
            self.rfd = -1

    def close_write(self):
        if self.wfd >= 0:
            os.close(self.wfd)
            self.wfd = -1

    def close(self):
        self.close_read()
        self.close_write()


def kill_and_reap(pid):
    """SIGKILL a child of ours and reap it; quietly done if it is gone."""
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
