"""The container's cgroup statistics in runc's `events` JSON layout
(runc's types.Stats field names and order; Go's omitempty mirrored:
zero numbers and empty lists of omitempty fields are left out)."""
import os

MAX_U64 = (1 << 64) - 1


def _read(d, name):
    if d is None:
        return None
    try:
        with open(os.path.join(d, name)) as f:
            return f.read()
    except OSError:
        return None


def _int(d, name, default=0):
    s = _read(d, name)
    if s is None:
        return default
    s = s.strip()
    if s == "max":
        return MAX_U64
    try:
        return int(s)
    except ValueError:
        return default


def _kv(d, name):
    out = {}
    for line in (_read(d, name) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                pass
    return out


def _omit(d, keys):
    for k in keys:
        if not d.get(k):
            d.pop(k, None)
    return d


def _cpulist(s):
    out = []
    for part in (s or "").strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _page_sizes():
    from pyoci.linux.cgroups.resources import host_page_sizes

    def key(s):
        return int(s[:-2]) << {"KB": 10, "MB": 20, "GB": 30}[s[-2:]]

    return sorted(host_page_sizes(), key=key)


def collect(cg):
    """Stats of Cgroup cg: runc's `data` object."""
    return _v1(cg) if cg.version() == 1 else _v2(cg)


def _usage(total, percpu, pk, pu, kernel, user):
    return _omit({"total": total, "percpu": percpu, "percpu_kernel": pk, "percpu_user": pu,
                  "kernel": kernel, "user": user}, ("total", "percpu", "percpu_kernel", "percpu_user"))


def _entry(d, prefix):
    return _omit({"limit": _int(d, prefix + "limit_in_bytes"), "usage": _int(d, prefix + "usage_in_bytes"),
                  "max": _int(d, prefix + "max_usage_in_bytes"), "failcnt": _int(d, prefix + "failcnt")},
                 ("usage", "max"))


def _blkio_lines(d, name):
    out = []
    for line in (_read(d, name) or "").splitlines():
        f = line.split()
        if len(f) == 3 and ":" in f[0]:
            ma, mi = f[0].split(":")
            out.append(_omit({"major": int(ma), "minor": int(mi), "op": f[1], "value": int(f[2])},
                             ("major", "minor", "op", "value")))
    return out


def _v1(cg):
    cpu_d, acct_d = cg.dir_for("cpu"), cg.dir_for("cpuacct")
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    st = _kv(acct_d, "cpuacct.stat")
    pk, pu = [], []
    for line in (_read(acct_d, "cpuacct.usage_all") or "").splitlines()[1:]:
        f = line.split()
        if len(f) == 3:
            pu.append(int(f[1]))
            pk.append(int(f[2]))
    percpu = [int(x) for x in (_read(acct_d, "cpuacct.usage_percpu") or "").split()]
    thr = _kv(cpu_d, "cpu.stat")
    cpu = {"usage": _usage(_int(acct_d, "cpuacct.usage"), percpu, pk, pu,
                           st.get("system", 0) * 10**9 // hz, st.get("user", 0) * 10**9 // hz),
           "throttling": _omit({"periods": thr.get("nr_periods", 0), "throttledPeriods": thr.get("nr_throttled", 0),
                                "throttledTime": thr.get("throttled_time", 0)},
                               ("periods", "throttledPeriods", "throttledTime"))}
    cs = cg.dir_for("cpuset")
    cpuset = {}
    if cs:
        cpuset = _omit({"cpus": _cpulist(_read(cs, "cpuset.cpus")),
                        "cpu_exclusive": _int(cs, "cpuset.cpu_exclusive"),
                        "mems": _cpulist(_read(cs, "cpuset.mems")),
                        "mem_hardwall": _int(cs, "cpuset.mem_hardwall"),
                        "mem_exclusive": _int(cs, "cpuset.mem_exclusive"),
                        "memory_migrate": _int(cs, "cpuset.memory_migrate"),
                        "memory_spread_page": _int(cs, "cpuset.memory_spread_page"),
                        "memory_spread_slab": _int(cs, "cpuset.memory_spread_slab"),
                        "memory_pressure": _int(cs, "cpuset.memory_pressure"),
                        "sched_load_balance": _int(cs, "cpuset.sched_load_balance"),
                        "sched_relax_domain_level": _int(cs, "cpuset.sched_relax_domain_level")},
                       ("cpus", "mems"))
    m = cg.dir_for("memory")
    raw = _kv(m, "memory.stat")
    memory = {"cache": raw.get("cache", 0), "usage": _entry(m, "memory."), "swap": _entry(m, "memory.memsw."),
              "kernel": _entry(m, "memory.kmem."), "kernelTCP": _entry(m, "memory.kmem.tcp."),
              "raw": dict(sorted(raw.items()))}
    _omit(memory, ("cache", "raw"))
    p = cg.dir_for("pids")
    lim = _int(p, "pids.max")
    pids = _omit({"current": _int(p, "pids.current"), "limit": 0 if lim == MAX_U64 else lim}, ("current", "limit"))
    b = cg.dir_for("blkio")
    blkio = {}
    for prefix in ("blkio.", "blkio.bfq.", "blkio.throttle."):
        if _read(b, prefix + "io_serviced_recursive") is not None:
            blkio = _omit({"ioServiceBytesRecursive": _blkio_lines(b, prefix + "io_service_bytes_recursive"),
                           "ioServicedRecursive": _blkio_lines(b, prefix + "io_serviced_recursive")},
                          ("ioServiceBytesRecursive", "ioServicedRecursive"))
            break
    h = cg.dir_for("hugetlb")
    hugetlb = {}
    if h:
        for ps in _page_sizes():
            pre = "hugetlb.%s." % ps
            hugetlb[ps] = _omit({"usage": _int(h, pre + "usage_in_bytes"), "max": _int(h, pre + "max_usage_in_bytes"),
                                 "failcnt": _int(h, pre + "failcnt")}, ("usage", "max"))
    return {"cpu": cpu, "cpuset": cpuset, "memory": memory, "pids": pids, "blkio": blkio, "hugetlb": hugetlb,
            "intel_rdt": {}, "network_interfaces": None}


def _v2(cg):
    d = cg.paths.get("")
    st = _kv(d, "cpu.stat")
    cpu = {"usage": _usage(st.get("usage_usec", 0) * 1000, [], [], [], st.get("system_usec", 0) * 1000,
                           st.get("user_usec", 0) * 1000),
           "throttling": _omit({"periods": st.get("nr_periods", 0), "throttledPeriods": st.get("nr_throttled", 0),
                                "throttledTime": st.get("throttled_usec", 0) * 1000},
                               ("periods", "throttledPeriods", "throttledTime"))}
    cpuset = {}
    if _read(d, "cpuset.cpus.effective") is not None:
        cpuset = _omit({"cpus": _cpulist(_read(d, "cpuset.cpus.effective")), "cpu_exclusive": 0,
                        "mems": _cpulist(_read(d, "cpuset.mems.effective")), "mem_hardwall": 0,
                        "mem_exclusive": 0, "memory_migrate": 0, "memory_spread_page": 0,
                        "memory_spread_slab": 0, "memory_pressure": 0, "sched_load_balance": 0,
                        "sched_relax_domain_level": 0}, ("cpus", "mems"))
    raw = _kv(d, "memory.stat")
    ev = _kv(d, "memory.events")
    usage = _omit({"limit": _int(d, "memory.max", MAX_U64), "usage": _int(d, "memory.current"),
                   "max": _int(d, "memory.peak"), "failcnt": ev.get("max", 0)}, ("usage", "max"))
    swap = _omit({"limit": _int(d, "memory.swap.max", MAX_U64), "usage": _int(d, "memory.swap.current"),
                  "max": _int(d, "memory.swap.peak"), "failcnt": _kv(d, "memory.swap.events").get("max", 0)},
                 ("usage", "max"))
    memory = _omit({"cache": raw.get("file", 0), "usage": usage, "swap": swap,
                    "kernel": {"limit": 0, "failcnt": 0}, "kernelTCP": {"limit": 0, "failcnt": 0},
                    "raw": dict(sorted(raw.items()))}, ("cache", "raw"))
    lim = _int(d, "pids.max")
    pids = _omit({"current": _int(d, "pids.current"), "limit": 0 if lim == MAX_U64 else lim}, ("current", "limit"))
    sb, sv = [], []
    for line in (_read(d, "io.stat") or "").splitlines():
        f = line.split()
        if not f or ":" not in f[0]:
            continue
        ma, mi = (int(x) for x in f[0].split(":"))
        kv = dict(x.split("=", 1) for x in f[1:] if "=" in x)
        for key, op, lst in (("rbytes", "Read", sb), ("wbytes", "Write", sb), ("rios", "Read", sv),
                             ("wios", "Write", sv)):
            if key in kv:
                lst.append(_omit({"major": ma, "minor": mi, "op": op, "value": int(kv[key])},
                                 ("major", "minor", "op", "value")))
    blkio = _omit({"ioServiceBytesRecursive": sb, "ioServicedRecursive": sv},
                  ("ioServiceBytesRecursive", "ioServicedRecursive"))
    hugetlb = {}
    if _read(d, "hugetlb.2MB.current") is not None or any(
            _read(d, "hugetlb.%s.current" % p) is not None for p in _page_sizes()):
        for ps in _page_sizes():
            pre = "hugetlb.%s." % ps
            hugetlb[ps] = _omit({"usage": _int(d, pre + "current"), "max": 0,
                                 "failcnt": _kv(d, pre + "events").get("max", 0)}, ("usage", "max"))
    return {"cpu": cpu, "cpuset": cpuset, "memory": memory, "pids": pids, "blkio": blkio, "hugetlb": hugetlb,
            "intel_rdt": {}, "network_interfaces": None}


def oom_count(cg):
    """How many times the cgroup ran out of memory: v1 memory.oom_control
    oom_kill, plus one while under_oom is set (the OOM killer disabled:
    the tasks wait instead of dying); v2 memory.events oom."""
    if cg.version() == 1:
        kv = _kv(cg.dir_for("memory"), "memory.oom_control")
        return kv.get("oom_kill", 0) + kv.get("under_oom", 0)
    kv = _kv(cg.paths.get(""), "memory.events")
    return max(kv.get("oom", 0), kv.get("oom_kill", 0))
