"""A small CRI client for the tests: gRPC over containerd's unix socket,
with the messages of cri_api.proto (compiled in memory by grpcio-tools on
first use; nothing generated is kept in the tree).

    cri = Cri("/path/containerd.sock")
    cri.Version()                                   # RuntimeService
    pod = cri.RunPodSandbox(config=..., runtime_handler="pyoci").pod_sandbox_id
    cri.ImageStatus(image=cri.pb.ImageSpec(image=REF))   # ImageService

Each call takes the request message's fields as keywords (some are named
`timeout`: the call's own deadline is `deadline`, in seconds). `timer`,
when set, is called as timer(method, seconds) after each call.
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_IMAGE_METHODS = ("ListImages", "ImageStatus")
_loaded = None


def load():
    """(messages module, services module) of cri_api.proto."""
    global _loaded
    if _loaded is None:
        import grpc

        if HERE not in sys.path:
            sys.path.insert(0, HERE)
        _loaded = grpc.protos_and_services("cri_api.proto")
    return _loaded


class CriError(Exception):
    def __init__(self, method, err):
        self.method = method
        self.code = err.code()
        self.details = err.details()
        super().__init__("%s: %s: %s" % (method, self.code.name, self.details))


class Cri:
    def __init__(self, socket_path, deadline=60):
        import grpc

        self.pb, services = load()
        self.channel = grpc.insecure_channel("unix://" + socket_path)
        self.runtime = services.RuntimeServiceStub(self.channel)
        self.images = services.ImageServiceStub(self.channel)
        self.deadline = deadline
        self.timer = None

    def close(self):
        self.channel.close()

    def call(self, method, deadline=None, **fields):
        import grpc

        stub = self.images if method in _IMAGE_METHODS else self.runtime
        request = getattr(self.pb, method + "Request")(**fields)
        t0 = time.monotonic()
        try:
            return getattr(stub, method)(request, timeout=deadline or self.deadline)
        except grpc.RpcError as e:
            raise CriError(method, e) from None
        finally:
            if self.timer is not None:
                self.timer(method, time.monotonic() - t0)

    def __getattr__(self, method):
        if not method[:1].isupper():
            raise AttributeError(method)
        return lambda deadline=None, **fields: self.call(method, deadline=deadline, **fields)


def _connect_in_netns(host, port, netns, timeout):
    """A TCP connection made from inside the network namespace at path
    netns (the streaming server listens on 127.0.0.1 there): a thread of
    our own joins it, connects and ends; the socket stays in that namespace."""
    import ctypes
    import socket
    import threading

    out = {}

    def run():
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, 0x40000000) != 0:   # CLONE_NEWNET
                    raise OSError(ctypes.get_errno(), "setns " + netns)
            finally:
                os.close(fd)
            out["sock"] = socket.create_connection((host, port), timeout=timeout)
        except Exception as e:  # noqa: BLE001 (handed to the caller)
            out["error"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "error" in out:
        raise out["error"]
    return out["sock"]


def stream(url, netns, timeout=30):
    """Follow the URL an Exec (or Attach) call returned, as `kubectl exec`
    does through the kubelet, over a WebSocket with Kubernetes' channel
    protocol v4 (each binary message starts with its channel: 1 stdout,
    2 stderr, 3 the final status). No stdin. Returns (stdout bytes, stderr
    bytes, exit code)."""
    import base64
    import json
    import struct
    from urllib.parse import urlsplit

    u = urlsplit(url)
    sock = _connect_in_netns(u.hostname, u.port, netns, timeout)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                      "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n"
                      % (u.path + ("?" + u.query if u.query else ""), u.netloc, key)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = sock.recv(4096)
            if not data:
                raise ConnectionError("streaming server closed the connection: %r" % buf)
            buf += data
        head, buf = buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError("no WebSocket upgrade: %r" % head)

        def need(n):
            nonlocal buf
            while len(buf) < n:
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("connection closed in a frame")
                buf += data
            out, buf = buf[:n], buf[n:]
            return out

        channels = {1: b"", 2: b"", 3: b""}
        while True:
            b0, b1 = need(2)
            opcode, length = b0 & 0x0F, b1 & 0x7F
            if length == 126:
                length = struct.unpack(">H", need(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", need(8))[0]
            mask = need(4) if b1 & 0x80 else None
            payload = need(length)
            if mask:
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            if opcode == 8:        # close
                break
            if opcode == 9:        # ping: a masked pong
                m = os.urandom(4)
                sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + m +
                             bytes(c ^ m[i % 4] for i, c in enumerate(payload)))
            elif opcode in (0, 1, 2) and payload:
                channels[payload[0]] = channels.get(payload[0], b"") + payload[1:]
    finally:
        sock.close()
    status = json.loads(channels[3] or b"{}")
    if status.get("status") == "Success":
        code = 0
    else:
        causes = (status.get("details") or {}).get("causes") or []
        codes = [c.get("message") for c in causes if c.get("reason") == "ExitCode"]
        if not codes:
            raise RuntimeError("exec stream failed: %r" % status)
        code = int(codes[0])
    return channels[1], channels[2], code
