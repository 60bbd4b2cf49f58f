"""Control groups: the host's layout, and the container's cgroup behind one
interface (`Cgroup`) with a driver chosen once: cgroupfs on v1 (legacy and
hybrid hosts: resources on the v1 hierarchies; v1.py), cgroupfs on the
unified hierarchy (v2.py), or a transient systemd unit (systemd.py).

The layout is read from /proc/self/mountinfo and /proc/self/cgroup, so v1,
v2 (unified) and hybrid hosts (v1 controllers plus a cgroup2 mount, as on
these machines) are handled by the same code, with no hard-coded paths.
"""
import time

from pyoci import fastos as os
from pyoci.errors import ConfigError, PyociError


class Hierarchy:
    """One mounted cgroup hierarchy (a v1 controller set, or cgroup2)."""

    __slots__ = ("mountpoint", "root", "version", "controllers", "key", "own")

    def __init__(self, mountpoint, root, version, controllers, key, own="/"):
        self.mountpoint = mountpoint
        self.root = root              # the hierarchy path mounted there
        self.version = version
        self.controllers = controllers
        self.key = key                # "cpu,cpuacct", "name=systemd", "" for v2
        self.own = own                # this process's cgroup in the hierarchy

    def directory(self, rel):
        """The directory of hierarchy path rel under this mount (the mount
        shows the hierarchy from self.root downwards)."""
        rel = os.path.normpath(rel)
        if self.root != "/" and (rel == self.root or rel.startswith(self.root + "/")):
            rel = rel[len(self.root):] or "/"
        return os.path.normpath(self.mountpoint + "/" + rel)

    @property
    def mount_data(self):
        return ",".join(self.controllers) if self.version == 1 else ""


def _unescape(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def own_cgroups(pid="self"):
    """{key: path} from /proc/PID/cgroup; key "" is the v2 hierarchy."""
    out = {}
    with open("/proc/%s/cgroup" % pid) as f:
        for line in f:
            _, key, path = line.rstrip("\n").split(":", 2)
            out[key] = path
    return out


def layout():
    """The mounted hierarchies this process can use, one per key."""
    own = own_cgroups()
    v1keys = {}
    for key in own:
        if key:
            for c in key.split(","):
                v1keys[c] = key
    found = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rfields = right.split()
            fstype = rfields[0]
            if fstype not in ("cgroup", "cgroup2"):
                continue
            root, mountpoint = _unescape(fields[3]), _unescape(fields[4])
            if fstype == "cgroup2":
                key, ctrls, ver = "", [], 2
            else:
                opts = rfields[2].split(",")
                ctrls = [o for o in opts if o in v1keys]
                if not ctrls:
                    continue
                key, ver = v1keys[ctrls[0]], 1
            if key in found:
                continue   # the first mount of a hierarchy wins
            found[key] = Hierarchy(mountpoint, root, ver, ctrls, key, own.get(key, "/"))
    return list(found.values())


def is_systemd_path(p):
    return p.count(":") == 2 and not p.startswith("/")


# -- drivers ---------------------------------------------------------------
# A driver is chosen once, when the container is planned (create) or its
# state is loaded; the rest of pyoci speaks to the Cgroup interface only
# (as youki's libcgroups and crun's cgroup.c). The name is recorded in the
# state document.
DRIVERS = {
    "v1": ("pyoci.linux.cgroups.v1", "V1"),            # cgroupfs, controllers on v1 (legacy, hybrid)
    "v2": ("pyoci.linux.cgroups.v2", "V2"),            # cgroupfs, unified hierarchy
    "systemd": ("pyoci.linux.cgroups.systemd", "Systemd"),   # a transient systemd scope (v2)
}


def driver_class(name):
    try:
        mod, cls = DRIVERS[name]
    except (KeyError, TypeError):
        raise PyociError("the container's state names the cgroup driver %r, which this pyoci does not "
                         "have (made by another version?): known drivers are %s"
                         % (name, ", ".join(sorted(DRIVERS))))
    return getattr(__import__(mod, fromlist=[cls]), cls)


def fs_driver(paths):
    """The cgroupfs driver for these directories: v1 when a v1 resource
    controller is among them (legacy and hybrid hosts, as runc decides)."""
    return driver_class("v1" if any(k and not k.startswith("name=") for k in paths) else "v2")


class Cgroup:
    """The container's cgroup, behind one interface for every driver: a
    directory per hierarchy (`paths`, {key: absolute directory}; key "" is
    cgroup2), what create made, and the resources as applied.

    `Cgroup(paths, ...)` gives the cgroupfs driver for those directories;
    `Cgroup.plan` chooses the driver for a new container, `Cgroup.from_state`
    the one a container was made with. This base class holds the cgroupfs
    mechanics every driver shares (directories, cgroup.procs, the freezer,
    cgroup.kill, removal); a driver adds what differs."""

    driver = None     # the name in the state document (DRIVERS)
    _version = None

    def __new__(cls, *args, **kw):
        if cls is Cgroup:
            cls = fs_driver(args[0] if args else kw.get("paths") or {})
        return super().__new__(cls)

    def __init__(self, paths, created=(), resources=None, enabled=()):
        self.paths = paths          # {key: absolute directory}
        self.created = list(created)  # directories create made, in order
        self.resources = resources  # linux.resources as applied (create, then update)
        # [directory, [controllers]]: what create enabled in the
        # cgroup.subtree_control of a cgroup2 directory it did not make
        self.enabled = [list(e) for e in enabled]

    # -- the state document ----------------------------------------------
    def to_state(self):
        d = {"driver": self.driver, "paths": self.paths, "created": self.created}
        if self.resources:
            d["resources"] = self.resources
        if self.enabled:
            d["enabled"] = self.enabled
        return d

    @classmethod
    def from_state(cls, d):
        """The container's Cgroup from its state document, with the driver it
        was made with. A document without "driver" comes from a pyoci before
        drivers: cgroupfs, v1 or v2 by its directories (as then decided)."""
        if not d:
            return fs_driver({})({})
        if not isinstance(d, dict):
            raise PyociError("the container's state has a malformed cgroup section (%s, not an object)"
                             % type(d).__name__)
        paths = d.get("paths") or {}
        if not isinstance(paths, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in paths.items()):
            raise PyociError("the container's state has a malformed cgroup section: paths %r" % (paths,))
        k = fs_driver(paths) if "driver" not in d else driver_class(d["driver"])
        return k._load(d, paths)

    @classmethod
    def _load(cls, d, paths):
        return cls(paths, d.get("created") or [], d.get("resources"), d.get("enabled") or ())

    # -- placement -----------------------------------------------------
    @classmethod
    def plan(cls, config, cid, hierarchies=None, systemd=False):
        """Choose the driver and work out the directories; nothing is
        created yet. systemd: the runtime's --systemd-cgroup."""
        cpath = (config.get("linux") or {}).get("cgroupsPath")
        if cpath is not None and not isinstance(cpath, str):
            raise ConfigError("linux.cgroupsPath", "must be a string")
        if systemd:
            return driver_class("systemd").plan_unit(config, cid, cpath,
                                                     hierarchies if hierarchies is not None else layout())
        if cpath and is_systemd_path(cpath):
            raise ConfigError("linux.cgroupsPath", "%r is a systemd slice:prefix:name path, "
                              "which needs --systemd-cgroup" % cpath)
        if cpath and (".." in cpath.split("/")):
            raise ConfigError("linux.cgroupsPath", "%r must not contain '..'" % cpath)
        hierarchies = hierarchies if hierarchies is not None else layout()
        unified = not any(h.version == 1 and h.controllers for h in hierarchies) and not controllers_on_v1()
        paths = {}
        for h in hierarchies:
            if cpath and cpath.startswith("/"):
                rel = cpath
            elif unified:
                # cgroup v2 (as runc): beside the caller's cgroup, not in
                # it. The caller's cgroup holds processes (a service, a
                # session scope), so by the no-internal-processes rule no
                # controller could be enabled for a child of it; its parent
                # has none of its own (or is the root). A caller in a
                # delegated subtree (user@UID.service/...) stays in it.
                rel = os.path.join(os.path.dirname(h.own), cpath or cid)
            else:
                # v1 (and hybrid hosts): under the caller's cgroup, as runc
                rel = os.path.join(h.own, cpath or cid)
            paths[h.key] = h.directory(rel)
        return fs_driver(paths)(paths)

    @staticmethod
    def own_dirs(hierarchies=None):
        """{key: directory} of the caller's own cgroups."""
        return {h.key: h.directory(h.own) for h in (hierarchies if hierarchies is not None else layout())}

    def create(self):
        """Make the directories that are missing, top down, and remember
        them (only those are removed by destroy)."""
        for key, d in self.paths.items():
            missing = []
            p = d
            while not os.path.isdir(p):
                missing.append(p)
                p = os.path.dirname(p)
            for m in reversed(missing):
                try:
                    os.mkdir(m, 0o755)
                except FileExistsError:
                    continue
                except OSError as e:
                    raise PyociError("create cgroup %s: %s" % (m, e.strerror))
                self.created.append(m)
                self._made(key, m)

    def _made(self, key, d):
        """A driver's set-up of a directory create just made."""

    def join(self, pid):
        for key, d in self.paths.items():
            try:
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(pid))
            except OSError as e:
                raise PyociError("join cgroup %s: %s" % (d, e.strerror))

    # -- resources -----------------------------------------------------
    def version(self):
        """1 when the controllers live on v1 hierarchies (legacy and hybrid
        hosts, as runc decides), 2 on a unified host."""
        return self._version

    def dir_for(self, ctrl):
        """The directory holding controller ctrl's files ("" = v2 core)."""
        raise NotImplementedError

    def apply(self, res, warn=None, devices=True, restore=False):
        """Write linux.resources to the cgroup files. A failure is a
        ConfigError naming the field; with restore=True (update) the files
        already written get their old values back first."""
        from pyoci.linux.cgroups import resources as R

        saved = [] if restore else None
        if not restore:
            self.resources = res or None
        try:
            for w in R.plan(res, self.version(), warn):
                self._write_planned(w, saved)
            if devices:
                self.apply_devices(res)
        except BaseException:
            for path, old in reversed(saved or ()):
                try:
                    _write_file(path, old)
                except OSError:
                    pass
            raise

    def _write_planned(self, w, saved):
        self._write(w, saved)

    def _write(self, w, saved):
        d = self.dir_for(w.ctrl)
        if d is None:
            if w.noop:
                return
            raise ConfigError(w.field, "the %s cgroup controller is not available on this host%s" % (
                w.ctrl or "cgroup2", "" if self.version() == 1 else " (not enabled in cgroup.controllers)"))
        files = w.file if isinstance(w.file, tuple) else (w.file,)
        values = w.value if isinstance(w.value, tuple) else (w.value,) * len(files)
        for name, val in zip(files, values):
            path = os.path.join(d, name)
            if callable(val):
                val = val(d)
            if w.check is not None:
                msg = w.check(d)
                if msg:
                    raise ConfigError(w.field, msg)
            old = None
            if saved is not None:
                try:
                    with open(path) as f:
                        old = f.read()
                except OSError:
                    pass
            try:
                _write_file(path, val)
            except FileNotFoundError:
                continue
            except OSError as e:
                err = ConfigError(w.field, "cannot write %r to %s: %s" % (val, name, e.strerror))
                err.errno = e.errno
                raise err
            if old is not None and old.count("\n") <= 1 and old.strip():
                saved.append((path, old.strip()))
            return
        if not w.noop:
            raise ConfigError(w.field, "this host cannot apply it: the %s cgroup has no %s" % (
                w.ctrl or "v2", " or ".join(files)))

    def apply_devices(self, res):
        """The device rules (resources.device_rules), the driver's way."""
        raise NotImplementedError

    # -- queries -------------------------------------------------------
    def _any(self, prefer=("freezer", "pids", "memory", "")):
        for k in prefer:
            for key, d in self.paths.items():
                if (k in key.split(",")) or (k == "" and key == ""):
                    return d
        return next(iter(self.paths.values()), None)

    def pids(self):
        d = self._any()
        if not d:
            return []
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def freezer_dir(self):
        """(directory, 1 or 2) of the freezer (pyoci.linux.freezer)."""
        from pyoci.linux import freezer

        return freezer.where(self.paths)

    def frozen(self):
        from pyoci.linux import freezer

        return freezer.frozen(self.paths)

    def freeze(self, on, timeout=5.0):
        from pyoci.linux import freezer

        freezer.freeze(self.paths, on, timeout)

    def owns(self, d):
        """Whether directory d is the container's own (made for it), so that
        everything in it may be killed."""
        return d in self.created

    def kill_all(self):
        """SIGKILL every process through cgroup2's cgroup.kill (Linux 5.14):
        atomic, no fork escapes it. False where there is none. A frozen
        cgroup is thawed after, or the processes would not die. Only in the
        container's own cgroup: cgroup.kill reaches every descendant, which
        in a shared or pre-existing cgroup may not be the container's."""
        d = self.paths.get("")
        if not d or not self.owns(d):
            return False
        try:
            _write_file(os.path.join(d, "cgroup.kill"), "1")
        except OSError:
            return False
        if self.frozen():
            self.freeze(False)
        return True

    # -- removal -------------------------------------------------------
    def destroy(self, timeout=5.0):
        """Remove the directories create made (deepest first). A directory
        still busy after the timeout is an error."""
        deadline = time.monotonic() + timeout
        if self.created and self.frozen():
            try:
                self.freeze(False)   # a frozen process would never die
            except (PyociError, OSError):
                pass
        for d in reversed(self.created):
            if d in self.paths.values():
                # sub-cgroups the container made in its own cgroup go too,
                # deepest first (as runc removes them)
                for sub in _subdirs_deepest_first(d):
                    self._rmdir(sub, deadline)
            self._rmdir(d, deadline)
        self._undo_enabled()

    def _rmdir(self, d, deadline):
        while True:
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                import errno

                if (e.errno in (errno.EBUSY, errno.ENOTEMPTY) and d not in self.paths.values()
                        and _has_subdirs(d)):
                    break   # a parent that another cgroup still uses
                if e.errno in (errno.EBUSY, errno.ENOTEMPTY) and time.monotonic() < deadline:
                    self._kill_remaining(d)
                    time.sleep(0.005)
                    continue
                raise PyociError("remove cgroup %s: %s" % (d, e.strerror))

    def _undo_enabled(self):
        """Disable in cgroup.subtree_control what create enabled, in each
        directory that no other cgroup uses now (it has no children left):
        the host's cgroup2 tree is left as create found it."""
        for parent, ctrls in reversed(self.enabled):
            if _has_subdirs(parent):
                continue
            try:
                _write_file(os.path.join(parent, "cgroup.subtree_control"),
                            " ".join("-" + c for c in reversed(ctrls)))
            except OSError:
                pass
        self.enabled = []

    @staticmethod
    def _kill_remaining(d):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                for pid in f.read().split():
                    try:
                        os.kill(int(pid), 9)
                    except ProcessLookupError:
                        pass
        except OSError:
            pass


def _write_file(path, value):
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode() if isinstance(value, str) else value)
    finally:
        os.close(fd)


def _read_int(path):
    try:
        with open(path) as f:
            s = f.read().strip()
    except OSError:
        return None
    if s == "max":
        return 1 << 62
    try:
        return int(s)
    except ValueError:
        return None


def _subdirs_deepest_first(d):
    """Every directory below d, children before their parents (scandir:
    os.walk would import the whole os module into delete)."""
    out = []
    try:
        entries = [e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return out
    for sub in entries:
        out += _subdirs_deepest_first(sub)
        out.append(sub)
    return out


def _has_subdirs(d):
    try:
        return any(e.is_dir(follow_symlinks=False) for e in os.scandir(d))
    except OSError:
        return False


def controllers_on_v1():
    """True where resource controllers are bound to v1 hierarchies (a
    legacy or hybrid host), mounted in this mount namespace or not."""
    return any(k and not k.startswith("name=") for k in own_cgroups())


def _enable_controllers(parent):
    """cgroup v2: a child gets a controller's files only when its parent
    lists the controller in cgroup.subtree_control; enable all the parent
    has (as runc does). Returns the ones this enabled. A parent that cannot
    (it holds processes) is left as it is: a resource that then finds no
    file is an error naming it."""
    try:
        with open(os.path.join(parent, "cgroup.controllers")) as f:
            ctrls = f.read().split()
        with open(os.path.join(parent, "cgroup.subtree_control")) as f:
            have = set(f.read().split())
    except OSError:
        return []
    want = [c for c in ctrls if c not in have]
    if want:
        try:
            _write_file(os.path.join(parent, "cgroup.subtree_control"), " ".join("+" + c for c in want))
        except OSError:
            return []
    return want


def init_cpuset_ancestors(leaf):
    """Every v1 cpuset cgroup from below the hierarchy's root down to leaf
    gets cpus and mems where they are empty, pre-existing ones too (an empty
    intermediate cgroup, say an engine's pod cgroup, made a task's join fail
    with "No space left on device"), as runc's cpusetEnsureParent does."""
    chain = []
    d = leaf
    while os.path.exists(os.path.join(os.path.dirname(d), "cpuset.cpus")) and os.path.dirname(d) != d:
        chain.append(d)
        d = os.path.dirname(d)
    for x in reversed(chain):
        _init_cpuset(x)


def _init_cpuset(d):
    """A new v1 cpuset cgroup starts empty: copy the parent's cpus and mems,
    or no task could join it."""
    parent = os.path.dirname(d)
    for name in ("cpuset.cpus", "cpuset.mems"):
        try:
            with open(os.path.join(d, name)) as f:
                if f.read().strip():
                    continue
            with open(os.path.join(parent, name)) as f:
                value = f.read().strip()
            with open(os.path.join(d, name), "w") as f:
                f.write(value)
        except OSError as e:
            raise PyociError("initialise cpuset %s: %s" % (d, e.strerror))
