"""The features document of `pyoci features` (runtime-spec features.md).

Truthful for this build on this host: what pyoci's code implements (read
from the tables the runtime itself uses where there are such tables, and
from BUILD otherwise) and what the running kernel and libraries offer.
The host probes here also serve `pyoci validate --host`.
"""
import os

from pyoci import SPEC_VERSION, __version__
from pyoci.config.validate import HOOKS

# What this build of pyoci implements beyond the runtime's own tables.
# A feature is reported enabled only when the build has it and the host can.
BUILD = {
    "idmap": True,          # mounts[].uidMappings/gidMappings (idmapped mounts)
    "netDevices": True,     # linux.netDevices
    "intelRdt": False,      # linux.intelRdt
    "memoryPolicy": True,   # linux.memoryPolicy
    "seccompNotify": True,   # SCMP_ACT_NOTIFY and the seccomp listener
}

SECCOMP_ACTIONS = ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                   "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"]
SECCOMP_OPERATORS = ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                     "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"]
SECCOMP_ARCHS = ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
                 "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
                 "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PARISC", "SCMP_ARCH_PARISC64",
                 "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64", "SCMP_ARCH_PPC64LE", "SCMP_ARCH_RISCV64",
                 "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_SH", "SCMP_ARCH_SHEB", "SCMP_ARCH_X32",
                 "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"]
MEMORY_POLICY_MODES = ["MPOL_DEFAULT", "MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_WEIGHTED_INTERLEAVE",
                       "MPOL_PREFERRED", "MPOL_PREFERRED_MANY", "MPOL_LOCAL"]
MEMORY_POLICY_FLAGS = ["MPOL_F_NUMA_BALANCING", "MPOL_F_RELATIVE_NODES", "MPOL_F_STATIC_NODES"]
SECCOMP_FILTER_FLAGS = {"SECCOMP_FILTER_FLAG_TSYNC": 1, "SECCOMP_FILTER_FLAG_LOG": 2,
                        "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32}


# -- host probes -------------------------------------------------------------
# (the LSM probes live with the mechanism, in linux/lsm.py)
from pyoci.linux.lsm import apparmor_enabled, mount_types, selinux_enabled  # noqa: E402,F401

def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def cgroup_host(types=None):
    types = mount_types() if types is None else types
    v2_controllers = set()
    for mp in types.get("cgroup2", ()):
        v2_controllers.update((_read(os.path.join(mp, "cgroup.controllers")) or "").split())
    v1_controllers = set()
    for line in (_read("/proc/cgroups") or "").splitlines()[1:]:
        f = line.split()
        if len(f) >= 4 and f[3] == "1":
            v1_controllers.add(f[0])
    # pyoci's systemd cgroup driver: systemd as PID 1 and the controllers on
    # cgroup v2; run as root only (no systemd user instance driver)
    from pyoci.linux.cgroups import controllers_on_v1

    systemd = os.path.isdir("/run/systemd/system") and not controllers_on_v1()
    return {
        "v1": bool(types.get("cgroup")),
        "v2": bool(types.get("cgroup2")),
        "systemd": systemd,
        "systemdUser": False,
        "rdma": "rdma" in v2_controllers or "rdma" in v1_controllers,
        "controllers": sorted(v2_controllers | v1_controllers),
    }


def kernel_version():
    try:
        rel = os.uname().release
        return tuple(int(x) for x in rel.split("-")[0].split(".")[:2])
    except (ValueError, AttributeError):
        return (0, 0)


def seccomp_supported_flags():
    """The filter flags the kernel accepts, probed as runc does: seccomp(2)
    SECCOMP_SET_MODE_FILTER with a NULL program fails with EFAULT for a known
    flag, EINVAL for an unknown one. Needs libseccomp for the syscall number."""
    from pyoci.config import seccompnames

    lib = seccompnames.libseccomp()
    if lib is None:
        return []
    import ctypes

    res = lib.seccomp_syscall_resolve_name
    res.argtypes, res.restype = (ctypes.c_char_p,), ctypes.c_int
    nr = res(b"seccomp")
    if nr < 0:
        return []
    libc = ctypes.CDLL(None, use_errno=True)
    out = []
    for name, flag in SECCOMP_FILTER_FLAGS.items():
        if libc.syscall(ctypes.c_long(nr), ctypes.c_uint(1), ctypes.c_uint(flag), None) < 0 and \
                ctypes.get_errno() == 14:  # EFAULT: the flag passed, the NULL program did not
            out.append(name)
    return out


def seccomp_host():
    from pyoci.config import seccompnames

    kernel = _read("/proc/self/status") or ""
    has_kernel = any(line.startswith("Seccomp:") for line in kernel.splitlines())
    lib = seccompnames.libseccomp()
    return {
        "enabled": has_kernel and lib is not None,
        "archs": [a for a in SECCOMP_ARCHS if seccompnames.arch_known(a)] if lib is not None else [],
        "supportedFlags": seccomp_supported_flags() if lib is not None else [],
        "libseccomp": seccompnames.version(),
    }


def idmap_host():
    # mount_setattr(2) with MOUNT_ATTR_IDMAP: Linux 5.12
    return kernel_version() >= (5, 12)


# -- the document ------------------------------------------------------------
def _runtime_tables():
    """Mount options, namespaces and seccomp flags of the runtime's own code."""
    try:
        from pyoci.linux import mounts, namespaces
        opts = sorted(set(mounts.FLAGS) | set(mounts.PROPAGATION) | set(mounts.RECURSIVE)
                      | set(mounts.RECURSIVE_ATIME) | set(mounts.IGNORED))
        ns = sorted(namespaces.FLAGS)
    except Exception:  # the runtime core is not importable: say nothing rather than guess
        opts, ns = [], []
    try:
        from pyoci.linux import seccomp
        flags = sorted(seccomp.FLAGS)
    except Exception:
        flags = []
    return opts, ns, flags


def features():
    from pyoci.linux.capabilities import CAPS, last_cap

    types = mount_types()
    cg = cgroup_host(types)
    sec = seccomp_host()
    mount_opts, namespaces, known_flags = _runtime_tables()
    if BUILD["idmap"]:
        mount_opts = sorted(set(mount_opts) | {"idmap", "ridmap"})
    top = last_cap()
    actions = [a for a in SECCOMP_ACTIONS if BUILD["seccompNotify"] or a != "SCMP_ACT_NOTIFY"]
    annotations = {"org.pyoci.version": __version__}
    if sec["libseccomp"]:
        annotations["io.github.seccomp.libseccomp.version"] = sec["libseccomp"]
    linux = {
        "namespaces": namespaces,
        "capabilities": [n for n, v in sorted(CAPS.items(), key=lambda kv: kv[1]) if v <= top],
        "cgroup": {k: cg[k] for k in ("v1", "v2", "systemd", "systemdUser", "rdma")},
        "seccomp": {
            "enabled": sec["enabled"],
            "actions": actions if sec["enabled"] else [],
            "operators": SECCOMP_OPERATORS if sec["enabled"] else [],
            "archs": sec["archs"],
            "knownFlags": known_flags,
            "supportedFlags": [f for f in sec["supportedFlags"] if f in known_flags],
        },
        "apparmor": {"enabled": apparmor_enabled()},
        "selinux": {"enabled": selinux_enabled(types)},
        "intelRdt": {"enabled": BUILD["intelRdt"] and bool(types.get("resctrl"))},
        "mountExtensions": {"idmap": {"enabled": BUILD["idmap"] and idmap_host()}},
        "netDevices": {"enabled": BUILD["netDevices"]},
    }
    if BUILD["memoryPolicy"]:
        linux["memoryPolicy"] = {"modes": MEMORY_POLICY_MODES, "flags": MEMORY_POLICY_FLAGS}
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(HOOKS),
        "mountOptions": mount_opts,
        "annotations": annotations,
        "potentiallyUnsafeConfigAnnotations": [],
        "linux": linux,
    }
