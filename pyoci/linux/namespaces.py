"""Namespaces: which to create, which to join by path, and in what order."""

from pyoci import fastos as os
from pyoci.errors import ConfigError, PyociError
from pyoci.linux import sys as lsys

FLAGS = {
    "pid": lsys.CLONE_NEWPID,
    "network": lsys.CLONE_NEWNET,
    "mount": lsys.CLONE_NEWNS,
    "ipc": lsys.CLONE_NEWIPC,
    "uts": lsys.CLONE_NEWUTS,
    "user": lsys.CLONE_NEWUSER,
    "cgroup": lsys.CLONE_NEWCGROUP,
    "time": lsys.CLONE_NEWTIME,
}

# /proc/PID/ns/<name> for each spec type
PROC_NAMES = {
    "pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc",
    "uts": "uts", "user": "user", "cgroup": "cgroup", "time": "time",
}

# The user namespace first (it owns the others), the mount namespace last
# (joining it changes how the remaining paths resolve; they are opened
# before any setns anyway).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "time", "cgroup", "mount")


class Plan:
    """new: set of types to create; join: list of (type, path) in join order."""

    def __init__(self, new, join):
        self.new = new
        self.join = join
        self.id_maps = None   # (uid maps, gid maps) of a new user namespace

    def has(self, t):
        """Whether the container gets a namespace of its own of type t."""
        return t in self.new or any(j[0] == t for j in self.join)

    @property
    def unshare_flags(self):
        flags = 0
        for t in self.new:
            if t != "user":
                flags |= FLAGS[t]
        return flags


def plan(config):
    new, join = set(), {}
    for i, ns in enumerate((config.get("linux") or {}).get("namespaces") or ()):
        t = ns.get("type")
        if t not in FLAGS:
            raise ConfigError("linux.namespaces[%d].type" % i, "unknown namespace type %r" % (t,))
        if t in new or t in join:
            raise ConfigError("linux.namespaces[%d].type" % i, "duplicate namespace %r" % t)
        path = ns.get("path")
        if path:
            join[t] = path
        else:
            new.add(t)
    return Plan(new, [(t, join[t]) for t in JOIN_ORDER if t in join])


def open_join_fds(ns_plan):
    """Open every namespace path to join (before any setns). Returns
    [(type, fd)]."""
    fds = []
    try:
        for t, path in ns_plan.join:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as e:
                raise PyociError("open %s namespace %s: %s" % (t, path, e.strerror))
            fds.append((t, fd))
    except BaseException:
        for _, fd in fds:
            os.close(fd)
        raise
    return fds


def join(fds):
    for t, fd in fds:
        try:
            lsys.setns(fd, FLAGS[t])
        except OSError as e:
            raise PyociError("join %s namespace: %s" % (t, e.strerror))
        os.close(fd)


def same_as_host(t, pid="self"):
    """True when /proc/PID/ns/<t> is the namespace the runtime runs in."""
    try:
        return os.stat("/proc/%s/ns/%s" % (pid, PROC_NAMES[t])) == os.stat("/proc/1/ns/%s" % PROC_NAMES[t])
    except OSError:
        return False


def set_time_offsets(offsets):
    """linux.timeOffsets, written to /proc/self/timens_offsets between
    unshare(CLONE_NEWTIME) and the first process that enters the new
    namespace (the caller's next child)."""
    from pyoci.linux import procfs

    lines = []
    for clock in ("monotonic", "boottime"):
        o = (offsets or {}).get(clock)
        if o:
            lines.append("%s %d %d\n" % (clock, o.get("secs", 0), o.get("nanosecs", 0)))
    for line in lines:
        try:
            procfs.write("/proc/self/timens_offsets", line)
        except OSError as e:
            raise PyociError("linux.timeOffsets.%s: %s" % (line.split()[0], e.strerror))
