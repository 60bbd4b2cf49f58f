"""Checks of config.json before create touches the host.

validate(config, bundle) returns every problem found, as ConfigError (JSON
path + reason), in document order; create stops at the first. Two layers:
- the schema (pyoci/config/schema/, runtime-spec 1.3.0), run by
  pyoci.config.fastschema with jsonschema's verdicts but not its import cost;
- what a schema cannot say and runc's validator checks, and more: ociVersion
  major, capability names, namespaces (duplicates, user namespace and
  mappings, paths, sysctls, hostname), root.path, mounts, cgroupsPath,
  rlimits, hooks, devices, seccomp names (libseccomp's), idmapped mounts.
Nothing here reads the host beyond os.path checks in the bundle; what the
host can do is pyoci.config.hostcheck's business (`pyoci validate --host`).
"""
from pyoci.config.fastschema import check, join, show
from pyoci.errors import ConfigError

SUPPORTED_MAJOR = 1
RLIMITS = frozenset(("RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
                     "RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_NOFILE",
                     "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
                     "RLIMIT_SIGPENDING", "RLIMIT_STACK"))
IPC_SYSCTLS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                         "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"))
NAMESPACES = ("mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time")
HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


def validate(config, bundle=None, systemd_cgroup=None):
    """Every problem of config (a parsed config.json), schema first.

    bundle: the bundle directory, to check that root.path exists in it.
    systemd_cgroup: True/False for the cgroup driver in use; None accepts
    either form of linux.cgroupsPath.
    """
    problems = [ConfigError(p, r) for p, r in check("config", config)]
    if not isinstance(config, dict):
        return problems
    bad = {e.path for e in problems}
    c = _Checks(config, bad)
    c.version()
    c.root(bundle)
    c.process()
    c.mounts()
    c.hooks()
    lin = config.get("linux")
    if isinstance(lin, dict):
        c.linux(lin, systemd_cgroup)
    return problems + c.out


_DIGITS = frozenset("0123456789")
_IDCHARS = _DIGITS | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.-")


def _semver_major(v):
    """MAJOR of MAJOR.MINOR.PATCH[-pre][+build] (SemVer 2.0.0's shape), else None."""
    core, plus, build = v.partition("+")
    if plus and (not build or not all(c in _IDCHARS for c in build)):
        return None
    core, dash, pre = core.partition("-")
    if dash and (not pre or not all(c in _IDCHARS for c in pre)):
        return None
    nums = core.split(".")
    if len(nums) != 3 or not all(n and all(c in _DIGITS for c in n) for n in nums):
        return None
    return int(nums[0])


def _d(x):
    return x if isinstance(x, dict) else {}


def _l(x):
    return x if isinstance(x, list) else []


def _clean(path):
    """Lexical cleaning, as Go's filepath.Clean (no file system access)."""
    from pyoci import fastos

    return fastos.path.normpath(path) if path else path


class _Checks:
    def __init__(self, config, bad):
        self.config = config
        self.bad = bad  # paths the schema already reported: no second message for them
        self.out = []

    def err(self, path, reason):
        """Report, unless the schema already found a problem in the object
        holding `path`: one message per problem, not its echoes."""
        cut = max(path.rfind("."), path.rfind("["))
        scope = path[:cut] if cut > 0 else path
        for b in self.bad:
            if b == scope or b.startswith(scope) and b[len(scope):len(scope) + 1] in (".", "["):
                return
        self.out.append(ConfigError(path, reason))

    # -- top level ----------------------------------------------------------
    def version(self):
        v = self.config.get("ociVersion")
        if not isinstance(v, str):
            return
        major = _semver_major(v)
        if major is None:
            self.err("ociVersion", "%s is not a semantic version (MAJOR.MINOR.PATCH)" % show(v))
        elif major != SUPPORTED_MAJOR:
            self.err("ociVersion", "%s: runtime-spec major version %d is not supported "
                     "(pyoci implements 1.x, up to 1.3.0)" % (show(v), major))

    def root(self, bundle):
        root = self.config.get("root")
        if root is None:
            self.err("root", "required property is missing (a Linux container needs a root filesystem)")
            return
        path = _d(root).get("path")
        if not isinstance(path, str):
            return
        if not path:
            self.err("root.path", "must not be empty")
            return
        from pyoci import fastos as os

        if not path.startswith("/"):
            cleaned = _clean(path)
            if cleaned == ".." or cleaned.startswith("../"):
                self.err("root.path", "%s resolves outside the bundle" % show(path))
                return
        if bundle is not None:
            full = os.path.join(bundle, path)
            if not os.path.isdir(full):
                self.err("root.path", "%s: %s" % (full, "not a directory" if os.path.exists(full)
                                                  else "no such directory"))

    def process(self):
        proc = self.config.get("process")
        if proc is None:
            self.err("process", "required property is missing (pyoci needs a process to run)")
            return
        if not isinstance(proc, dict):
            return
        args = proc.get("args")
        if args is None or args == []:
            self.err("process.args", "must name the program to run (at least one item)")
        cwd = proc.get("cwd")
        if isinstance(cwd, str) and not cwd.startswith("/"):
            self.err("process.cwd", "%s is not an absolute path" % show(cwd))
        user = _d(proc.get("user"))
        ids = [("process.user.uid", user.get("uid")), ("process.user.gid", user.get("gid"))]
        ids += [("process.user.additionalGids[%d]" % i, g) for i, g in enumerate(_l(user.get("additionalGids")))]
        for field, v in ids:
            if type(v) is int and v > 2147483647:
                # runc's words
                self.err(field, "%d: uids and gids must be in range 0-2147483647" % v)
        for i, e in enumerate(_l(proc.get("env"))):
            # as runc's init refuses them, in its words
            if not isinstance(e, str):
                continue
            name, eq, value = e.partition("=")
            if not eq:
                self.err("process.env[%d]" % i, "invalid environment variable: %s (no '=')" % show(e))
            elif not name:
                self.err("process.env[%d]" % i, "environment variable name can't be empty: %s" % show(e))
            elif "\0" in e:
                self.err("process.env[%d]" % i, "environment variable can't contain null (\\x00): %s" % show(e))
        caps = proc.get("capabilities")
        if isinstance(caps, dict):
            from pyoci.linux.capabilities import CAPS

            for s in ("bounding", "effective", "inheritable", "permitted", "ambient"):
                for i, name in enumerate(_l(caps.get(s))):
                    if isinstance(name, str) and name not in CAPS:
                        self.err("process.capabilities.%s[%d]" % (s, i),
                                 "%s is not a known capability" % show(name))
            # What capset(2) refuses, refused here with the field named (runc
            # fails create with "unable to apply caps: operation not permitted")
            sets = {s: [n for n in _l(caps.get(s)) if isinstance(n, str)] for s in ("bounding", "effective",
                                                                                  "inheritable", "permitted")}
            for s, within in (("effective", "permitted"), ("inheritable", "bounding")):
                if caps.get(s) is None:
                    continue
                for i, name in enumerate(_l(caps.get(s))):
                    if isinstance(name, str) and name in CAPS and name not in sets[within]:
                        self.err("process.capabilities.%s[%d]" % (s, i),
                                 "%s is not in process.capabilities.%s: the kernel refuses such a set (unable "
                                 "to apply caps: operation not permitted)" % (show(name), within))
        seen = {}
        for i, rl in enumerate(_l(proc.get("rlimits"))):
            if not isinstance(rl, dict):
                continue
            p = "process.rlimits[%d]" % i
            t = rl.get("type")
            if isinstance(t, str):
                if t not in RLIMITS:
                    self.err(p + ".type", "%s is not a Linux resource limit" % show(t))
                elif t in seen:
                    self.err(p + ".type", "%s is set twice (first at process.rlimits[%d])" % (show(t), seen[t]))
                else:
                    seen[t] = i
            soft, hard = rl.get("soft"), rl.get("hard")
            if type(soft) is int and type(hard) is int and soft > hard:
                self.err(p + ".soft", "%d is greater than hard %d" % (soft, hard))

    def mounts(self):
        for i, m in enumerate(_l(self.config.get("mounts"))):
            if not isinstance(m, dict):
                continue
            p = "mounts[%d]" % i
            dest = m.get("destination")
            if isinstance(dest, str):
                if not dest:
                    self.err(p + ".destination", "must not be empty")
                elif not _clean("/" + dest).strip("/"):
                    self.err(p + ".destination", "%s is the container's root: cannot mount over it" % show(dest))
            opts = [o for o in _l(m.get("options")) if isinstance(o, str)]
            if (m.get("type") == "bind" or "bind" in opts or "rbind" in opts) and not m.get("source"):
                self.err(p + ".source", "a bind mount needs a source")
            idmap = [o for o in opts if o in ("idmap", "ridmap")]
            uidm, gidm = m.get("uidMappings"), m.get("gidMappings")
            if idmap and not uidm and not gidm:
                self.err(p + ".options", "%s needs uidMappings and gidMappings on the mount" % show(idmap[0]))
            elif bool(uidm) != bool(gidm):
                self.err(p + (".gidMappings" if uidm else ".uidMappings"),
                         "an idmapped mount needs both uidMappings and gidMappings")

    def hooks(self):
        hooks = _d(self.config.get("hooks"))
        for stage in HOOKS:
            for i, h in enumerate(_l(hooks.get(stage))):
                path = _d(h).get("path")
                if isinstance(path, str) and not path.startswith("/"):
                    self.err("hooks.%s[%d].path" % (stage, i), "%s is not an absolute path" % show(path))

    # -- linux --------------------------------------------------------------
    def linux(self, lin, systemd_cgroup):
        ns = {}  # type -> (index, path or None)
        for i, n in enumerate(_l(lin.get("namespaces"))):
            t = _d(n).get("type")
            if t not in NAMESPACES:
                continue  # the schema said so
            p = "linux.namespaces[%d]" % i
            if t in ns:
                self.err(p + ".type", "%s is listed twice (first at linux.namespaces[%d])" % (show(t), ns[t][0]))
                continue
            path = n.get("path")
            if isinstance(path, str):
                if not path.startswith("/"):
                    self.err(p + ".path", "%s is not an absolute path (a namespace file, e.g. /proc/PID/ns/%s)"
                             % (show(path), _NSFILE.get(t, t)))
            ns[t] = (i, path if isinstance(path, str) and path else None)
        new_user = "user" in ns and ns["user"][1] is None
        for key in ("uidMappings", "gidMappings"):
            maps = lin.get(key)
            if maps and "user" not in ns:
                self.err("linux." + key, "mappings need a user namespace (linux.namespaces has no \"user\")")
            elif new_user and not maps:
                self.err("linux." + key, "a new user namespace needs %s" % key)
        for field, t in (("hostname", "uts"), ("domainname", "uts")):
            if self.config.get(field) and t not in ns:
                self.err(field, "setting the %s needs a uts namespace" % field)
        if lin.get("timeOffsets") is not None:
            if "time" not in ns:
                self.err("linux.timeOffsets", "needs a time namespace (linux.namespaces has no \"time\")")
            elif ns["time"][1] is not None:
                self.err("linux.timeOffsets", "cannot be set on a time namespace joined by path")
        sysctl = lin.get("sysctl")
        if isinstance(sysctl, dict):
            for key in sysctl:
                self.sysctl(key, ns)
        cp = lin.get("cgroupsPath")
        if isinstance(cp, str) and cp:
            self.cgroups_path(cp, systemd_cgroup)
        for i, d in enumerate(_l(lin.get("devices"))):
            d = _d(d)
            p = "linux.devices[%d]" % i
            if isinstance(d.get("path"), str) and not d["path"].startswith("/"):
                self.err(p + ".path", "%s is not an absolute path" % show(d["path"]))
            if d.get("type") in ("c", "b", "u"):
                for f in ("major", "minor"):
                    if f not in d:
                        self.err(p + "." + f, "a %s device needs %s" % (_DEVTYPE[d["type"]], f))
            # Linux device numbers: a 12-bit major and a 20-bit minor; a larger
            # one would be cut to another device's number by mknod
            for f, limit in (("major", 1 << 12), ("minor", 1 << 20)):
                v = d.get(f)
                if type(v) is int and not 0 <= v < limit:
                    self.err(p + "." + f, "%d is out of range: a Linux device %s is 0 to %d" % (v, f, limit - 1))
        for key in ("maskedPaths", "readonlyPaths"):
            for i, x in enumerate(_l(lin.get(key))):
                if isinstance(x, str) and not x.startswith("/"):
                    self.err("linux.%s[%d]" % (key, i), "%s is not an absolute path" % show(x))
        sec = lin.get("seccomp")
        if isinstance(sec, dict):
            self.seccomp(sec)

    def sysctl(self, key, ns):
        p = join("linux.sysctl", key)
        name = key.replace("/", ".")
        if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
            if "ipc" not in ns:
                self.err(p, "needs an ipc namespace (linux.namespaces has no \"ipc\")")
        elif name.startswith("net."):
            if "network" not in ns:
                self.err(p, "needs a network namespace (linux.namespaces has no \"network\")")
        elif name in ("kernel.hostname", "kernel.domainname"):
            if "uts" not in ns:
                self.err(p, "needs a uts namespace (linux.namespaces has no \"uts\")")
        else:
            self.err(p, "is not namespaced: it would change the host (only net.*, fs.mqueue.*, "
                     "IPC kernel.* and kernel.hostname/domainname can be set)")

    def cgroups_path(self, cp, systemd):
        p = "linux.cgroupsPath"
        if systemd or (systemd is None and ":" in cp):
            parts = cp.split(":")
            if len(parts) != 3:
                self.err(p, "%s: a systemd cgroupsPath is slice:prefix:name" % show(cp))
                return
            sl, _, name = parts
            if sl and (not sl.endswith(".slice") or "/" in sl):
                self.err(p, "%s: %s is not a systemd slice name (NAME.slice)" % (show(cp), show(sl)))
            elif not name or "/" in name:
                self.err(p, "%s: the name part must be non-empty, without '/'" % show(cp))
        elif ".." in cp.split("/"):
            self.err(p, "%s: '..' is not allowed in a cgroup path" % show(cp))
        elif "\n" in cp or "\0" in cp:
            self.err(p, "%s: control characters are not allowed" % show(cp))

    def seccomp(self, sec):
        from pyoci.config import seccompnames

        if sec.get("defaultAction") == "SCMP_ACT_NOTIFY":
            self.err("linux.seccomp.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
        for i, a in enumerate(_l(sec.get("architectures"))):
            if isinstance(a, str) and not seccompnames.arch_known(a):
                self.err("linux.seccomp.architectures[%d]" % i, "%s is not an architecture known to libseccomp"
                         % show(a))
        notify = False
        for i, rule in enumerate(_l(sec.get("syscalls"))):
            rule = _d(rule)
            notify = notify or rule.get("action") == "SCMP_ACT_NOTIFY"
        if notify and not sec.get("listenerPath"):
            self.err("linux.seccomp.listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath")


_NSFILE = {"network": "net", "mount": "mnt"}
_DEVTYPE = {"c": "character", "b": "block", "u": "character (unbuffered)"}
