"""Mount options of config.json mounts[]: flags, propagation, recursive
attributes (mount_setattr), idmapped mounts and filesystem data.

Every option runc accepts is understood here; what is none of them is
filesystem data handed to the kernel, which says whether it likes it.
"""

from pyoci import fastos as os
from pyoci.linux import sys as s

# option -> (clear the flag?, flag)
FLAGS = {
    "ro": (False, s.MS_RDONLY), "rw": (True, s.MS_RDONLY),
    "nosuid": (False, s.MS_NOSUID), "suid": (True, s.MS_NOSUID),
    "nodev": (False, s.MS_NODEV), "dev": (True, s.MS_NODEV),
    "noexec": (False, s.MS_NOEXEC), "exec": (True, s.MS_NOEXEC),
    "sync": (False, s.MS_SYNCHRONOUS), "async": (True, s.MS_SYNCHRONOUS),
    "dirsync": (False, s.MS_DIRSYNC),
    "remount": (False, s.MS_REMOUNT),
    "mand": (False, s.MS_MANDLOCK), "nomand": (True, s.MS_MANDLOCK),
    "atime": (True, s.MS_NOATIME), "noatime": (False, s.MS_NOATIME),
    "diratime": (True, s.MS_NODIRATIME), "nodiratime": (False, s.MS_NODIRATIME),
    "bind": (False, s.MS_BIND), "rbind": (False, s.MS_BIND | s.MS_REC),
    "relatime": (False, s.MS_RELATIME), "norelatime": (True, s.MS_RELATIME),
    "strictatime": (False, s.MS_STRICTATIME), "nostrictatime": (True, s.MS_STRICTATIME),
    "lazytime": (False, s.MS_LAZYTIME), "nolazytime": (True, s.MS_LAZYTIME),
    "silent": (False, s.MS_SILENT), "loud": (True, s.MS_SILENT),
    "nosymfollow": (False, s.MS_NOSYMFOLLOW), "symfollow": (True, s.MS_NOSYMFOLLOW),
}

PROPAGATION = {
    "private": s.MS_PRIVATE, "rprivate": s.MS_PRIVATE | s.MS_REC,
    "shared": s.MS_SHARED, "rshared": s.MS_SHARED | s.MS_REC,
    "slave": s.MS_SLAVE, "rslave": s.MS_SLAVE | s.MS_REC,
    "unbindable": s.MS_UNBINDABLE, "runbindable": s.MS_UNBINDABLE | s.MS_REC,
}

# Recursive attributes, applied with mount_setattr(AT_RECURSIVE) to the
# mount and every mount below it: option -> (clear?, MOUNT_ATTR_*).
RECURSIVE = {
    "rro": (False, s.MOUNT_ATTR_RDONLY), "rrw": (True, s.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, s.MOUNT_ATTR_NOSUID), "rsuid": (True, s.MOUNT_ATTR_NOSUID),
    "rnodev": (False, s.MOUNT_ATTR_NODEV), "rdev": (True, s.MOUNT_ATTR_NODEV),
    "rnoexec": (False, s.MOUNT_ATTR_NOEXEC), "rexec": (True, s.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, s.MOUNT_ATTR_NODIRATIME), "rdiratime": (True, s.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (False, s.MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (True, s.MOUNT_ATTR_NOSYMFOLLOW),
}
# The access-time mode is one field of three values: setting any of them
# clears the field first.
RECURSIVE_ATIME = {
    "rrelatime": s.MOUNT_ATTR_RELATIME, "rnorelatime": s.MOUNT_ATTR_RELATIME,
    "rnoatime": s.MOUNT_ATTR_NOATIME, "ratime": s.MOUNT_ATTR_RELATIME,
    "rstrictatime": s.MOUNT_ATTR_STRICTATIME, "rnostrictatime": s.MOUNT_ATTR_RELATIME,
}

IDMAP = ("idmap", "ridmap")

# Options runc accepts that change nothing in the mount itself.
IGNORED = ("tmpcopyup",)

# Flags a bind remount can change (the rest come from the source mount).
BIND_REMOUNT_FLAGS = (s.MS_RDONLY | s.MS_NOSUID | s.MS_NODEV | s.MS_NOEXEC | s.MS_NOATIME
                      | s.MS_NODIRATIME | s.MS_RELATIME | s.MS_STRICTATIME | s.MS_NOSYMFOLLOW)


class Options:
    __slots__ = ("flags", "propagation", "data", "attr_set", "attr_clr", "idmap")

    def __init__(self, flags, propagation, data, attr_set=0, attr_clr=0, idmap=None):
        self.flags = flags
        self.propagation = propagation
        self.data = data
        self.attr_set = attr_set     # mount_setattr, recursive
        self.attr_clr = attr_clr
        self.idmap = idmap           # None, "idmap" or "ridmap"

    @property
    def is_bind(self):
        return bool(self.flags & s.MS_BIND)

    @property
    def recursive_attrs(self):
        return bool(self.attr_set or self.attr_clr)


def parse(options, mtype=None):
    flags, prop, data = 0, [], []
    attr_set = attr_clr = 0
    idmap = None
    for o in options or ():
        f = FLAGS.get(o)
        if f is not None:
            clear, bit = f
            flags = (flags & ~bit) if clear else (flags | bit)
        elif o in PROPAGATION:
            prop.append(PROPAGATION[o])
        elif o in RECURSIVE:
            clear, bit = RECURSIVE[o]
            if clear:
                attr_set &= ~bit
                attr_clr |= bit
            else:
                attr_set |= bit
                attr_clr &= ~bit
        elif o in RECURSIVE_ATIME:
            attr_clr |= s.MOUNT_ATTR__ATIME
            attr_set = (attr_set & ~s.MOUNT_ATTR__ATIME) | RECURSIVE_ATIME[o]
        elif o in IDMAP:
            idmap = o
        elif o in IGNORED:
            continue
        else:
            data.append(o)
    if mtype == "bind":
        flags |= s.MS_BIND
    return Options(flags, prop, ",".join(data), attr_set, attr_clr, idmap)


def _map_lines(mappings):
    return "".join("%d %d %d\n" % (m.get("containerID", 0), m.get("hostID", 0), m.get("size", 0))
                   for m in mappings or ())


def userns_fd(uid_mappings, gid_mappings):
    """An fd of a new user namespace with these mappings (for an idmapped
    mount). A short-lived child holds the namespace while the maps are
    written from here, where /proc shows it; its fd outlives it."""
    from pyoci.linux import procfs

    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.close(w2)
            s.unshare(s.CLONE_NEWUSER)
            os.write(w, b"1")
            os.read(r2, 1)
        finally:
            os._exit(0)
    os.close(w)
    os.close(r2)
    try:
        if os.read(r, 1) != b"1":
            raise OSError(0, "the helper process could not create a user namespace")
        procfs.write("/proc/%d/uid_map" % pid, _map_lines(uid_mappings))
        procfs.write("/proc/%d/setgroups" % pid, "deny")
        procfs.write("/proc/%d/gid_map" % pid, _map_lines(gid_mappings))
        return os.open("/proc/%d/ns/user" % pid, os.O_RDONLY | os.O_CLOEXEC)
    finally:
        os.close(r)
        os.close(w2)
        os.waitpid(pid, 0)


def idmap_fds(config):
    """{mount index: user namespace fd} for the idmapped mounts of config."""
    out = {}
    try:
        for i, m in enumerate(config.get("mounts") or ()):
            opts = m.get("options") or ()
            if "idmap" in opts or "ridmap" in opts:
                out[i] = userns_fd(m.get("uidMappings"), m.get("gidMappings"))
    except BaseException:
        for fd in out.values():
            os.close(fd)
        raise
    return out
