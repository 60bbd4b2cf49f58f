"""Paths inside the container's root, resolved by the kernel.

Every lookup goes through openat2(RESOLVE_IN_ROOT): a symlink in the image,
absolute or full of `..`, resolves as if the rootfs were `/`, so nothing the
runtime creates or mounts lands outside it (CVE-2024-45310 and the symlink
class of runc CVEs). Missing components are created one at a time with
mkdirat() relative to an fd of their verified parent.
"""
import errno
import stat

from pyoci import fastos as os
from pyoci.linux import sys as lsys

RESOLVE = lsys.RESOLVE_IN_ROOT | lsys.RESOLVE_NO_MAGICLINKS


def open_in_root(root_fd, path, flags=os.O_PATH, resolve=0):
    return lsys.openat2(root_fd, path.lstrip("/") or ".", flags, 0, RESOLVE | resolve)


def open_dir_no_symlinks(root_fd, path, mode=0o755):
    """An O_PATH fd of the directory path in the root, created if missing,
    reached through no symlink at all: ELOOP if a component is one, ENOTDIR
    if it is not a directory."""
    flags = os.O_PATH | os.O_DIRECTORY
    try:
        return open_in_root(root_fd, path, flags, lsys.RESOLVE_NO_SYMLINKS)
    except FileNotFoundError:
        pass
    os.close(mkdir_all(root_fd, path, mode))
    return open_in_root(root_fd, path, flags, lsys.RESOLVE_NO_SYMLINKS)


def _components(path):
    return [c for c in path.split("/") if c and c != "."]


def mkdir_all(root_fd, path, mode=0o755, _depth=0):
    """Create path (and parents) inside the root; return an O_PATH fd of it.
    A dangling symlink on the way has its target created, inside the root."""
    comps = _components(path)
    fd = os.dup(root_fd)
    try:
        for i, comp in enumerate(comps):
            prefix = "/".join(comps[: i + 1])
            try:
                nfd = open_in_root(root_fd, prefix, os.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                try:
                    os.mkdir(comp, mode, dir_fd=fd)
                except FileExistsError:
                    try:
                        target = os.readlink(comp, dir_fd=fd)
                    except OSError:
                        target = None
                    if target is not None:
                        if _depth >= 40:
                            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                        if not target.startswith("/"):
                            target = "/".join(comps[:i]) + "/" + target
                        os.close(mkdir_all(root_fd, target, mode, _depth + 1))
                nfd = open_in_root(root_fd, prefix, os.O_PATH | os.O_DIRECTORY)
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def ensure(root_fd, path, is_dir=True, mode=0o755):
    """Make sure a mount destination exists in the root: a directory, or an
    empty file (for a file bind mount). Returns an O_PATH fd of it."""
    if is_dir:
        return mkdir_all(root_fd, path, mode)
    try:
        return open_in_root(root_fd, path)
    except FileNotFoundError:
        pass
    comps = _components(path)
    parent = mkdir_all(root_fd, "/".join(comps[:-1]))
    try:
        try:
            fd = os.open(comps[-1], os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=parent)
            os.close(fd)
        except FileExistsError:
            pass
    finally:
        os.close(parent)
    return open_in_root(root_fd, path)


def is_dir_fd(fd):
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def exists(root_fd, path):
    try:
        os.close(open_in_root(root_fd, path))
        return True
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return False
        raise
