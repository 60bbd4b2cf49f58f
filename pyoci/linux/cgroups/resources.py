"""linux.resources as a list of cgroup file writes, for v1 and for v2.

Pure logic: `plan(resources, version)` returns `Write`s in the order they
must be made; the caller (cgroups.Cgroup.apply) finds the directories,
opens the files and turns a failure into an error naming the field.
A member that is absent, null, 0 or empty is the default and gives no
write. v2 values follow the runtime-spec's cgroup v1 -> v2 conversions
(the ones runc and crun use).
"""
from pyoci.errors import ConfigError

R = "linux.resources"


class Write:
    """Write `value` to `file` in the controller's directory.

    value may be a callable(dir) -> str, for values that depend on what the
    file holds now (cpu.max with only a period). noop: the value changes
    nothing (an "unlimited" on a fresh cgroup): when the controller or the
    file is missing it is skipped, not an error. check: callable(dir)
    returning an error text or None, run before the write."""

    __slots__ = ("ctrl", "file", "value", "field", "noop", "check")

    def __init__(self, ctrl, file, value, field, noop=False, check=None):
        self.ctrl = ctrl
        self.file = file
        self.value = value
        self.field = field
        self.noop = noop
        self.check = check

    def __repr__(self):
        return "Write(%r, %r, %r)" % (self.ctrl, self.file, self.value)


class MemoryPair:
    """v1 memory.limit_in_bytes and memory.memsw.limit_in_bytes: memsw must
    stay >= limit at every step, so the order depends on the current limit
    (raise memsw first when raising)."""

    ctrl = "memory"

    def __init__(self, limit, swap, new_limit):
        self.limit, self.swap, self.new_limit = limit, swap, new_limit

    def ordered(self, current_limit):
        return [self.swap, self.limit] if self.new_limit > current_limit else [self.limit, self.swap]


class CpuPair:
    """v1 cpu.cfs_period_us and cpu.cfs_quota_us, both asked. A period
    below the current one can be refused (EINVAL) while the old quota over
    the new period exceeds the parent's limit: then the quota goes first
    and the period is written again, as runc does."""

    ctrl = "cpu"

    def __init__(self, period, quota):
        self.period, self.quota = period, quota


def _d(x):
    return x if isinstance(x, dict) else {}


def _int(v, field, minimum=None, maximum=None):
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(field, "must be an integer, not %r" % (v,))
    if minimum is not None and v < minimum:
        raise ConfigError(field, "%d is out of range: must be >= %d" % (v, minimum))
    if maximum is not None and v > maximum:
        raise ConfigError(field, "%d is out of range: must be <= %d" % (v, maximum))
    return v


def _set(v):
    """A member that asks for something (not absent, null, 0, "", [] or {})."""
    return v is not None and v != 0 and v != "" and v != [] and v != {} and v is not False


def _unsupported(field, what="cgroup v2"):
    raise ConfigError(field, "is not supported by %s on this host" % what)


# -- cpusets ---------------------------------------------------------------
def parse_cpuset(s, field):
    """'0-3,5' -> {0,1,2,3,5}; a clear error for anything else."""
    out = set()
    if not isinstance(s, str):
        raise ConfigError(field, "must be a string such as \"0-3,5\"")
    for part in s.strip().split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            raise ConfigError(field, "%r is not a list of CPU or node numbers such as \"0-3,5\"" % s)
        a, b = int(lo), int(hi) if dash else int(lo)
        if b < a:
            raise ConfigError(field, "%r: range %s is reversed" % (s, part))
        out.update(range(a, b + 1))
    return out


def _cpuset_check(field, value, parent_file):
    want = parse_cpuset(value, field)

    def check(d):
        from pyoci import fastos as os

        try:
            with open(os.path.join(os.path.dirname(d), parent_file)) as f:
                have_s = f.read().strip()
        except OSError:
            return None
        have = parse_cpuset(have_s, field) if have_s else set()
        extra = sorted(want - have)
        if extra:
            return "%s is outside the host's set %s (%s)" % (
                ",".join(map(str, extra)), have_s or "(empty)",
                "CPUs" if "cpus" in parent_file else "memory nodes")
        return None

    return check


# -- devices -----------------------------------------------------------------
def device_rules(res):
    """The device rules to apply, in order: deny everything, the spec's
    rules as listed, then the devices every container gets, as runc does.
    A node listed in linux.devices is made, but not allowed by that alone
    (runc's dev.bats: linux.resources.devices decide). Each rule: (allow,
    type, major, minor, access, field); major/minor None = any."""
    rules = [(False, "a", None, None, "rwm", R + ".devices")]
    for i, r in enumerate((res or {}).get("devices") or ()):
        f = "%s.devices[%d]" % (R, i)
        r = _d(r)
        t = r.get("type") or "a"
        if t not in ("a", "c", "b"):
            raise ConfigError(f + ".type", "%r must be a, c or b" % t)
        mm = []
        for k in ("major", "minor"):
            v = r.get(k)
            if v is None or v == -1:
                mm.append(None)
            else:
                mm.append(_int(v, "%s.%s" % (f, k), 0))
        acc = r.get("access")
        if not isinstance(acc, str) or not acc:
            # runc's words
            raise ConfigError(f + ".access", "device access at %d field cannot be empty" % i)
        # As runc: the letters r, w and m count, in any order and repeated;
        # others are ignored ("rwa" is "rw"). A deny rule left with none
        # denies nothing; an allow rule with none is refused, as runc fails it.
        known = "".join(c for c in "rwm" if c in acc)
        if not known and r.get("allow"):
            raise ConfigError(f + ".access", "%r has none of r, w and m: an allow rule allowing nothing" % acc)
        if known:
            rules.append((bool(r.get("allow")), t, mm[0], mm[1], known, f))
    # What the spec's rules deny by device number stays denied: the rules
    # added below leave that access out.
    denied = [r for r in rules[1:] if not r[0] and r[2] is not None]

    def allowed(t, major, minor, acc):
        for r in denied:
            if r[1] in ("a", t) and r[2] == major and r[3] in (None, minor):
                acc = "".join(c for c in acc if c not in r[4])
        return acc

    for t, major, minor, acc in DEFAULT_ALLOWED:
        acc = allowed(t, major, minor, acc) if major is not None else acc
        if acc:
            rules.append((True, t, major, minor, acc, R + ".devices"))
    return rules


# The devices every container may use (runc's AllowedDevices): mknod of any
# device, null zero full random urandom tty, /dev/console, /dev/pts/*,
# /dev/ptmx and /dev/net/tun.
DEFAULT_ALLOWED = (
    ("c", None, None, "m"), ("b", None, None, "m"),
    ("c", 1, 3, "rwm"), ("c", 1, 8, "rwm"), ("c", 1, 7, "rwm"), ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"), ("c", 1, 9, "rwm"), ("c", 5, 1, "rwm"), ("c", 136, None, "rwm"),
    ("c", 5, 2, "rwm"), ("c", 10, 200, "rwm"),
)


def v1_device_line(rule):
    _, t, major, minor, acc, _ = rule
    if t == "a":
        return "a *:* rwm" if acc == "rwm" else "a *:* %s" % acc
    return "%s %s:%s %s" % (t, "*" if major is None else major, "*" if minor is None else minor, acc)


# -- hugetlb -----------------------------------------------------------------
def host_page_sizes():
    from pyoci import fastos as os

    out = []
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return out
    for n in names:
        if n.startswith("hugepages-") and n.endswith("kB"):
            out.append(page_size_name(int(n[10:-2]) * 1024))
    return out


def page_size_name(nbytes):
    """2097152 -> '2MB' (the kernel's names for hugetlb files)."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if nbytes >= scale and nbytes % scale == 0:
            return "%d%s" % (nbytes // scale, unit)
    return "%dB" % nbytes


def _hugepages(res, version):
    out = []
    sizes = None
    for i, h in enumerate(res.get("hugepageLimits") or ()):
        f = "%s.hugepageLimits[%d]" % (R, i)
        h = _d(h)
        ps = h.get("pageSize")
        if sizes is None:
            sizes = host_page_sizes()
        if ps not in sizes:
            raise ConfigError(f + ".pageSize", "%r is not a huge page size of this host (%s)"
                              % (ps, ", ".join(sizes) or "none"))
        limit = _int(h.get("limit", 0), f + ".limit", 0)
        if version == 1:
            out.append(Write("hugetlb", "hugetlb.%s.limit_in_bytes" % ps, str(limit), f + ".limit"))
            out.append(Write("hugetlb", "hugetlb.%s.rsvd.limit_in_bytes" % ps, str(limit), f + ".limit",
                             noop=True))
        else:
            out.append(Write("hugetlb", "hugetlb.%s.max" % ps, str(limit), f + ".limit"))
            out.append(Write("hugetlb", "hugetlb.%s.rsvd.max" % ps, str(limit), f + ".limit", noop=True))
    return out


def _rdma(res):
    out = []
    for dev, lim in sorted(_d(res.get("rdma")).items()):
        f = "%s.rdma.%s" % (R, dev)
        lim = _d(lim)
        parts = [dev]
        for key, name in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")):
            v = lim.get(key)
            if v is not None:
                parts.append("%s=%d" % (name, _int(v, "%s.%s" % (f, key), 0)))
        if len(parts) > 1:
            out.append(Write("rdma", "rdma.max", " ".join(parts), f))
    return out


# -- v1 ----------------------------------------------------------------------
def _limit(v, field):
    """A byte limit: -1 = unlimited, else > 0."""
    return _int(v, field, -1)


def _ignore_kernel(mem, field, warn):
    if mem.get("kernel") not in (None, 0, -1) and warn:
        warn("%skernel is ignored: kernel memory limits are gone from Linux" % field)


def plan_v1(res, warn=None):
    res = _d(res)
    out = []
    mem = _d(res.get("memory"))
    if mem:
        f = R + ".memory."
        _ignore_kernel(mem, f, warn)
        lim = mem.get("limit")
        swap = mem.get("swap")
        if _set(lim):
            lim = _limit(lim, f + "limit")
        if lim == -1 and not _set(swap):
            # as runc: an unlimited memory with no swap given makes the swap
            # unlimited too (memsw may never be below the limit)
            swap = -1
        if _set(swap):
            swap = _limit(swap, f + "swap")
            if _set(lim) and lim != -1 and swap != -1 and swap < lim:
                raise ConfigError(f + "swap", "%d is below memory.limit %d: in cgroup v1 swap is "
                                  "memory plus swap" % (swap, lim))
        lw = Write("memory", "memory.limit_in_bytes", str(lim), f + "limit", noop=lim == -1) if _set(lim) else None
        sw = (Write("memory", "memory.memsw.limit_in_bytes", str(swap), f + "swap", noop=swap == -1)
              if _set(swap) else None)
        if lw and sw:
            # memsw must stay >= limit: raise memsw first when raising
            new = lim if lim != -1 else 1 << 62
            out.append(MemoryPair(lw, sw, new))
        elif lw or sw:
            out.append(lw or sw)
        if _set(mem.get("reservation")):
            r = _limit(mem["reservation"], f + "reservation")
            out.append(Write("memory", "memory.soft_limit_in_bytes", str(r), f + "reservation", noop=r == -1))
        if _set(mem.get("kernelTCP")):
            k = _limit(mem["kernelTCP"], f + "kernelTCP")
            out.append(Write("memory", "memory.kmem.tcp.limit_in_bytes", str(k), f + "kernelTCP", noop=k == -1))
        if mem.get("swappiness") is not None:
            s = _int(mem["swappiness"], f + "swappiness")
            if s != -1:
                _int(s, f + "swappiness", 0, 100)
                out.append(Write("memory", "memory.swappiness", str(s), f + "swappiness"))
        if mem.get("disableOOMKiller"):
            out.append(Write("memory", "memory.oom_control", "1", f + "disableOOMKiller"))
        if mem.get("useHierarchy") is not None:
            out.append(Write("memory", "memory.use_hierarchy", "1" if mem["useHierarchy"] else "0",
                             f + "useHierarchy", noop=bool(mem["useHierarchy"])))
    cpu = _d(res.get("cpu"))
    if cpu:
        f = R + ".cpu."
        if _set(cpu.get("shares")):
            out.append(Write("cpu", "cpu.shares", str(_int(cpu["shares"], f + "shares", 2, 262144)),
                             f + "shares"))
        pw = qw = None
        if _set(cpu.get("period")):
            pw = Write("cpu", "cpu.cfs_period_us", str(_int(cpu["period"], f + "period", 1000, 1000000)),
                       f + "period")
        if _set(cpu.get("quota")):
            q = _int(cpu["quota"], f + "quota", -1)
            if q != -1 and q < 1000:
                raise ConfigError(f + "quota", "%d is out of range: must be -1 or >= 1000" % q)
            qw = Write("cpu", "cpu.cfs_quota_us", str(q), f + "quota", noop=q == -1)
        if pw and qw:
            out.append(CpuPair(pw, qw))
        elif pw or qw:
            out.append(pw or qw)
        if _set(cpu.get("burst")):
            out.append(Write("cpu", "cpu.cfs_burst_us", str(_int(cpu["burst"], f + "burst", 0)), f + "burst"))
        if _set(cpu.get("realtimePeriod")):
            out.append(Write("cpu", "cpu.rt_period_us", str(_int(cpu["realtimePeriod"], f + "realtimePeriod", 1)),
                             f + "realtimePeriod"))
        if _set(cpu.get("realtimeRuntime")):
            out.append(Write("cpu", "cpu.rt_runtime_us",
                             str(_int(cpu["realtimeRuntime"], f + "realtimeRuntime", -1)), f + "realtimeRuntime"))
        if cpu.get("idle") is not None and cpu.get("idle") != 0:
            out.append(Write("cpu", "cpu.idle", str(_int(cpu["idle"], f + "idle", 0, 1)), f + "idle"))
        for k in ("cpus", "mems"):
            if _set(cpu.get(k)):
                out.append(Write("cpuset", "cpuset." + k, cpu[k], f + k,
                                 check=_cpuset_check(f + k, cpu[k], "cpuset.effective_" + k)))
    pids = _d(res.get("pids"))
    if _set(pids.get("limit")):
        n = _int(pids["limit"], R + ".pids.limit")
        out.append(Write("pids", "pids.max", "max" if n < 0 else str(n), R + ".pids.limit", noop=n < 0))
    out += _blkio_v1(_d(res.get("blockIO")))
    out += _hugepages(res, 1)
    net = _d(res.get("network"))
    if _set(net.get("classID")):
        out.append(Write("net_cls", "net_cls.classid", str(_int(net["classID"], R + ".network.classID", 0)),
                         R + ".network.classID"))
    for i, p in enumerate(net.get("priorities") or ()):
        p = _d(p)
        f = "%s.network.priorities[%d]" % (R, i)
        out.append(Write("net_prio", "net_prio.ifpriomap",
                         "%s %d" % (p.get("name"), _int(p.get("priority"), f + ".priority", 0)), f))
    out += _rdma(res)
    if _set(res.get("unified")):
        raise ConfigError(R + ".unified", "cgroup v2 keys cannot be applied: this host's controllers "
                          "are on cgroup v1")
    return out


def _weight(v, field, lo=10, hi=1000):
    return _int(v, field, lo, hi)


def _dev(d, field):
    d = _d(d)
    return "%d:%d" % (_int(d.get("major"), field + ".major", 0), _int(d.get("minor"), field + ".minor", 0))


THROTTLE = (("throttleReadBpsDevice", "read_bps_device", "rbps"),
            ("throttleWriteBpsDevice", "write_bps_device", "wbps"),
            ("throttleReadIOPSDevice", "read_iops_device", "riops"),
            ("throttleWriteIOPSDevice", "write_iops_device", "wiops"))


def _blkio_v1(b):
    out = []
    f = R + ".blockIO."
    if _set(b.get("weight")):
        w = str(_weight(b["weight"], f + "weight"))
        out.append(Write("blkio", ("blkio.weight", "blkio.bfq.weight"), w, f + "weight"))
    if _set(b.get("leafWeight")):
        out.append(Write("blkio", "blkio.leaf_weight", str(_weight(b["leafWeight"], f + "leafWeight")),
                         f + "leafWeight"))
    for i, wd in enumerate(b.get("weightDevice") or ()):
        fi = "%sweightDevice[%d]" % (f, i)
        dev = _dev(wd, fi)
        if _set(_d(wd).get("weight")):
            out.append(Write("blkio", ("blkio.weight_device", "blkio.bfq.weight_device"),
                             "%s %d" % (dev, _weight(wd["weight"], fi + ".weight")), fi + ".weight"))
        if _set(_d(wd).get("leafWeight")):
            out.append(Write("blkio", "blkio.leaf_weight_device",
                             "%s %d" % (dev, _weight(wd["leafWeight"], fi + ".leafWeight")), fi + ".leafWeight"))
    for key, name, _ in THROTTLE:
        for i, t in enumerate(b.get(key) or ()):
            fi = "%s%s[%d]" % (f, key, i)
            out.append(Write("blkio", "blkio.throttle." + name,
                             "%s %d" % (_dev(t, fi), _int(_d(t).get("rate"), fi + ".rate", 0)), fi))
    return out


# -- v2 ----------------------------------------------------------------------
def cpu_shares_to_weight(shares):
    """cgroup v1 cpu.shares [2, 262144] -> v2 cpu.weight [1, 10000], as runc
    (opencontainers/cgroups since v0.0.2) and crun convert now: a quadratic
    in log2(shares) through both ends and the defaults (1024 -> 100), where
    the spec's linear formula gave 39 for the default."""
    import math

    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    l = math.log2(shares)
    return math.ceil(10 ** ((l * l + 125 * l) / 612.0 - 7.0 / 34.0))


def blkio_weight_to_io_weight(w):
    """v1 blkio weight [10, 1000] -> v2 io.weight [1, 10000]."""
    return 1 + ((w - 10) * 9999) // 990


def swap_v2(swap, limit, field):
    """v1 memory+swap -> v2 memory.swap.max (swap alone)."""
    if swap == -1:
        return "max"
    if not _set(limit) or limit == -1:
        raise ConfigError(field, "a swap limit needs a memory limit (memory.limit)")
    if swap < limit:
        raise ConfigError(field, "%d is below memory.limit %d: swap is memory plus swap" % (swap, limit))
    return str(swap - limit)


def plan_v2(res, warn=None):
    res = _d(res)
    out = []
    mem = _d(res.get("memory"))
    if mem:
        f = R + ".memory."
        _ignore_kernel(mem, f, warn)
        lim = mem.get("limit")
        if _set(lim):
            lim = _limit(lim, f + "limit")
            out.append(Write("memory", "memory.max", "max" if lim == -1 else str(lim), f + "limit",
                             noop=lim == -1))
        if _set(mem.get("swap")):
            s = _limit(mem["swap"], f + "swap")
            out.append(Write("memory", "memory.swap.max", swap_v2(s, lim, f + "swap"), f + "swap",
                             noop=s == -1))
        if _set(mem.get("reservation")):
            r = _limit(mem["reservation"], f + "reservation")
            out.append(Write("memory", "memory.low", "max" if r == -1 else str(r), f + "reservation"))
        if _set(mem.get("kernelTCP")):
            _unsupported(f + "kernelTCP")
        if mem.get("swappiness") not in (None, -1):
            _unsupported(f + "swappiness")
        if mem.get("disableOOMKiller"):
            _unsupported(f + "disableOOMKiller")
        if mem.get("useHierarchy") is False:
            raise ConfigError(f + "useHierarchy", "cgroup v2 is always hierarchical")
    cpu = _d(res.get("cpu"))
    if cpu:
        f = R + ".cpu."
        if _set(cpu.get("shares")):
            s = _int(cpu["shares"], f + "shares", 2, 262144)
            out.append(Write("cpu", "cpu.weight", str(cpu_shares_to_weight(s)), f + "shares"))
        q, p = cpu.get("quota"), cpu.get("period")
        if _set(q) or _set(p):
            if _set(q):
                q = _int(q, f + "quota", -1)
                if q != -1 and q < 1000:
                    raise ConfigError(f + "quota", "%d is out of range: must be -1 or >= 1000" % q)
            if _set(p):
                p = _int(p, f + "period", 1000, 1000000)
            qs = ("max" if q == -1 else str(q)) if _set(q) else None
            if qs is not None and _set(p):
                val = "%s %d" % (qs, p)
            elif qs is not None:
                val = qs
            else:
                def val(d, p=p):   # keep the current quota
                    from pyoci import fastos as os

                    try:
                        with open(os.path.join(d, "cpu.max")) as fh:
                            cur = fh.read().split()[0]
                    except (OSError, IndexError):
                        cur = "max"
                    return "%s %d" % (cur, p)
            out.append(Write("cpu", "cpu.max", val, f + ("quota" if _set(q) else "period")))
        if _set(cpu.get("burst")):
            out.append(Write("cpu", "cpu.max.burst", str(_int(cpu["burst"], f + "burst", 0)), f + "burst"))
        if _set(cpu.get("realtimePeriod")):
            _unsupported(f + "realtimePeriod")
        if _set(cpu.get("realtimeRuntime")):
            _unsupported(f + "realtimeRuntime")
        if cpu.get("idle") is not None and cpu.get("idle") != 0:
            out.append(Write("cpu", "cpu.idle", str(_int(cpu["idle"], f + "idle", 0, 1)), f + "idle"))
        for k in ("cpus", "mems"):
            if _set(cpu.get(k)):
                out.append(Write("cpuset", "cpuset." + k, cpu[k], f + k,
                                 check=_cpuset_check(f + k, cpu[k], "cpuset.%s.effective" % k)))
    pids = _d(res.get("pids"))
    if _set(pids.get("limit")):
        n = _int(pids["limit"], R + ".pids.limit")
        out.append(Write("pids", "pids.max", "max" if n < 0 else str(n), R + ".pids.limit", noop=n < 0))
    b = _d(res.get("blockIO"))
    if b:
        f = R + ".blockIO."
        if _set(b.get("weight")):
            w = _weight(b["weight"], f + "weight")
            out.append(Write("io", ("io.bfq.weight", "io.weight"),
                             (str(w), str(blkio_weight_to_io_weight(w))), f + "weight"))
        if _set(b.get("leafWeight")):
            _unsupported(f + "leafWeight")
        for i, wd in enumerate(b.get("weightDevice") or ()):
            fi = "%sweightDevice[%d]" % (f, i)
            dev = _dev(wd, fi)
            if _set(_d(wd).get("weight")):
                w = _weight(wd["weight"], fi + ".weight")
                out.append(Write("io", ("io.bfq.weight", "io.weight"),
                                 ("%s %d" % (dev, w), "%s %d" % (dev, blkio_weight_to_io_weight(w))),
                                 fi + ".weight"))
            if _set(_d(wd).get("leafWeight")):
                _unsupported(fi + ".leafWeight")
        for key, _, name in THROTTLE:
            for i, t in enumerate(b.get(key) or ()):
                fi = "%s%s[%d]" % (f, key, i)
                rate = _int(_d(t).get("rate"), fi + ".rate", 0)
                out.append(Write("io", "io.max", "%s %s=%s" % (_dev(t, fi), name, rate or "max"), fi))
    out += _hugepages(res, 2)
    net = _d(res.get("network"))
    if _set(net.get("classID")):
        _unsupported(R + ".network.classID", "cgroup v2 (no net_cls controller)")
    if _set(net.get("priorities")):
        _unsupported(R + ".network.priorities", "cgroup v2 (no net_prio controller)")
    out += _rdma(res)
    for key, value in sorted(_d(res.get("unified")).items()):
        f = "%s.unified.%s" % (R, key)
        if not key or "/" in key or key.startswith(".") or "." not in key:
            raise ConfigError(f, "%r is not a cgroup v2 file name" % key)
        if not isinstance(value, str):
            raise ConfigError(f, "must be a string")
        ctrl = key.split(".", 1)[0]
        out.append(Write("" if ctrl == "cgroup" else ctrl, key, value, f))
    return out


def plan(res, version, warn=None):
    return plan_v1(res, warn) if version == 1 else plan_v2(res, warn)
