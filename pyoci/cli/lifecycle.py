"""create, start, run, state, kill, delete: flags in, runtime call, output."""
import sys

from pyoci import jsonio as json

from pyoci.cli.args import Flag, UsageError, check_args, format_help, int_flag, parse
from pyoci.errors import PyociError

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


def _create_options(opts):
    from pyoci.runtime.create import CreateOptions

    return CreateOptions(bundle=opts["bundle"], pid_file=opts["pid_file"],
                         console_socket=opts["console_socket"], no_pivot=opts["no_pivot"],
                         no_new_keyring=opts["no_new_keyring"],
                         preserve_fds=int_flag(opts, "preserve_fds", "--preserve-fds"),
                         pidfd_socket=opts["pidfd_socket"])


def _help(opts, usage, text, flags):
    if opts.get("help"):
        sys.stdout.write(format_help(usage, text, flags))
        return True
    return False


def cmd_create(rt, args):
    opts, pos = parse(args, CREATE_FLAGS)
    if _help(opts, "create [command options] <container-id>", "Create a container from a bundle. Its process "
             "waits for `start`.",
             CREATE_FLAGS):
        return 0
    rt.create(_one_id(pos, "create ID"), _create_options(opts))
    return 0


def cmd_start(rt, args):
    opts, pos = parse(args, [Flag("--help|-h")])
    if _help(opts, "start <container-id>", "Start a created container: its process runs the user's program.", []):
        return 0
    rt.start(_one_id(pos, "start ID"))
    return 0


def cmd_state(rt, args):
    opts, pos = parse(args, [Flag("--help|-h")])
    if _help(opts, "state <container-id>", "Output the state of a container as JSON.", []):
        return 0
    sys.stdout.write(json.dumps(rt.state(_one_id(pos, "state ID")), indent=2) + "\n")
    return 0


def parse_signal(s):
    from pyoci.linux.signals import parse as parse_sig

    n = parse_sig(s)
    if n is None:
        raise UsageError("unknown signal %r" % s)
    return n


KILL_FLAGS = [Flag("--all|-a", help="signal every process of the container"), Flag("--help|-h")]


def cmd_kill(rt, args):
    opts, pos = parse(args, KILL_FLAGS)
    if _help(opts, "kill [command options] <container-id> [signal]", "Send a signal (default SIGTERM) to the "
             "container's init. With --all, to every process of its cgroup, also once the init has exited.",
             KILL_FLAGS):
        return 0
    check_args("kill", pos, 1, "min")
    check_args("kill", pos, 2, "max")
    cid = pos[0]
    sig = parse_signal(pos[1]) if len(pos) > 1 else 15
    rt.kill(cid, sig, opts["all"])
    return 0


DELETE_FLAGS = [Flag("--force|-f", help="kill and delete a running container"), Flag("--help|-h")]


def cmd_delete(rt, args):
    opts, pos = parse(args, DELETE_FLAGS)
    if _help(opts, "delete [command options] <container-id>", "Delete a container and what create made for it.",
             DELETE_FLAGS):
        return 0
    rt.delete(_one_id(pos, "delete ID"), opts["force"])
    return 0


RUN_FLAGS = [Flag("--detach|-d", help="return once the container started"),
             Flag("--keep", help="do not delete the container after it exits")] + CREATE_FLAGS


def cmd_run(rt, args):
    opts, pos = parse(args, RUN_FLAGS)
    if _help(opts, "run [command options] <container-id>", "Create and run a container. Without --detach "
             "wait for it, relay signals, exit with its status and delete it.", RUN_FLAGS):
        return 0
    return rt.run(_one_id(pos, "run ID"), _create_options(opts), detach=opts["detach"], keep=opts["keep"])


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
