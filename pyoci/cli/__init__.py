"""The pyoci command line: global flags, then one command (runc's CLI).

Command modules are imported only when their command runs, to keep
`pyoci state` and friends as cheap as the interpreter allows.
"""
import sys

from pyoci import SPEC_VERSION, __version__
from pyoci.cli import log
from pyoci.cli.args import Flag, UsageError, parse
from pyoci.errors import Interrupted, PyociError

GLOBAL_FLAGS = [
    Flag("--root", value=True, help="state directory (default /run/pyoci; $XDG_RUNTIME_DIR/pyoci when rootless)"),
    Flag("--log", value=True, help="log file (default stderr)"),
    Flag("--log-format", value=True, default="text", help="text or json"),
    Flag("--debug", help="log debug messages"),
    Flag("--systemd-cgroup", help="use the systemd cgroup driver"),
    Flag("--rootless", value=True, default="auto", help="auto, true or false"),
    Flag("--criu", value=True, help="accepted for runc compatibility; checkpoint is not supported"),
    Flag("--version|-v", help="print the version"),
    Flag("--help|-h", help="show help"),
]

# command -> (module, function, one line of help); a module holds related commands.
COMMANDS = {
    "checkpoint": ("pyoci.cli.lifecycle", "cmd_checkpoint", "checkpoint a running container (not supported)"),
    "create": ("pyoci.cli.lifecycle", "cmd_create", "create a container"),
    "delete": ("pyoci.cli.lifecycle", "cmd_delete", "delete any resources held by the container"),
    "events": ("pyoci.cli.cgroup_cmds", "cmd_events", "display container events such as OOM notifications, "
               "cpu, memory, and IO usage statistics"),
    "exec": ("pyoci.cli.exec_cmd", "cmd_exec", "execute new process inside the container"),
    "features": ("pyoci.cli.config_cmds", "cmd_features", "show the enabled features"),
    "kill": ("pyoci.cli.lifecycle", "cmd_kill", "kill sends the specified signal (default: SIGTERM) to the "
             "container's init process"),
    "list": ("pyoci.cli.query", "cmd_list", "lists containers started by pyoci with the given root"),
    "pause": ("pyoci.cli.query", "cmd_pause", "pause suspends all processes inside the container"),
    "ps": ("pyoci.cli.query", "cmd_ps", "ps displays the processes running inside a container"),
    "restore": ("pyoci.cli.lifecycle", "cmd_restore", "restore a container from a previous checkpoint "
                "(not supported)"),
    "resume": ("pyoci.cli.query", "cmd_resume", "resumes all processes that have been previously paused"),
    "run": ("pyoci.cli.lifecycle", "cmd_run", "create and run a container"),
    "spec": ("pyoci.cli.config_cmds", "cmd_spec", "create a new specification file"),
    "start": ("pyoci.cli.lifecycle", "cmd_start", "executes the user defined process in a created container"),
    "state": ("pyoci.cli.lifecycle", "cmd_state", "output the state of a container"),
    "update": ("pyoci.cli.cgroup_cmds", "cmd_update", "update container resource constraints"),
    "validate": ("pyoci.cli.config_cmds", "cmd_validate", "print every problem of a bundle's config.json "
                 "(pyoci only)"),
}

VERSION_TEXT = "pyoci version %s\nspec: %s\npython: %s\n" % (
    __version__, SPEC_VERSION, sys.version.split()[0])


def Context(opts):
    """The Runtime the global flags describe (pyoci.runtime.Runtime)."""
    from pyoci.runtime import Runtime

    rl = opts["rootless"]
    if rl not in ("auto", "true", "false"):
        raise UsageError("invalid --rootless value %r: must be auto, true or false" % rl)
    return Runtime(root=opts["root"], log=log.current, rootless=None if rl == "auto" else rl == "true",
                   systemd_cgroup=opts["systemd_cgroup"], debug=opts["debug"])


def usage():
    """The global help, laid out as runc's (urfave/cli)."""
    cmds = sorted(COMMANDS) + ["help, h"]
    width = max(len(c) for c in cmds) + 2
    lines = ["NAME:", "   pyoci - Open Container Initiative runtime (a runc-compatible one, in Python)", "",
             "USAGE:", "   pyoci [global options] command [command options] [arguments...]", "",
             "VERSION:", "   %s" % __version__, "", "COMMANDS:"]
    lines += ["   %s%s" % (c.ljust(width), COMMANDS[c][2]) for c in sorted(COMMANDS)]
    lines += ["   %s%s" % ("help, h".ljust(width), "Shows a list of commands or help for one command"), "",
              "GLOBAL OPTIONS:"]
    lines += ["   %-28s %s" % (", ".join(f.names) + (" value" if f.value else ""), f.help) for f in GLOBAL_FLAGS]
    return "\n".join(lines) + "\n"


class HelpTopicMissing(UsageError):
    exit_code = 3


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    cmd = None
    try:
        opts, rest = parse(argv, GLOBAL_FLAGS, stop_at_positional=True)
        log.current = log.Logger(opts["log"], opts["log_format"], opts["debug"])
        if opts["version"]:
            sys.stdout.write(VERSION_TEXT)
            return 0
        if opts["help"] or not rest:
            sys.stdout.write(usage())
            return 0 if opts["help"] else 1
        cmd, args = rest[0], rest[1:]
        if cmd in ("help", "h"):
            if not args:
                sys.stdout.write(usage())
                return 0
            cmd, args = args[0], ["--help"]
        target = COMMANDS.get(cmd)
        if target is None:
            if "-h" in args or "--help" in args or args == ["--help"]:
                raise HelpTopicMissing("No help topic for '%s'" % cmd)
            raise UsageError("unknown command %r (see 'pyoci --help')" % cmd)
        ctx = Context(opts)
        # __import__, not importlib: the importlib package imports warnings
        func = getattr(__import__(target[0], fromlist=[target[1]]), target[1])
        return func(ctx, args) or 0
    except PyociError as e:
        msg = str(e)
        code = e.exit_code
        if cmd in ("create", "run") and not isinstance(e, UsageError):
            from pyoci.errors import ConfigError

            if isinstance(e, ConfigError):
                msg = "invalid configuration: " + msg   # runc's words, which scripts match
            msg = "pyoci %s failed: %s" % (cmd, msg)
        elif cmd == "exec" and not isinstance(e, UsageError):
            msg, code = "exec failed: " + msg, 255   # as runc: podman and containerd expect 255
        log.current.error(msg)
        return code
    except KeyboardInterrupt:
        return 130
    except Interrupted as e:
        return 128 + e.signum
    except BrokenPipeError:
        return 1
