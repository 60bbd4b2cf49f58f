"""update and events: a running container's cgroup (runc's commands)."""
import sys

from pyoci import jsonio as json
from pyoci.cli.args import Flag, UsageError, check_args, format_help, parse
from pyoci.errors import PyociError

UPDATE_FLAGS = [
    Flag("--resources|-r", value=True,
         help="a JSON file of linux.resources to apply ('-' = stdin); the other options are then ignored"),
    Flag("--blkio-weight", value=True, help="block IO weight, 10 to 1000"),
    Flag("--cpu-period", value=True, help="CPU CFS period (microseconds)"),
    Flag("--cpu-quota", value=True, help="CPU CFS quota (microseconds per period; -1 = none)"),
    Flag("--cpu-share|--cpu-shares", value=True, help="CPU shares (relative weight)"),
    Flag("--cpu-rt-period", value=True, help="CPU realtime period (microseconds)"),
    Flag("--cpu-rt-runtime", value=True, help="CPU realtime runtime (microseconds per period)"),
    Flag("--cpuset-cpus", value=True, help="CPUs to use, e.g. 0-3,5"),
    Flag("--cpuset-mems", value=True, help="memory nodes to use"),
    Flag("--memory", value=True, help="memory limit (bytes, or with a unit: 512M, 1G)"),
    Flag("--memory-reservation", value=True, help="memory soft limit"),
    Flag("--memory-swap", value=True, help="memory plus swap limit; -1 = unlimited swap"),
    Flag("--pids-limit", value=True, help="maximum number of processes"),
    Flag("--l3-cache-schema", value=True, help="Intel RDT L3 cache schema (not supported)"),
    Flag("--mem-bw-schema", value=True, help="Intel RDT memory bandwidth schema (not supported)"),
    Flag("--help|-h", help="show help"),
]

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(s, flag):
    """A byte size as runc takes it: 1024, 512k, 64M, 1.5G, 2GiB, 2gb; -1."""
    if s.strip() == "-1":
        return -1
    t = s.strip().lower()
    for suffix in ("ib", "b"):
        if t.endswith(suffix) and len(t) > len(suffix) and (t[-len(suffix) - 1] in _UNITS or suffix == "b"):
            t = t[:-len(suffix)]
            break
    unit = ""
    if t and t[-1] in _UNITS:
        unit, t = t[-1], t[:-1]
    t = t.strip()
    try:
        if not t or t[0] in "+-":
            raise ValueError
        n = float(t) if "." in t else int(t)
    except ValueError:
        raise UsageError("invalid value for %s: invalid size: %r" % (flag, s))
    return int(n * _UNITS[unit])


def _num(opts, key, flag, minimum):
    v = opts.get(key)
    if v is None:
        return None
    try:
        n = int(v, 10)
    except ValueError:
        raise UsageError("invalid value %r for flag %s: not an integer" % (v, flag))
    if n < minimum:
        raise UsageError("invalid value %r for flag %s: must be >= %d" % (v, flag, minimum))
    return n


def resources_from_flags(opts):
    r = {}

    def put(section, key, value):
        if value is not None:
            r.setdefault(section, {})[key] = value

    for key, flag, name in (("memory", "--memory", "limit"), ("memory_reservation", "--memory-reservation",
                                                              "reservation"),
                            ("memory_swap", "--memory-swap", "swap")):
        if opts.get(key) is not None:
            put("memory", name, parse_size(opts[key], flag))
    put("cpu", "shares", _num(opts, "cpu_share", "--cpu-share", 0))
    put("cpu", "quota", _num(opts, "cpu_quota", "--cpu-quota", -1))
    put("cpu", "period", _num(opts, "cpu_period", "--cpu-period", 0))
    put("cpu", "realtimeRuntime", _num(opts, "cpu_rt_runtime", "--cpu-rt-runtime", -1))
    put("cpu", "realtimePeriod", _num(opts, "cpu_rt_period", "--cpu-rt-period", 0))
    put("cpu", "cpus", opts.get("cpuset_cpus"))
    put("cpu", "mems", opts.get("cpuset_mems"))
    put("pids", "limit", _num(opts, "pids_limit", "--pids-limit", -1))
    put("blockIO", "weight", _num(opts, "blkio_weight", "--blkio-weight", 0))
    return r


def _read_resources(path):
    try:
        if path == "-":
            data = sys.stdin.read()
        else:
            with open(path) as f:
                data = f.read()
    except OSError as e:
        raise PyociError("update: --resources %s: %s" % (path, e.strerror))
    try:
        r = json.loads(data)
    except ValueError as e:
        raise PyociError("update: --resources %s: invalid JSON: %s" % (path, e))
    if not isinstance(r, dict):
        raise PyociError("update: --resources %s: must be a JSON object of linux.resources" % path)
    return r


def cmd_update(rt, args):
    opts, pos = parse(args, UPDATE_FLAGS)
    if opts["help"]:
        sys.stdout.write(format_help("update [command options] <container-id>", "Update a container's "
                                     "resource constraints (cgroup limits).", UPDATE_FLAGS))
        return 0
    check_args("update", pos, 1)
    rdt = None
    if opts["resources"]:
        resources = _read_resources(opts["resources"])
    else:
        rdt = opts["l3_cache_schema"] or opts["mem_bw_schema"]
        resources = resources_from_flags(opts)
    rt.update(pos[0], resources, intel_rdt=rdt)
    return 0


EVENTS_FLAGS = [Flag("--interval", value=True, default="5s", help="stats interval (Go duration: 5s, 500ms)"),
                Flag("--stats", help="print the stats once and exit"),
                Flag("--help|-h", help="show help")]

_DUR = (("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1.0), ("m", 60.0), ("h", 3600.0))


def parse_duration(s):
    """A Go duration: 5s, 250ms, 1m30s, 1.5h -> seconds."""
    t, total = s.strip(), 0.0
    if not t:
        raise UsageError("invalid duration %r" % s)
    while t:
        i = 0
        while i < len(t) and (t[i].isdigit() or t[i] == "."):
            i += 1
        num, t = t[:i], t[i:]
        for unit, scale in sorted(_DUR, key=lambda u: -len(u[0])):
            if t.startswith(unit):
                t = t[len(unit):]
                break
        else:
            raise UsageError("invalid duration %r" % s)
        try:
            total += float(num) * scale
        except ValueError:
            raise UsageError("invalid duration %r" % s)
    return total


def _emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def cmd_events(rt, args):
    opts, pos = parse(args, EVENTS_FLAGS)
    if opts["help"]:
        sys.stdout.write(format_help("events [--stats] [--interval D] ID",
                                     "Print the container's stats as JSON (once with --stats; else every "
                                     "interval) and an oom event when the kernel OOM-kills in it.",
                                     EVENTS_FLAGS))
        return 0
    check_args("events", pos, 1)
    interval = parse_duration(opts["interval"])
    if interval <= 0:
        raise UsageError("duration interval must be greater than 0")
    if opts["stats"]:
        _emit(rt.stats(pos[0]))
        return 0
    import gc

    gc.enable()   # off in the installed command (pyoci/_boot.py); this stream lasts
    for event in rt.events(pos[0], interval):
        _emit(event)
    return 0

