"""A container as the state directory records it: status and the
operations on an existing container (start, kill, delete, pause)."""
import os
import time

from pyoci import SPEC_VERSION
from pyoci.errors import ContainerNotRunning, PyociError
from pyoci.runtime.state import StateDir

CREATED, RUNNING, PAUSED, STOPPED = "created", "running", "paused", "stopped"


def proc_stat(pid):
    """(state letter, start time in ticks) of a process, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def alive(pid, start_time):
    st = proc_stat(pid) if pid > 0 else None
    return bool(st) and st[0] not in ("Z", "X") and st[1] == start_time


class Container:
    def __init__(self, sdir, state):
        self.dir = sdir
        self.state = state
        self.destroyed = False
        self._poststop_done = False

    @classmethod
    def load(cls, root, cid):
        sdir = StateDir(root, cid)
        return cls(sdir, sdir.load())

    @property
    def id(self):
        return self.dir.id

    @property
    def pid(self):
        return self.state.get("pid", 0)

    def cgroup(self):
        from pyoci.linux.cgroups import Cgroup

        return Cgroup.from_state(self.state.get("cgroup"))

    def status(self):
        if not alive(self.pid, self.state.get("start_time")):
            return STOPPED
        if os.path.exists(self.dir.fifo):
            return CREATED
        if self.state.get("cgroup") and self.cgroup().frozen():
            return PAUSED
        return RUNNING

    def oci_state(self, status=None):
        """The runtime-spec state document."""
        status = status or self.status()
        st = {
            "ociVersion": SPEC_VERSION,
            "id": self.id,
            "status": status,
            "pid": self.pid if status != STOPPED else 0,
            "bundle": self.state["bundle"],
        }
        if self.state.get("annotations"):
            st["annotations"] = self.state["annotations"]
        return st

    def runc_state(self):
        """runc's `state` output: the spec state plus rootfs, created, owner."""
        oci = self.oci_state()
        # runc's key order (its containerState struct): list --format json
        # and state are matched on it by scripts
        st = {k: oci[k] for k in ("ociVersion", "id", "pid", "status", "bundle")}
        st["rootfs"] = self.state.get("rootfs", "")
        st["created"] = self.state.get("created", "")
        if "annotations" in oci:
            st["annotations"] = oci["annotations"]
        st["owner"] = ""
        return st

    # -- operations ------------------------------------------------------
    def start(self):
        status = self.status()
        if status == STOPPED:
            raise PyociError("cannot start a container that has stopped")
        if status != CREATED:
            raise PyociError("cannot start an already running container")
        hooks = (self.state.get("config") or {}).get("hooks") or {}
        if hooks.get("startContainer"):
            from pyoci.runtime.exec import container_spawner

            self._hooks_or_destroy("startContainer", hooks, CREATED, container_spawner(self))
        fd = os.open(self.dir.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            # The init opens the fifo for writing when we open it for reading,
            # then writes one byte; wait for it (or for the init to die).
            import select

            p = select.poll()
            p.register(fd, select.POLLIN)
            while True:
                if p.poll(50):
                    try:
                        if os.read(fd, 1):
                            break
                    except BlockingIOError:
                        pass
                if not alive(self.pid, self.state.get("start_time")):
                    raise PyociError("cannot start a container that has stopped")
            if hooks.get("poststart"):
                # pyoci-init keeps the fifo open until it executes the
                # user's program: end-of-file means the program runs.
                while True:
                    p.poll(50)
                    try:
                        if not os.read(fd, 1):
                            break
                    except BlockingIOError:
                        pass
                    if not alive(self.pid, self.state.get("start_time")):
                        break
        finally:
            os.close(fd)
        os.unlink(self.dir.fifo)
        if hooks.get("poststart"):
            self._hooks_or_destroy("poststart", hooks, RUNNING)

    def _hooks_or_destroy(self, kind, hooks, status, spawn=None):
        """Run the hooks of `kind`; if one fails, the container is stopped
        and destroyed (the poststop hooks run) and the error raised, as
        runtime-spec 1.3.0 has it for startContainer and poststart."""
        from pyoci.cli import log
        from pyoci.runtime import hooks as H

        try:
            H.run(kind, hooks.get(kind), self.oci_state(status), spawn=spawn, debug=log.current.debug)
        except PyociError:
            self.destroy()
            raise

    def signal(self, sig, all_processes=False):
        stopped = self.status() == STOPPED
        if stopped and not (all_processes and self.state.get("cgroup")):
            raise ContainerNotRunning()
        if all_processes:
            # With --all, a stopped container is no error (as runc): its init
            # has exited, but processes it left (no pid namespace of its own,
            # or a shared one) may still hold the engine's stdio pipes, and
            # containerd's shim waits for them to be killed.
            # Freeze the cgroup while signalling, so that no process forks
            # past the list; thaw afterwards (a frozen process would not
            # act on SIGKILL), as runc does.
            cg = self.cgroup()
            if sig == 9 and cg.kill_all():
                return
            froze = False
            try:
                cg.freeze(True)
                froze = True
            except (PyociError, OSError):
                pass
            try:
                pids = cg.pids()
                for pid in pids:
                    try:
                        os.kill(pid, sig)
                    except ProcessLookupError:
                        pass
            finally:
                if froze:
                    cg.freeze(False)
            if pids or stopped:
                return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            raise ContainerNotRunning()

    def wait_stopped(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while alive(self.pid, self.state.get("start_time")):
            if time.monotonic() > deadline:
                raise PyociError("container %s did not stop within %.0f s" % (self.id, timeout))
            time.sleep(0.002)

    def destroy(self):
        """Kill whatever is left and remove the cgroup and the state."""
        if self.state.get("netDevices"):
            self._release_net_devices()
        if alive(self.pid, self.state.get("start_time")):
            try:
                os.kill(self.pid, 9)  # SIGKILL
            except ProcessLookupError:
                pass
            self.wait_stopped()
        if self.state.get("cgroup"):
            self.cgroup().destroy()
        self.dir.remove()
        self.destroyed = True
        hooks = (self.state.get("config") or {}).get("hooks") or {}
        if hooks.get("poststop") and not self._poststop_done:
            # after the container is deleted; a failure only warns
            from pyoci.cli import log
            from pyoci.runtime import hooks as H

            self._poststop_done = True
            H.run("poststop", hooks["poststop"], self.oci_state(STOPPED), warn=log.current.warning,
                  debug=log.current.debug)

    def _release_net_devices(self):
        """linux.netDevices go back to the host, under their host names,
        while their namespace still exists: the init's, or a joined one."""
        from pyoci.linux import network

        path = self.state.get("netns")
        if not path and alive(self.pid, self.state.get("start_time")):
            path = "/proc/%d/ns/net" % self.pid
        if path:
            network.move_out(self.state["netDevices"], path)
        if path and path.startswith(self.dir.path + "/"):
            network.unpin(path)

    def delete(self, force=False):
        status = self.status()
        if status in (RUNNING, PAUSED) and not force:
            raise PyociError("cannot delete container %s that is not stopped: %s" % (self.id, status))
        if status == PAUSED:
            self.cgroup().freeze(False)
        self.destroy()
