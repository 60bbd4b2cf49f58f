"""The systemd cgroup driver (--systemd-cgroup), for cgroup v2 hosts.

The container's cgroup is a transient scope that systemd makes and owns, as
runc's and crun's systemd drivers do: `linux.cgroupsPath` "slice:prefix:name"
names the unit <prefix>-<name>.scope in <slice> (default "" -> system.slice;
no cgroupsPath at all -> ":pyoci:<id>"), started with StartTransientUnit
(Delegate=yes, DefaultDependencies=no, accounting on, the container's first
process in PIDs). linux.resources become the unit's properties as runc sets
them, then every value is also written to the scope's cgroup files (the v2
cgroupfs driver's writes, which cover what systemd has no property for), and
pyoci's eBPF device filter is attached beside systemd's. `update` sets the
properties (SetUnitProperties, runtime) and writes the files; delete kills
what is left, stops the unit and resets it if it failed.

The scope lives while a process is in it: a created container's waiting
pyoci-init keeps it until delete, as runc's runc:[2:INIT] does.
"""
import os

from pyoci.errors import ConfigError, PyociError
from pyoci.linux import cgroups as _cg
from pyoci.linux.cgroups.v2 import V2

NOT_RUNNING = "systemd not running on this host, cannot use systemd cgroups manager"   # runc's words
RUN_DIR = "/run/systemd/system"        # exists iff systemd is PID 1 (sd_booted)
PRIVATE_SOCKET = "/run/systemd/private"
SYSTEM_BUS = "/run/dbus/system_bus_socket"
DEST = "org.freedesktop.systemd1"
OBJ = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
JOB_TIMEOUT = 30.0
INFINITY = (1 << 64) - 1                # systemd's USEC_INFINITY / CGROUP_LIMIT_MAX
DEFAULT_PERIOD = 100000
UNIT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\")
PROPERTY_ANNOTATION = "org.systemd.property."


def running():
    """systemd is the init system (sd_booted(3), as runc checks)."""
    import stat

    try:
        return stat.S_ISDIR(os.lstat(RUN_DIR).st_mode)
    except OSError:
        return False


# -- names -----------------------------------------------------------------------
def expand_slice(name):
    """test-a-b.slice -> /test.slice/test-a.slice/test-a-b.slice; -.slice -> /.
    None for a name that is not a valid slice."""
    if not name.endswith(".slice") or len(name) <= len(".slice") or "/" in name:
        return None
    base = name[:-len(".slice")]
    if base == "-":
        return "/"
    path, prefix = "", ""
    for part in base.split("-"):
        if not part:
            return None
        path += "/" + prefix + part + ".slice"
        prefix += part + "-"
    return path


def unit_for(cpath, cid):
    """(slice, unit) from linux.cgroupsPath, as runc reads it."""
    field = "linux.cgroupsPath"
    if not cpath:
        slice_, prefix, name = "", "pyoci", cid
    else:
        parts = cpath.split(":")
        if len(parts) != 3:
            raise ConfigError(field, "expected cgroupsPath to be of format \"slice:prefix:name\" for systemd "
                              "cgroups, got %r instead" % cpath)
        slice_, prefix, name = parts
    slice_ = slice_ or "system.slice"
    if expand_slice(slice_) is None:
        raise ConfigError(field, "invalid slice name %r: a systemd slice such as system.slice or "
                          "machine-pods.slice (no '/', no empty '-' parts)" % slice_)
    if name.endswith(".slice"):
        raise ConfigError(field, "%r names a slice: pyoci puts a container into a scope "
                          "(slice:prefix:name makes <prefix>-<name>.scope)" % cpath)
    unit = "%s-%s.scope" % (prefix, name)
    if not name or set(unit) - UNIT_CHARS or len(unit) > 255:
        raise ConfigError(field, "%r does not make a valid systemd unit name (%r): letters, digits "
                          "and \":-_.\\\" only, at most 255 characters" % (cpath, unit))
    return slice_, unit


# -- linux.resources -> unit properties ----------------------------------------------
def cpuset_bits(s, field):
    """'0-1,4' -> the AllowedCPUs/AllowedMemoryNodes byte mask (CPU 0 is the
    lowest bit of the first byte)."""
    from pyoci.linux.cgroups import resources as R

    n = 0
    for i in R.parse_cpuset(s, field):
        n |= 1 << i
    if not n:
        raise ConfigError(field, "%r is empty" % s)
    return n.to_bytes((n.bit_length() + 7) // 8, "little")


def cpu_quota(quota, period, props, version):
    """CPUQuotaPeriodUSec and CPUQuotaPerSecUSec (runc's addCPUQuota).
    systemd keeps the quota per second at 10 ms granularity: a quota that is
    not a whole percent of a CPU is rounded up, and the rounded quota is
    returned, to be written to cpu.max too."""
    if period:
        if version() >= 242:
            props.append(("CPUQuotaPeriodUSec", ("t", period)))
    if quota or period:
        per_sec = INFINITY
        if quota and quota > 0:
            per_sec = quota * 1000000 // (period or DEFAULT_PERIOD)
            if per_sec % 10000:
                per_sec = (per_sec // 10000 + 1) * 10000
                quota = per_sec * (period or DEFAULT_PERIOD) // 1000000
        props.append(("CPUQuotaPerSecUSec", ("t", per_sec)))
    return quota


def device_properties(rules):
    """DevicePolicy and DeviceAllow for the rules (resources.device_rules).
    systemd lists allowed devices only: it gets every device some rule
    allows, a superset where a later rule denies part of it; pyoci's eBPF
    filter, attached too, enforces the rules exactly (the access has to pass
    both)."""
    allow, allow_all = [], False
    for ok, t, major, minor, acc, _ in rules:
        if t == "a" and major is None and minor is None and not ok:
            allow, allow_all = [], False          # deny everything: start over
            continue
        if not ok:
            continue                              # the eBPF filter enforces it
        if t == "a" and acc == "rwm":
            allow_all = True
            continue
        for kind in (("char", "block") if t == "a" else ("char" if t == "c" else "block",)):
            if major is None:
                path = kind + "-*"
            elif minor is None:
                path = "%s-%d" % (kind, major)
            else:
                path = "/dev/%s/%d:%d" % (kind, major, minor)
            allow.append((path, acc))
    if allow_all:
        return [("DeviceAllow", ("a(ss)", [])), ("DevicePolicy", ("s", "auto"))]
    return [("DeviceAllow", ("a(ss)", [])), ("DevicePolicy", ("s", "strict")), ("DeviceAllow", ("a(ss)", allow))]


def _u64(v):
    return INFINITY if v == "max" else int(v)


def unified_properties(unified, version, warn):
    """runc's unifiedResToSystemdProps: the linux.resources.unified keys
    systemd has a property for (the files are written as well)."""
    props = []
    idle = str(unified.get("cpu.idle", "")).strip() == "1" and version() >= 252
    for key in sorted(unified):
        v = str(unified[key]).strip()
        field = "linux.resources.unified." + key
        try:
            if key == "cpu.idle":
                if idle:
                    props.append(("CPUWeight", ("t", 0)))     # systemd: CPUWeight=0 is cpu.idle=1
            elif key == "cpu.max":
                sv = v.split()
                if not 1 <= len(sv) <= 2:
                    raise ValueError(v)
                quota = 0 if sv[0] == "max" else int(sv[0])
                period = int(sv[1]) if len(sv) == 2 else DEFAULT_PERIOD
                cpu_quota(quota, period, props, version)
            elif key == "cpu.weight":
                if idle:
                    if warn:
                        warn("unable to apply both cpu.weight and cpu.idle to systemd, ignoring cpu.weight")
                    continue
                props.append(("CPUWeight", ("t", int(v))))
            elif key in ("cpuset.cpus", "cpuset.mems"):
                if version() >= 244:
                    props.append(("AllowedCPUs" if key == "cpuset.cpus" else "AllowedMemoryNodes",
                                  ("ay", cpuset_bits(v, field))))
            elif key in ("memory.high", "memory.low", "memory.min", "memory.max", "memory.swap.max"):
                name = {"memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin",
                        "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax"}[key]
                props.append((name, ("t", _u64(v))))
            elif key == "pids.max":
                props.append(("TasksMax", ("t", _u64(v) or 1)))
        except ValueError:
            raise ConfigError(field, "%r is not a value systemd can take for %s" % (v, key))
    return props


def resource_properties(res, version, warn=None, devices=None):
    """linux.resources -> [(property, (signature, value))] as runc's
    genV2ResourcesProperties, and the resources to write to the files
    (the CPU quota rounded as systemd rounds it). devices: the device rules
    to give systemd, or None to leave its device settings alone."""
    from pyoci.linux.cgroups import resources as R

    res = dict(res or {})
    R.plan_v2(res, warn)        # every value checked, the field named, before anything is asked of systemd
    props = list(device_properties(devices)) if devices is not None else []
    mem = res.get("memory") or {}
    lim = mem.get("limit") or 0
    if lim:
        props.append(("MemoryMax", ("t", INFINITY if lim < 0 else lim)))
    if mem.get("reservation"):
        r = mem["reservation"]
        props.append(("MemoryLow", ("t", INFINITY if r < 0 else r)))
    swap = mem.get("swap") or 0
    if swap == -1 or (lim == -1 and not swap):
        props.append(("MemorySwapMax", ("t", INFINITY)))
    elif swap:
        props.append(("MemorySwapMax", ("t", int(R.swap_v2(swap, lim, R.R + ".memory.swap")))))
    cpu = dict(res.get("cpu") or {})
    idle = cpu.get("idle") == 1 and version() >= 252
    if idle:
        props.append(("CPUWeight", ("t", 0)))
    if cpu.get("shares"):
        if idle:
            if warn:
                warn("unable to apply both CPUWeight and CpuIdle to systemd, ignoring CPUWeight")
        else:
            props.append(("CPUWeight", ("t", R.cpu_shares_to_weight(cpu["shares"]))))
    quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
    rounded = cpu_quota(quota, period, props, version)
    if quota > 0 and rounded != quota:
        cpu["quota"] = rounded
        res["cpu"] = cpu
    pids = res.get("pids") or {}
    if pids.get("limit"):
        props.append(("TasksMax", ("t", INFINITY if pids["limit"] < 0 else pids["limit"])))
    if cpu.get("cpus") or cpu.get("mems"):
        if version() >= 244:
            for k, name in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")):
                if cpu.get(k):
                    props.append((name, ("ay", cpuset_bits(cpu[k], "linux.resources.cpu." + k))))
    bw = (res.get("blockIO") or {}).get("weight")
    if bw:
        props.append(("IOWeight", ("t", R.blkio_weight_to_io_weight(bw))))
    if res.get("unified"):
        props += unified_properties(res["unified"], version, warn)
    return props, res


# -- org.systemd.property.* annotations ---------------------------------------------
_GV_INTS = {"byte": "y", "int16": "n", "uint16": "q", "int32": "i", "uint32": "u", "int64": "x",
            "uint64": "t", "handle": "h"}


def _gvariant(text):
    """A value in GVariant text format, the part of it unit properties use:
    numbers with or without a type word (uint64 5, @t 5, 5), booleans,
    quoted strings, string arrays (['a', 'b']; @as [] for an empty one),
    doubles. (signature, value), or ValueError."""
    t = text.strip()
    if t.startswith("@"):
        sig, _, rest = t[1:].partition(" ")
        if sig == "as" and rest.strip() == "[]":
            return "as", []
        sig_, val = _gvariant(rest)
        if sig_ == sig or (sig in _GV_INTS.values() and sig_ == "i") or (sig == "d" and sig_ == "i"):
            return sig, float(val) if sig == "d" else val
        raise ValueError(text)
    word, _, rest = t.partition(" ")
    if word in _GV_INTS and rest.strip():
        return _GV_INTS[word], int(rest.strip(), 0)
    if word == "double" and rest.strip():
        return "d", float(rest.strip())
    if word in ("string", "objectpath") and rest.strip():
        sig, v = _gvariant(rest)
        if sig != "s":
            raise ValueError(text)
        return ("s" if word == "string" else "o"), v
    if t in ("true", "false"):
        return "b", t == "true"
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        body, out, i = t[1:-1], [], 0
        while i < len(body):
            if body[i] == "\\" and i + 1 < len(body):
                out.append(body[i + 1])
                i += 2
                continue
            if body[i] == t[0]:
                raise ValueError(text)
            out.append(body[i])
            i += 1
        return "s", "".join(out)
    if t.startswith("[") and t.endswith("]"):
        items = [x for x in _split_list(t[1:-1])]
        vals = [_gvariant(x) for x in items]
        if not vals or any(s != "s" for s, _ in vals):
            raise ValueError(text)
        return "as", [v for _, v in vals]
    try:
        return "i", int(t, 10)
    except ValueError:
        return "d", float(t)


def _split_list(s):
    out, cur, q = [], "", None
    for ch in s:
        if q:
            cur += ch
            if ch == q and not cur.endswith("\\" + q):
                q = None
        elif ch in "'\"":
            q = ch
            cur += ch
        elif ch == ",":
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def annotation_properties(annotations):
    """Unit properties from "org.systemd.property.NAME" annotations (runc's
    auxiliary properties): a GVariant text value; NAMESec with a number is
    NAMEUSec in microseconds."""
    props = []
    for key, text in sorted((annotations or {}).items()):
        if not key.startswith(PROPERTY_ANNOTATION):
            continue
        name = key[len(PROPERTY_ANNOTATION):]
        field = "annotations.%s" % key
        if len(name) < 3 or not name.isascii() or not name.isalpha():
            raise ConfigError(field, "%r is not a systemd property name (letters only, at least 3)" % name)
        try:
            sig, val = _gvariant(str(text))
        except (ValueError, IndexError):
            raise ConfigError(field, "%r is not a GVariant value pyoci can read (a number, optionally "
                              "typed as in 'uint64 5', true/false, a quoted string or a list of them)"
                              % (text,))
        if name.endswith("Sec") and len(name) > 3 and name[-4].islower():
            if sig not in _GV_INTS.values() and sig not in ("i", "d"):
                raise ConfigError(field, "%s takes a number of seconds, not %r" % (name, text))
            name, sig, val = name[:-3] + "USec", "t", int(val * 1000000)
        props.append((name, (sig, val)))
    return props


# -- talking to systemd ----------------------------------------------------------------
class Manager:
    """systemd's manager over D-Bus: as root its private socket (no bus
    daemon needed, signals come unasked), else the system bus (Hello, and a
    match rule for JobRemoved); $DBUS_SYSTEM_BUS_ADDRESS overrides both."""

    def __init__(self):
        from pyoci.linux.cgroups import dbus

        self.D = dbus
        addr = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
        if addr:
            candidates = [(p, True) for p in dbus.parse_address(addr)]
        else:
            candidates = ([(PRIVATE_SOCKET, False)] if os.geteuid() == 0 else []) + [(SYSTEM_BUS, True)]
        errors = []
        for path, hello in candidates:
            try:
                self.conn = dbus.Connection(path, hello)
                break
            except dbus.DBusError as e:
                errors.append(str(e))
        else:
            raise PyociError("cannot connect to systemd over D-Bus: %s" % ("; ".join(errors) or
                                                                            "no usable bus address"))
        if self.conn.bus:
            self.conn.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch",
                           "s", ["type='signal',sender='%s',path='%s',interface='%s',member='JobRemoved'"
                                 % (DEST, OBJ, MANAGER)])
        self._version = None

    def close(self):
        self.conn.close()

    def call(self, member, sig="", args=()):
        return self.conn.call(DEST, OBJ, MANAGER, member, sig, args)

    def version(self):
        """systemd's version number (252 for "252.39-1~deb12u1"), -1 if unknown."""
        if self._version is None:
            self._version = -1
            try:
                (v,) = self.conn.call(DEST, OBJ, "org.freedesktop.DBus.Properties", "Get", "ss",
                                      [MANAGER, "Version"])
                digits = ""
                for ch in str(v[1]).lstrip('"v'):
                    if not ch.isdigit():
                        break
                    digits += ch
                self._version = int(digits) if digits else -1
            except self.D.DBusError:
                pass
        return self._version

    def _wait_job(self, job, unit, what):
        D = self.D
        m = self.conn.wait_signal(lambda m: (m.fields.get(D.MEMBER) == "JobRemoved" and len(m.body) == 4
                                             and m.body[1] == job), JOB_TIMEOUT)
        if m is None:
            raise PyociError("timeout waiting for systemd to %s %s" % (what, unit))
        return m.body[3]

    def start_transient(self, unit, props):
        D = self.D
        retried = False
        while True:
            try:
                (job,) = self.call("StartTransientUnit", "ssa(sv)a(sa(sv))", [unit, "replace", props, []])
                break
            except D.DBusError as e:
                if e.name == "org.freedesktop.systemd1.UnitExists" and not retried:
                    # maybe a failed leftover of the same name: let systemd drop it, once
                    self.reset_failed(unit)
                    retried = True
                    continue
                raise PyociError("unable to start unit %r: %s" % (unit, e))
        result = self._wait_job(job, unit, "create")
        if result != "done":
            self.reset_failed(unit)
            raise PyociError("error creating systemd unit `%s`: got `%s`" % (unit, result))

    def stop(self, unit, warn=None):
        D = self.D
        try:
            (job,) = self.call("StopUnit", "ss", [unit, "replace"])
        except D.DBusError as e:
            if e.name not in ("org.freedesktop.systemd1.NoSuchUnit", "org.freedesktop.systemd1.LoadFailed"):
                raise PyociError("unable to stop unit %r: %s" % (unit, e))
        else:
            result = self._wait_job(job, unit, "remove")
            if result != "done" and warn:
                warn("error removing unit `%s`: got `%s`. Continuing..." % (unit, result))
        self.reset_failed(unit)

    def reset_failed(self, unit):
        try:
            self.call("ResetFailedUnit", "s", [unit])
        except self.D.DBusError:
            pass

    def set_properties(self, unit, props):
        try:
            self.call("SetUnitProperties", "sba(sv)", [unit, True, props])
        except self.D.DBusError as e:
            raise PyociError("unable to set unit properties: %s" % e)


# -- the driver -------------------------------------------------------------------------
class Systemd(V2):
    """cgroup v2 through a transient systemd scope; the v2 cgroupfs driver
    writes the files and attaches the device filter in the scope's cgroup."""

    driver = "systemd"

    def __init__(self, paths, created=(), resources=None, enabled=(), unit=None, slice=None, started=True,
                 extra=()):
        super().__init__(paths, created, resources, enabled)
        self.unit = unit
        self.slice = slice
        self.started = started      # the unit was asked for (create's join), or is loaded from a state
        self.extra = list(extra)    # properties from annotations
        self._pending = None
        self._props = []

    def to_state(self):
        d = super().to_state()
        d["unit"], d["slice"] = self.unit, self.slice
        return d

    @classmethod
    def _load(cls, d, paths):
        unit = d.get("unit")
        if not isinstance(unit, str) or not unit.endswith(".scope") or set(unit) - UNIT_CHARS:
            raise PyociError("the container's state has a malformed cgroup section: systemd unit %r" % (unit,))
        return cls(paths, d.get("created") or list(paths.values()), d.get("resources"), d.get("enabled") or (),
                   unit=unit, slice=d.get("slice"), started=True)

    @classmethod
    def plan_unit(cls, config, cid, cpath, hierarchies):
        if not running():
            raise PyociError(NOT_RUNNING)
        if os.geteuid() != 0:
            raise PyociError("--systemd-cgroup: pyoci's systemd cgroup driver runs as root only (a rootless "
                             "container gets a delegated cgroup from the cgroupfs driver: drop --systemd-cgroup)")
        if _cg.controllers_on_v1():
            raise PyociError("--systemd-cgroup: pyoci's systemd cgroup driver needs a cgroup v2 host "
                             "(this one has its controllers on cgroup v1): use the cgroupfs driver")
        slice_, unit = unit_for(cpath, cid)
        h = next((h for h in hierarchies if h.version == 2), None)
        if h is None:
            raise PyociError("--systemd-cgroup: no cgroup2 hierarchy is mounted")
        d = h.directory(expand_slice(slice_) + "/" + unit)
        # the scope's directory is the container's own (systemd makes it for
        # this container alone): everything in it is the container's to kill
        return cls({"": d}, created=[d], unit=unit, slice=slice_, started=False,
                   extra=annotation_properties(config.get("annotations")))

    def _manager(self):
        m = getattr(self, "_mgr", None)
        if m is None:
            m = self._mgr = Manager()
        return m

    def _version_of_systemd(self):
        return self._manager().version()

    def create(self):
        """Nothing yet: systemd makes the scope when it gets the container's
        first process (join)."""

    def apply(self, res, warn=None, devices=True, restore=False):
        if not self.started:
            # create: check everything now, apply when the unit starts
            from pyoci.linux.cgroups import resources as R

            self.resources = res or None
            rules = R.device_rules(res) if devices else None
            self._props, files = resource_properties(res, self._version_of_systemd, warn, rules)
            self._pending = (files, devices)
            return
        props, files = resource_properties(res, self._version_of_systemd, warn, None)
        if props:
            self._manager().set_properties(self.unit, props)
        super().apply(files, None, devices, restore)

    def join(self, pid):
        if self.started:
            return super().join(pid)       # exec: into the running scope
        self.started = True
        props = [("Description", ("s", "pyoci container " + self.unit)),
                 ("Slice", ("s", self.slice)),
                 ("Delegate", ("b", True)),
                 ("PIDs", ("au", [pid])),
                 ("MemoryAccounting", ("b", True)),
                 ("CPUAccounting", ("b", True)),
                 ("IOAccounting", ("b", True)),
                 ("TasksAccounting", ("b", True)),
                 ("DefaultDependencies", ("b", False))] + self.extra + self._props
        self._premove(pid)
        self._manager().start_transient(self.unit, props)
        want = self.paths[""]
        got = _cg.own_cgroups(pid).get("")
        if got is not None and not want.endswith(got if got != "/" else "\0"):
            raise PyociError("systemd put the container into the cgroup %s, not into %s" % (got, want))
        if self._pending is not None:
            files, devices = self._pending
            self._pending = None
            res = self.resources
            V2.apply(self, files, None, devices)
            self.resources = res

    def _premove(self, pid):
        """Put the process into the scope's cgroup before systemd is asked
        for the scope (crun also moves it itself). systemd 252 left the
        container's first process where it was when the caller ran in a
        cgroup of its own below a service (seen in the guest: the scope,
        empty, was gone at once); a process already in the unit's cgroup is
        adopted. Best effort: where it cannot be done here, systemd moves it."""
        d = self.paths[""]
        if not os.path.isdir(os.path.dirname(d)):
            return                      # a slice systemd has yet to make
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            pass
        except OSError:
            return
        try:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(pid))
        except OSError:
            pass

    def destroy(self, timeout=5.0):
        """Kill what is left, stop the unit (and reset it if it failed), then
        remove any cgroup systemd left below it."""
        d = self.paths.get("")
        if self.started:
            if self.frozen():
                try:
                    self.freeze(False)
                except (PyociError, OSError):
                    pass
            if d and os.path.isdir(d):
                self.kill_all()
            try:
                self._manager().stop(self.unit)
            finally:
                self._close()
        if d and os.path.isdir(d):
            self.created = [d] + [x for x in _subdirs(d)]
            super().destroy(timeout)

    def _close(self):
        m = getattr(self, "_mgr", None)
        if m is not None:
            m.close()
            self._mgr = None


def _subdirs(d):
    """Every directory below d, parents first."""
    out = []
    for root, dirs, _ in os.walk(d):
        out += [os.path.join(root, x) for x in dirs]
    return out
