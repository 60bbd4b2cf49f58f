"""The runtime core: the lifecycle, the state machine and every operation.

Runtime is the entry point of the CLI and of Python callers: one method
per operation, plain arguments in, plain results out (dicts as runc prints
them, pids, exit codes), typed errors out (pyoci.errors). The modules
behind it are imported when an operation needs them, so that a cheap
command stays cheap.

    create.py      create (with child.py: the container's set-up sequence)
    exec.py        a process into a running container
    container.py   a container as recorded: start, signal, pause, resume,
                   update, processes, stats, events, delete
    status.py      the statuses and what each allows (the state machine)
    state.py       the state directory: locking, the state document, the
                   cleanup record
    foreground.py  run's and exec's foreground: signals, terminal, status
    final.py, plan.py, hooks.py, sync.py, fault.py
"""
from pyoci import fastos as os


class StderrLog:
    """The default log of a Runtime: warnings (and with debug, debug
    messages) to stderr as plain lines."""

    def __init__(self, debug=False):
        self.verbose = debug

    def debug(self, msg):
        if self.verbose:
            self._write("debug", msg)

    def info(self, msg):
        if self.verbose:
            self._write("info", msg)

    def warning(self, msg):
        self._write("warning", msg)

    @staticmethod
    def _write(level, msg):
        import sys

        try:
            sys.stderr.write("pyoci: %s: %s\n" % (level, msg))
        except (OSError, ValueError):
            pass


def default_root():
    if os.geteuid() != 0:
        xdg = os.getenv("XDG_RUNTIME_DIR")
        if xdg:
            return os.path.join(xdg, "pyoci")
    return "/run/pyoci"


class Runtime:
    """One state root and how to treat it. rootless=None decides as runc:
    when not root, or root of a user namespace."""

    def __init__(self, root=None, log=None, rootless=None, systemd_cgroup=False, debug=False):
        self.root = os.path.abspath(root or default_root())
        self.log = log or StderrLog(debug)
        self.debug = debug
        self.systemd_cgroup = systemd_cgroup
        self._rootless = rootless

    @property
    def rootless(self):
        if self._rootless is None:
            from pyoci.linux import userns

            self._rootless = os.geteuid() != 0 or userns.inside()
        return self._rootless

    def _open(self, cid, shared=False):
        from pyoci.runtime.container import Container

        return Container.open(self.root, cid, self.log, shared)

    def _peek(self, cid):
        from pyoci.runtime.container import Container

        return Container.peek(self.root, cid, self.log)

    # -- the lifecycle -------------------------------------------------
    def create(self, cid, opts):
        """Create the container from opts (create.CreateOptions); its init
        waits for start. Returns its init's host pid. SIGTERM, SIGINT and
        SIGHUP meanwhile abort it cleanly (Interrupted)."""
        from pyoci.runtime import create, foreground

        with foreground.guard():
            return create.create(self, cid, opts).pid

    def start(self, cid):
        with self._open(cid) as c:
            c.start()

    def run(self, cid, opts, detach=False, keep=False):
        """create + start; with detach, returns 0 once it runs. Otherwise
        waits for it in the foreground (signals forwarded from this first
        instruction on, the terminal relayed), deletes it unless keep, and
        returns its exit code (128+N when killed by signal N)."""
        from pyoci.runtime import foreground

        # first: a signal from here on is forwarded (queued until the
        # container's process exists), or with detach unwinds the create
        relay = None if detach else foreground.Relay()
        guard = foreground.guard() if detach else _Nothing()
        from pyoci.runtime import create

        opts.attached = not detach
        with guard:
            if not detach:
                foreground.become_subreaper()
            c = create.create(self, cid, opts, keep_lock=True)
            master = None
            try:
                if opts.console_peer is not None:
                    master = foreground.receive_terminal(opts.console_peer, set_size_from_stdin=True)
                c.start()
            except BaseException:
                if not c.destroyed:   # a failing startContainer/poststart hook destroyed it already
                    c.destroy()
                raise
            finally:
                c.close()
        if detach:
            return 0
        if master is not None:
            relay.drop(foreground.SIGWINCH)
            relay.attach(c.pid)
            try:
                foreground.relay_tty(master, c.pid)
            finally:
                os.close(master)
        code = relay.wait(c.pid)
        foreground.reap_others()
        if not keep:
            from pyoci.errors import ContainerNotExist

            try:
                with self._open(cid) as c:
                    c.delete(force=True)
            except ContainerNotExist:
                pass
        return code

    def exec(self, cid, opts):
        """Start a process (exec.ExecOptions) in the container; with
        opts.detach returns 0 once it runs, else waits for it and returns
        its exit code."""
        from pyoci.runtime.exec import exec_process

        return exec_process(self, cid, opts)

    def kill(self, cid, sig=15, all=False):
        with self._open(cid, shared=True) as c:
            c.signal(sig, all)

    def delete(self, cid, force=False):
        """Delete a stopped (or created) container; with force any, a broken
        one too, and an unknown id is no error."""
        from pyoci.errors import ContainerNotExist

        try:
            with self._open(cid) as c:
                c.delete(force)
        except ContainerNotExist:
            if not force:
                raise

    def pause(self, cid):
        with self._open(cid) as c:
            c.pause()

    def resume(self, cid):
        with self._open(cid) as c:
            c.resume()

    def update(self, cid, resources, intel_rdt=None):
        """Apply a linux.resources patch to the running container."""
        with self._open(cid) as c:
            c.update(resources, intel_rdt)

    # -- queries -------------------------------------------------------
    def state(self, cid):
        """runc's state document (a dict)."""
        c = self._peek(cid)
        c.check("state")
        return c.runc_state()

    def list(self):
        """runc's list entries (dicts, with owner), broken ones included."""
        from pyoci.errors import ContainerNotExist
        from pyoci.runtime.state import list_ids

        items = []
        for cid in list_ids(self.root):
            try:
                c = self._peek(cid)
            except ContainerNotExist:
                continue   # gone meanwhile
            st = c.runc_state()
            try:
                uid = os.stat(c.dir.path).st_uid
            except OSError:
                continue
            try:
                import pwd

                st["owner"] = pwd.getpwuid(uid).pw_name
            except KeyError:
                st["owner"] = "#%d" % uid
            items.append(st)
        return items

    def ps(self, cid):
        """Host pids of the container's processes."""
        return self._peek(cid).processes()

    def stats(self, cid):
        """runc's `events --stats` document."""
        return self._peek(cid).stats()

    def events(self, cid, interval=5.0):
        """runc's `events` stream (an iterator of dicts)."""
        return self._peek(cid).events(interval)


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass
