"""Device nodes in the container's /dev and the /dev symlinks."""
import os
import stat

from pyoci.errors import PyociError
from pyoci.linux import paths

# The devices every container gets (runtime-spec "Default Devices").
DEFAULT = (
    {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
    {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5},
    {"path": "/dev/full", "type": "c", "major": 1, "minor": 7},
    {"path": "/dev/random", "type": "c", "major": 1, "minor": 8},
    {"path": "/dev/urandom", "type": "c", "major": 1, "minor": 9},
    {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0},
)

SYMLINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
    ("pts/ptmx", "/dev/ptmx"),
)

TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def all_devices(config):
    """The config's devices plus the defaults it does not override."""
    devs = list((config.get("linux") or {}).get("devices") or ())
    have = {d.get("path") for d in devs}
    return devs + [d for d in DEFAULT if d["path"] not in have]


def create(root_fd, config):
    for d in all_devices(config):
        path = d["path"]
        dirname, name = os.path.split(path)
        parent = paths.mkdir_all(root_fd, dirname)
        try:
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    raise PyociError("linux.devices: %s is a directory in the rootfs" % path)
                os.unlink(name, dir_fd=parent)
            except FileNotFoundError:
                pass
            mode = d.get("fileMode", 0o666) & 0o7777
            kind = TYPES[d.get("type", "c")]
            dev = os.makedev(d.get("major", 0), d.get("minor", 0)) if kind != stat.S_IFIFO else 0
            try:
                os.mknod(name, mode | kind, dev, dir_fd=parent)
                os.chown(name, d.get("uid", 0), d.get("gid", 0), dir_fd=parent, follow_symlinks=False)
            except OSError as e:
                raise PyociError("create device %s: %s" % (path, e.strerror))
        finally:
            os.close(parent)


def symlinks(root_fd):
    links = list(SYMLINKS)
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    dev = paths.mkdir_all(root_fd, "/dev")
    try:
        for target, path in links:
            try:
                os.symlink(target, os.path.basename(path), dir_fd=dev)
            except FileExistsError:
                pass
    finally:
        os.close(dev)
