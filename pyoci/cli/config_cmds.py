"""`pyoci spec`, `pyoci features`, `pyoci validate`: config.json without a container."""
import json
import os
import sys

from pyoci.cli.args import Flag, check_args, format_help, parse
from pyoci.errors import PyociError

HELP = Flag("--help|-h", help="show help")


def _bundle(opts):
    return os.path.abspath(opts["bundle"] or ".")


def cmd_spec(ctx, args):
    flags = [Flag("--bundle|-b", value=True, help="directory to write config.json in (default: current)"),
             Flag("--rootless", help="a config for an unprivileged user (user namespace, mappings)"), HELP]
    opts, rest = parse(args, flags)
    if opts["help"]:
        sys.stdout.write(format_help("spec [command options]",
                                     "Create a new specification file (config.json, runtime-spec 1.3.0).", flags))
        return 0
    check_args("spec", rest, 0)
    from pyoci.config.spec import default_spec

    bundle = _bundle(opts)
    path = os.path.join(bundle, "config.json")
    data = json.dumps(default_spec(rootless=opts["rootless"]), indent="\t") + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise PyociError("File %s exists. Remove it first" % path)
    except OSError as e:
        raise PyociError("%s: %s" % (path, e.strerror))
    with os.fdopen(fd, "w") as f:
        f.write(data)
    return 0


def cmd_features(ctx, args):
    opts, rest = parse(args, [HELP])
    if opts["help"]:
        sys.stdout.write(format_help("features", "Show what this pyoci and this host support "
                                     "(runtime-spec features document).", [HELP]))
        return 0
    check_args("features", rest, 0)
    from pyoci.config.features import features

    sys.stdout.write(json.dumps(features(), indent=4) + "\n")
    return 0


def cmd_validate(ctx, args):
    flags = [Flag("--bundle|-b", value=True, help="bundle directory (default: current)"),
             Flag("--host", help="also report what this host cannot do for this config"), HELP]
    opts, rest = parse(args, flags)
    if opts["help"]:
        sys.stdout.write(format_help("validate [--bundle DIR] [--host]",
                                     "Print every problem of a bundle's config.json; exit 0 only when clean.",
                                     flags))
        return 0
    check_args("validate", rest, 0)
    from pyoci.config import load_bundle
    from pyoci.config.validate import validate

    bundle, config = load_bundle(opts["bundle"])
    problems = validate(config, bundle, systemd_cgroup=ctx.systemd_cgroup or None)
    if opts["host"]:
        from pyoci.config.hostcheck import check

        problems += check(config)
    for p in problems:
        sys.stdout.write(str(p) + "\n")
    return 1 if problems else 0
