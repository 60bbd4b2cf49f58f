"""A small D-Bus client: the wire protocol (marshalling, method calls,
replies, errors, signals) that the systemd cgroup driver needs to speak to
systemd's manager, with nothing but the standard library's _socket and
struct (about 1 ms to import; see the README for why not a library).

Values: basic types as Python ints, floats, bools and strs; arrays as lists
(or dicts for a{..}); structs as tuples; a variant as (signature, value).
"""
import os
import struct

import _socket


class DBusError(Exception):
    """An error reply (name such as org.freedesktop.systemd1.NoSuchUnit), or
    a failure to reach or talk to the bus (name "")."""

    def __init__(self, name, message):
        super().__init__("%s: %s" % (name, message) if name else message)
        self.name = name
        self.message = message


METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
NO_REPLY_EXPECTED = 1
# header fields
PATH, INTERFACE, MEMBER, ERROR_NAME, REPLY_SERIAL, DESTINATION, SENDER, SIGNATURE = range(1, 9)
_FIELD_TYPES = {PATH: "o", INTERFACE: "s", MEMBER: "s", ERROR_NAME: "s", REPLY_SERIAL: "u",
                DESTINATION: "s", SENDER: "s", SIGNATURE: "g"}

_FIXED = {"y": ("B", 1), "b": ("I", 4), "n": ("h", 2), "q": ("H", 2), "i": ("i", 4), "u": ("I", 4),
          "x": ("q", 8), "t": ("Q", 8), "d": ("d", 8), "h": ("I", 4)}
_ALIGN = dict({k: a for k, (_, a) in _FIXED.items()}, s=4, o=4, g=1, a=4, v=1, **{"(": 8, "{": 8})
MAX_MESSAGE = 128 << 20


def _pad(n, a):
    return -n % a


def _type_end(sig, i):
    """The index after the single complete type starting at sig[i]."""
    c = sig[i]
    if c == "a":
        return _type_end(sig, i + 1)
    if c in "({":
        close = ")" if c == "(" else "}"
        j = i + 1
        while sig[j] != close:
            j = _type_end(sig, j)
        return j + 1
    if c in _ALIGN:
        return i + 1
    raise ValueError("bad D-Bus signature %r" % sig)


def split_signature(sig):
    out, i = [], 0
    while i < len(sig):
        j = _type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


# -- marshalling ---------------------------------------------------------------
class _Writer:
    def __init__(self):
        self.buf = bytearray()

    def align(self, a):
        self.buf += b"\0" * _pad(len(self.buf), a)

    def put(self, t, v):
        c = t[0]
        buf = self.buf
        if c in _FIXED:
            fmt, a = _FIXED[c]
            self.align(a)
            buf += struct.pack("<" + fmt, (1 if v else 0) if c == "b" else v)
        elif c in "so":
            b = v.encode()
            self.align(4)
            buf += struct.pack("<I", len(b)) + b + b"\0"
        elif c == "g":
            b = v.encode()
            buf += bytes((len(b),)) + b + b"\0"
        elif c == "v":
            sig, val = v
            self.put("g", sig)
            self.put(sig, val)
        elif c == "a":
            et = t[1:]
            self.align(4)
            at = len(buf)
            buf += b"\0\0\0\0"
            self.align(_ALIGN[et[0]])   # padding before the first element is not counted
            start = len(buf)
            for item in (v.items() if et[0] == "{" else v):
                self.put(et, item)
            struct.pack_into("<I", buf, at, len(buf) - start)
        elif c in "({":
            self.align(8)
            members = split_signature(t[1:-1])
            if len(members) != len(v):
                raise ValueError("%d values for the struct %s" % (len(v), t))
            for st, x in zip(members, v):
                self.put(st, x)
        else:
            raise ValueError("bad D-Bus type %r" % t)


def marshal(sig, values):
    """The body bytes of values for signature sig (starting 8-aligned)."""
    w = _Writer()
    types = split_signature(sig)
    if len(types) != len(values):
        raise ValueError("%d values for the signature %r" % (len(values), sig))
    for t, v in zip(types, values):
        w.put(t, v)
    return bytes(w.buf)


class _Reader:
    def __init__(self, data, little, pos=0):
        self.data = data
        self.pos = pos
        self.e = "<" if little else ">"

    def align(self, a):
        self.pos += _pad(self.pos, a)

    def get(self, t):
        c = t[0]
        d = self.data
        if c in _FIXED:
            fmt, a = _FIXED[c]
            self.align(a)
            v = struct.unpack_from(self.e + fmt, d, self.pos)[0]
            self.pos += a
            return bool(v) if c == "b" else v
        if c in "so":
            self.align(4)
            n = struct.unpack_from(self.e + "I", d, self.pos)[0]
            end = self.pos + 4 + n
            if end >= len(d) or d[end] != 0:
                raise ValueError("a string runs past its message")
            v = bytes(d[self.pos + 4:end]).decode()
            self.pos = end + 1
            return v
        if c == "g":
            n = d[self.pos]
            end = self.pos + 1 + n
            if end >= len(d) or d[end] != 0:
                raise ValueError("a signature runs past its message")
            v = bytes(d[self.pos + 1:end]).decode()
            self.pos = end + 1
            return v
        if c == "v":
            sig = self.get("g")
            return (sig, self.get(sig))
        if c == "a":
            et = t[1:]
            self.align(4)
            n = struct.unpack_from(self.e + "I", d, self.pos)[0]
            self.pos += 4
            if n > MAX_MESSAGE:
                raise DBusError("", "malformed message from the bus (array of %d bytes)" % n)
            self.align(_ALIGN[et[0]])
            end = self.pos + n
            if end > len(d):
                raise ValueError("an array runs past its message")
            if et == "y":
                self.pos = end
                return bytes(d[end - n:end])
            items = []
            while self.pos < end:
                items.append(self.get(et))
            return dict(items) if et[0] == "{" else items
        if c in "({":
            self.align(8)
            return tuple(self.get(st) for st in split_signature(t[1:-1]))
        raise DBusError("", "malformed message from the bus (type %r)" % t)


def unmarshal(sig, data, little=True, pos=0):
    r = _Reader(data, little, pos)
    try:
        return [r.get(t) for t in split_signature(sig)]
    except (struct.error, IndexError, UnicodeDecodeError, ValueError) as e:
        raise DBusError("", "malformed message from the bus (%s)" % e)


class Message:
    __slots__ = ("type", "flags", "serial", "fields", "body")

    def __init__(self, type, fields, body=(), serial=0, flags=0):
        self.type = type
        self.fields = fields
        self.body = list(body)
        self.serial = serial
        self.flags = flags

    def to_bytes(self):
        sig = self.fields.get(SIGNATURE, "")
        body = marshal(sig, self.body) if sig else b""
        w = _Writer()
        for t, v in (("y", ord("l")), ("y", self.type), ("y", self.flags), ("y", 1), ("u", len(body)),
                     ("u", self.serial)):
            w.put(t, v)
        w.put("a(yv)", [(k, (_FIELD_TYPES[k], v)) for k, v in sorted(self.fields.items())])
        w.align(8)
        return bytes(w.buf) + body

    @classmethod
    def parse(cls, data):
        little = data[:1] == b"l"
        if not little and data[:1] != b"B":
            raise DBusError("", "malformed message from the bus (endianness %r)" % bytes(data[:1]))
        e = "<" if little else ">"
        mtype, flags, _ = data[1], data[2], data[3]
        _, serial = struct.unpack_from(e + "II", data, 4)
        (fields,) = unmarshal("a(yv)", data, little, 12)
        fields = {k: v[1] for k, v in fields}
        start = 16 + struct.unpack_from(e + "I", data, 12)[0]
        start += _pad(start, 8)
        sig = fields.get(SIGNATURE, "")
        body = unmarshal(sig, data, little, start) if sig else []
        return cls(mtype, fields, body, serial, flags)


def message_length(head):
    """The whole message's length from its first 16 bytes."""
    e = "<" if head[:1] == b"l" else ">"
    body_len, _, fields_len = struct.unpack_from(e + "III", head, 4)
    n = 16 + fields_len
    return n + _pad(n, 8) + body_len


# -- the connection --------------------------------------------------------------
def parse_address(address):
    """The socket addresses of a D-Bus address string (unix:path=,
    unix:abstract=; alternatives separated by ';'), in order."""
    out = []
    for alt in address.split(";"):
        transport, _, rest = alt.partition(":")
        if transport != "unix":
            continue
        kv = dict(p.split("=", 1) for p in rest.split(",") if "=" in p)
        if "path" in kv:
            out.append(_unescape(kv["path"]))
        elif "abstract" in kv:
            out.append("\0" + _unescape(kv["abstract"]))
    return out


def _unescape(v):
    out, i = bytearray(), 0
    b = v.encode()
    while i < len(b):
        if b[i] == 0x25 and i + 3 <= len(b):
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode()


class Connection:
    """One authenticated connection: to a bus (hello=True: the daemon
    routes; Hello first) or directly to a peer such as systemd's private
    socket (no Hello, no routing)."""

    def __init__(self, path, hello, timeout=30.0, uid=None):
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.serial = 0
        self.signals = []     # received while waiting for a reply
        self.rbuf = bytearray()
        self.bus = hello
        try:
            self.sock.connect(path)
            self._auth(os.geteuid() if uid is None else uid)
            if hello:
                self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello")
        except OSError as e:
            self.close()
            raise DBusError("", "cannot talk to %s: %s" % (path.replace("\0", "@"), e.strerror or e))
        except BaseException:
            self.close()
            raise

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _auth(self, uid):
        # BEGIN goes with AUTH, as sd-bus sends it, and the first message
        # only after the server's OK: systemd's private socket (sd-bus as a
        # server, 252 at least) may leave a message that arrives in the same
        # read as BEGIN unprocessed until more data comes.
        self.sock.sendall(b"\0AUTH EXTERNAL " + str(uid).encode().hex().encode() + b"\r\nBEGIN\r\n")
        line = self._line()
        if not line.startswith(b"OK "):
            raise DBusError("", "the bus refused authentication: %r" % line.decode(errors="replace"))

    def _line(self):
        while b"\r\n" not in self.rbuf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise DBusError("", "the bus closed the connection during authentication")
            self.rbuf += chunk
            if len(self.rbuf) > 16384:
                raise DBusError("", "the bus sent a malformed authentication reply")
        line, _, rest = bytes(self.rbuf).partition(b"\r\n")
        self.rbuf = bytearray(rest)
        return line

    def _recv_exact(self, n):
        while len(self.rbuf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.rbuf)))
            if not chunk:
                raise DBusError("", "the bus closed the connection")
            self.rbuf += chunk
        out = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return out

    def send(self, msg):
        self.serial += 1
        msg.serial = self.serial
        self.sock.sendall(msg.to_bytes())
        return msg.serial

    def recv(self):
        head = self._recv_exact(16)
        n = message_length(head)
        if n > MAX_MESSAGE:
            raise DBusError("", "the bus sent a message of %d bytes" % n)
        return Message.parse(head + self._recv_exact(n - 16))

    def call(self, dest, path, iface, member, sig="", args=()):
        """A method call; the reply's values, or DBusError for an error
        reply. Signals that arrive meanwhile are kept in self.signals."""
        fields = {PATH: path, INTERFACE: iface, MEMBER: member}
        if dest:
            fields[DESTINATION] = dest
        if sig:
            fields[SIGNATURE] = sig
        try:
            serial = self.send(Message(METHOD_CALL, fields, args))
            while True:
                m = self.recv()
                if m.type == SIGNAL:
                    self.signals.append(m)
                elif m.type in (METHOD_RETURN, ERROR) and m.fields.get(REPLY_SERIAL) == serial:
                    if m.type == ERROR:
                        raise DBusError(m.fields.get(ERROR_NAME, "?"), m.body[0] if m.body and
                                        isinstance(m.body[0], str) else "")
                    return m.body
        except _socket.timeout:
            raise DBusError("", "no reply to %s.%s within %.0f s" % (iface, member, self.timeout))
        except OSError as e:
            raise DBusError("", "%s.%s: %s" % (iface, member, e.strerror or e))

    def wait_signal(self, match, timeout):
        """The first signal (kept or new) for which match(message) is true."""
        import time

        for i, m in enumerate(self.signals):
            if match(m):
                return self.signals.pop(i)
        deadline = time.monotonic() + timeout
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.sock.settimeout(left)
                m = self.recv()
                if m.type == SIGNAL:
                    if match(m):
                        return m
                    self.signals.append(m)
        except _socket.timeout:
            return None
        except OSError as e:
            raise DBusError("", "waiting for a signal: %s" % (e.strerror or e))
        finally:
            self.sock.settimeout(self.timeout)
