"""linux.seccomp compiled to a BPF program with libseccomp (through the
pyseccomp bindings, the project user's choice), in the runtime, before any
fork. pyoci-init loads the program as the last step before execve (or just
before the capability drop when noNewPrivileges is off: loading a filter
then needs CAP_SYS_ADMIN), so the filter covers the user's program and
never the runtime's own set-up.

Compiling costs ~100 ms (pyseccomp's import ~70 ms, podman's default
profile ~30 ms): compiled programs are cached under the state root,
`<root>/@seccomp-cache/<sha256>.bpf` ('@' cannot start a container id),
keyed by the section's content (less listenerPath and listenerMetadata,
which do not change the program), the machine, the libseccomp library
file and this module's own file. A hit costs a file read and no import
(and a utime: the cache keeps the CACHE_KEEP entries used last, pruned by
mtime whenever a new program is written).

SCMP_ACT_NOTIFY (runc's protocol): the runtime connects to listenerPath at
create, before anything is built (nobody listening is a create error), and
hands the connected socket to pyoci-init with the container process state
(JSON: ociVersion, fds ["seccompFd"], pid, metadata = listenerMetadata,
state {status "creating", ...}) that runc sends. pyoci-init loads the
filter with SECCOMP_FILTER_FLAG_NEW_LISTENER at its usual place (after
`start`), sends that JSON with the listener fd (SCM_RIGHTS) in one message,
and closes both. The filter is live by then: the profile must not block
sendmsg (NOTIFY on sendmsg is refused at create, as runc refuses it on
write, which its init uses after loading the filter).
"""
import os

from pyoci.errors import ConfigError, PyociError

FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
EPERM = 1
CACHE_DIR = "@seccomp-cache"
CACHE_KEEP = 64
_NOT_IN_PROGRAM = ("listenerPath", "listenerMetadata", "flags")


def _action(S, name, errno_ret, path):
    if name in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_THREAD"):
        return S.KILL_THREAD
    if name == "SCMP_ACT_KILL_PROCESS":
        return S.KILL_PROCESS
    if name == "SCMP_ACT_TRAP":
        return S.TRAP
    if name == "SCMP_ACT_ALLOW":
        return S.ALLOW
    if name == "SCMP_ACT_LOG":
        return S.LOG
    if name == "SCMP_ACT_ERRNO":
        return S.ERRNO(EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_TRACE":
        return S.TRACE(EPERM if errno_ret is None else errno_ret)
    if name == "SCMP_ACT_NOTIFY":
        return S.NOTIFY
    raise ConfigError(path, "unknown seccomp action %r" % (name,))


def _arch(S, name, path):
    short = name[len("SCMP_ARCH_"):] if name.startswith("SCMP_ARCH_") else name
    value = getattr(S.Arch, short, None)
    if value is None:
        raise ConfigError(path, "unknown seccomp architecture %r" % name)
    return value


def flags(sc):
    """The seccomp(2) filter flags of linux.seccomp.flags."""
    out = 0
    for i, name in enumerate(sc.get("flags") or ()):
        if name not in FLAGS:
            raise ConfigError("linux.seccomp.flags[%d]" % i, "unknown seccomp flag %r" % name)
        if name == "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" and not uses_notify(sc):
            raise ConfigError("linux.seccomp.flags[%d]" % i, "%s needs a rule with SCMP_ACT_NOTIFY "
                              "(the kernel takes it only with a listener)" % name)
        out |= FLAGS[name]
    return out


def uses_notify(sc):
    return any((r or {}).get("action") == "SCMP_ACT_NOTIFY" for r in sc.get("syscalls") or ())


def compile(sc, warn=None):
    """Returns (BPF bytes, seccomp() flags)."""
    import pyseccomp as S

    ops = {"SCMP_CMP_NE": S.NE, "SCMP_CMP_LT": S.LT, "SCMP_CMP_LE": S.LE, "SCMP_CMP_EQ": S.EQ,
           "SCMP_CMP_GE": S.GE, "SCMP_CMP_GT": S.GT, "SCMP_CMP_MASKED_EQ": S.MASKED_EQ}
    if sc.get("defaultAction") == "SCMP_ACT_NOTIFY":
        raise ConfigError("linux.seccomp.defaultAction", "SCMP_ACT_NOTIFY cannot be the default action")
    default = _action(S, sc.get("defaultAction"), sc.get("defaultErrnoRet"), "linux.seccomp.defaultAction")
    f = S.SyscallFilter(default)
    for i, a in enumerate(sc.get("architectures") or ()):
        arch = _arch(S, a, "linux.seccomp.architectures[%d]" % i)
        if arch != S.system_arch():
            try:
                f.add_arch(arch)
            except OSError:
                pass   # already present
    for i, rule in enumerate(sc.get("syscalls") or ()):
        path = "linux.seccomp.syscalls[%d]" % i
        act = _action(S, rule.get("action"), rule.get("errnoRet"), path + ".action")
        if act == default:
            continue
        args = []
        for j, a in enumerate(rule.get("args") or ()):
            op = ops.get(a.get("op"))
            if op is None:
                raise ConfigError("%s.args[%d].op" % (path, j), "unknown operator %r" % (a.get("op"),))
            if not 0 <= a.get("index", 0) <= 5:
                raise ConfigError("%s.args[%d].index" % (path, j), "a syscall has arguments 0 to 5")
            args.append(S.Arg(a.get("index", 0), op, a.get("value", 0), a.get("valueTwo", 0)))
        # libseccomp ANDs the conditions of one rule, and cannot AND two on
        # one argument: where an argument has several, each condition is a
        # rule of its own (so they are OR-ed), as runc does.
        indexes = [a.get("index", 0) for a in rule.get("args") or ()]
        groups = [[a] for a in args] if len(set(indexes)) < len(indexes) else [args]
        for name in rule.get("names") or ():
            try:
                for g in groups:
                    f.add_rule(act, name, *g)
            except OSError as e:
                # a name this libseccomp or architecture does not know: runc
                # skips it too
                if warn:
                    warn("seccomp: syscall %r skipped: %s" % (name, e.strerror))
    fd = os.memfd_create("pyoci-seccomp")
    try:
        with os.fdopen(os.dup(fd), "rb") as fo:
            f.export_bpf(fo)
        data = _read_all(fd)
    finally:
        os.close(fd)
    return _enosys_stub(S, sc, default) + data, flags(sc)


# -- runc's -ENOSYS stub -----------------------------------------------------------
ENOSYS = 38
X32_SYSCALL_BIT = 0x40000000
_LD_ABS, _JEQ, _JGT, _JSET, _JA, _RET = 0x20, 0x15, 0x25, 0x45, 0x05, 0x06
SECCOMP_RET_ERRNO = 0x00050000


def _enosys_stub(S, sc, default):
    """BPF put before libseccomp's program: a syscall numbered above every
    one the profile names (for its architecture) gets ENOSYS instead of the
    default action, as runc's patched filter gives it. A profile written
    before a syscall existed then makes it look absent, not forbidden, and
    the C library falls back (glibc tries clone3 and takes clone only on
    ENOSYS: with EPERM, thread creation breaks in newer images). Not when the
    default action allows (nothing to fix) or already returns ENOSYS."""
    if sc.get("defaultErrnoRet") == ENOSYS or default in (S.ALLOW, S.LOG):
        return b""
    names = {n for r in sc.get("syscalls") or () for n in (r or {}).get("names") or ()}
    tokens = [S.system_arch()]
    for a in sc.get("architectures") or ():
        short = a[len("SCMP_ARCH_"):] if a.startswith("SCMP_ARCH_") else a
        tok = getattr(S.Arch, short, None)
        if tok is not None and tok not in tokens:
            tokens.append(tok)
    # audit arch -> {"native": last nr, "x32": last nr}
    last = {}
    for tok in tokens:
        nrs = [S.resolve_syscall(tok, n) for n in names]
        nrs = [n for n in nrs if n >= 0]
        if not nrs:
            continue
        if tok == S.Arch.X32:
            last.setdefault(S.Arch.X86_64, {})["x32"] = max(nrs)
        else:
            last.setdefault(tok, {})["native"] = max(nrs)
    if not last:
        return b""
    prog = [(_LD_ABS, 0, 0, 4)]            # A = seccomp_data.arch
    fixups = []                            # (insn index, field, label)

    def insn(code, k, jt=None, jf=None):
        prog.append([code, 0, 0, k])
        for field, label in (("jt", jt), ("jf", jf)):
            if label is not None:
                fixups.append((len(prog) - 1, field, label))

    for n, (audit, sub) in enumerate(last.items()):
        nxt = "arch%d" % (n + 1)
        insn(_JEQ, audit, jf=nxt)
        insn(_LD_ABS, 0)                   # A = seccomp_data.nr
        if "native" in sub and "x32" in sub:
            insn(_JSET, X32_SYSCALL_BIT, jt="x32_%d" % n)
            insn(_JGT, sub["native"], jt="enosys", jf="end")
            labels_at = len(prog)
            insn(_JGT, sub["x32"], jt="enosys", jf="end")
            fixups.append(("label", "x32_%d" % n, labels_at))
        else:
            insn(_JGT, sub.get("native", sub.get("x32")), jt="enosys", jf="end")
        fixups.append(("label", nxt, len(prog)))
    insn(_JA, 0)
    ja = len(prog) - 1
    fixups.append(("label", "enosys", len(prog)))
    insn(_RET, SECCOMP_RET_ERRNO | ENOSYS)
    fixups.append(("label", "end", len(prog)))
    labels = {f[1]: f[2] for f in fixups if f[0] == "label"}
    # the last arch block's "next" is the jump over the ENOSYS return
    labels["arch%d" % len(last)] = ja
    prog[ja][3] = labels["end"] - ja - 1
    for f in fixups:
        if f[0] == "label":
            continue
        i, field, label = f
        off = labels[label] - i - 1
        if not 0 <= off <= 255:
            raise PyociError("seccomp: the -ENOSYS stub is too long")
        prog[i][1 if field == "jt" else 2] = off
    import struct

    return b"".join(struct.pack("=HBBI", *ins) for ins in prog)


def _read_all(fd):
    os.lseek(fd, 0, os.SEEK_SET)
    parts = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)


def _libseccomp_id():
    import sys

    triplet = getattr(sys.implementation, "_multiarch", "")
    for d in ("/usr/lib/" + triplet, "/lib/" + triplet, "/usr/lib64", "/lib64", "/usr/lib", "/usr/local/lib"):
        try:
            st = os.stat(os.path.join(d, "libseccomp.so.2"))
        except OSError:
            continue
        return "%d:%d:%d:%d" % (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    return None


def cache_key(sc):
    """Hex key of the program linux.seccomp compiles to, or None (no cache)."""
    lib = _libseccomp_id()
    if lib is None:
        return None
    import hashlib

    from pyoci import jsonio

    st = os.stat(__file__)
    body = {k: v for k, v in sc.items() if k not in _NOT_IN_PROGRAM}
    text = "%s\n%s\n%d:%d\n%s" % (os.uname().machine, lib, st.st_size, st.st_mtime_ns, jsonio.dumps(body))
    return hashlib.sha256(text.encode()).hexdigest()


def program(sc, root=None, warn=None):
    """(BPF bytes, flags), from the cache under the state root when it has
    the program, compiled (and cached) otherwise."""
    key = cache_key(sc) if root else None
    path = os.path.join(root, CACHE_DIR, key + ".bpf") if key else None
    if path:
        try:
            with open(path, "rb") as f:
                data = f.read()
            if data and len(data) % 8 == 0:
                try:
                    os.utime(path)   # used now: among the last pruned
                except OSError:
                    pass
                return data, flags(sc)
        except OSError:
            pass
    data, fl = compile(sc, warn)
    if path:
        try:
            from pyoci.fileio import write_atomic

            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
            write_atomic(path, data, 0o600)
            prune_cache(os.path.dirname(path))
        except OSError as e:
            if warn:
                warn("seccomp cache: %s" % e)
    return data, fl


def prune_cache(cache_dir, keep=CACHE_KEEP):
    """Remove all but the `keep` newest programs (by mtime) of cache_dir,
    and temporary files a crashed writer left (older than a minute)."""
    import time

    entries, stale, now = [], [], time.time()
    for name in os.listdir(cache_dir):
        p = os.path.join(cache_dir, name)
        try:
            mtime = os.stat(p).st_mtime
        except FileNotFoundError:
            continue   # another runtime pruned it
        if name.endswith(".bpf"):
            entries.append((mtime, p))
        elif name.endswith(".tmp") and mtime < now - 60:
            stale.append(p)
    entries.sort(reverse=True)
    for p in [p for _, p in entries[keep:]] + stale:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass


# -- SCMP_ACT_NOTIFY ------------------------------------------------------------
def connect_listener(sc):
    """The connected socket to linux.seccomp.listenerPath (a socket object),
    or None when no rule notifies."""
    if not uses_notify(sc):
        return None
    for i, rule in enumerate(sc.get("syscalls") or ()):
        if rule.get("action") != "SCMP_ACT_NOTIFY":
            continue
        for j, name in enumerate(rule.get("names") or ()):
            if name in ("sendmsg", "write"):
                # write: refused as runc refuses it (its init writes after
                # loading the filter; a profile made for runc must fail the
                # same way here), in runc's words
                raise ConfigError("linux.seccomp.syscalls[%d].names[%d]" % (i, j),
                                  "SCMP_ACT_NOTIFY cannot be used for the %s syscall: the runtime uses it "
                                  "once the filter is loaded (pyoci-init sends the listener fd to the agent "
                                  "with sendmsg)" % name)
    path = sc.get("listenerPath")
    if not path:
        raise ConfigError("linux.seccomp.listenerPath", "SCMP_ACT_NOTIFY needs a listenerPath")
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        s.close()
        raise PyociError("linux.seccomp.listenerPath: failed to connect with seccomp agent %s: %s"
                         % (path, e.strerror or e))
    return s


# In a state sent by `exec`, the process's host pid is known only to
# pyoci-init once it forked: this byte stands for it, and pyoci-init writes
# the pid there. JSON text never holds it raw (strings escape control
# characters), so it cannot collide with listenerMetadata or annotations.
PID_MARK = "\x01"


def listener_state(sc, cid, pid, bundle, annotations, status="creating", init_pid=None):
    """The container process state sent with the listener fd (runc's
    specs.ContainerProcessState): "pid" is the process that loads the
    filter (None: PID_MARK, filled in by pyoci-init), "state" the
    container's, whose pid is its init (init_pid, or pid at create)."""
    from pyoci import SPEC_VERSION, jsonio

    state = {"ociVersion": SPEC_VERSION, "id": cid, "status": status,
             "pid": pid if init_pid is None else init_pid, "bundle": bundle, "annotations": annotations or {}}
    return '{"ociVersion": %s, "fds": ["seccompFd"], "pid": %s, "metadata": %s, "state": %s}' % (
        jsonio.dumps(SPEC_VERSION), PID_MARK if pid is None else "%d" % pid,
        jsonio.dumps(sc.get("listenerMetadata") or ""), jsonio.dumps(state))
