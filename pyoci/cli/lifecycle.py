"""create, start, run, state, kill, delete."""
import os
import sys

from pyoci import jsonio as json

from pyoci.cli.args import Flag, UsageError, check_args, format_help, int_flag, parse
from pyoci.errors import ContainerNotExist, PyociError

CREATE_FLAGS = [
    Flag("--bundle|-b", value=True, help="path to the bundle (default: current directory)"),
    Flag("--pid-file", value=True, help="write the container init's pid here"),
    Flag("--console-socket", value=True, help="unix socket to send the pty master to"),
    Flag("--pidfd-socket", value=True, help="unix socket to send a pidfd of the init to"),
    Flag("--no-pivot", help="use MS_MOVE and chroot instead of pivot_root"),
    Flag("--no-new-keyring", help="keep the caller's session keyring"),
    Flag("--preserve-fds", value=True, default="0", help="pass N extra fds (3..N+2) to the container"),
    Flag("--help|-h", help="show help"),
]


def _one_id(pos, usage):
    check_args(usage.split()[0], pos, 1)
    return pos[0]


def _create_options(opts, attached=False):
    from pyoci.runtime.create import CreateOptions

    return CreateOptions(bundle=opts["bundle"], pid_file=opts["pid_file"],
                         console_socket=opts["console_socket"], no_pivot=opts["no_pivot"],
                         no_new_keyring=opts["no_new_keyring"],
                         preserve_fds=int_flag(opts, "preserve_fds", "--preserve-fds"),
                         attached=attached)


def _help(opts, usage, text, flags):
    if opts.get("help"):
        sys.stdout.write(format_help(usage, text, flags))
        return True
    return False


def cmd_create(ctx, args):
    opts, pos = parse(args, CREATE_FLAGS)
    if _help(opts, "create [command options] <container-id>", "Create a container from a bundle. Its process "
             "waits for `start`.",
             CREATE_FLAGS):
        return 0
    cid = _one_id(pos, "create ID")
    from pyoci.runtime.create import create

    c = create(ctx, cid, _create_options(opts))
    _send_pidfd(opts["pidfd_socket"], c.pid)
    return 0


def _send_pidfd(path, pid):
    if not path:
        return
    import socket

    fd = os.pidfd_open(pid)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            socket.send_fds(s, [b"pidfd"], [fd])
    except OSError as e:
        raise PyociError("--pidfd-socket %s: %s" % (path, e.strerror))
    finally:
        os.close(fd)


def cmd_start(ctx, args):
    opts, pos = parse(args, [Flag("--help|-h")])
    if _help(opts, "start <container-id>", "Start a created container: its process runs the user's program.", []):
        return 0
    from pyoci.runtime.container import Container

    c = Container.load(ctx.root, _one_id(pos, "start ID"))
    with c.dir:
        c.start()
    return 0


def cmd_state(ctx, args):
    opts, pos = parse(args, [Flag("--help|-h")])
    if _help(opts, "state <container-id>", "Output the state of a container as JSON.", []):
        return 0
    from pyoci.runtime.container import Container

    c = Container.load(ctx.root, _one_id(pos, "state ID"))
    sys.stdout.write(json.dumps(c.runc_state(), indent=2) + "\n")
    return 0


# Linux signal numbers (the `signal` module would cost ~4 ms of start-up:
# it imports enum).
SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21,
    "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28,
    "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31,
}
SIGRTMIN, SIGRTMAX = 34, 64


def parse_signal(s):
    if s.isdigit():
        n = int(s)
        if 0 <= n <= SIGRTMAX:   # 0: only whether the init is alive (runc: `kill ID 0`)
            return n
    else:
        name = s.upper()
        if name.startswith("SIG"):
            name = name[3:]
        if name in SIGNALS:
            return SIGNALS[name]
        for base, sign in (("RTMIN", 1), ("RTMAX", -1)):
            if name.startswith(base):
                off = name[len(base):]
                n = (SIGRTMIN if sign > 0 else SIGRTMAX) + (int(off) if off.lstrip("+-").isdigit() else 0)
                if (off == "" or off.lstrip("+-").isdigit()) and SIGRTMIN <= n <= SIGRTMAX:
                    return n
    raise UsageError("unknown signal %r" % s)


KILL_FLAGS = [Flag("--all|-a", help="signal every process of the container"), Flag("--help|-h")]


def cmd_kill(ctx, args):
    opts, pos = parse(args, KILL_FLAGS)
    if _help(opts, "kill [command options] <container-id> [signal]", "Send a signal (default SIGTERM) to the "
             "container's init. With --all, to every process of its cgroup, also once the init has exited.",
             KILL_FLAGS):
        return 0
    check_args("kill", pos, 1, "min")
    check_args("kill", pos, 2, "max")
    cid = pos[0]
    sig = parse_signal(pos[1]) if len(pos) > 1 else 15
    from pyoci.runtime.container import Container

    c = Container.load(ctx.root, cid)
    c.signal(sig, opts["all"])
    return 0


DELETE_FLAGS = [Flag("--force|-f", help="kill and delete a running container"), Flag("--help|-h")]


def cmd_delete(ctx, args):
    opts, pos = parse(args, DELETE_FLAGS)
    if _help(opts, "delete [command options] <container-id>", "Delete a container and what create made for it.",
             DELETE_FLAGS):
        return 0
    cid = _one_id(pos, "delete ID")
    from pyoci.runtime.container import Container

    try:
        c = Container.load(ctx.root, cid)
        with c.dir:
            c.delete(opts["force"])
    except ContainerNotExist:
        if opts["force"]:
            return 0
        raise
    return 0


RUN_FLAGS = [Flag("--detach|-d", help="return once the container started"),
             Flag("--keep", help="do not delete the container after it exits")] + CREATE_FLAGS

FORWARDED = ("SIGHUP", "SIGINT", "SIGQUIT", "SIGTERM", "SIGUSR1", "SIGUSR2", "SIGWINCH", "SIGCONT",
             "SIGALRM", "SIGPIPE")


def cmd_run(ctx, args):
    opts, pos = parse(args, RUN_FLAGS)
    if _help(opts, "run [command options] <container-id>", "Create and run a container. Without --detach "
             "wait for it, relay signals, exit with its status and delete it.", RUN_FLAGS):
        return 0
    cid = _one_id(pos, "run ID")
    from pyoci.linux import sys as lsys
    from pyoci.runtime.create import create

    master = None
    if not opts["detach"]:
        # The init must become our child when its parent exits, to be reaped here.
        lsys.prctl(lsys.PR_SET_CHILD_SUBREAPER, 1)
    copts = _create_options(opts, attached=not opts["detach"])
    c = create(ctx, cid, copts)
    _send_pidfd(opts["pidfd_socket"], c.pid)
    try:
        if copts.console_peer is not None:
            from pyoci.linux import terminal

            with copts.console_peer:
                master = terminal.receive_master(copts.console_peer, timeout=10)
            if os.isatty(0):
                # the size before the process runs, not after (it may read it at once)
                try:
                    terminal.set_size(master, *terminal.get_size(0))
                except OSError:
                    pass
        with c.dir:
            c.start()
    except BaseException:
        if not c.destroyed:   # a failing startContainer/poststart hook destroyed it already
            with c.dir:
                c.destroy()
        raise
    if opts["detach"]:
        return 0
    import _signal

    def forward(sig, _frame):
        try:
            os.kill(c.pid, sig)
        except ProcessLookupError:
            pass

    for name in FORWARDED:
        if master is None or name != "SIGWINCH":
            _signal.signal(SIGNALS[name[3:]], forward)
    if master is not None:
        terminal.relay(master, c.pid)
        os.close(master)
    _, status = os.waitpid(c.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        code = 128 - code
    # reap anything else that was re-parented to us
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    if not opts["keep"]:
        with c.dir:
            c.destroy()
    return code


CRIU_FLAGS = [Flag("--image-path", value=True, help="path for saving criu image files"),
              Flag("--work-path", value=True, help="path for saving work files and logs"),
              Flag("--leave-running", help="leave the process running after checkpointing"),
              Flag("--tcp-established", help="allow open tcp connections"),
              Flag("--bundle|-b", value=True, help="path to the root of the bundle directory (restore)"),
              Flag("--detach|-d", help="detach from the container's process (restore)"),
              Flag("--help|-h")]


def _criu(name, text, args):
    opts, pos = parse(args, CRIU_FLAGS)
    if _help(opts, name + " [command options] <container-id>", text, CRIU_FLAGS):
        return 0
    check_args(name, pos, 1)
    raise PyociError("%s is not supported by pyoci (no CRIU support)" % name)


def cmd_checkpoint(ctx, args):
    return _criu("checkpoint", "Checkpoint a running container with CRIU. Not supported by pyoci: it "
                 "fails with a clear error.", args)


def cmd_restore(ctx, args):
    return _criu("restore", "Restore a container from a previous checkpoint with CRIU. Not supported by "
                 "pyoci: it fails with a clear error.", args)
