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
