"""A container as its state directory records it, and the operations on an
existing one: start, signal, pause, resume, update, processes, stats and
events, delete. create is in create.py, exec in exec.py, run's foreground
in foreground.py.

Every operation asks the state machine (status.py) first. A Container from
Container.open() holds the directory's lock from before the state was read
until it is closed (`with Container.open(...) as c:`), so load -> act ->
save is one step for every other command on the same id.
"""
import time

from pyoci import SPEC_VERSION
from pyoci import fastos as os
from pyoci.errors import ContainerBroken, ContainerNotRunning, PyociError
from pyoci.runtime import status as S
from pyoci.runtime.state import State, StateDir


class NullLog:
    def debug(self, msg):
        pass

    info = warning = debug


class Container:
    def __init__(self, sdir, state, log=None, broken=None):
        self.dir = sdir
        self.state = state
        self.log = log or NullLog()
        self.broken = broken      # why the state is unusable (status "broken")
        self.creating = False     # a create holds the lock and wrote no state yet
        self.destroyed = False
        self._poststop_done = False

    # -- loading -------------------------------------------------------
    @classmethod
    def open(cls, root, cid, log=None, shared=False):
        """The container, its directory locked (exclusive, or shared for
        operations that change no document) before its state is read. A
        broken one comes with what its cleanup record says."""
        sdir = StateDir(root, cid)
        sdir.lock(shared)
        try:
            return cls._load(sdir, log)
        except BaseException:
            sdir.unlock()
            raise

    @classmethod
    def peek(cls, root, cid, log=None):
        """A snapshot without the lock (state, list, ps). A directory whose
        lock is held and that has no state yet is a create under way
        (status creating: `list` shows it, for the rest it does not exist
        yet, as with runc)."""
        sdir = StateDir(root, cid)
        c = cls._load(sdir, log)
        if c.broken and sdir.busy():
            c.creating, c.broken = True, None
        return c

    @classmethod
    def _load(cls, sdir, log):
        try:
            return cls(sdir, sdir.load(), log)
        except ContainerBroken as e:
            return cls(sdir, sdir.load_cleanup() or State(sdir.id), log, broken=e.reason)

    def close(self):
        self.dir.unlock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- what it is ----------------------------------------------------
    @property
    def id(self):
        return self.dir.id

    @property
    def pid(self):
        return self.state.pid

    def init_alive(self):
        return S.alive(self.state.pid, self.state.start_time)

    def cgroup(self):
        """The container's Cgroup, or None (a rootless container without a
        delegated cgroup; a create killed before it planned one)."""
        if not self.state.cgroup:
            return None
        from pyoci.linux.cgroups import Cgroup

        return Cgroup.from_state(self.state.cgroup)

    def status(self):
        if self.creating:
            return S.CREATING
        if self.broken:
            return S.BROKEN
        return S.derive(self.state, lambda: os.path.exists(self.dir.fifo), self._frozen)

    def _frozen(self):
        """Whether the cgroup is frozen, from the directories its state
        records (the freezer's files are the same for every driver; the
        cgroups package costs `state` more than all its other work)."""
        from pyoci.linux import freezer

        cg = self.state.cgroup
        paths = cg.get("paths") if isinstance(cg, dict) else None
        if not isinstance(paths, dict):
            return self.cgroup().frozen()   # malformed: Cgroup.from_state says how
        return freezer.frozen(paths)

    def check(self, op, status=None):
        S.check(op, status or self.status(), self.id, self.broken)

    def oci_state(self, status=None):
        """The runtime-spec state document."""
        status = status or self.status()
        st = {
            "ociVersion": SPEC_VERSION,
            "id": self.id,
            "status": status,
            "pid": self.pid if status not in (S.STOPPED, S.BROKEN, S.CREATING) else 0,
            "bundle": self.state.bundle,
        }
        if self.state.annotations:
            st["annotations"] = self.state.annotations
        return st

    def runc_state(self, status=None):
        """runc's `state` output: the spec state plus rootfs, created, owner,
        in runc's key order (its containerState struct): list --format json
        and state are matched on it by scripts."""
        oci = self.oci_state(status)
        st = {k: oci[k] for k in ("ociVersion", "id", "pid", "status", "bundle")}
        st["rootfs"] = self.state.rootfs
        st["created"] = self.state.created
        if "annotations" in oci:
            st["annotations"] = oci["annotations"]
        st["owner"] = ""
        return st

    def save(self):
        self.dir.save(self.state)

    # -- start ---------------------------------------------------------
    def start(self):
        self.check("start")
        hooks = self.state.hooks or {}
        if hooks.get("startContainer"):
            from pyoci.runtime.exec import container_spawner

            self._hooks_or_destroy("startContainer", hooks, S.CREATED, container_spawner(self))
        from pyoci.runtime import fault

        fault.point("start:open-fifo")
        # Opening the fifo for reading never blocks (O_NONBLOCK); then reads
        # block. pyoci-init, waiting in open() for writing (which counts it
        # as a writer), opens and writes one byte: the read returns it. A
        # read with no writer returns at once with nothing: the init has not
        # reached the fifo yet, or died; look again (no `select`: its import
        # costs a tenth of `start`).
        fd = os.open(self.dir.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            os.set_blocking(fd, True)
            while not os.read(fd, 1):
                if not self.init_alive():
                    raise S.InvalidStatus("start", S.STOPPED, "cannot start a container that has stopped")
                time.sleep(0.001)
            fault.point("start:released")
            if hooks.get("poststart"):
                # pyoci-init keeps the fifo open until it executes the
                # user's program: end-of-file means the program runs.
                while os.read(fd, 1):
                    pass
        finally:
            os.close(fd)
        os.unlink(self.dir.fifo)
        fault.point("start:fifo-removed")
        if hooks.get("poststart"):
            # the state is final (running); a hook may signal or exec into
            # this container through the runtime, which takes the lock shared
            self.dir.share()
            self._hooks_or_destroy("poststart", hooks, S.RUNNING)

    def _hooks_or_destroy(self, kind, hooks, status, spawn=None):
        """Run the hooks of `kind`; if one fails, the container is stopped
        and destroyed (the poststop hooks run) and the error raised, as
        runtime-spec 1.3.0 has it for startContainer and poststart."""
        from pyoci.runtime import hooks as H

        try:
            # startContainer runs in the container: a hook without env gets
            # the container process's, as runc's init gives it
            env = (self.state.process or {}).get("env") or [] if kind == "startContainer" else None
            H.run(kind, hooks.get(kind), self.oci_state(status), spawn=spawn, debug=self.log.debug, env=env)
        except PyociError:
            self.destroy()
            raise

    # -- signals -------------------------------------------------------
    def signal(self, sig, all_processes=False):
        """kill: the init, or with all_processes every process of the
        cgroup. With --all a stopped container is no error (as runc): its
        init has exited, but processes it left (no pid namespace of its own,
        or a shared one) may still hold the engine's stdio pipes, and
        containerd's shim waits for them to be killed. Signal 0 only says
        whether the init is alive."""
        status = self.status()
        cg = self.cgroup()
        if status == S.STOPPED and cg is None:
            all_processes = False   # nothing left to signal: "container not running"
        self.check("kill-all" if all_processes else "kill", status)
        if all_processes:
            if cg is not None and signal_cgroup(cg, sig):
                return
            if status == S.STOPPED:
                return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            raise ContainerNotRunning()
        if status == S.PAUSED and sig == 9:
            # a frozen process acts on SIGKILL only once thawed (runc)
            try:
                self.cgroup().freeze(False)
            except (PyociError, OSError):
                pass

    def wait_stopped(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.init_alive():
            if time.monotonic() > deadline:
                raise PyociError("container %s did not stop within %.0f s" % (self.id, timeout))
            time.sleep(0.002)

    # -- cgroup operations ---------------------------------------------
    def pause(self):
        self.check("pause")
        self._cgroup_or_fail("pause").freeze(True)

    def resume(self):
        self.check("resume")
        self._cgroup_or_fail("resume").freeze(False)

    def _cgroup_or_fail(self, what):
        cg = self.cgroup()
        if cg is None:
            raise PyociError("no cgroup: cannot %s" % what)
        return cg

    def update(self, resources, intel_rdt=None):
        """Apply a linux.resources patch (runc's `update`): the files are
        written, restored on failure, and the merged resources saved."""
        self.check("update")
        if intel_rdt:
            raise PyociError("update: Intel RDT is not supported by this pyoci")
        if not isinstance(resources, dict):
            raise PyociError("update: resources must be a JSON object of linux.resources")
        if resources.get("devices"):
            self.log.warning("update: linux.resources.devices cannot be updated; ignored")
        patch = {k: v for k, v in resources.items() if k in UPDATABLE}
        cg = self._cgroup_or_fail("update")
        merged = merge(cg.resources, patch)
        apply = dict(patch)
        mem = apply.get("memory")
        if cg.version() == 2 and mem and "swap" in mem and "limit" not in mem:
            # v2 swap is given as memory+swap; the conversion needs the limit
            limit = (merged.get("memory") or {}).get("limit")
            apply["memory"] = dict(mem, limit=limit) if limit else mem
        from pyoci.errors import ConfigError
        from pyoci.runtime import fault

        try:
            if mem and (merged.get("memory") or {}).get("checkBeforeUpdate"):
                _check_before_update(cg, mem)
            fault.point("update:apply")
            cg.apply(apply, warn=self.log.warning, devices=False, restore=True)
        except ConfigError as e:
            raise PyociError("update: %s: %s" % (e.path, e.reason))
        fault.point("update:applied")
        cg.resources = merged
        self.state.cgroup = cg.to_state()
        self.save()

    def processes(self):
        """Host pids of every process in the container's cgroup."""
        status = self.status()
        self.check("ps", status)
        cg = self.cgroup()
        return cg.pids() if cg is not None and status != S.STOPPED else []

    def stats(self):
        self.check("events")
        from pyoci.linux.cgroups import stats

        return {"type": "stats", "id": self.id, "data": stats.collect(self._cgroup_or_fail("stats"))}

    def events(self, interval):
        """runc's `events` stream: a stats event every `interval` seconds and
        an oom event when the kernel OOM-kills in the cgroup; ends when the
        container stopped."""
        self.check("events")
        from pyoci.linux.cgroups import stats

        cg = self._cgroup_or_fail("events")
        ooms = stats.oom_count(cg)
        next_stats = time.monotonic()
        while True:
            now = time.monotonic()
            n = stats.oom_count(cg)
            if n > ooms:
                yield {"type": "oom", "id": self.id}
            ooms = n
            if not self.init_alive():
                return
            if now >= next_stats:
                yield {"type": "stats", "id": self.id, "data": stats.collect(cg)}
                next_stats = now + interval
            time.sleep(max(0.0, min(0.05, next_stats - time.monotonic())))

    # -- delete --------------------------------------------------------
    def delete(self, force=False):
        """runc's delete: a stopped or created container (its init killed);
        with force any, broken ones too."""
        status = self.status()
        self.check("delete-force" if force else "delete", status)
        self.destroy()

    def destroy(self):
        """Remove every trace, in an order that a kill at any moment leaves
        repeatable: devices back to the host while their namespace exists,
        every process of the container (the init, then what its cgroup
        holds), the cgroups, the state directory (its documents last), then
        the poststop hooks, which only warn."""
        from pyoci.runtime import fault

        st = self.state
        if st.net_devices:
            self._release_net_devices()
            fault.point("delete:devices-released")
        if self.init_alive():
            try:
                os.kill(st.pid, 9)
            except ProcessLookupError:
                pass
        cg = self.cgroup()
        if cg is not None:
            if cg.frozen():
                try:
                    cg.freeze(False)   # a frozen process would never die
                except (PyociError, OSError):
                    pass
            if _owned(cg):
                signal_cgroup(cg, 9)
        fault.point("delete:killed")
        self.wait_stopped()
        if cg is not None:
            cg.destroy()
            fault.point("delete:cgroup-removed")
        if st.netns and st.netns.startswith(self.dir.path + "/"):
            from pyoci.linux import network

            network.unpin(st.netns)
        self.dir.remove()
        self.destroyed = True
        hooks = st.hooks or {}
        if hooks.get("poststop") and not self._poststop_done and not self.broken:
            from pyoci.runtime import hooks as H

            self._poststop_done = True
            H.run("poststop", hooks["poststop"], self.oci_state(S.STOPPED), warn=self.log.warning,
                  debug=self.log.debug)

    def _release_net_devices(self):
        """linux.netDevices go back to the host, under their host names,
        while their namespace still exists: the pinned one, or a joined one."""
        from pyoci.linux import network

        path = self.state.netns
        if not path and self.init_alive():
            path = "/proc/%d/ns/net" % self.pid
        if path and os.path.exists(path):
            network.move_out(self.state.net_devices, path)


def _owned(cg):
    """The cgroup directories are the container's own (create made them):
    every process in them is the container's to kill."""
    st = cg.to_state()
    created = set(st.get("created") or ())
    paths = st.get("paths") or {}
    return bool(paths) and all(d in created for d in paths.values())


def signal_cgroup(cg, sig):
    """Signal every process in the cgroup; False when it holds none. The
    cgroup is frozen meanwhile, so that no process forks past the list,
    and thawed after (a frozen process would not act on SIGKILL), as runc
    does; SIGKILL goes through cgroup.kill where there is one."""
    if sig == 9 and cg.kill_all():
        return True
    froze = False
    try:
        if not cg.frozen():
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
        if froze or sig == 9:
            try:
                cg.freeze(False)
            except (PyociError, OSError):
                pass
    return bool(pids)


UPDATABLE = ("memory", "cpu", "pids", "blockIO", "hugepageLimits", "network", "rdma", "unified")


def merge(old, patch):
    out = dict(old or {})
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = dict(out[k], **v)
        else:
            out[k] = v
    return out


def _check_before_update(cg, mem):
    limit = mem.get("limit")
    if not limit or limit < 0:
        return
    from pyoci.errors import ConfigError
    from pyoci.linux.cgroups import stats

    d = cg.dir_for("memory")
    usage = stats._int(d, "memory.usage_in_bytes" if cg.version() == 1 else "memory.current")
    if usage and limit < usage:
        raise ConfigError("linux.resources.memory.limit", "%d is below the current usage %d "
                          "(memory.checkBeforeUpdate)" % (limit, usage))
