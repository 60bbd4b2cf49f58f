"""The children of `create`: C1 (namespaces, with a user or time namespace)
and C2 (the container's init until it becomes pyoci-init). See create.py
for the whole sequence.

The order inside C2 is the one the kernel needs: initial CPU affinity →
cgroup namespace (after the cgroup was joined) → mounts → devices →
pivot_root → sysctl → masked and read-only paths → hostname/domainname →
cwd (checked inside the root, CVE-2024-21626) → rlimits (as root: raising a
hard limit needs CAP_SYS_RESOURCE) → terminal → keyring → scheduler, I/O
priority, memory policy, personality, final CPU affinity (runtime/final.py)
→ the task's attr directory opened on a fresh procfs → pyoci-init, which
then does: LSM exec label (an error fails create) → wait for `start` →
[seccomp here when no_new_privs is off: loading it needs CAP_SYS_ADMIN] →
bounding set → keep-caps → user/groups → capabilities (inheritable and
ambient cleared when not asked) → no_new_privs → umask → close fds →
seccomp → execve. tests/integration/test_privileges.py
checks the order where it shows.

Both children end with os._exit: no Python clean-up of the parent's state
may run in them.
"""

from pyoci import fastos as os
from pyoci.errors import PyociError
from pyoci.runtime import fault, sync


class CreateSetup(sync.Record):
    """What create's children are given at fork (create.py makes it)."""

    __slots__ = ("cid", "config", "bundle", "rootfs", "ns", "cgroup_paths", "hierarchies", "init_fd", "fifo_fd",
                 "fifo_dir_fd", "console", "opts", "log", "seccomp", "settings", "seccomp_listener", "idmap_fds",
                 "idmap_trees", "create_hooks", "lock_fd",
                 # set in C2
                 "seccomp_state", "joined")
    DEFAULTS = {"seccomp_state": None, "joined": False, "console": None, "seccomp": None,
                "seccomp_listener": None, "idmap_fds": None, "idmap_trees": None, "lock_fd": -1}


def _fail(chan, e, prefix=""):
    """Report the error to the runtime (as a Failed message) and exit: the
    runtime raises it, or, if it is gone, nobody is left to tell."""
    msg = str(e) if isinstance(e, (PyociError, OSError)) else "%s: %s" % (type(e).__name__, e)
    try:
        chan.send(sync.Failed(error=prefix + msg))
    finally:
        os._exit(1)


def stage1(setup, join_fds, to_child, from_child):
    try:
        from pyoci.linux import namespaces
        from pyoci.linux import sys as lsys

        if setup.lock_fd >= 0:
            os.close(setup.lock_fd)   # the lock is the runtime's alone
        to_child.close_write()
        from_child.close_read()
        fault.point("c1:started")
        # Debug lines name the stages as runc's do (scripts grep for them).
        setup.log.debug("nsexec container setup: stage 1 joins and unshares the namespaces (pid %d)" % os.getpid())
        if setup.ns.has("user"):
            _preload_userns(setup)
        namespaces.join(join_fds)
        fault.point("c1:joined")
        if "user" in setup.ns.new:
            _new_userns(to_child, from_child)
        elif setup.ns.has("user"):
            from pyoci.linux import userns

            userns.become_root()
        # The user namespace exists and is mapped: the namespaces made now
        # belong to it.
        flags = setup.ns.unshare_flags & ~lsys.CLONE_NEWCGROUP
        if flags:
            lsys.unshare(flags)
        fault.point("c1:unshared")
        if "time" in setup.ns.new:
            namespaces.set_time_offsets((setup.config.get("linux") or {}).get("timeOffsets"))
        pid = os.fork()
        if pid == 0:
            stage2(setup, to_child, from_child)
        fault.point("c1:forked")
        from_child.send(sync.InitPid(pid=pid))
        os._exit(0)
    except BaseException as e:
        _fail(from_child, e)


def unshare_and_build(setup, join_fds, to_child, from_child):
    """C2 forked by the runtime itself into the container's pid namespace
    (no user or time namespace, create.py): it joins the namespaces given by
    path and unshares the new ones (all but pid, made by the runtime, and
    cgroup), as C1 does otherwise, then builds the container."""
    try:
        from pyoci.linux import namespaces
        from pyoci.linux import sys as lsys

        if setup.lock_fd >= 0:
            os.close(setup.lock_fd)   # the lock is the runtime's alone
        to_child.close_write()
        from_child.close_read()
        setup.log.debug("nsexec container setup: the init joins and unshares the namespaces (pid %d)" % os.getpid())
        namespaces.join(join_fds)
        flags = setup.ns.unshare_flags & ~(lsys.CLONE_NEWCGROUP | lsys.CLONE_NEWPID)
        if flags:
            lsys.unshare(flags)
        fault.point("c2:unshared")
    except BaseException as e:
        _fail(from_child, e)
    stage2(setup, to_child, from_child)


def _new_userns(to_child, from_child):
    """Unshare the user namespace first and wait while the runtime writes
    its maps (it may, from outside; a process cannot map itself beyond its
    own id), then become its root."""
    from pyoci.linux import sys as lsys
    from pyoci.linux import userns

    lsys.unshare(lsys.CLONE_NEWUSER)
    from_child.send(sync.UsernsMade())
    to_child.expect("create (C1, waiting for the user namespace maps)", sync.Mapped)
    userns.become_root()


def stage2(setup, to_child, from_child):
    try:
        msg = to_child.expect("create (C2, waiting to go)", sync.Go)
        setup.seccomp_state = msg.seccomp_state
        fault.point("c2:go")
        setup.log.debug("child process in init(): building the container (pid %d)" % os.getpid())
        build(setup, from_child, to_child)
    except BaseException as e:
        _fail(from_child, e, "unable to start container process: ")


def _preload(setup):
    """Import now every module needed after pivot_root: from then on the
    host's Python library is out of reach."""
    import resource  # noqa: F401  (process.set_rlimits)

    from pyoci.runtime import final  # noqa: F401

    if setup.config["process"].get("terminal"):
        import socket  # noqa: F401
        import termios  # noqa: F401

        from pyoci.linux import terminal  # noqa: F401
    if not setup.opts.no_new_keyring:
        from pyoci.linux import keyring  # noqa: F401
    if setup.create_hooks:
        from pyoci.runtime import hooks  # noqa: F401


def _preload_userns(setup):
    """In a user namespace the set-up runs as the container's root, which
    may not be allowed to read the host's Python library (a venv under a
    0700 /root): import now, as the host's root, everything the set-up can
    import later."""
    import _socket  # noqa: F401  (network.loopback_up)
    import importlib
    import select  # noqa: F401  (hooks, terminal)

    import pyoci.linux
    import pyoci.runtime.plan  # noqa: F401

    base = pyoci.linux.__path__[0]
    for name in sorted(os.listdir(base)):
        if name.endswith(".py") and name not in ("__init__.py", "seccomp.py"):
            importlib.import_module("pyoci.linux." + name[:-3])
        elif os.path.isfile(os.path.join(base, name, "__init__.py")):
            importlib.import_module("pyoci.linux." + name)
    _preload(setup)


def build(setup, chan, to_child=None):
    from pyoci.linux import network, sysctl, uts
    from pyoci.linux import sys as lsys
    from pyoci.runtime import final

    _preload(setup)

    config, ns = setup.config, setup.ns
    linux = config.get("linux") or {}
    proc = config["process"]
    os.umask(0)
    setup.settings.apply_initial()

    def enter_cgroup():
        """Wait until the runtime has put us into the container's cgroups
        (it does so while we build the rootfs: on cgroup v1 the first move
        waits for an RCU grace period, ~10 ms), then unshare the cgroup
        namespace, whose root is the cgroup we are in. Needed before a
        cgroup mount of our own namespace, hooks, and the init's exec."""
        if setup.joined:
            return
        fault.point("c2:wait-joined")
        to_child.expect("create (C2, waiting for its cgroup)", sync.Joined)
        setup.joined = True
        if not setup.create_hooks:
            to_child.close_read()
        if "cgroup" in ns.new:
            lsys.unshare(lsys.CLONE_NEWCGROUP)
        fault.point("c2:in-cgroup")

    rootfs = None
    in_userns = ns.has("user")
    if in_userns:
        from pyoci.linux import userns

        userns.check_sources(config, setup.bundle, setup.rootfs, opened=getattr(setup, "idmap_trees", None) or {})
        may_setgroups = userns.setgroups_allowed()
    if "mount" in ns.new:
        from pyoci.linux.rootfs import Rootfs

        rootfs = Rootfs(config, setup.bundle, setup.rootfs, ns, setup.cgroup_paths, setup.hierarchies,
                        log=setup.log, idmap_fds=setup.idmap_fds)
        rootfs.idmap_trees = setup.idmap_trees or {}
        rootfs.before_cgroup_mount = enter_cgroup
        try:
            rootfs.prepare()
            fault.point("c2:rootfs-prepared")
        except PyociError as e:
            if in_userns and str(e).endswith("Permission denied"):
                raise PyociError("%s (the container's root is uid %s on the host: it must own or be "
                                 "allowed to write what the set-up creates in the rootfs)" % (e, userns.host_root()))
            raise
        if in_userns and not ns.has("cgroup"):
            userns.readonly_cgroupfs(setup.rootfs)   # CVE-2023-25809
    if "network" in ns.new:
        network.loopback_up()
    enter_cgroup()
    if setup.create_hooks:
        _create_hooks(setup, chan, to_child)
    if rootfs is not None:
        rootfs.switch_root(setup.opts.no_pivot)
    else:
        os.chroot(setup.rootfs)
        os.chdir("/")
    fault.point("c2:root-switched")
    sysctl.apply(linux.get("sysctl"))
    if rootfs is not None:
        rootfs.finish()
    if "uts" in ns.new:
        uts.apply(config)
    fault.point("c2:container-set")

    if not setup.opts.no_new_keyring:
        from pyoci.linux import keyring, lsm

        lsm.set_key_label(setup.settings.labels)
        keyring.join_session(config.get("hostname") or "", setup.cid)
    keep = 3 + setup.opts.preserve_fds
    plan = final.process_plan(proc, keep, console=setup.console, seccomp=setup.seccomp,
                              warn=setup.log.debug, settings=setup.settings,
                              setgroups=not in_userns or may_setgroups)
    if rootfs is not None:
        rootfs.dev_readonly()
    if setup.settings.labels:
        # pyoci-init writes the exec label before it waits for start and
        # reports an error of it here: create fails with it, as with runc
        chan.wfd = final.move_above(chan.wfd, keep)
        plan.setup_report(chan.wfd)
    fifo = final.move_above(setup.fifo_fd, keep)
    fifo_dir = final.move_above(setup.fifo_dir_fd, keep) if setup.fifo_dir_fd >= 0 else -1
    plan.exec_fifo(fifo, fifo_dir)
    lsock = None
    if setup.seccomp_listener is not None:
        lsock = final.move_above(setup.seccomp_listener.detach(), keep)
        plan.seccomp_listener(lsock, setup.seccomp_state)
    plan_fd = final.move_above(plan.to_memfd(), keep)
    fault.point("c2:plan-ready")
    setup.log.debug("init: closing the pipe to signal completion: executing pyoci-init")
    final.close_all_but(keep, {fifo, fifo_dir, plan_fd, setup.init_fd, chan.wfd, lsock, *plan.fds})
    chan.send(sync.Ready())
    os.execve(setup.init_fd, ["pyoci-init", str(plan_fd)], {})


def _create_hooks(setup, chan, to_child):
    """The mounts are prepared, pivot_root is next: the runtime runs the
    prestart and createRuntime hooks meanwhile, then the createContainer
    hooks run here, in the container's namespaces, where the host's paths
    still resolve."""
    from pyoci.runtime import hooks

    chan.send(sync.HooksDue())
    msg = to_child.expect("create (C2, waiting for the runtime's hooks)", sync.HookState)
    to_child.close_read()
    hooks.run("createContainer", (setup.config.get("hooks") or {}).get("createContainer"), msg.state,
              debug=setup.log.debug, cwd=setup.rootfs, env=setup.config["process"].get("env") or [])
