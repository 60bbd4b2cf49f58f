"""`os` without the cost of importing it, for the commands engines call most.

`import os` runs os.py, _collections_abc, posixpath, stat and genericpath:
~6 M instructions, ~1.3 ms of CPU here, more than all of `pyoci state`'s own
work (the interpreter's `site` imports it, so a `python -I -S` start does
not). Its system calls are the built-in `posix` module's, which is loaded
at start-up anyway. Modules on the path of state, start, kill and delete
say `from pyoci import fastos as os` and read as before:

- every `posix` function and constant, under its `os` name (looked up
  when first used: copying all of them costs more than the few used);
- fsencode, fsdecode, getenv, makedirs; `path`: join, split, dirname, basename,
  exists, isfile, isdir, isabs, abspath, normpath, realpath (posixpath's
  behaviour for str paths);
- anything else (`environ`, `walk`, `fdopen`, `path.commonpath`, ...)
  imports the real `os` when first asked for, so nothing is missing, it
  only costs what it did before. (posix's own `environ` has bytes keys: it
  is not exported, so `os.environ` is always the real, str-keyed one.)

tests/integration/test_launcher.py checks that those commands do not import `os`.
"""
import posix as _posix
import sys as _sys
from posix import _exit, stat as _stat  # noqa: F401

_S_IFMT, _S_IFDIR, _S_IFREG = 0o170000, 0o040000, 0o100000


def __getattr__(name):
    """posix's function or constant of that name (kept here for the next
    use); else the real os's."""
    if name != "environ":
        try:
            value = getattr(_posix, name)
        except AttributeError:
            pass
        else:
            globals()[name] = value
            return value
    import os

    return getattr(os, name)


def fsencode(filename):
    """os.fsencode: str to bytes in the file system encoding."""
    filename = _posix.fspath(filename)
    if isinstance(filename, str):
        return filename.encode(_sys.getfilesystemencoding(), _sys.getfilesystemencodeerrors())
    return filename


def fsdecode(filename):
    filename = _posix.fspath(filename)
    if isinstance(filename, bytes):
        return filename.decode(_sys.getfilesystemencoding(), _sys.getfilesystemencodeerrors())
    return filename


def getenv(key, default=None):
    """An environment variable as the process started with it (pyoci never
    changes its own environment), without building os.environ."""
    value = _posix.environ.get(fsencode(key))
    return default if value is None else fsdecode(value)


def makedirs(name, mode=0o777, exist_ok=False):
    """os.makedirs: name and its missing parents."""
    try:
        _posix.mkdir(name, mode)
        return
    except FileExistsError:
        if exist_ok and path.isdir(name):
            return
        raise
    except FileNotFoundError:
        parent = path.dirname(name.rstrip("/"))
        if not parent or parent == name:
            raise
    makedirs(parent, mode, exist_ok=True)
    try:
        _posix.mkdir(name, mode)
    except FileExistsError:
        if not (exist_ok and path.isdir(name)):
            raise


class _Path:
    """The posixpath functions the frequent commands use."""

    sep = "/"

    @staticmethod
    def join(a, *parts):
        path = a
        for p in parts:
            if p.startswith("/"):
                path = p
            elif not path or path.endswith("/"):
                path += p
            else:
                path += "/" + p
        return path

    @staticmethod
    def dirname(p):
        i = p.rfind("/") + 1
        head = p[:i]
        if head and head != "/" * len(head):
            head = head.rstrip("/")
        return head

    @staticmethod
    def basename(p):
        return p[p.rfind("/") + 1:]

    @staticmethod
    def _mode(p):
        try:
            return _stat(p).st_mode & _S_IFMT
        except (OSError, ValueError):
            return None

    @classmethod
    def exists(cls, p):
        return cls._mode(p) is not None

    @classmethod
    def isfile(cls, p):
        return cls._mode(p) == _S_IFREG

    @classmethod
    def isdir(cls, p):
        return cls._mode(p) == _S_IFDIR

    @staticmethod
    def normpath(p):
        if not p:
            return "."
        initial = 2 if p.startswith("//") and not p.startswith("///") else (1 if p.startswith("/") else 0)
        out = []
        for c in p.split("/"):
            if c in ("", "."):
                continue
            if c != ".." or (not initial and not out) or (out and out[-1] == ".."):
                out.append(c)
            elif out:
                out.pop()
        p = "/" * initial + "/".join(out)
        return p or "."

    @staticmethod
    def isabs(p):
        return p.startswith("/")

    @classmethod
    def split(cls, p):
        i = p.rfind("/") + 1
        return cls.dirname(p), p[i:]

    @classmethod
    def realpath(cls, p):
        """posixpath.realpath (non-strict): symbolic links resolved, as far
        as the path exists; after 40 links (a loop) the rest is kept as
        written."""
        if not p.startswith("/"):
            p = _posix.getcwd() + "/" + p
        todo = [c for c in reversed(p.split("/")) if c]
        done = ""          # the resolved part, "" for /
        links = 0
        while todo:
            c = todo.pop()
            if c == ".":
                continue
            if c == "..":
                done = done.rpartition("/")[0]
                continue
            nxt = done + "/" + c
            try:
                link = _posix.lstat(nxt).st_mode & _S_IFMT == 0o120000
            except OSError:
                link = False
            if not link:
                done = nxt
                continue
            links += 1
            if links > 40:
                return cls.normpath("/".join([nxt] + todo[::-1]))
            target = _posix.readlink(nxt)
            if target.startswith("/"):
                done = ""
            todo.extend(c for c in reversed(target.split("/")) if c)
        return done or "/"

    @classmethod
    def abspath(cls, p):
        if not p.startswith("/"):
            p = cls.join(_posix.getcwd(), p)
        return cls.normpath(p)

    def __getattr__(self, name):
        import posixpath

        return getattr(posixpath, name)


path = _Path()
