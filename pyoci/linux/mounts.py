"""Mount options of config.json mounts[]: flags, propagation and data."""
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

# Flags a bind remount can change (the rest come from the source mount).
BIND_REMOUNT_FLAGS = (s.MS_RDONLY | s.MS_NOSUID | s.MS_NODEV | s.MS_NOEXEC | s.MS_NOATIME
                      | s.MS_NODIRATIME | s.MS_RELATIME | s.MS_STRICTATIME | s.MS_NOSYMFOLLOW)


class Options:
    __slots__ = ("flags", "propagation", "data")

    def __init__(self, flags, propagation, data):
        self.flags = flags
        self.propagation = propagation
        self.data = data

    @property
    def is_bind(self):
        return bool(self.flags & s.MS_BIND)


def parse(options, mtype=None):
    flags, prop, data = 0, [], []
    for o in options or ():
        f = FLAGS.get(o)
        if f is not None:
            clear, bit = f
            flags = (flags & ~bit) if clear else (flags | bit)
        elif o in PROPAGATION:
            prop.append(PROPAGATION[o])
        else:
            data.append(o)
    if mtype == "bind":
        flags |= s.MS_BIND
    return Options(flags, prop, ",".join(data))
