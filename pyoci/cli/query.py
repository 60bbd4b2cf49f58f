"""list, ps, pause, resume."""
import sys

from pyoci import jsonio as json

from pyoci.cli.args import Flag, UsageError, check_args, format_help, parse
from pyoci.errors import PyociError


def tabwrite(rows, minwidth=12, padding=3):
    """Columns as Go's text/tabwriter (minwidth 12, padding 3) lays them out,
    as runc's `list` and `ps` do; the last column is not padded."""
    widths = [max(len(r[i]) for r in rows) + padding for i in range(len(rows[0]) - 1)]
    widths = [max(w, minwidth) for w in widths]
    out = []
    for r in rows:
        out.append("".join(c.ljust(w) for c, w in zip(r, widths)) + r[-1])
    return "\n".join(out) + "\n"


LIST_FLAGS = [Flag("--format|-f", value=True, default="table", help="table or json"),
              Flag("--quiet|-q", help="only ids"), Flag("--help|-h")]


def cmd_list(rt, args):
    opts, pos = parse(args, LIST_FLAGS)
    if opts["help"]:
        sys.stdout.write(format_help("list [command options]", "Lists containers started by pyoci with the "
                                     "given root.", LIST_FLAGS))
        return 0
    check_args("list", pos, 0)
    if opts["format"] not in ("table", "json"):
        raise UsageError("invalid format option %r: must be table or json" % opts["format"])
    items = rt.list()
    if opts["quiet"]:
        sys.stdout.write("".join(i["id"] + "\n" for i in items))
    elif opts["format"] == "json":
        sys.stdout.write(json.dumps(items or None) + "\n")
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[i["id"], str(i["pid"]), i["status"], i["bundle"], i["created"], i["owner"]] for i in items]
        sys.stdout.write(tabwrite(rows))
    return 0


PS_FLAGS = [Flag("--format|-f", value=True, default="table", help="table or json"), Flag("--help|-h")]


def cmd_ps(rt, args):
    opts, pos = parse(args, PS_FLAGS, stop_at_positional=True)
    if opts["help"]:
        sys.stdout.write(format_help("ps [command options] <container-id> [ps options]", "ps displays the "
                                     "processes running inside a container.", PS_FLAGS))
        return 0
    check_args("ps", pos, 1, "min")
    if opts["format"] not in ("table", "json"):
        raise UsageError("invalid format option %r: must be table or json" % opts["format"])
    pids = rt.ps(pos[0])
    if opts["format"] == "json":
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    import subprocess

    ps_args = pos[1:] or ["-ef"]
    try:
        out = subprocess.run(["ps"] + ps_args, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise PyociError("ps: %s" % e)
    lines = out.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    try:
        col = header.index("PID")
    except ValueError:
        raise PyociError("ps: no PID column in the output of ps %s" % " ".join(ps_args))
    keep = set(pids)
    sys.stdout.write(lines[0] + "\n")
    for line in lines[1:]:
        f = line.split()
        if len(f) > col and f[col].isdigit() and int(f[col]) in keep:
            sys.stdout.write(line + "\n")
    return 0


def _pause(rt, args, on):
    opts, pos = parse(args, [Flag("--help|-h")])
    name = "pause" if on else "resume"
    if opts["help"]:
        sys.stdout.write(format_help(name + " <container-id>", ("Suspend all processes of a container (cgroup "
                                     "freezer)." if on else "Resume all processes of a paused container."), []))
        return 0
    check_args(name, pos, 1)
    (rt.pause if on else rt.resume)(pos[0])
    return 0


def cmd_pause(rt, args):
    return _pause(rt, args, True)


def cmd_resume(rt, args):
    return _pause(rt, args, False)
