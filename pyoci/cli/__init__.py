"""The pyoci command line: global flags, then one command (runc's CLI).

Command modules are imported only when their command runs, to keep
`pyoci state` and friends as cheap as the interpreter allows.
"""
import os
import sys

from pyoci import SPEC_VERSION, __version__
from pyoci.cli import log
from pyoci.cli.args import Flag, UsageError, parse
from pyoci.errors import PyociError

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

# command -> (module, function); a module holds related commands.
COMMANDS = {
    "create": ("pyoci.cli.lifecycle", "cmd_create"),
    "start": ("pyoci.cli.lifecycle", "cmd_start"),
    "run": ("pyoci.cli.lifecycle", "cmd_run"),
    "state": ("pyoci.cli.lifecycle", "cmd_state"),
    "kill": ("pyoci.cli.lifecycle", "cmd_kill"),
    "delete": ("pyoci.cli.lifecycle", "cmd_delete"),
    "exec": ("pyoci.cli.exec_cmd", "cmd_exec"),
    "list": ("pyoci.cli.query", "cmd_list"),
    "ps": ("pyoci.cli.query", "cmd_ps"),
    "pause": ("pyoci.cli.query", "cmd_pause"),
    "resume": ("pyoci.cli.query", "cmd_resume"),
    "update": ("pyoci.cli.cgroup_cmds", "cmd_update"),
    "events": ("pyoci.cli.cgroup_cmds", "cmd_events"),
    "spec": ("pyoci.cli.config_cmds", "cmd_spec"),
    "features": ("pyoci.cli.config_cmds", "cmd_features"),
    "validate": ("pyoci.cli.config_cmds", "cmd_validate"),
}

VERSION_TEXT = "pyoci version %s\nspec: %s\npython: %s\n" % (
    __version__, SPEC_VERSION, sys.version.split()[0])


class Context:
    """What the global flags say, handed to every command."""

    def __init__(self, opts):
        self.debug = opts["debug"]
        self.systemd_cgroup = opts["systemd_cgroup"]
        rl = opts["rootless"]
        if rl not in ("auto", "true", "false"):
            raise UsageError("invalid --rootless value %r: must be auto, true or false" % rl)
        self._rootless = None if rl == "auto" else rl == "true"
        root = opts["root"]
        if not root:
            xdg = os.environ.get("XDG_RUNTIME_DIR")
            root = os.path.join(xdg, "pyoci") if (os.geteuid() != 0 and xdg) else "/run/pyoci"
        self.root = os.path.abspath(root)
        self.log = log.current

    @property
    def rootless(self):
        """--rootless auto: when not root, or root of a user namespace (whose
        cgroups and device rules are as out of reach), as runc decides."""
        if self._rootless is None:
            from pyoci.linux import userns

            self._rootless = os.geteuid() != 0 or userns.inside()
        return self._rootless


def usage():
    names = sorted(COMMANDS)
    return ("usage: pyoci [global options] COMMAND [options] [arguments]\n\n"
            "commands:\n   " + "\n   ".join(names) + "\n\nglobal options:\n" +
            "\n".join("   %-28s %s" % (", ".join(f.names) + (" VALUE" if f.value else ""), f.help)
                      for f in GLOBAL_FLAGS) + "\n")


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    cmd = None
    try:
        opts, rest = parse(argv, GLOBAL_FLAGS)
        log.current = log.Logger(opts["log"], opts["log_format"], opts["debug"])
        if opts["version"]:
            sys.stdout.write(VERSION_TEXT)
            return 0
        if opts["help"] or not rest:
            sys.stdout.write(usage())
            return 0 if opts["help"] else 1
        cmd, args = rest[0], rest[1:]
        if cmd == "help":
            sys.stdout.write(usage())
            return 0
        target = COMMANDS.get(cmd)
        if target is None:
            raise UsageError("unknown command %r (see 'pyoci --help')" % cmd)
        ctx = Context(opts)
        import importlib

        func = getattr(importlib.import_module(target[0]), target[1])
        return func(ctx, args) or 0
    except PyociError as e:
        msg = str(e)
        code = e.exit_code
        if cmd in ("create", "run") and not isinstance(e, UsageError):
            msg = "pyoci %s failed: %s" % (cmd, msg)
        elif cmd == "exec" and not isinstance(e, UsageError):
            msg, code = "exec failed: " + msg, 255   # as runc: podman and containerd expect 255
        log.current.error(msg)
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
