"""The default config.json of `pyoci spec`: runc's defaults, runtime-spec 1.3.0.

default_spec() is what `runc spec` writes (a shell in a terminal, read-only
rootfs, the usual /proc /dev /sys mounts, three capabilities, a private
pid/network/ipc/uts/mount namespace each: no cgroup namespace, as runc 1.1.5
writes it, so the container sees its cgroup paths as the host names them;
runc's own suite adds one where it wants one, and a duplicate is refused);
differences from runc's: runtime-spec 1.3.0, hostname "pyoci", no ambient
capabilities (runc 1.1's spec raises the three into the ambient set, which a
non-root process would keep across execve),
/sys/devices/virtual/powercap masked (as newer runc, CVE-2020-8694);
rootless=True adapts it as `runc spec --rootless` does: a user namespace
mapping the calling user to root, no network namespace, /sys bound from the
host, no uid=/gid= mount options, no cgroup resources.
"""
import os

from pyoci import SPEC_VERSION

DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                "/proc/scsi", "/sys/devices/virtual/powercap"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def _mount(dest, mtype, source, options):
    return {"destination": dest, "type": mtype, "source": source, "options": options}


def default_spec(rootless=False, uid=None, gid=None):
    spec = {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {s: list(DEFAULT_CAPS) for s in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyoci",
        "mounts": [
            _mount("/proc", "proc", "proc", []),
            _mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            _mount("/dev/pts", "devpts", "devpts",
                   ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            _mount("/dev/shm", "tmpfs", "shm", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            _mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
            _mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
            _mount("/sys/fs/cgroup", "cgroup", "cgroup", ["nosuid", "noexec", "nodev", "relatime", "ro"]),
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }
    if rootless:
        _to_rootless(spec, os.geteuid() if uid is None else uid, os.getegid() if gid is None else gid)
    return spec


def _to_rootless(spec, uid, gid):
    lin = spec["linux"]
    lin["namespaces"] = [n for n in lin["namespaces"] if n["type"] not in ("network", "user")]
    lin["namespaces"].append({"type": "user"})
    lin["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
    lin["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    mounts = []
    for m in spec["mounts"]:
        if m["destination"] == "/sys":
            # sysfs needs a network namespace of the user namespace: bind the host's
            mounts.append(_mount("/sys", "none", "/sys", ["rbind", "nosuid", "noexec", "nodev", "ro"]))
            continue
        m["options"] = [o for o in m["options"] if not o.startswith(("uid=", "gid="))]
        mounts.append(m)
    spec["mounts"] = mounts
    del lin["resources"]  # an unprivileged user cannot set cgroup limits on its own
