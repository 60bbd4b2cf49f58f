"""Device nodes in the container's /dev and the /dev symlinks."""
import stat

from pyoci import fastos as os
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


def create(root_fd, config, bind=None):
    """bind: bind-mount the host's nodes instead of mknod; by default when
    running in a user namespace (mknod(2) is not permitted there)."""
    if bind is None:
        from pyoci.linux import userns

        bind = userns.inside()
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
            if bind:
                _bind_host_device(parent, name, path, kind, dev)
                continue
            try:
                os.mknod(name, mode | kind, dev, dir_fd=parent)
                os.chown(name, d.get("uid", 0), d.get("gid", 0), dir_fd=parent, follow_symlinks=False)
            except OSError as e:
                raise PyociError("create device %s: %s" % (path, e.strerror))
        finally:
            os.close(parent)


def _bind_host_device(parent, name, path, kind, dev):
    """In a user namespace: bind the host's node at the same path onto an
    empty file, as runc does; it must be the device the config names."""
    from pyoci.linux import sys as s

    try:
        st = os.stat(path)
    except OSError as e:
        raise PyociError("linux.devices: %s: in a user namespace devices are bind-mounted from the host, "
                         "and the host's %s: %s" % (path, path, e.strerror))
    if stat.S_IFMT(st.st_mode) != kind or (kind != stat.S_IFIFO and st.st_rdev != dev):
        raise PyociError("linux.devices: %s: in a user namespace devices are bind-mounted from the host, "
                         "and the host's %s is not that device" % (path, path))
    try:
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0, dir_fd=parent)
        os.close(fd)
        fd = paths.open_in_root(parent, name)
        try:
            s.mount(path, s.fd_path(fd), None, s.MS_BIND)
        finally:
            os.close(fd)
    except OSError as e:
        raise PyociError("bind-mount device %s: %s" % (path, e.strerror))


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
