"""A fake systemd manager on a unix socket, for the systemd cgroup driver's
unit tests: it speaks D-Bus (pyoci's marshalling; the marshalling itself is
checked against jeepney's in test_dbus.py) and keeps transient units as
directories under a fake cgroup root. The real thing is tested in the
guest (tests/integration/test_systemd_driver.py)."""
import os
import shutil
import socket
import threading

from pyoci.linux.cgroups import dbus as D
from pyoci.linux.cgroups import systemd as S

FILES = ["cgroup.controllers", "cgroup.procs", "cgroup.freeze", "cgroup.kill", "memory.max", "memory.low",
         "memory.swap.max", "memory.high", "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems", "pids.max",
         "io.weight"]


class FakeSystemd:
    def __init__(self, sock_path, cgroot, bus=False, version="252.39-1~deb12u1"):
        self.path = sock_path
        self.cgroot = cgroot
        self.bus = bus                 # behave as a bus daemon: expect Hello, AddMatch
        self.version = version
        self.units = {}                # name -> {"props": [...], "state": "active"|"failed"}
        self.calls = []                # (member, body)
        self.fail_start = None         # a job result other than "done"
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(sock_path)
        self.srv.listen(8)
        self.jobs = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def close(self):
        self.srv.close()

    def unit_dir(self, unit, slice_):
        return self.cgroot + S.expand_slice(slice_).rstrip("/") + "/" + unit

    def _serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn):
        f = conn.makefile("rwb", buffering=0)
        try:
            assert f.read(1) == b"\0"
            line = b""
            while not line.endswith(b"\r\n"):
                line += f.read(1)
            assert line.startswith(b"AUTH EXTERNAL ")
            line = b""
            while not line.endswith(b"\r\n"):
                line += f.read(1)
            assert line == b"BEGIN\r\n"      # pipelined, as sd-bus clients send it
            f.write(b"OK 0123456789abcdef0123456789abcdef\r\n")
            serial = [0]

            def send(msg):
                serial[0] += 1
                msg.serial = serial[0]
                conn.sendall(msg.to_bytes())

            while True:
                head = f.read(16)
                if len(head) < 16:
                    return
                n = D.message_length(head)
                data = head
                while len(data) < n:
                    data += f.read(n - len(data))
                m = D.Message.parse(data)
                self._handle(m, send)
        except (OSError, AssertionError):
            return
        finally:
            conn.close()

    def _reply(self, send, m, sig="", body=()):
        fields = {D.REPLY_SERIAL: m.serial}
        if sig:
            fields[D.SIGNATURE] = sig
        send(D.Message(D.METHOD_RETURN, fields, body))

    def _error(self, send, m, name, text):
        send(D.Message(D.ERROR, {D.REPLY_SERIAL: m.serial, D.ERROR_NAME: name, D.SIGNATURE: "s"}, [text]))

    def _job(self, send, m, unit, result):
        self.jobs += 1
        job = "/org/freedesktop/systemd1/job/%d" % self.jobs
        self._reply(send, m, "o", [job])
        send(D.Message(D.SIGNAL, {D.PATH: S.OBJ, D.INTERFACE: S.MANAGER, D.MEMBER: "JobRemoved",
                                  D.SIGNATURE: "uoss"}, [self.jobs, job, unit, result]))

    def _handle(self, m, send):
        member = m.fields.get(D.MEMBER)
        self.calls.append((member, m.body))
        if member == "Hello":
            return self._reply(send, m, "s", [":1.42"])
        if member == "AddMatch":
            return self._reply(send, m)
        if member == "Get":
            return self._reply(send, m, "v", [("s", self.version)])
        if member == "StartTransientUnit":
            unit, mode, props, aux = m.body
            if unit in self.units:
                return self._error(send, m, "org.freedesktop.systemd1.UnitExists",
                                   "Unit %s was already loaded or has a fragment file." % unit)
            if self.fail_start:
                self.units[unit] = {"props": props, "state": "failed"}
                return self._job(send, m, unit, self.fail_start)
            p = dict(props)
            d = self.unit_dir(unit, p["Slice"][1])
            os.makedirs(d)
            for name in FILES:
                with open(os.path.join(d, name), "w") as fh:
                    fh.write("")
            with open(os.path.join(d, "cgroup.controllers"), "w") as fh:
                fh.write("cpuset cpu io memory pids\n")
            with open(os.path.join(d, "cgroup.procs"), "w") as fh:
                fh.write("".join("%d\n" % pid for pid in p["PIDs"][1]))
            self.units[unit] = {"props": props, "state": "active", "dir": d}
            return self._job(send, m, unit, "done")
        if member == "StopUnit":
            unit = m.body[0]
            u = self.units.get(unit)
            if u is None:
                return self._error(send, m, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not loaded." % unit)
            if u.get("dir"):
                shutil.rmtree(u["dir"], ignore_errors=True)
            del self.units[unit]
            return self._job(send, m, unit, "done")
        if member == "ResetFailedUnit":
            unit = m.body[0]
            u = self.units.get(unit)
            if u is None:
                return self._error(send, m, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not loaded." % unit)
            if u["state"] == "failed":
                del self.units[unit]
            return self._reply(send, m)
        if member == "SetUnitProperties":
            unit, runtime, props = m.body
            if unit not in self.units:
                return self._error(send, m, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not loaded." % unit)
            self.units[unit]["props"] = self.units[unit]["props"] + props
            return self._reply(send, m)
        return self._error(send, m, "org.freedesktop.DBus.Error.UnknownMethod", "no method %s" % member)
