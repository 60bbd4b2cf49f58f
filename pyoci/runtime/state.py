"""The state directory: `<root>/<id>/state.json` (+ exec.fifo while created).

Writes are atomic (temporary file + rename); a command that changes a
container holds an exclusive flock on its directory, so two commands on
the same id cannot corrupt it.
"""
import fcntl
import os

from pyoci import jsonio as json

from pyoci.errors import ContainerNotExist, PyociError

_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")

STATE_FILE = "state.json"
FIFO = "exec.fifo"


def check_id(cid):
    if not cid or not _ID_CHARS.issuperset(cid) or cid in (".", "..") or ".." in cid:
        raise PyociError("invalid container id %r: only [A-Za-z0-9._-] allowed, and no '..'" % (cid,))


def ensure_root(root):
    try:
        os.makedirs(root, 0o700, exist_ok=True)
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        if xdg and os.path.dirname(root) == xdg.rstrip("/") and not os.stat(root).st_mode & 0o1000:
            # The XDG base directory spec lets a session's runtime directory
            # be cleaned of files unused for 6 hours unless they are sticky.
            os.chmod(root, 0o1700)
    except OSError as e:
        raise PyociError("state directory %s: %s" % (root, e.strerror))


def write_atomic(path, data, mode=0o644):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, path)


class StateDir:
    """One container's directory; use as a context manager to hold its lock."""

    def __init__(self, root, cid):
        check_id(cid)
        self.root = root
        self.id = cid
        self.path = os.path.join(root, cid)
        self.lock_fd = -1

    @property
    def fifo(self):
        return os.path.join(self.path, FIFO)

    def exists(self):
        return os.path.isfile(os.path.join(self.path, STATE_FILE))

    def make(self):
        """Create the directory for a new container (locked)."""
        ensure_root(self.root)
        try:
            os.mkdir(self.path, 0o711)
        except FileExistsError:
            raise PyociError("container with given ID already exists")
        except OSError as e:
            raise PyociError("create state directory %s: %s" % (self.path, e.strerror))
        self.lock()

    def lock(self):
        try:
            self.lock_fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise ContainerNotExist(self.id)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX)
        return self

    def unlock(self):
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1

    def __enter__(self):
        return self.lock()

    def __exit__(self, *exc):
        self.unlock()

    def load(self):
        try:
            with open(os.path.join(self.path, STATE_FILE), "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            raise ContainerNotExist(self.id)
        except ValueError as e:
            raise PyociError("state of %s is corrupt: %s" % (self.id, e))

    def save(self, state):
        write_atomic(os.path.join(self.path, STATE_FILE), json.dumps(state).encode(), 0o600)

    def remove(self):
        for name in (FIFO, STATE_FILE):
            try:
                os.unlink(os.path.join(self.path, name))
            except FileNotFoundError:
                pass
        try:
            for name in os.listdir(self.path):
                os.unlink(os.path.join(self.path, name))
            os.rmdir(self.path)
        except FileNotFoundError:
            pass
        self.unlock()


def list_ids(root):
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if os.path.isfile(os.path.join(root, n, STATE_FILE)))
