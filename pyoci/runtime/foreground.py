"""The foreground of `run` and `exec` (without --detach): pyoci stays, the
container's process is its child (pyoci is a subreaper), signals sent to
pyoci go to that process, a terminal is relayed, and pyoci exits with the
process's status.

Signals are caught from the first instruction of the operation, before
anything is made: one that arrives before the process exists (during
create or start) is delivered once it does, so nothing is left behind by
a signal that would otherwise have killed pyoci half-way. For the commands
that do not stay (create, run --detach, start, delete...), guard() turns
SIGTERM, SIGINT and SIGHUP into an Interrupted exception instead: the
operation's own clean-up runs and the command exits 128+N.
"""

from pyoci import fastos as os
from pyoci.errors import Interrupted
from pyoci.linux.signals import SIGNALS, SIGWINCH

FORWARDED = ("HUP", "INT", "QUIT", "TERM", "USR1", "USR2", "WINCH", "CONT", "ALRM", "PIPE")
TERMINATING = (1, 2, 15)   # SIGHUP, SIGINT, SIGTERM


def exit_code(wait_status):
    """A wait status as runc reports it: the exit code, or 128+N for a
    process killed by signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


class Relay:
    """Forwards signals to one process; those caught before its pid is
    known are kept and delivered by attach()."""

    def __init__(self, tty=False):
        import _signal

        self.pid = None
        self.pending = []
        # with a terminal relayed, SIGWINCH resizes it (relay_tty)
        self.sigs = [SIGNALS[n] for n in FORWARDED if not (tty and n == "WINCH")]
        try:
            for sig in self.sigs:
                _signal.signal(sig, self._forward)
        except ValueError:   # not the main thread (a Python caller's)
            self.sigs = []

    def _forward(self, sig, _frame):
        if self.pid is None:
            self.pending.append(sig)
            return
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            pass

    def drop(self, sig):
        """Stop forwarding sig (SIGWINCH, once a terminal is relayed)."""
        import _signal

        if sig in self.sigs:
            self.sigs.remove(sig)
            _signal.signal(sig, _signal.SIG_DFL)

    def reset(self):
        """In a forked child: the default dispositions again."""
        import _signal

        for sig in self.sigs:
            _signal.signal(sig, _signal.SIG_DFL)

    def attach(self, pid):
        """From now on signals go to pid; those caught before, now."""
        self.pid = pid
        pending, self.pending = self.pending, []
        for sig in pending:
            self._forward(sig, None)

    def wait(self, pid):
        """Wait for our child `pid`, relaying signals; its exit code."""
        _long_wait()
        self.attach(pid)
        _, status = os.waitpid(pid, 0)
        return exit_code(status)


def _long_wait():
    """The installed command runs with the garbage collector off (pyoci/_boot.py):
    on again for a wait that may last as long as the container."""
    import gc

    gc.enable()


def become_subreaper():
    """The container's process is forked by a child of ours that exits:
    it must be re-parented to us, to be reaped here."""
    from pyoci.linux import sys as lsys

    lsys.prctl(lsys.PR_SET_CHILD_SUBREAPER, 1)


def reap_others():
    """Reap whatever else was re-parented to us (a subreaper)."""
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


class guard:
    """`with guard():` SIGTERM, SIGINT and SIGHUP raise Interrupted (once;
    later ones are ignored while the clean-up runs); the previous
    dispositions come back on exit."""

    def __enter__(self):
        import _signal

        self.old = {}
        self.fired = False
        try:
            for s in TERMINATING:
                self.old[s] = _signal.getsignal(s)
                _signal.signal(s, self._raise)
        except ValueError:   # not the main thread (a Python caller's)
            pass
        return self

    def _raise(self, sig, _frame):
        if self.fired:
            return
        self.fired = True
        raise Interrupted(sig)

    def __exit__(self, *exc):
        import _signal

        for s, h in self.old.items():
            _signal.signal(s, h if h is not None else _signal.SIG_DFL)


def relay_tty(master, pid):
    """Copy our stdin to the pty and the pty to our stdout until `pid` has
    exited and the pty is drained, as runc does for `run` with a terminal.
    Our terminal (if stdin is one) is set raw meanwhile and its size follows
    SIGWINCH."""
    _long_wait()
    import _signal
    import select
    import termios

    from pyoci.linux import terminal

    stdin, stdout = 0, 1
    saved = None
    if os.isatty(stdin):
        import tty

        saved = termios.tcgetattr(stdin)
        # TCSANOW as runc: what was typed before the relay began stays
        # (tty.setraw's default, TCSAFLUSH, would throw it away)
        tty.setraw(stdin, termios.TCSANOW)
        try:
            terminal.set_size(master, *terminal.get_size(stdin))
        except OSError:
            pass

        def winch(_sig, _frame):
            try:
                terminal.set_size(master, *terminal.get_size(stdin))
            except OSError:
                pass

        _signal.signal(SIGWINCH, winch)
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(master, select.POLLIN)
    poller.register(pidfd, select.POLLIN)
    stdin_open = True
    try:
        poller.register(stdin, select.POLLIN)
    except (OSError, ValueError):
        stdin_open = False
    exited = False
    try:
        while True:
            try:
                events = poller.poll(50 if exited else None)
            except InterruptedError:
                continue
            if exited and not events:
                break
            for fd, ev in events:
                if fd == pidfd:
                    exited = True
                    poller.unregister(pidfd)
                elif fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:   # EIO: every slave is closed
                        data = b""
                    if not data:
                        poller.unregister(master)
                        if exited:
                            return
                        continue
                    _write_all(stdout, data)
                elif fd == stdin and stdin_open:
                    data = os.read(stdin, 65536) if ev & (select.POLLIN | select.POLLHUP) else b""
                    if not data:
                        poller.unregister(stdin)
                        stdin_open = False
                        continue
                    _write_all(master, data)
    finally:
        os.close(pidfd)
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)


def _write_all(fd, data):
    while data:
        try:
            n = os.write(fd, data)
        except BlockingIOError:
            import select

            select.select([], [fd], [])
            continue
        data = data[n:]


def receive_terminal(peer, set_size_from_stdin=False):
    """The pty master sent over `peer` (the stand-in console socket)."""
    from pyoci.linux import terminal

    with peer:
        master = terminal.receive_master(peer, timeout=10)
    if set_size_from_stdin and os.isatty(0):
        # the size before the process runs, not after (it may read it at once)
        try:
            terminal.set_size(master, *terminal.get_size(0))
        except OSError:
            pass
    return master
