"""`exec`: start another process in a running container.

Processes (P = this command):

  P   loads the container, checks it is running (or paused with
      --ignore-paused), builds the process (--process FILE, or the
      container's own process with the flags applied), opens every namespace
      of the container's init that differs from ours and the init's root
      directory (all before any setns), and forks C1.
  C1  (Python) makes itself non-dumpable, joins the namespaces, the user
      namespace first (then becomes its root) and the mount namespace last,
      chroots to the init's root, and takes the final exec path shared with
      create (runtime/final.py): cwd, rlimits, program lookup, terminal, and
      the plan for pyoci-init. Then it executes pyoci-init through the
      read-only detached mount. C1 is never in the container's pid namespace
      (setns applies it to children only): no container process can see a
      Python process, let alone its host binary (CVE-2019-5736).
  P   meanwhile puts C1 into the container's cgroups (or the --cgroup
      sub-cgroups) and writes the go byte.
  pyoci-init (C1) reads the byte, forks C2 (in the pid namespace and the
      cgroups), reports C2's host pid and exits: C2 is re-parented to P
      (without --detach; P is then a subreaper) or to the caller's subreaper
      (containerd's shim, conmon). C2 sets user, groups, capabilities, NNP,
      LSM label and seccomp, reports any error on the report pipe, and
      executes the program; the pipe closes at that execve. With
      SCMP_ACT_NOTIFY rules, P connected to listenerPath before forking C1
      (nobody listening: an exec error), and C2 sends the listener fd of
      the filter it loads there, with the container process state whose
      "pid" is C2's host pid (runc's ContainerProcessState; status
      "running", state.pid the container's init).
  P   writes the pid file once the program runs, and returns (--detach) or
      waits for C2, relaying signals (and the pty with -t and no console
      socket), and exits with its status.

Into a paused container, C1 cannot be joined (it would freeze): C2 is joined
instead, and waits for the go byte frozen, until the container is resumed.
"""
import os

from pyoci.errors import PyociError
from pyoci.runtime import fault, sync


class ExecOptions:
    FIELDS = dict(process=None, console_socket=None, pidfd_socket=None, cwd=None, env=(), tty=False,
                  user=None, additional_gids=(), process_label=None, apparmor=None, no_new_privs=None,
                  caps=(), preserve_fds=0, detach=False, pid_file=None, cgroups=(), ignore_paused=False,
                  args=())

    def __init__(self, **kw):
        unknown = set(kw) - set(self.FIELDS)
        if unknown:
            raise TypeError("unknown exec options: %s" % ", ".join(sorted(unknown)))
        for k, v in self.FIELDS.items():
            setattr(self, k, kw.get(k, v))


# -- the process -----------------------------------------------------------
def _load_json(path, what):
    from pyoci import jsonio as json

    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except OSError as e:
        raise PyociError("%s %s: %s" % (what, path, e.strerror))
    except ValueError as e:
        raise PyociError("%s %s: invalid JSON: %s" % (what, path, e))


def _copy(obj):
    from pyoci import jsonio as json

    return json.loads(json.dumps(obj))


def build_process(container, opts):
    """The runtime-spec process to start, as runc builds it: the --process
    file as is, or the container's own process with the flags applied."""
    if opts.process:
        proc = _load_json(opts.process, "--process")
        if not isinstance(proc, dict):
            raise PyociError("--process %s: not a JSON object" % opts.process)
        if opts.tty:
            proc["terminal"] = True
    else:
        base = container.state.process
        if base is None:   # a container created before state kept its process
            base = _load_json(os.path.join(container.state.bundle, "config.json"), "config")["process"]
        proc = _copy(base)
        if not opts.args:
            raise PyociError("exec args cannot be empty")
        proc["args"] = list(opts.args)
        if opts.cwd:
            proc["cwd"] = opts.cwd
        if opts.apparmor:
            proc["apparmorProfile"] = opts.apparmor
        if opts.process_label:
            proc["selinuxLabel"] = opts.process_label
        caps = proc.get("capabilities")
        if opts.caps and caps is not None:
            for name in opts.caps:
                for s in ("bounding", "effective", "permitted"):
                    caps.setdefault(s, []).append(name)
                # ambient needs inheritable: only where the config has it
                if caps.get("inheritable") is not None:
                    caps.setdefault("ambient", []).append(name)
        proc["env"] = list(proc.get("env") or ()) + list(opts.env)
        proc["terminal"] = bool(opts.tty)
        if opts.no_new_privs is not None:
            proc["noNewPrivileges"] = opts.no_new_privs
        user = proc.setdefault("user", {})
        if opts.user:
            uid, colon, gid = opts.user.partition(":")
            try:
                user["uid"] = _u32(uid)
                if colon:
                    user["gid"] = _u32(gid)
            except ValueError:
                raise PyociError("--user %r: must be UID[:GID], numeric" % opts.user)
        for g in opts.additional_gids:
            try:
                user.setdefault("additionalGids", []).append(_u32(g))
            except ValueError:
                raise PyociError("--additional-gids %r: must be a non-negative number" % (g,))
    _check_process(proc)
    return proc


def _u32(s):
    n = int(s, 10) if isinstance(s, str) else s
    if not isinstance(n, int) or not 0 <= n <= 0xFFFFFFFF:
        raise ValueError(s)
    return n


def _check_process(proc):
    args = proc.get("args")
    if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
        raise PyociError("process.args: must be a non-empty list of strings")
    cwd = proc.get("cwd")
    if not cwd:
        raise PyociError("process.cwd: must not be empty")
    if not isinstance(cwd, str) or not cwd.startswith("/"):
        raise PyociError("process.cwd: must be an absolute path")
    env = proc.get("env") or []
    if not isinstance(env, list) or not all(isinstance(e, str) for e in env):
        raise PyociError("process.env: must be a list of strings")
    user = proc.get("user") or {}
    for k in ("uid", "gid"):
        try:
            _u32(user.get(k, 0))
        except ValueError:
            raise PyociError("process.user.%s: must be an unsigned 32-bit integer" % k)
    for i, g in enumerate(user.get("additionalGids") or ()):
        try:
            _u32(g)
        except ValueError:
            raise PyociError("process.user.additionalGids[%d]: must be an unsigned 32-bit integer" % i)


# -- the container's side ----------------------------------------------------
def sub_cgroup(cg, specs):
    """The Cgroup of the exec'd process: the container's, or the existing
    sub-cgroups --cgroup names ([CONTROLLER[,CONTROLLER]:]PATH, as runc)."""
    from pyoci.linux.cgroups import Cgroup

    if not specs:
        return cg
    want = {}
    for s in specs:
        ctrls, colon, path = s.rpartition(":") if ":" in s else ("", "", s)
        if not colon and len(specs) != 1:
            raise PyociError("invalid --cgroup argument: %s (missing <controller>: prefix)" % s)
        if ".." in path.split("/"):
            # runc's words: scripts match on them
            raise PyociError("invalid --cgroup argument: %s is not a sub cgroup path" % path)
        for c in (ctrls.split(",") if colon else [""]):
            if colon and not c:
                raise PyociError("invalid --cgroup argument: %s (empty <controller> prefix)" % s)
            if c in want:
                raise PyociError("invalid --cgroup argument(s): controller %s specified multiple times" % c)
            want[c] = path
    known = {c for key in cg.paths for c in key.split(",")}
    for c in want:
        if c and c not in known:
            raise PyociError("invalid --cgroup argument: unknown controller %r (this container's are: %s)"
                             % (c, ", ".join(sorted(k for k in known if k)) or "none"))
    paths = {}
    for key, d in cg.paths.items():
        sub = want.get("")
        for c in key.split(","):
            if c in want:
                sub = want[c]
        if sub is not None:
            d = os.path.normpath(os.path.join(d, sub.lstrip("/")))
            if not os.path.isdir(d):
                raise PyociError("--cgroup: adding pid to cgroup: open %s: no such file or directory"
                                 % os.path.join(d, "cgroup.procs"))
        paths[key] = d
    return Cgroup(paths)


def open_container(pid):
    """[(type, fd)] of the init's namespaces that differ from ours, in join
    order, and an fd of its root directory."""
    from pyoci.linux.namespaces import JOIN_ORDER, PROC_NAMES

    fds, root = [], -1
    try:
        for t in JOIN_ORDER:
            name = PROC_NAMES[t]
            try:
                fd = os.open("/proc/%d/ns/%s" % (pid, name), os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                if os.path.exists("/proc/self/ns/" + name):
                    raise
                continue   # a namespace type this kernel lacks
            a, b = os.fstat(fd), os.stat("/proc/self/ns/" + name)
            if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino):
                os.close(fd)
                continue
            fds.append((t, fd))
        root = os.open("/proc/%d/root" % pid, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        for _, fd in fds:
            os.close(fd)
        raise PyociError("open the container's namespaces: %s" % (e.strerror or e))
    return fds, root


class ExecSetup(sync.Record):
    """What exec's C1 is given at fork: the process (proc), or a
    startContainer hook (hook, a HookProgram)."""

    __slots__ = ("cid", "proc", "ns_fds", "root_fd", "init_fd", "console", "seccomp", "preserve_fds", "keyring",
                 "log", "hook", "late", "settings", "setgroups", "relay", "listener", "lock_fd")
    DEFAULTS = {"cid": None, "proc": None, "console": None, "seccomp": None, "preserve_fds": 0, "keyring": False,
                "log": None, "hook": None, "late": False, "settings": None, "setgroups": True, "relay": None,
                "listener": None, "lock_fd": -1}


class HookProgram(sync.Record):
    """A startContainer hook run like an exec'd process."""

    __slots__ = ("path", "args", "env", "stdin_fd", "out_fd")


def exec_process(ctx, cid, opts):
    """Start the process; returns its exit status (0 with --detach). The
    container's lock is held (shared: an exec changes no document, but a
    delete must wait) from before its state is read until the process
    runs; the foreground wait holds none."""
    from pyoci.runtime.container import Container

    relay = None
    if not opts.detach:
        from pyoci.runtime import foreground

        # signals are caught from here on, and go to the process once it runs
        relay = foreground.Relay()
    with Container.open(ctx.root, cid, ctx.log, shared=True) as c:
        fault.point("exec:locked")
        c.check("exec-paused" if opts.ignore_paused else "exec")
        pid, peer = _exec_locked(ctx, c, opts, relay)
    fault.point("exec:started")
    if opts.pid_file:
        from pyoci.fileio import write_atomic

        try:
            write_atomic(os.path.abspath(opts.pid_file), str(pid).encode(), 0o644)
        except OSError as e:
            # as runc: the process started, but the caller cannot know it
            try:
                os.kill(pid, 9)
                if not opts.detach:
                    os.waitpid(pid, 0)   # our child (we are its subreaper)
            except (ProcessLookupError, ChildProcessError):
                pass
            raise PyociError("--pid-file %s: %s" % (opts.pid_file, e.strerror))
    if opts.pidfd_socket:
        from pyoci.linux import pidfd

        pidfd.send(opts.pidfd_socket, pid)
    if opts.detach:
        return 0
    from pyoci.runtime import foreground

    if peer is not None:
        master = foreground.receive_terminal(peer)
        relay.drop(foreground.SIGWINCH)
        relay.attach(pid)
        try:
            foreground.relay_tty(master, pid)
        finally:
            os.close(master)
    return relay.wait(pid)


def _exec_locked(ctx, c, opts, relay):
    from pyoci.linux import executable
    from pyoci.linux import sys as lsys
    from pyoci.runtime import status as S

    paused = c.status() == S.PAUSED
    proc = build_process(c, opts)
    if proc.get("terminal") and not opts.console_socket and opts.detach:
        raise PyociError("cannot allocate tty if pyoci will detach without setting console socket")
    if opts.console_socket and not proc.get("terminal"):
        raise PyociError("cannot use console socket if pyoci will not detach or allocate tty")
    seccomp = sc = None
    if c.state.seccomp is not None:
        from pyoci.linux import seccomp as sc

        seccomp = sc.program(c.state.seccomp, root=ctx.root, warn=ctx.log.debug)
    from pyoci.linux import process

    settings = process.Settings(proc, None, ctx.log)   # LSM labels checked there too
    from pyoci.linux import userns

    setgroups = userns.setgroups_allowed(c.pid)
    cg = c.cgroup()
    if cg is not None:
        cg = sub_cgroup(cg, opts.cgroups)

    lsys._load()
    ns_fds, root_fd = open_container(c.pid)
    to_close = [fd for _, fd in ns_fds] + [root_fd]
    console = listener = peer = None
    try:
        if not c.init_alive():
            raise PyociError("cannot exec in a stopped container")
        if sc is not None:
            # SCMP_ACT_NOTIFY: the process gets a listener of its own, sent
            # to the agent by pyoci-init with the state (its pid filled in)
            listener = sc.connect_listener(c.state.seccomp)
            if listener is not None:
                listener = (listener, sc.listener_state(
                    c.state.seccomp, c.id, None, c.state.bundle, c.state.annotations,
                    status="running", init_pid=c.pid))
        init_fd = executable.open_init()
        to_close.append(init_fd)
        if proc.get("terminal"):
            from pyoci.linux import terminal

            if opts.console_socket:
                console = terminal.connect(opts.console_socket)
            else:
                # in the foreground: we get the master and relay the terminal
                peer, console = terminal.console_socketpair()
        if not opts.detach:
            from pyoci.runtime import foreground

            foreground.become_subreaper()
        _preload(proc)
        chans = _Channels()
        setup = ExecSetup(cid=c.id, proc=proc, ns_fds=ns_fds, root_fd=root_fd, init_fd=init_fd,
                       console=console, seccomp=seccomp, preserve_fds=opts.preserve_fds or 0,
                       keyring=not c.state.no_new_keyring, log=ctx.log, hook=None, late=paused,
                       settings=settings, setgroups=setgroups, relay=relay, listener=listener,
                       lock_fd=c.dir.lock_fd)
        fault.point("exec:fork")
        c1 = os.fork()
        if c1 == 0:
            _stage1(setup, chans)   # never returns
    except BaseException:
        if peer is not None:
            peer.close()
        raise
    finally:
        for fd in to_close:
            os.close(fd)
        if console is not None:
            console.close()
        if listener is not None:
            listener[0].close()
    try:
        return _start(c1, cg, paused, chans), peer
    except BaseException:
        if peer is not None:
            peer.close()
        raise


class _Channels:
    """chan: C1 (Python) to us, its error, or end-of-file when it executed
    pyoci-init. report: pyoci-init to us, the forked process's pid, then its
    error, or end-of-file at its final execve. go: us to the forked process,
    one byte once it is in the container's cgroup."""

    def __init__(self):
        self.chan, self.report, self.go = sync.Channel(), sync.Channel(), sync.Channel()

    def close(self):
        for ch in (self.chan, self.report, self.go):
            ch.close()


def _start(c1, cg, paused, chans):
    """Drive C1 and the process it forks until that one executed the user's
    program (into a paused container: until it waits, frozen, in the
    cgroup); returns its pid."""
    pid = None
    try:
        chans.chan.close_write()
        chans.report.close_write()
        chans.go.close_read()
        join_error = None
        if not paused:
            # C1 joins the cgroup now, while it prepares: pyoci-init forks
            # the process only once it read the byte, so the fork inherits it.
            # (C1 may have failed already: its own error tells why.)
            try:
                if cg is not None:
                    cg.join(c1)
                fault.point("exec:c1-in-cgroup")
                os.write(chans.go.wfd, b"1")
            except (PyociError, BrokenPipeError) as e:
                join_error = e
        # C1's error, or end-of-file when it executed pyoci-init
        chans.chan.expect("exec (C1)", eof=True)
        if join_error is not None:
            raise join_error
        fault.point("exec:init-executed")
        prefix = "unable to start container process: "
        msg = chans.report.expect("exec (pyoci-init)", sync.InitPid, sync.Failed, eof=True)
        _, status = os.waitpid(c1, 0)
        if msg is None or isinstance(msg, sync.Failed):
            raise PyociError(prefix + (msg.error if msg else "exec process failed to start (status %d)" % status))
        pid = msg.pid
        if paused:
            # the forked process waits for the byte in the frozen cgroup,
            # and goes on once resumed
            if cg is not None:
                cg.join(pid)
            os.write(chans.go.wfd, b"1")
            return pid
        msg = chans.report.expect("exec (the process)", sync.Failed, eof=True)
        if msg is not None:
            raise PyociError(prefix + msg.error)
        return pid
    except BaseException:
        for victim in (pid, c1):
            if victim is not None:
                sync.kill_and_reap(victim)
        raise
    finally:
        chans.close()


# -- startContainer hooks -------------------------------------------------------
def container_spawner(c):
    """spawn(path, args, env, stdin_fd, out_fd) for hooks.run_one: the hook
    runs in the container (its namespaces, cgroup and root, where its path
    resolves), as the runtime's root, through pyoci-init like any exec'd
    process, and ends up a child of ours."""
    def spawn(path, args, env, stdin_fd, out_fd):
        from pyoci.linux import executable
        from pyoci.linux import sys as lsys

        lsys._load()
        lsys.prctl(lsys.PR_SET_CHILD_SUBREAPER, 1)
        seccomp = None
        if c.state.seccomp is not None:
            from pyoci.linux import seccomp as sc

            seccomp = sc.program(c.state.seccomp, root=c.dir.root)
        _preload({})
        ns_fds, root_fd = open_container(c.pid)
        to_close = [fd for _, fd in ns_fds] + [root_fd]
        try:
            init_fd = executable.open_init()
            to_close.append(init_fd)
            chans = _Channels()
            setup = ExecSetup(ns_fds=ns_fds, root_fd=root_fd, init_fd=init_fd, lock_fd=c.dir.lock_fd,
                              seccomp=seccomp,
                              hook=HookProgram(path=path, args=args, env=["%s=%s" % kv for kv in env.items()],
                                               stdin_fd=stdin_fd, out_fd=out_fd))
            c1 = os.fork()
            if c1 == 0:
                _stage1(setup, chans)   # never returns
        finally:
            for fd in to_close:
                os.close(fd)
        return _start(c1, c.cgroup(), False, chans)
    return spawn


def _hook_plan(setup):
    from pyoci.runtime.plan import Plan

    h = setup.hook
    os.dup2(h.stdin_fd, 0)
    os.dup2(h.out_fd, 1)
    os.dup2(h.out_fd, 2)
    try:
        os.stat(h.path)
    except OSError as e:
        raise PyociError("%s: %s" % (h.path, os.strerror(e.errno).lower()))
    plan = Plan()
    plan.program(h.path, h.args, h.env)
    plan.keep_fds(3)
    if setup.seccomp is not None:
        # under the container's seccomp filter, as runc runs it
        plan.seccomp(*setup.seccomp)
    return plan, 3


# -- the child ----------------------------------------------------------------
def _stage1(setup, chans):
    from pyoci.runtime.child import _fail

    chan = chans.chan
    try:
        from pyoci.linux import namespaces
        from pyoci.linux import sys as lsys

        if setup.relay is not None:
            setup.relay.reset()
        if setup.lock_fd >= 0:
            os.close(setup.lock_fd)   # the lock is the runtime's alone
        chan.close_read()
        # Non-dumpable while we hold host fds. We are in no namespace of the
        # container's that lets it see us: the pid namespace applies to our
        # children only, and our only child is pyoci-init's fork.
        lsys.prctl(lsys.PR_SET_DUMPABLE, 0)
        debug = getattr(setup, "log", None)
        if debug is not None:
            # the stages named as runc's debug lines name them (scripts grep them)
            debug.debug("nsexec container setup: joining the container's namespaces (pid %d)" % os.getpid())
        joined_user = any(t == "user" for t, _ in setup.ns_fds)
        namespaces.join(setup.ns_fds)
        fault.point("exec:c1-joined")
        if joined_user:
            # Root of the namespace (as the container's init is): an
            # unmapped id would lose every capability at the next execve.
            from pyoci.linux import userns

            userns.become_root()
        _build(setup, chans)
    except BaseException as e:
        _fail(chan, e, "" if setup.hook else "unable to start container process: ")


def _preload(proc):
    """Import, before the mount namespace is joined, every module C1 needs:
    from then on the host's Python library is out of reach."""
    import resource  # noqa: F401  (process.set_rlimits)

    from pyoci.linux import keyring, namespaces, userns  # noqa: F401
    from pyoci.runtime import child, final, plan  # noqa: F401

    if proc.get("terminal"):
        import socket  # noqa: F401
        import termios  # noqa: F401

        from pyoci.linux import terminal  # noqa: F401


def _build(setup, chans):
    from pyoci.runtime import final

    os.fchdir(setup.root_fd)
    os.chroot(".")
    os.close(setup.root_fd)
    os.chdir("/")
    log = getattr(setup, "log", None)
    if log is not None:
        log.debug("child process in init(): in the container's root (pid %d)" % os.getpid())
    if setup.hook:
        plan, keep = _hook_plan(setup)
    else:
        proc = setup.proc
        if setup.keyring:
            from pyoci.linux import keyring, lsm

            lsm.set_key_label(setup.settings.labels)
            keyring.join_session("", setup.cid)
        setup.settings.apply_initial()
        keep = 3 + setup.preserve_fds
        plan = final.process_plan(proc, keep, console=setup.console, seccomp=setup.seccomp,
                                  warn=setup.log.debug, create_cwd=False, bind_console=False,
                                  settings=setup.settings, setgroups=setup.setgroups, session=False)
        if proc.get("terminal"):
            plan.controlling_terminal()
        if setup.listener is not None:
            sock, state = setup.listener
            lsock = final.move_above(sock.detach(), keep)
            plan.seccomp_listener(lsock, state)
            plan.fds.append(lsock)
    report = final.move_above(chans.report.wfd, keep)
    go = final.move_above(chans.go.rfd, keep)
    plan.fork_report(report)
    plan.go_fd(go, not setup.late)
    plan_fd = final.move_above(plan.to_memfd(), keep)
    if log is not None:
        log.debug("setns_init: about to exec pyoci-init, which forks and executes the process")
    final.close_all_but(keep, {plan_fd, setup.init_fd, chans.chan.wfd, report, go, *plan.fds})
    os.execve(setup.init_fd, ["pyoci-init", str(plan_fd)], {})
