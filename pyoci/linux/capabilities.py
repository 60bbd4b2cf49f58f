"""Linux capabilities: names, numbers, and the sets handed to pyoci-init.

The sets are applied by pyoci-init (cffi_build/init.c) right before the
final execve, after the uid switch: a capability set by Python in the
runtime would not survive the exec of pyoci-init itself. That is why
python-prctl, which works on the calling process, has no place on this path.
"""
from pyoci.errors import ConfigError

CAPS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
    "CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")

_last_cap = None


def last_cap():
    """The highest capability number the running kernel knows."""
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _last_cap = int(f.read())
        except OSError:
            _last_cap = max(CAPS.values())
    return _last_cap


def mask(names, path, warn=None):
    """Bit mask of a list of capability names. Unknown names are a config
    error; names the running kernel lacks are skipped with a warning, as
    runc does."""
    bits = 0
    top = last_cap()
    for i, name in enumerate(names or ()):
        n = CAPS.get(name)
        if n is None:
            raise ConfigError("%s[%d]" % (path, i), "unknown capability %r" % name)
        if n > top:
            if warn:
                warn("capability %s is not supported by this kernel, ignored" % name)
            continue
        bits |= 1 << n
    return bits


def from_config(caps, path="process.capabilities", warn=None):
    """(bounding, effective, inheritable, permitted, ambient) masks, or None
    when the config leaves capabilities alone."""
    if caps is None:
        return None
    b, e, i, p, a = (mask(caps.get(s), "%s.%s" % (path, s), warn) for s in SETS)
    if a & ~(i & p):
        # The kernel raises an ambient capability only if it is permitted
        # and inheritable; runc drops the others too.
        if warn:
            warn("ambient capabilities not in the permitted and inheritable sets are ignored")
        a &= i & p
    return b, e, i, p, a
