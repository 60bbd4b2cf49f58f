"""The state directory `<root>/<id>/` and the documents in it.

  state.json    the state document (State), written by create once the
                container exists and rewritten by update; atomic writes
                (temporary file + rename), and only through StateDir.save.
  cleanup.json  what `delete --force` needs to remove every trace when
                state.json is unusable (a create killed half-way, a
                truncated or garbage state file): the cgroup, the init's
                pid, the network namespace and the netDevices moved into
                it. create writes it before it makes anything, and again
                each time it made something more.
  exec.fifo     while the container is created (start opens it).
  netns         the container's network namespace, bind-mounted while
                netDevices are moved in (they outlive the processes).

Locking: a command that acts on a container takes an flock on the
directory before it reads the state and holds it until it saved or
removed it (load -> act -> save). Changes (create, start, delete, pause,
resume, update) take it exclusive; kill and exec, which change no
document, shared. Queries (state, list, ps) read a snapshot without it:
every document is replaced atomically.
"""
from pyoci import fastos as os
from pyoci import jsonio as json
from pyoci.errors import ContainerBroken, ContainerExists, ContainerNotExist, PyociError

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")

STATE_FILE = "state.json"
CLEANUP_FILE = "cleanup.json"
FIFO = "exec.fifo"
NETNS = "netns"


def check_id(cid):
    if not cid or not _ID_CHARS.issuperset(cid) or cid in (".", "..") or ".." in cid:
        raise PyociError("invalid container id %r: only [A-Za-z0-9._-] allowed, and no '..'" % (cid,))


def ensure_root(root):
    try:
        os.makedirs(root, 0o700, exist_ok=True)
        xdg = os.getenv("XDG_RUNTIME_DIR")
        if xdg and os.path.dirname(root) == xdg.rstrip("/") and not os.stat(root).st_mode & 0o1000:
            # The XDG base directory spec lets a session's runtime directory
            # be cleaned of files unused for 6 hours unless they are sticky.
            os.chmod(root, 0o1700)
    except OSError as e:
        raise PyociError("state directory %s: %s" % (root, e.strerror))


class State:
    """The state document of one container, typed. The JSON keys are the
    attribute names but for those in _KEYS (kept from earlier versions,
    so that containers created by one survive an upgrade)."""

    __slots__ = ("id", "pid", "start_time", "bundle", "rootfs", "created", "annotations", "cgroup",
                 "namespaces", "hooks", "process", "no_new_keyring", "seccomp", "net_devices", "netns")
    _KEYS = {"net_devices": "netDevices"}
    # what delete --force needs (cleanup.json)
    CLEANUP = ("id", "pid", "start_time", "bundle", "cgroup", "net_devices", "netns", "hooks", "annotations")

    def __init__(self, id, **kw):
        self.id = id
        self.pid = 0
        self.start_time = 0
        self.bundle = ""
        self.rootfs = ""
        self.created = ""
        self.annotations = {}
        self.cgroup = None        # Cgroup.to_state()
        self.namespaces = []      # the namespace types create made
        self.hooks = {}
        self.process = None       # config.json's process (exec starts from it)
        self.no_new_keyring = False
        self.seccomp = None       # linux.seccomp (exec compiles it, cached)
        self.net_devices = None   # [[host name, name inside]]
        self.netns = None         # the network namespace holding them
        for k, v in kw.items():
            setattr(self, k, v)

    def to_json(self, fields=None):
        d = {}
        for k in fields or self.__slots__:
            v = getattr(self, k)
            if k == "hooks":
                d["config"] = {"hooks": v or {}}
            elif v is not None:
                d[self._KEYS.get(k, k)] = v
        return d

    @classmethod
    def from_json(cls, d):
        if not isinstance(d, dict) or not isinstance(d.get("id"), str):
            raise ValueError("not a state document")
        kw = {}
        for k in cls.__slots__:
            key = cls._KEYS.get(k, k)
            if k == "hooks":
                kw[k] = ((d.get("config") or {}).get("hooks")) or {}
            elif key in d:
                kw[k] = d[key]
        s = cls(d["id"])
        for k, v in kw.items():
            setattr(s, k, v)
        if not isinstance(s.pid, int) or not isinstance(s.start_time, int):
            raise ValueError("pid and start_time must be integers")
        return s


class StateDir:
    """One container's directory; `with sdir.locked():` holds its lock."""

    def __init__(self, root, cid):
        check_id(cid)
        self.root = root
        self.id = cid
        self.path = os.path.join(root, cid)
        self.lock_fd = -1

    @property
    def fifo(self):
        return os.path.join(self.path, FIFO)

    @property
    def netns(self):
        return os.path.join(self.path, NETNS)

    def exists(self):
        return os.path.isdir(self.path)

    # -- locking -------------------------------------------------------
    def make(self):
        """Create the directory of a new container and lock it. mkdir(2) is
        the one atomic step: of racing creates of one id exactly one gets
        here, the others fail before they touched anything."""
        ensure_root(self.root)
        try:
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise ContainerExists(self.id)
        except OSError as e:
            raise PyociError("create state directory %s: %s" % (self.path, e.strerror))
        try:
            self.lock()
        except ContainerNotExist:
            # a delete --force took the empty directory between our mkdir
            # and our lock; nothing of ours is left to undo
            raise PyociError("state directory %s was removed while it was made" % self.path)

    def lock(self, shared=False):
        """Take the lock (blocking). The directory may be removed by the
        holder we waited for: then the container does not exist (or, if a
        new one of the same id was made meanwhile, lock that one)."""
        while True:
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except (FileNotFoundError, NotADirectoryError):
                raise ContainerNotExist(self.id)
            try:
                import fcntl   # here: queries (state) take no lock

                fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
                st = os.fstat(fd)
                try:
                    now = os.stat(self.path)
                except FileNotFoundError:
                    now = None
            except BaseException:
                os.close(fd)
                raise
            if st.st_nlink > 0 and now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                self.unlock()
                self.lock_fd = fd
                return self
            os.close(fd)
            if now is None:
                raise ContainerNotExist(self.id)

    def busy(self):
        """True while another process holds the lock (a create, start or
        delete under way). Used by queries, which take no lock."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def share(self):
        """Turn a held exclusive lock into a shared one: what changes the
        documents is done, and commands that only act (kill, exec) may go on
        while the holder waits for something they may be part of (start's
        poststart hooks). A delete still waits for the holder."""
        if self.lock_fd >= 0:
            import fcntl

            fcntl.flock(self.lock_fd, fcntl.LOCK_SH)

    def unlock(self):
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1

    def close_in_child(self):
        """In a forked child: drop our copy of the lock's fd, so that the
        lock ends with this process even when the child lives on."""
        if self.lock_fd >= 0:
            try:
                os.close(self.lock_fd)
            except OSError:
                pass
            self.lock_fd = -1

    def locked(self, shared=False):
        return _Locked(self, shared)

    # -- documents -----------------------------------------------------
    def _read(self, name):
        with open(os.path.join(self.path, name), "rb") as f:
            return State.from_json(json.loads(f.read()))

    def load(self):
        """The State; ContainerNotExist without the directory, ContainerBroken
        when the directory is there but its state.json is missing or not a
        state document."""
        try:
            return self._read(STATE_FILE)
        except FileNotFoundError:
            if not os.path.isdir(self.path):
                raise ContainerNotExist(self.id)
            raise ContainerBroken(self.id, "no state.json")
        except NotADirectoryError:
            raise ContainerNotExist(self.id)
        except OSError as e:
            raise ContainerBroken(self.id, "state.json: %s" % e.strerror)
        except (ValueError, TypeError, AttributeError, RecursionError) as e:
            raise ContainerBroken(self.id, "state.json is corrupt: %s" % (str(e).split("\n")[0] or "not JSON"))

    def load_cleanup(self):
        """The cleanup record, or None when there is none usable."""
        try:
            return self._read(CLEANUP_FILE)
        except (OSError, ValueError, TypeError, AttributeError, RecursionError):
            return None

    def save(self, state):
        """The one writer of state.json."""
        from pyoci.fileio import write_atomic

        write_atomic(os.path.join(self.path, STATE_FILE), json.dumps(state.to_json()).encode(), 0o600)

    def save_cleanup(self, state):
        from pyoci.fileio import write_atomic

        write_atomic(os.path.join(self.path, CLEANUP_FILE),
                     json.dumps(state.to_json(State.CLEANUP)).encode(), 0o600)

    def remove(self):
        """Remove the directory and everything in it: the state documents
        last but one, the directory last; a mount left in it (the netns
        bind mount of a killed create) is detached first."""
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            names = []
        order = sorted(names, key=lambda n: (n == CLEANUP_FILE, n == STATE_FILE, n))
        for name in order:
            p = os.path.join(self.path, name)
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
            except IsADirectoryError:
                _remove_tree(p)
            except OSError:
                # EBUSY: a mount point (the pinned network namespace)
                _detach(p)
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass
        try:
            os.rmdir(self.path)
        except FileNotFoundError:
            pass
        self.unlock()


class _Locked:
    def __init__(self, sdir, shared):
        self.sdir, self.shared = sdir, shared

    def __enter__(self):
        return self.sdir.lock(self.shared)

    def __exit__(self, *exc):
        self.sdir.unlock()


def _detach(path):
    from pyoci.linux import sys as lsys

    try:
        lsys.umount2(path, lsys.MNT_DETACH)
    except OSError:
        pass


def _remove_tree(path):
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for n in filenames:
            try:
                os.unlink(os.path.join(dirpath, n))
            except OSError:
                pass
        for n in dirnames:
            try:
                os.rmdir(os.path.join(dirpath, n))
            except OSError:
                pass
    try:
        os.rmdir(path)
    except OSError:
        pass


def list_ids(root):
    """Every container directory under root (also those whose state is
    unusable: list shows them as broken)."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    out = []
    for e in entries:
        if e.name[0] in "@." or not e.is_dir(follow_symlinks=False):
            continue   # '@...': the runtime's caches
        try:
            check_id(e.name)
        except PyociError:
            continue
        out.append(e.name)
    return sorted(out)
