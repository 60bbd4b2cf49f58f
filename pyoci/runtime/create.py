"""`create`: build a container and leave its init waiting for `start`.

Processes (P = this command):

  P   validates the config, makes the state dir, the exec fifo and the
      cgroup, and forks C2 directly, or C1 with a user or time namespace:
  C1  joins the namespaces given by path and unshares the new ones (all but
      cgroup; the user namespace first, mapped by P), then forks C2 — the
      first process of the new pid namespace — reports C2's pid to P and
      exits, so that C2 is re-parented to the caller's nearest subreaper
      (containerd's shim, conmon).
      Without a user or time namespace of the container's own, or one to
      join, P needs no C1: it makes the pid namespace its children go to
      (unshare(CLONE_NEWPID), or setns to one given by path), forks C2 into
      it, takes its own back for any later child (hooks), and C2 joins and
      unshares the other namespaces itself. C2 is then P's child until P
      exits at the end of create, and re-parented to the subreaper as with
      C1. One fork and one Python process less: ~1.5 ms of CPU.
  P   puts C2 into its cgroup, then lets it go.
  C2  (runtime/child.py) unshares the cgroup namespace, builds the root
      filesystem, pivots into it, applies hostname, sysctls, rlimits, cwd and
      stdio, then executes pyoci-init through a read-only detached mount.
      pyoci-init waits on the exec fifo for `start`.
  P   sees the sync pipe close on C2's exec, writes state.json and the pid
      file, and exits. Nothing of pyoci remains but pyoci-init.

Crash safety: right after the state directory was made (mkdir is the one
atomic step that makes exactly one of racing creates of an id win), and
before anything else exists, P writes the cleanup record (state.py) with
the cgroup it will make and the devices it will move; it writes it again
whenever it made more (the cgroup, C2's pid). On any failure P destroys
the container from that record, as `delete --force` does after a create
that was killed: a failed create leaves nothing behind either way.
"""
import time

from pyoci import fastos as os
from pyoci.config import load_bundle
from pyoci.errors import PyociError
from pyoci.fileio import write_atomic
from pyoci.runtime import fault, sync
from pyoci.runtime.state import State, StateDir


class CreateOptions:
    def __init__(self, bundle=None, pid_file=None, console_socket=None, no_pivot=False,
                 no_new_keyring=False, preserve_fds=0, attached=False, pidfd_socket=None):
        self.bundle = bundle
        self.pidfd_socket = pidfd_socket
        self.hooks_started = False   # set once the prestart hooks ran
        # `attached`: a pyoci process stays to relay the terminal (`run` in
        # the foreground). With process.terminal and no --console-socket,
        # create then makes a connected pair that stands in for the console
        # socket and leaves the caller's end in `console_peer`.
        self.attached = attached
        self.console_peer = None
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds


def _now_rfc3339nano():
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%09dZ" % (ns % 10**9)


def _rootfs_path(bundle, config):
    path = config["root"]["path"]
    if not os.path.isabs(path):
        path = os.path.join(bundle, path)
    path = os.path.realpath(path)
    if not os.path.isdir(path):
        raise PyociError("root.path: rootfs %s: %s" % (
            path, "not a directory" if os.path.exists(path) else "no such file or directory"))
    return path


def _check_terminal(config, opts):
    """runc's rules, checked before any side effect."""
    terminal = bool(config["process"].get("terminal"))
    if terminal and not opts.console_socket and not opts.attached:
        raise PyociError("process.terminal: cannot allocate tty if pyoci will detach without "
                         "setting console socket")
    if not terminal and opts.console_socket:
        raise PyociError("--console-socket: cannot use console socket if pyoci will not detach "
                         "or allocate tty")


def create(ctx, cid, opts, keep_lock=False):
    """Returns the Container (locked with keep_lock, for `run`); raises
    PyociError with nothing left behind."""
    from pyoci.config.validate import validate
    from pyoci.linux import cgroups, namespaces

    sdir = StateDir(ctx.root, cid)
    bundle, config = load_bundle(opts.bundle)
    problems = validate(config, bundle)
    if problems:
        raise problems[0]
    if not config.get("process"):
        raise PyociError("config.json: process: required to create a container")
    _check_terminal(config, opts)
    if opts.no_pivot and (config.get("linux") or {}).get("rootfsPropagation") in ("private", "rprivate"):
        # runc's rule and words: without pivot_root the host's mounts stay
        # in the container's mount namespace, and a private root would keep
        # them from ever seeing the host's unmounts
        from pyoci.errors import ConfigError

        raise ConfigError("linux.rootfsPropagation", "rootfsPropagation of [r]private is not safe without "
                          "pivot_root (--no-pivot)")
    rootfs = _rootfs_path(bundle, config)
    ns_plan = namespaces.plan(config)
    settings = _process_settings(config, ctx.log)
    ns_plan.id_maps = _id_maps(config, ns_plan)
    if os.geteuid() != 0 and not ns_plan.has("user"):
        raise PyociError("config.json: linux.namespaces: a container run by an unprivileged user needs a "
                         "user namespace (`pyoci spec --rootless` writes one)")
    net_devices = (config.get("linux") or {}).get("netDevices")
    if net_devices and not ns_plan.has("network"):
        raise PyociError("linux.netDevices: moving network devices needs a network namespace of the "
                         "container's own (linux.namespaces has no network)")
    hierarchies = cgroups.layout()
    cg = cgroups.Cgroup.plan(config, cid, hierarchies, systemd=ctx.systemd_cgroup)
    if ctx.rootless:
        from pyoci.linux import userns

        cg = userns.rootless_cgroup(cg, config, ctx.log.warning, hierarchies)
    fault.point("create:checked")

    sdir.make()
    fault.point("create:dir-made")
    try:
        if cg.paths:
            # As runc, before anything else is made: a pre-existing frozen cgroup
            # would freeze the init as it joins (create waited forever); a
            # shared one is only warned of.
            if cg.frozen():
                raise PyociError("container's cgroup unexpectedly frozen (linux.cgroupsPath %s): thaw it "
                                 "or use another" % (config.get("linux") or {}).get("cgroupsPath"))
            n = len(cg.pids())
            if n:
                ctx.log.warning("container's cgroup is not empty: %d process(es) found" % n)
    except BaseException:
        sdir.remove()
        raise
    state = State(cid, bundle=bundle, rootfs=rootfs, annotations=config.get("annotations") or {},
                  cgroup=_planned(cg), namespaces=sorted(ns_plan.new), process=config["process"],
                  no_new_keyring=bool(opts.no_new_keyring), seccomp=(config.get("linux") or {}).get("seccomp"))
    if net_devices and "network" in ns_plan.new:
        # devices of a new namespace go back to the host from its pin, by
        # the names they will have there; a joined namespace is not ours:
        # its devices are recorded once moved
        state.net_devices = [[h, (d or {}).get("name") or h] for h, d in sorted(net_devices.items())]
        state.netns = sdir.netns
    child = None
    try:
        sdir.save_cleanup(state)
        fault.point("create:recorded")
        os.mkfifo(sdir.fifo, 0o622)
        _fifo_for_userns(sdir.fifo, ns_plan)
        fault.point("create:fifo-made")
        cg.create()
        fault.point("create:cgroup-made")
        state.cgroup = cg.to_state()
        sdir.save_cleanup(state)
        fault.point("create:cgroup-recorded")
        lin = config.get("linux") or {}
        if cg.paths:   # none for a rootless container without a delegated cgroup
            # rootless: no device rules (v1 needs CAP_SYS_ADMIN, v2 CAP_BPF), as runc
            cg.apply(lin.get("resources") or {}, warn=ctx.log.warning,
                     devices=not ctx.rootless)
            fault.point("create:resources-applied")

        def on_child(pid, start_time):
            state.pid, state.start_time = pid, start_time
            sdir.save_cleanup(state)
            fault.point("create:init-recorded")

        child = _spawn(ctx, config, bundle, rootfs, ns_plan, cg, hierarchies, sdir, opts, settings, on_child)
        if net_devices:
            child.move_net_devices(net_devices, ns_plan, sdir)
            state.net_devices, state.netns = child.net_devices, child.netns_path
            sdir.save_cleanup(state)
            fault.point("create:devices-moved")
        state.created = _now_rfc3339nano()
        state.hooks = config.get("hooks") or {}
        state.cgroup = cg.to_state()
        sdir.save(state)
        fault.point("create:state-saved")
        if opts.pid_file:
            try:
                write_atomic(os.path.abspath(opts.pid_file), str(child.pid).encode(), 0o644)
            except OSError as e:
                raise PyociError("--pid-file %s: %s" % (opts.pid_file, e.strerror))
            fault.point("create:pid-file-written")
        if opts.pidfd_socket:
            from pyoci.linux import pidfd

            pidfd.send(opts.pidfd_socket, child.pid)
    except BaseException:
        from pyoci.runtime.container import Container

        # a hook failed (or what followed it): the lifecycle goes on at
        # "destroy", then the poststop hooks, which only warn
        state.hooks = (config.get("hooks") or {}) if opts.hooks_started else {}
        if child is not None and state.pid == 0:
            state.pid, state.start_time = child.pid, child.start_time
        c = Container(sdir, state, ctx.log)
        try:
            c.destroy()
        except PyociError as e:
            ctx.log.warning("clean-up after the failed create: %s" % e)
        raise
    from pyoci.runtime.container import Container

    c = Container(sdir, state, ctx.log)
    fault.point("create:done")
    if not keep_lock:
        c.close()
    return c


def _planned(cg):
    """The cgroup's state as create will leave it, for the cleanup record
    written before it is made: every directory that does not exist yet
    counts as made by us (one that another create makes meanwhile, or that
    holds other cgroups, is left alone by destroy)."""
    st = cg.to_state()
    missing = []
    for d in (st.get("paths") or {}).values():
        chain = []
        while d and d != "/" and not os.path.isdir(d):
            chain.append(d)
            d = os.path.dirname(d)
        missing.extend(m for m in reversed(chain) if m not in missing)
    st["created"] = list(st.get("created") or ()) + [m for m in missing if m not in (st.get("created") or ())]
    return st


class Child:
    def __init__(self, pid, start_time):
        self.pid = pid
        self.start_time = start_time
        self.net_devices = None   # [[host name, name inside]] once moved
        self.netns_path = None    # a joined network namespace (outlives the container)

    def move_net_devices(self, net_devices, ns_plan, sdir):
        """Move linux.netDevices in. A new network namespace is pinned in the
        state dir, so that the devices survive the container's exit until
        delete gives them back to the host."""
        from pyoci.linux import network

        path = dict(ns_plan.join).get("network")
        if path is None:
            path = os.path.join(sdir.path, "netns")
            network.pin(self.pid, path)
            self.pinned = path
        self.netns_path = path
        self.net_devices = network.move_in(net_devices, self.pid)

    def release_net_devices(self):
        from pyoci.linux import network

        if self.net_devices:
            network.move_out(self.net_devices, "/proc/%d/ns/net" % self.pid)
            self.net_devices = None
        if getattr(self, "pinned", None):
            network.unpin(self.pinned)

    def kill(self):
        from pyoci.runtime.status import alive

        try:
            os.kill(self.pid, 9)
        except ProcessLookupError:
            return
        for _ in range(2000):
            if not alive(self.pid, self.start_time):
                break
            time.sleep(0.001)
        try:
            os.waitpid(self.pid, os.WNOHANG)   # ours when forked without C1
        except ChildProcessError:
            pass


def _process_settings(config, log=None):
    """The process settings parsed and checked against the host before
    anything is built (pyoci.linux.process)."""
    from pyoci.linux import process

    linux = config.get("linux") or {}
    if linux.get("intelRdt") is not None:
        raise PyociError("linux.intelRdt: Intel RDT is not supported by this pyoci build "
                         "(and needs a resctrl filesystem mounted at /sys/fs/resctrl)")
    if linux.get("mountLabel"):
        from pyoci.linux import lsm

        lsm.check_context("linux.mountLabel", linux["mountLabel"])   # SELinux on: the policy's verdict
    return process.Settings(config["process"], linux, log)


def _spawn(ctx, config, bundle, rootfs, ns_plan, cg, hierarchies, sdir, opts, settings, on_child):
    from pyoci.linux import executable, namespaces
    from pyoci.linux import sys as lsys
    from pyoci.runtime import child as childmod
    from pyoci.runtime.status import proc_stat

    lsys._load()   # load the shim before fork, once
    seccomp = listener = None
    if (config.get("linux") or {}).get("seccomp") is not None:
        from pyoci.linux import seccomp as sc

        seccomp = sc.program(config["linux"]["seccomp"], root=ctx.root, warn=ctx.log.debug)
        listener = sc.connect_listener(config["linux"]["seccomp"])
    idmap_fds = _idmap_fds(config)
    idmap_trees = {}
    if idmap_fds and "user" in ns_plan.new:
        from pyoci.linux import userns

        idmap_trees = userns.idmapped_trees(config, bundle, idmap_fds)
    if "user" in ns_plan.new and ns_plan.id_maps:
        from pyoci.linux import userns

        # bind sources the container's root may not reach: opened here, as
        # runc opens them before the user namespace is entered
        idmap_trees.update(userns.unreachable_bind_trees(config, bundle, ns_plan.id_maps, skip=idmap_trees))
    init_fd = executable.open_init()
    join_fds = namespaces.open_join_fds(ns_plan)
    fifo_fd = os.open(sdir.fifo, os.O_PATH | os.O_CLOEXEC)
    fifo_dir_fd = -1
    if "mount" not in ns_plan.new:
        fifo_dir_fd = os.open(sdir.path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    console = None
    if config["process"].get("terminal"):
        from pyoci.linux import terminal

        if opts.console_socket:
            console = terminal.connect(opts.console_socket)
        else:
            opts.console_peer, console = terminal.console_socketpair()
    to_child, from_child = sync.Channel(), sync.Channel()
    setup = childmod.CreateSetup(cid=sdir.id, config=config, bundle=bundle, rootfs=rootfs, ns=ns_plan,
                           cgroup_paths=cg.paths, hierarchies=hierarchies, init_fd=init_fd,
                           fifo_fd=fifo_fd, fifo_dir_fd=fifo_dir_fd, console=console, opts=opts, log=ctx.log,
                           seccomp=seccomp, settings=settings, seccomp_listener=listener,
                           idmap_fds=idmap_fds, idmap_trees=idmap_trees,
                           create_hooks=_has_create_hooks(config), lock_fd=sdir.lock_fd)
    direct = not ns_plan.has("user") and "time" not in ns_plan.new
    fault.point("create:fork")
    if direct:
        c1, c2 = None, _fork_into_pidns(setup, ns_plan, join_fds, to_child, from_child)
    else:
        c1, c2 = os.fork(), None
        if c1 == 0:
            childmod.stage1(setup, join_fds, to_child, from_child)   # never returns
    try:
        fault.point("create:forked")
        to_child.close_read()
        from_child.close_write()
        for fd in ([init_fd, fifo_fd] + ([fifo_dir_fd] if fifo_dir_fd >= 0 else []) + [fd for _, fd in join_fds] + list(idmap_fds.values())
                   + list(idmap_trees.values())):
            os.close(fd)
        if console is not None:
            console.close()
        if listener is not None:
            listener.close()
        where = "create (C1)"
        if "user" in ns_plan.new:
            # C1 makes the user namespace first and waits for its maps
            from_child.expect(where, sync.UsernsMade)
            from pyoci.linux import userns

            userns.write_maps(c1, *ns_plan.id_maps)
            to_child.send(sync.Mapped())
            fault.point("create:userns-mapped")
        if c2 is None:
            msg = from_child.expect(where, sync.InitPid, eof=True)
            _, status = os.waitpid(c1, 0)
            if msg is None:
                raise PyociError("container process failed to start (status %d)" % status)
            c2 = msg.pid
        st = proc_stat(c2)
        child = Child(c2, st[1] if st else 0)
        on_child(child.pid, child.start_time)
        if ns_plan.has("user"):
            # Raising a limit needs CAP_SYS_RESOURCE of the host's user
            # namespace, which the container's init no longer has.
            from pyoci.linux import userns

            userns.set_rlimits(c2, config)
        _oom_score_adj(config, c2)
        go = sync.Go()
        if listener is not None:
            go.seccomp_state = sc.listener_state(config["linux"]["seccomp"], sdir.id, c2, bundle,
                                                 config.get("annotations"))
        to_child.send(go)
        fault.point("create:go-sent")
        # C2 builds the rootfs meanwhile, and waits for "joined" before it
        # unshares its cgroup namespace (see child.build).
        cg.join(c2)
        fault.point("create:joined")
        try:
            to_child.send(sync.Joined())
        except BrokenPipeError:
            pass   # C2 failed already: its error is read below
        where = "create (C2)"
        msg = from_child.expect(where, sync.Ready, sync.HooksDue, eof=True)
        fault.point("create:init-built")
        if isinstance(msg, sync.HooksDue):
            # C2 prepared the mounts and waits before pivot_root
            opts.hooks_started = True
            _runtime_hooks(ctx, config, sdir.id, c2, bundle, to_child)
            msg = from_child.expect(where, sync.Ready, eof=True)
        if msg is None:
            raise PyociError("container init exited during set-up")
        # Ready arrives just before C2 executes pyoci-init; the pipe closes
        # when the exec succeeded (close-on-exec), or carries the error.
        from_child.expect(where + " after Ready", eof=True)
        fault.point("create:init-executed")
        st = proc_stat(c2)
        if not st or st[0] in ("Z", "X"):
            raise PyociError("container init exited during set-up")
        return child
    except BaseException:
        if c2 is not None:
            Child(c2, 0).kill()
        else:
            sync.kill_and_reap(c1)
        raise
    finally:
        to_child.close()
        from_child.close()


def _fork_into_pidns(setup, ns_plan, join_fds, to_child, from_child):
    """Fork C2 straight into the container's pid namespace (a new one, or
    the one given by path) and return its pid; the runtime's own children
    go to its own pid namespace again afterwards."""
    from pyoci.linux import sys as lsys
    from pyoci.runtime import child as childmod

    pid_fd = next((fd for t, fd in join_fds if t == "pid"), None)
    others = [(t, fd) for t, fd in join_fds if t != "pid"]
    own = None
    if pid_fd is not None or "pid" in ns_plan.new:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            if pid_fd is not None:
                lsys.setns(pid_fd, lsys.CLONE_NEWPID)
            elif own is not None:
                lsys.unshare(lsys.CLONE_NEWPID)
        except OSError as e:
            raise PyociError("%s pid namespace: %s" % ("join" if pid_fd is not None else "unshare", e.strerror))
        pid = os.fork()
        if pid == 0:
            childmod.unshare_and_build(setup, others, to_child, from_child)   # never returns
        return pid
    finally:
        if own is not None:
            try:
                lsys.setns(own, lsys.CLONE_NEWPID)
            finally:
                os.close(own)


def _has_create_hooks(config):
    h = config.get("hooks") or {}
    return bool(h.get("prestart") or h.get("createRuntime") or h.get("createContainer"))


def _runtime_hooks(ctx, config, cid, pid, bundle, to_child):
    """prestart then createRuntime, in the runtime's namespaces; then the
    state goes to C2 for the createContainer hooks. The status is "created":
    the container's process exists and has not run the user's program
    (runtime-tools hooks_stdin checks it)."""
    from pyoci.runtime import hooks

    h = config.get("hooks") or {}
    state = hooks.state_doc(cid, "created", pid, bundle, config.get("annotations"))
    for kind in ("prestart", "createRuntime"):
        hooks.run(kind, h.get(kind), state, debug=ctx.log.debug)
    to_child.send(sync.HookState(state=state))


def _fifo_for_userns(fifo, ns_plan):
    """The init opens the exec fifo as the container's root: in a user
    namespace that is another host uid, so the fifo is made its own (a
    joined namespace's root gets write permission through the mode; the
    path stays out of reach in the 0700 state root)."""
    if not ns_plan.has("user"):
        return
    os.chmod(fifo, 0o622)
    if ns_plan.id_maps is not None and os.geteuid() == 0:
        from pyoci.linux import userns

        uids, gids = ns_plan.id_maps
        os.chown(fifo, userns.to_host(uids, 0), userns.to_host(gids, 0))


def _id_maps(config, ns_plan):
    """(uid maps, gid maps) for a new user namespace, checked against the
    process's ids; None without one."""
    if "user" not in ns_plan.new:
        return None
    from pyoci.errors import ConfigError
    from pyoci.linux import userns

    uids, gids = userns.mappings(config, "uidMappings"), userns.mappings(config, "gidMappings")
    for key, maps in (("uidMappings", uids), ("gidMappings", gids)):
        if userns.to_host(maps, 0) is None:
            raise ConfigError("linux." + key, "container id 0 is not mapped: the set-up runs as the "
                              "namespace's root")
    user = (config.get("process") or {}).get("user") or {}
    if userns.to_host(uids, user.get("uid", 0)) is None:
        raise ConfigError("process.user.uid", "%d is not mapped in linux.uidMappings" % user.get("uid", 0))
    for i, g in enumerate([user.get("gid", 0)] + list(user.get("additionalGids") or ())):
        if userns.to_host(gids, g) is None:
            field = "process.user.gid" if i == 0 else "process.user.additionalGids[%d]" % (i - 1)
            raise ConfigError(field, "%d is not mapped in linux.gidMappings" % g)
    return uids, gids


def _idmap_fds(config):
    """User namespace fds for the idmapped mounts, made here where /proc
    shows the helper processes."""
    if not any("idmap" in (m.get("options") or ()) or "ridmap" in (m.get("options") or ())
               for m in config.get("mounts") or ()):
        return {}
    from pyoci.linux import mounts

    try:
        return mounts.idmap_fds(config)
    except OSError as e:
        raise PyociError("mounts: idmapped mount: user namespace for the mappings: %s" % (e.strerror or e))


def _oom_score_adj(config, pid):
    adj = (config.get("process") or {}).get("oomScoreAdj")
    if adj is None:
        return
    from pyoci.linux import procfs

    try:
        procfs.write("/proc/%d/oom_score_adj" % pid, str(adj))
    except OSError as e:
        raise PyociError("process.oomScoreAdj: %s" % e.strerror)
