"""The container process's own settings that Python applies before it
becomes pyoci-init: rlimits, the program's path, HOME, cwd, and the
scheduling settings (process.scheduler, process.ioPriority,
process.execCPUAffinity, linux.personality, linux.memoryPolicy).

Every setting here survives execve, so applying it in the runtime's last
Python step reaches the user's program; each function takes the `process`
(or `linux`) object so that `exec` can reuse it. They run while the
process still has all of the runtime's capabilities (SCHED_FIFO, a raised
rlimit or IOPRIO_CLASS_RT need CAP_SYS_NICE / CAP_SYS_RESOURCE / CAP_SYS_ADMIN),
before pyoci-init drops them.

`parse_*` functions validate and convert, and raise ConfigError naming
the field: create calls them in the parent, before anything is built, so
bad input leaves nothing behind.
"""
import stat

from pyoci import fastos as os
from pyoci.errors import ConfigError, PyociError

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
RLIM_INFINITY = 0xFFFFFFFFFFFFFFFF



def rlimits(process):
    """Validated [(resource number, soft, hard)] from process.rlimits."""
    out = []
    for i, r in enumerate(process.get("rlimits") or ()):
        t = r.get("type")
        if t not in RLIMITS:
            raise ConfigError("process.rlimits[%d].type" % i, "unknown rlimit type %r" % (t,))
        soft, hard = r.get("soft"), r.get("hard")
        for k, v in (("soft", soft), ("hard", hard)):
            if not isinstance(v, int) or v < 0 or v > RLIM_INFINITY:
                raise ConfigError("process.rlimits[%d].%s" % (i, k), "must be an unsigned 64-bit integer")
        out.append((RLIMITS[t], soft, hard))
    return out


def set_rlimits(limits):
    import resource

    for res, soft, hard in limits:
        conv = lambda v: resource.RLIM_INFINITY if v == RLIM_INFINITY else v  # noqa: E731
        try:
            resource.setrlimit(res, (conv(soft), conv(hard)))
        except (OSError, ValueError) as e:
            raise rlimit_error(res, soft, hard, e)


def rlimit_error(res, soft, hard, e):
    """runc's wording, plus the field and what is missing."""
    why = "operation not permitted" if getattr(e, "errno", None) == 1 or isinstance(e, ValueError) \
        else (e.strerror or str(e)).lower()
    name = next((k for k, v in RLIMITS.items() if v == res), str(res))
    hint = ""
    if why == "operation not permitted":
        hint = ", a hard limit above the runtime's own needs CAP_SYS_RESOURCE"
        if res == RLIMITS["RLIMIT_NOFILE"]:
            hint += " and at most fs.nr_open"
    return PyociError("error setting rlimits for ready process: error setting rlimit type %d: %s "
                      "(process.rlimits %s soft %d hard %d%s)" % (res, why, name, soft, hard, hint))


def env_get(env, key):
    for e in env:
        k, eq, v = e.partition("=")
        if k == key and eq:
            return v
    return None


def lookup(arg0, env, cwd="/"):
    """The path of the program to run, found as runc finds it: a name with a
    slash as is, anything else along the container's PATH. Runs after
    pivot_root, so it sees the container's filesystem."""
    if "/" in arg0:
        path = arg0 if arg0.startswith("/") else os.path.join(cwd, arg0)
        try:
            st = os.stat(path)
        except OSError as e:
            raise PyociError('exec: "%s": stat %s: %s' % (arg0, arg0, os.strerror(e.errno).lower()))
        if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
            raise PyociError('exec: "%s": permission denied' % arg0)
        return path
    # the container's PATH only: none in process.env finds nothing, as with
    # runc (Go's LookPath over the container's environment)
    search = env_get(env, "PATH") or ""
    for d in (search.split(":") if search else ()):
        p = os.path.join(d or ".", arg0)
        try:
            st = os.stat(p)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return p
    raise PyociError('exec: "%s": executable file not found in $PATH' % arg0)


def home_of(uid):
    """HOME for a uid from the container's /etc/passwd; "/" if absent."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def enter_cwd(cwd):
    """chdir to process.cwd inside the container, creating it if missing."""
    try:
        os.makedirs(cwd, 0o755, exist_ok=True)
        os.chdir(cwd)
    except OSError as e:
        raise PyociError("process.cwd %s: %s" % (cwd, e.strerror))
    check_cwd_inside(cwd)


def check_cwd_inside(cwd):
    """The working directory must be reachable from the container's root:
    a cwd reached through a leaked fd (/proc/self/fd/N, CVE-2024-21626) is
    not, and the kernel's getcwd says so ("(unreachable)", or ENOENT)."""
    try:
        where = os.getcwd()
    except OSError:
        where = ""
    if not where.startswith("/"):
        raise PyociError("process.cwd %s: outside the container's root" % cwd)


# -- scheduling ---------------------------------------------------------------
SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3, "SCHED_ISO": 4,
                  "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
               "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10,
               "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20, "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}
PERSONALITY_FLAGS = {"UNAME26": 0x0020000, "ADDR_NO_RANDOMIZE": 0x0040000, "FDPIC_FUNCPTRS": 0x0080000,
                     "MMAP_PAGE_ZERO": 0x0100000, "ADDR_COMPAT_LAYOUT": 0x0200000,
                     "READ_IMPLIES_EXEC": 0x0400000, "ADDR_LIMIT_32BIT": 0x0800000,
                     "SHORT_INODE": 0x1000000, "WHOLE_SECONDS": 0x2000000, "STICKY_TIMEOUTS": 0x4000000,
                     "ADDR_LIMIT_3GB": 0x8000000}
MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3, "MPOL_LOCAL": 4,
              "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_STATIC_NODES": 1 << 15, "MPOL_F_RELATIVE_NODES": 1 << 14, "MPOL_F_NUMA_BALANCING": 1 << 13}


def parse_list(text, path, what="CPU"):
    """A kernel list ("0-3,5,7-8") as a sorted list of numbers."""
    out = set()
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(path, "an empty %s list" % what)
    for part in text.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if dash else a
        except ValueError:
            raise ConfigError(path, "%r is not a %s list (e.g. \"0-3,5\")" % (text, what))
        if a < 0 or b < a or b >= 1 << 16:
            raise ConfigError(path, "%r: bad range %r" % (text, part))
        out.update(range(a, b + 1))
    return sorted(out)


def parse_scheduler(sched, path="process.scheduler"):
    """(policy, flags, nice, priority, runtime, deadline, period) or None."""
    if not sched:
        return None
    policy = SCHED_POLICIES.get(sched.get("policy"))
    if policy is None:
        raise ConfigError(path + ".policy", "unknown scheduling policy %r" % (sched.get("policy"),))
    flags = 0
    for i, f in enumerate(sched.get("flags") or ()):
        if f not in SCHED_FLAGS:
            raise ConfigError("%s.flags[%d]" % (path, i), "unknown scheduler flag %r" % (f,))
        flags |= SCHED_FLAGS[f]
    nice, prio = sched.get("nice", 0), sched.get("priority", 0)
    if not -20 <= nice <= 19:
        raise ConfigError(path + ".nice", "%d is out of range (-20 to 19)" % nice)
    if policy in (1, 2):
        if not 1 <= prio <= 99:
            raise ConfigError(path + ".priority", "SCHED_FIFO and SCHED_RR need a priority from 1 to 99")
    elif prio:
        raise ConfigError(path + ".priority", "only SCHED_FIFO and SCHED_RR take a priority")
    rt, dl, per = sched.get("runtime", 0), sched.get("deadline", 0), sched.get("period", 0)
    if policy == 6 and not (rt and dl):
        raise ConfigError(path, "SCHED_DEADLINE needs runtime and deadline")
    if policy != 6 and (rt or dl or per):
        raise ConfigError(path, "runtime, deadline and period are for SCHED_DEADLINE only")
    return (policy, flags, nice, prio, rt, dl, per)


def parse_ioprio(io, path="process.ioPriority"):
    if not io:
        return None
    cls = IOPRIO_CLASSES.get(io.get("class"))
    if cls is None:
        raise ConfigError(path + ".class", "unknown I/O priority class %r" % (io.get("class"),))
    prio = io.get("priority", 0)
    if not 0 <= prio <= 7:
        raise ConfigError(path + ".priority", "%d is out of range (0 to 7)" % prio)
    return (cls << 13) | prio


def parse_personality(pers, path="linux.personality"):
    if not pers:
        return None
    dom = pers.get("domain", "LINUX")
    if dom not in PERSONALITY_DOMAINS:
        raise ConfigError(path + ".domain", "unknown personality domain %r" % (dom,))
    value = PERSONALITY_DOMAINS[dom]
    for i, f in enumerate(pers.get("flags") or ()):
        if f not in PERSONALITY_FLAGS:
            raise ConfigError("%s.flags[%d]" % (path, i), "unknown personality flag %r" % (f,))
        value |= PERSONALITY_FLAGS[f]
    return value


def parse_affinity(aff, path="process.execCPUAffinity"):
    """(initial cpus or None, final cpus or None)."""
    if not aff:
        return None, None
    return tuple(parse_list(aff[k], "%s.%s" % (path, k)) if aff.get(k) else None
                 for k in ("initial", "final"))


def parse_mempolicy(mp, path="linux.memoryPolicy"):
    """(mode with flags, set of nodes) or None."""
    if not mp:
        return None
    mode = MPOL_MODES.get(mp.get("mode"))
    if mode is None:
        raise ConfigError(path + ".mode", "unknown memory policy mode %r" % (mp.get("mode"),))
    nodes = mp.get("nodes") or ""
    if mode in (0, 4):
        if nodes:
            raise ConfigError(path + ".nodes", "%s takes no nodes" % mp["mode"])
        node_list = []
    else:
        node_list = parse_list(nodes, path + ".nodes", "node") if nodes else []
        if not node_list and mode != 1:
            raise ConfigError(path + ".nodes", "%s needs nodes" % mp["mode"])
    flags = 0
    for i, f in enumerate(mp.get("flags") or ()):
        if f not in MPOL_FLAGS:
            raise ConfigError("%s.flags[%d]" % (path, i), "unknown memory policy flag %r" % (f,))
        flags |= MPOL_FLAGS[f]
    if flags & MPOL_FLAGS["MPOL_F_STATIC_NODES"] and flags & MPOL_FLAGS["MPOL_F_RELATIVE_NODES"]:
        raise ConfigError(path + ".flags", "MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other")
    return (mode | flags, node_list)


class Settings:
    """The parsed scheduling settings of one process (create or exec)."""

    def __init__(self, process, linux, log=None):
        process, linux = process or {}, linux or {}
        self.scheduler = parse_scheduler(process.get("scheduler"))
        self.ioprio = parse_ioprio(process.get("ioPriority"))
        self.initial_cpus, self.final_cpus = parse_affinity(process.get("execCPUAffinity"))
        self.personality = parse_personality(linux.get("personality"))
        self.mempolicy = parse_mempolicy(linux.get("memoryPolicy"))
        self.labels = []   # LSM exec labels this host applies (pyoci.linux.lsm.plan)
        if process.get("apparmorProfile") or process.get("selinuxLabel"):
            from pyoci.linux import lsm

            self.labels = lsm.plan(process, log)

    def apply_initial(self):
        """First thing in the container's process, before the move into the
        container's cgroup where it can be (the spec's "initial": where the
        runtime's process runs before the transition; a cpuset cgroup may
        reset it on the move); "final" is applied last, by apply()."""
        if self.initial_cpus is not None:
            _affinity(self.initial_cpus, "process.execCPUAffinity.initial")

    def apply(self):
        """The runtime's last Python step before pyoci-init."""
        from pyoci.linux import sys as lsys

        if self.scheduler is not None:
            try:
                lsys.sched_setattr(*self.scheduler)
            except OSError as e:
                why = os.strerror(e.errno)
                if e.errno == 1 and self.scheduler[0] in (1, 2, 6):
                    why += (" (a real-time policy needs real-time runtime in the container's cpu cgroup: "
                            "linux.resources.cpu.realtimeRuntime, on a host with cpu.rt_runtime_us)")
                raise PyociError("process.scheduler: sched_setattr: %s" % why)
        if self.ioprio is not None:
            try:
                lsys.ioprio_set(self.ioprio)
            except OSError as e:
                raise PyociError("process.ioPriority: ioprio_set: %s" % os.strerror(e.errno))
        if self.mempolicy is not None:
            try:
                lsys.set_mempolicy(*self.mempolicy)
            except OSError as e:
                raise PyociError("linux.memoryPolicy: set_mempolicy: %s" % os.strerror(e.errno))
        if self.personality is not None:
            try:
                lsys.personality(self.personality)
            except OSError as e:
                raise PyociError("linux.personality: %s" % os.strerror(e.errno))
        if self.final_cpus is not None:
            _affinity(self.final_cpus, "process.execCPUAffinity.final")


def _affinity(cpus, path):
    try:
        os.sched_setaffinity(0, cpus)
    except OSError as e:
        raise PyociError("%s: sched_setaffinity %s: %s" % (path, ",".join(map(str, cpus)), os.strerror(e.errno)))
