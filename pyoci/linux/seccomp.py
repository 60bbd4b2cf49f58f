"""linux.seccomp compiled to a BPF program with libseccomp (through the
pyseccomp bindings, the project user's choice), in the runtime, before any
fork. pyoci-init loads the program as the last step before execve, so the
filter covers the user's program and never the runtime's own set-up.
"""
import os

from pyoci.errors import ConfigError

FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
EPERM = 1


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
        raise ConfigError(path, "SCMP_ACT_NOTIFY needs a seccomp listener, which this pyoci does not support yet")
    raise ConfigError(path, "unknown seccomp action %r" % (name,))


def _arch(S, name, path):
    short = name[len("SCMP_ARCH_"):] if name.startswith("SCMP_ARCH_") else name
    value = getattr(S.Arch, short, None)
    if value is None:
        raise ConfigError(path, "unknown seccomp architecture %r" % name)
    return value


def compile(sc, warn=None):
    """Returns (BPF bytes, seccomp() flags)."""
    import pyseccomp as S

    ops = {"SCMP_CMP_NE": S.NE, "SCMP_CMP_LT": S.LT, "SCMP_CMP_LE": S.LE, "SCMP_CMP_EQ": S.EQ,
           "SCMP_CMP_GE": S.GE, "SCMP_CMP_GT": S.GT, "SCMP_CMP_MASKED_EQ": S.MASKED_EQ}
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
            args.append(S.Arg(a.get("index", 0), op, a.get("value", 0), a.get("valueTwo", 0)))
        for name in rule.get("names") or ():
            try:
                f.add_rule(act, name, *args)
            except OSError as e:
                # a name this libseccomp or architecture does not know: runc
                # skips it too
                if warn:
                    warn("seccomp: syscall %r skipped: %s" % (name, e.strerror))
    flags = 0
    for i, name in enumerate(sc.get("flags") or ()):
        if name not in FLAGS:
            raise ConfigError("linux.seccomp.flags[%d]" % i, "unknown seccomp flag %r" % name)
        flags |= FLAGS[name]
    fd = os.memfd_create("pyoci-seccomp")
    try:
        with os.fdopen(os.dup(fd), "rb") as fo:
            f.export_bpf(fo)
        os.lseek(fd, 0, os.SEEK_SET)
        data = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    return data, flags
