"""`pyoci validate --host`: what this host cannot do for a config.

Each problem is a ConfigError on the field that asks for it, e.g.
`process.apparmorProfile: AppArmor is not enabled on this host`.
"""
import os

from pyoci.config import features as F
from pyoci.errors import ConfigError

# linux.resources member -> cgroup controller (v2 name, v1 name)
CONTROLLERS = {"memory": ("memory", "memory"), "cpu": ("cpu", "cpu"), "pids": ("pids", "pids"),
               "blockIO": ("io", "blkio"), "hugepageLimits": ("hugetlb", "hugetlb"),
               "rdma": ("rdma", "rdma"), "network": (None, "net_cls")}
NS_FILES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts",
            "user": "user", "cgroup": "cgroup", "time": "time"}


def _d(x):
    return x if isinstance(x, dict) else {}


def _l(x):
    return x if isinstance(x, list) else []


def check(config):
    out = []
    err = lambda p, r: out.append(ConfigError(p, r))  # noqa: E731
    proc = _d(config.get("process"))
    lin = _d(config.get("linux"))
    types = F.mount_types()
    profile = proc.get("apparmorProfile")
    if profile and not F.apparmor_enabled():
        err("process.apparmorProfile", "AppArmor is not enabled on this host")
    elif isinstance(profile, str) and profile:
        from pyoci.linux import lsm

        try:
            lsm.check_profile(profile)
        except ConfigError as e:
            out.append(e)
    for field, label in (("process.selinuxLabel", proc.get("selinuxLabel")),
                         ("linux.mountLabel", lin.get("mountLabel"))):
        if not label:
            continue
        if not F.selinux_enabled(types):
            err(field, "SELinux is not enabled on this host")
        elif isinstance(label, str):
            from pyoci.linux import lsm

            try:
                lsm.check_context(field, label)
            except ConfigError as e:
                out.append(e)
    for i, n in enumerate(_l(lin.get("namespaces"))):
        t, path = _d(n).get("type"), _d(n).get("path")
        if t in NS_FILES and not os.path.exists("/proc/self/ns/" + NS_FILES[t]):
            err("linux.namespaces[%d].type" % i, "this kernel has no %s namespace" % t)
        elif isinstance(path, str) and path and not os.path.exists(path):
            err("linux.namespaces[%d].path" % i, "%s does not exist" % path)
    res = _d(lin.get("resources"))
    if res:
        cg = F.cgroup_host(types)
        have = set(cg["controllers"])
        for key, (v2, v1) in CONTROLLERS.items():
            if res.get(key) and not ((cg["v2"] and v2 in have) or (cg["v1"] and v1 in have)):
                err("linux.resources." + key, "the %s cgroup controller is not available on this host"
                    % (v2 if cg["v2"] and v2 else v1))
        cpu = _d(res.get("cpu"))
        if (cpu.get("cpus") or cpu.get("mems")) and "cpuset" not in have:
            err("linux.resources.cpu", "the cpuset cgroup controller is not available on this host")
    sec = _d(lin.get("seccomp"))
    if sec:
        host = F.seccomp_host()
        if not host["enabled"]:
            err("linux.seccomp", "seccomp is not available (kernel or libseccomp missing)")
        else:
            for i, f in enumerate(_l(sec.get("flags"))):
                if f not in host["supportedFlags"]:
                    err("linux.seccomp.flags[%d]" % i, "%s is not supported by this kernel" % f)
    for i, m in enumerate(_l(config.get("mounts"))):
        m = _d(m)
        opts = _l(m.get("options"))
        if m.get("uidMappings") or "idmap" in opts or "ridmap" in opts:
            if not F.BUILD["idmap"]:
                err("mounts[%d]" % i, "idmapped mounts are not implemented by this pyoci")
            elif not F.idmap_host():
                err("mounts[%d]" % i, "idmapped mounts need Linux 5.12 or later")
    if lin.get("intelRdt") and not (F.BUILD["intelRdt"] and types.get("resctrl")):
        err("linux.intelRdt", "Intel RDT (resctrl) is not available")
    if lin.get("netDevices") and not F.BUILD["netDevices"]:
        err("linux.netDevices", "moving network devices is not implemented by this pyoci")
    elif isinstance(lin.get("netDevices"), dict):
        for name in sorted(lin["netDevices"]):
            if "/" in name or not os.path.exists("/sys/class/net/" + name):
                err("linux.netDevices", "no network interface %r on this host" % name)
    from pyoci.linux import userns

    for field, reason in userns.host_problems(config):
        err(field, reason)
    if lin.get("memoryPolicy") and not F.BUILD["memoryPolicy"]:
        err("linux.memoryPolicy", "memory policies are not implemented by this pyoci")
    return out
