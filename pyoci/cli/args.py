"""A small runc-compatible flag parser.

argparse costs ~20 ms of start-up here, more than a whole `pyoci state`
should; this parser does what runc's CLI does and no more: `--flag value`,
`--flag=value`, `-f value`, boolean flags (optionally `--flag=true|false`),
repeatable flags, and flags before the positional arguments (the first
positional ends flag parsing, as in runc, so `exec ID sh -c ...` works).
"""
from pyoci.errors import PyociError


class UsageError(PyociError):
    pass


class Flag:
    __slots__ = ("names", "dest", "value", "multi", "default", "help")

    def __init__(self, names, value=False, multi=False, default=None, help="", dest=None):
        self.names = names.split("|")
        self.dest = dest or self.names[0].lstrip("-").replace("-", "_")
        self.value = value          # takes a value
        self.multi = multi          # may repeat; collects a list
        self.default = ([] if multi else (None if value else False)) if default is None else default
        self.help = help


TRUE = ("true", "1", "yes", "t")
FALSE = ("false", "0", "no", "f")


def parse(argv, flags, stop_at_positional=False):
    """Returns (options dict, positional list). Raises UsageError.

    As runc's CLI (urfave/cli's argument reordering): a known flag counts
    wherever it stands before `--`, also after the container id
    (`update ID --cpu-period N`); an unknown `-x` after a positional stays a
    positional (and the command's argument count then refuses it).
    stop_at_positional=True is for exec and ps, whose arguments after the id
    belong to a command (runc's SkipArgReorder)."""
    by_name = {}
    for f in flags:
        for n in f.names:
            by_name[n] = f
    opts = {f.dest: (list(f.default) if f.multi else f.default) for f in flags}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            pos.extend(argv[i:])
            break
        if len(a) > 1 and a[0] == "-" and not (pos and stop_at_positional):
            name, eq, val = a.partition("=")
            f = by_name.get(name)
            if f is None and pos:
                pos.append(a)
                continue
            if f is None:
                raise UsageError("flag provided but not defined: %s" % name)
            if f.value:
                if not eq:
                    if i >= len(argv):
                        raise UsageError("flag needs an argument: %s" % name)
                    val = argv[i]
                    i += 1
                if f.multi:
                    opts[f.dest].append(val)
                else:
                    opts[f.dest] = val
            else:
                if eq:
                    if val.lower() in TRUE:
                        opts[f.dest] = True
                    elif val.lower() in FALSE:
                        opts[f.dest] = False
                    else:
                        raise UsageError("invalid boolean value %r for flag %s" % (val, name))
                else:
                    opts[f.dest] = True
            continue
        if pos and stop_at_positional:
            pos.append(a)
            pos.extend(argv[i:])
            break
        pos.append(a)
    return opts, pos


def int_flag(opts, name, flagname, minimum=0):
    v = opts.get(name)
    if v is None:
        return None
    try:
        n = int(v, 10)
    except ValueError:
        raise UsageError("invalid value %r for flag %s: not an integer" % (v, flagname))
    if n < minimum:
        raise UsageError("invalid value %r for flag %s: must be >= %d" % (v, flagname, minimum))
    return n


def check_args(cmd, pos, expected, kind="exact"):
    """The argument count, in runc's words (checkArgs)."""
    n = len(pos)
    bad = {"exact": n != expected, "min": n < expected, "max": n > expected}[kind]
    if bad:
        word = {"exact": "exactly", "min": "a minimum of", "max": "a maximum of"}[kind]
        raise UsageError('pyoci: "%s" requires %s %d argument(s)' % (cmd, word, expected))


def format_help(usage, description, flags):
    """A command's help, laid out as runc's (urfave/cli): NAME, USAGE,
    DESCRIPTION, OPTIONS."""
    name, _, rest = usage.partition(" ")
    first, _, more = description.strip().partition(". ")
    lines = ["NAME:", "   pyoci %s - %s" % (name, first.rstrip(".")), "",
             "USAGE:", "   pyoci " + usage, ""]
    if more:
        lines += ["DESCRIPTION:", "   " + more.strip(), ""]
    flags = [f for f in flags if f.names[0] != "--help"] + [Flag("--help|-h", help="show help")]
    lines.append("OPTIONS:")
    for f in flags:
        names = ", ".join(f.names) + (" value" if f.value else "")
        lines.append("   %-28s %s" % (names, f.help))
    return "\n".join(lines) + "\n"
