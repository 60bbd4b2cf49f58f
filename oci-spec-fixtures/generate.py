"""Writes the fixture documents and index.json of this folder.

    python oci-spec-fixtures/generate.py

Layout: <kind>/<verdict>-<what it tests>.json, kind = config, state or
features; verdict = valid (valid for the runtime-spec schema, and pyoci
accepts it), invalid (the schema refuses it), reject (the schema accepts it,
pyoci's semantic checks refuse it). index.json maps each file to
{"schema": bool, "pyoci": [expected `pyoci validate` lines, without the
"config.json: " prefix]} (config documents only have "pyoci").
The expected lines are written by hand here, one per mutation.
"""
import copy
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))

BASE = {
    "ociVersion": "1.3.0",
    "process": {
        "terminal": False,
        "user": {"uid": 0, "gid": 0},
        "args": ["sh"],
        "env": ["PATH=/usr/bin:/bin", "TERM=xterm"],
        "cwd": "/",
        "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]},
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": True,
    },
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "fixture",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]},
    ],
    "linux": {
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/kcore"],
        "readonlyPaths": ["/proc/sys"],
    },
}

FULL_LINUX = {
    "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "user", "cgroup", "time")],
    "uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
    "timeOffsets": {"monotonic": {"secs": -9223372036854775808, "nanosecs": 0},
                    "boottime": {"secs": 3600, "nanosecs": 4294967295}},
    "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438, "uid": 0, "gid": 0},
                {"path": "/dev/fifo", "type": "p"}],
    "netDevices": {"eth1": {"name": "eth0"}, "ens4": {}},
    "cgroupsPath": "/pyoci/fixture",
    "resources": {
        "devices": [{"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 10, "minor": 229,
                                                        "access": "rw"}],
        "memory": {"limit": 536870912, "reservation": -1, "swap": 1073741824, "kernel": -1, "kernelTCP": -1,
                   "swappiness": 0, "disableOOMKiller": False, "useHierarchy": True, "checkBeforeUpdate": True},
        "cpu": {"shares": 1024, "quota": 100000, "burst": 0, "period": 100000, "realtimeRuntime": 950000,
                "realtimePeriod": 1000000, "cpus": "0-1", "mems": "0", "idle": 0},
        "blockIO": {"weight": 500, "leafWeight": 300,
                    "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                    "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 60}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 60}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "1GB", "limit": 0}],
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
        "pids": {"limit": 32771},
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
        "unified": {"io.max": "8:0 rbps=1048576", "memory.high": "max"},
    },
    "intelRdt": {"closID": "guaranteed_group", "schemata": ["L3:0=7f0;1=1f", "MB:0=20;1=70"],
                 "l3CacheSchema": "L3:0=7f0;1=1f", "memBwSchema": "MB:0=20;1=70", "enableMonitoring": True},
    "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]},
    "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "68719476736", "fs.mqueue.msg_max": "20",
               "kernel.domainname": "example.org"},
    "seccomp": {
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
        "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [
            {"names": ["read", "write", "exit_group", "socketcall", "_llseek"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 8, "valueTwo": 8, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
        ],
    },
    "rootfsPropagation": "slave",
    "maskedPaths": ["/proc/kcore", "/sys/firmware"],
    "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger"],
    "mountLabel": "system_u:object_r:container_file_t:s0",
    "personality": {"domain": "LINUX", "flags": []},
}

FULL_PROCESS = {
    "terminal": True,
    "consoleSize": {"height": 25, "width": 80},
    "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6], "username": "someone"},
    "args": ["/bin/sh", "-c", "true"],
    "env": ["PATH=/bin"],
    "cwd": "/home/someone",
    "capabilities": {s: ["CAP_CHOWN", "CAP_NET_RAW"] for s in
                     ("bounding", "effective", "inheritable", "permitted", "ambient")},
    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 18446744073709551615, "soft": 1024},
                {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}],
    "noNewPrivileges": True,
    "apparmorProfile": "pyoci-default",
    "oomScoreAdj": -1000,
    "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
    "scheduler": {"policy": "SCHED_DEADLINE", "nice": -20, "priority": 0, "flags": ["SCHED_FLAG_RESET_ON_FORK"],
                  "runtime": 10000000, "deadline": 20000000, "period": 20000000},
    "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 4},
    "execCPUAffinity": {"initial": "0", "final": "0-3, 7"},
}

HOOK = {"path": "/usr/bin/true", "args": ["true", "x"], "env": ["A=b"], "timeout": 5}


def mutate(*ops):
    """ops: ("set", "a.b[0].c", value) or ("del", "a.b")."""
    doc = copy.deepcopy(BASE)
    for op in ops:
        *parents, last = _parse(op[1])
        node = doc
        for k in parents:
            node = node[k]
        if op[0] == "set" and isinstance(node, list) and last == len(node):
            node.append(copy.deepcopy(op[2]))
        elif op[0] == "set":
            node[last] = copy.deepcopy(op[2])
        else:
            del node[last]
    return doc


def _parse(path):
    out = []
    for part in path.replace("]", "").split("."):
        name, *idx = part.split("[")
        if name:
            out.append(name)
        out += [int(i) for i in idx]
    return out


def S(path, value):
    return ("set", path, value)


def D(path):
    return ("del", path)


# Fixtures that upstream's schema refuses and pyoci's accepts on purpose:
# name -> key of pyoci.config.schema.UPSTREAM_DIFFERENCES (the reason is there).
UPSTREAM_DIFFERS = {"valid-rootfspropagation-" + v: "linux.rootfsPropagation"
                    for v in ("rprivate", "rshared", "rslave", "runbindable")}

# name -> (document, expected pyoci lines)
CONFIG = {
    # ---- valid ---------------------------------------------------------
    "valid-base": (mutate(), []),
    "valid-minimal": ({"ociVersion": "1.3.0", "root": {"path": "rootfs"},
                       "process": {"args": ["sh"], "cwd": "/"}}, []),
    "valid-ociversion-1.0.0": (mutate(S("ociVersion", "1.0.0")), []),
    "valid-ociversion-rc": (mutate(S("ociVersion", "1.1.0-rc.1")), []),
    "valid-ociversion-dev": (mutate(S("ociVersion", "1.2.1+dev")), []),
    "valid-ociversion-future-minor": (mutate(S("ociVersion", "1.9.0")), []),
    "valid-linux-full": (mutate(S("linux", FULL_LINUX)), []),
    "valid-process-full": (mutate(S("process", FULL_PROCESS)), []),
    "valid-hooks-all": (mutate(S("hooks", {s: [HOOK, {"path": "/bin/hook"}] for s in (
        "prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")})), []),
    **{"valid-rootfspropagation-" + v: (mutate(S("linux.rootfsPropagation", v)), [])
       for v in ("rprivate", "rshared", "rslave", "runbindable")},
    "valid-annotations": (mutate(S("annotations", {"org.example.key": "value", "com.example/x": ""})), []),
    "valid-annotation-empty-key-any-value": (mutate(S("annotations", {"": 5})), []),
    "valid-mount-relative-destination": (mutate(S("mounts[1].destination", "dev")), []),
    "valid-mount-idmapped": (mutate(
        S("linux.namespaces[5]", {"type": "user"}),
        S("linux.uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]),
        S("linux.gidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]),
        S("mounts[2]", {"destination": "/data", "type": "bind", "source": "/srv/data",
                        "options": ["rbind", "idmap"],
                        "uidMappings": [{"containerID": 0, "hostID": 2000, "size": 10}],
                        "gidMappings": [{"containerID": 0, "hostID": 2000, "size": 10}]})), []),
    "valid-rootless-userns": (mutate(
        S("linux.namespaces[1]", {"type": "user"}),
        S("linux.uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}]),
        S("linux.gidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}])), []),
    "valid-namespace-joined-by-path": (mutate(S("linux.namespaces[1]", {"type": "network",
                                                                       "path": "/var/run/netns/x"})), []),
    "valid-cgroupspath-systemd": (mutate(S("linux.cgroupsPath", "system.slice:pyoci:abc")), []),
    "valid-cgroupspath-relative": (mutate(S("linux.cgroupsPath", "pyoci/abc")), []),
    "valid-sysctl-namespaced": (mutate(S("linux.sysctl", {"net.core.somaxconn": "1024",
                                                          "kernel.msgmax": "8192"})), []),
    "valid-uint64-max": (mutate(S("process.rlimits[0]", {"type": "RLIMIT_NOFILE", "soft": 18446744073709551615,
                                                         "hard": 18446744073709551615})), []),
    "valid-root-absolute": (mutate(S("root.path", "/var/lib/containers/x/rootfs")), []),
    "valid-unknown-fields-ignored": (mutate(S("orgExampleExtension", {"a": 1}),
                                            S("process.someFutureField", True)), []),
    "valid-other-platforms": (mutate(
        S("solaris", {"milestone": "svc:/milestone/container:default", "cappedCPU": {"ncpus": "8"}}),
        S("windows", {"layerFolders": ["C:\\layers\\1"], "devices": [{"id": "x", "idType": "class"}]}),
        S("vm", {"kernel": {"path": "/vmlinuz"}, "image": {"path": "/img", "format": "qcow2"}}),
        S("zos", {"namespaces": [{"type": "pid"}]}),
        S("freebsd", {"jail": {"vnet": "new", "ip4": "disable"}})), []),
    # ---- invalid: top level, root, process --------------------------------
    "invalid-ociversion-missing": (mutate(D("ociVersion")), ["ociVersion: required property is missing"]),
    "invalid-ociversion-number": (mutate(S("ociVersion", 1)), ["ociVersion: 1 is not a string"]),
    "invalid-document-array": ([BASE], ["[{\"hostname\": \"fixture\", \"linux\": {\"maskedPaths\": [\"/proc... is not an object"]),
    "invalid-root-path-missing": (mutate(D("root.path")), ["root.path: required property is missing"]),
    "invalid-root-path-number": (mutate(S("root.path", 7)), ["root.path: 7 is not a string"]),
    "invalid-root-readonly-string": (mutate(S("root.readonly", "yes")), ["root.readonly: \"yes\" is not a boolean"]),
    "invalid-process-cwd-missing": (mutate(D("process.cwd")), ["process.cwd: required property is missing"]),
    "invalid-process-args-string": (mutate(S("process.args", "sh -c true")),
                                    ["process.args: \"sh -c true\" is not an array"]),
    "invalid-process-args-item-number": (mutate(S("process.args", ["sleep", 10])),
                                         ["process.args[1]: 10 is not a string"]),
    "invalid-process-env-object": (mutate(S("process.env", {"PATH": "/bin"})),
                                   ["process.env: {\"PATH\": \"/bin\"} is not an array"]),
    "invalid-process-terminal-string": (mutate(S("process.terminal", "true")),
                                        ["process.terminal: \"true\" is not a boolean"]),
    "invalid-consolesize-width-missing": (mutate(S("process.consoleSize", {"height": 10})),
                                          ["process.consoleSize.width: required property is missing"]),
    "invalid-consolesize-height-negative": (mutate(S("process.consoleSize", {"height": -1, "width": 80})),
                                            ["process.consoleSize.height: -1 is out of range for uint64 (0..18446744073709551615)"]),
    "invalid-user-uid-negative": (mutate(S("process.user.uid", -1)),
                                  ["process.user.uid: -1 is out of range for uint32 (0..4294967295)"]),
    "invalid-user-uid-too-big": (mutate(S("process.user.uid", 4294967296)),
                                 ["process.user.uid: 4294967296 is out of range for uint32 (0..4294967295)"]),
    "invalid-user-uid-float": (mutate(S("process.user.uid", 0.0)), ["process.user.uid: 0.0 is not an integer"]),
    "invalid-user-gid-string": (mutate(S("process.user.gid", "0")), ["process.user.gid: \"0\" is not an integer"]),
    "invalid-user-additionalgids-item-string": (mutate(S("process.user.additionalGids", [1, "wheel"])),
                                                ["process.user.additionalGids[1]: \"wheel\" is not an integer"]),
    "invalid-user-umask-boolean": (mutate(S("process.user.umask", True)),
                                   ["process.user.umask: true is not an integer"]),
    "invalid-capabilities-bounding-string": (mutate(S("process.capabilities.bounding", "CAP_KILL")),
                                             ["process.capabilities.bounding: \"CAP_KILL\" is not an array"]),
    "invalid-rlimit-soft-missing": (mutate(D("process.rlimits[0].soft")),
                                    ["process.rlimits[0].soft: required property is missing"]),
    "invalid-rlimit-type-lowercase": (mutate(S("process.rlimits[0].type", "rlimit_nofile")),
                                      ["process.rlimits[0].type: \"rlimit_nofile\" does not match ^RLIMIT_[A-Z]+$"]),
    "invalid-rlimit-hard-negative": (mutate(S("process.rlimits[0].hard", -1)),
                                     ["process.rlimits[0].hard: -1 is out of range for uint64 (0..18446744073709551615)"]),
    "invalid-nonewprivileges-string": (mutate(S("process.noNewPrivileges", "true")),
                                       ["process.noNewPrivileges: \"true\" is not a boolean"]),
    "invalid-oomscoreadj-float": (mutate(S("process.oomScoreAdj", 1.5)),
                                  ["process.oomScoreAdj: 1.5 is not an integer"]),
    "invalid-iopriority-class-unknown": (mutate(S("process.ioPriority", {"class": "IOPRIO_CLASS_NONE"})),
                                         ["process.ioPriority.class: \"IOPRIO_CLASS_NONE\" is not one of IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE"]),
    "invalid-iopriority-class-missing": (mutate(S("process.ioPriority", {"priority": 1})),
                                         ["process.ioPriority.class: required property is missing"]),
    "invalid-scheduler-policy-unknown": (mutate(S("process.scheduler", {"policy": "SCHED_FAST"})),
                                         ["process.scheduler.policy: \"SCHED_FAST\" is not one of SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE"]),
    "invalid-scheduler-policy-missing": (mutate(S("process.scheduler", {"nice": 1})),
                                         ["process.scheduler.policy: required property is missing"]),
    "invalid-scheduler-flag-unknown": (mutate(S("process.scheduler", {"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_X"]})),
                                       ["process.scheduler.flags[0]: \"SCHED_FLAG_X\" is not one of SCHED_FLAG_RESET_ON_FORK, SCHED_FLAG_RECLAIM, SCHED_FLAG_DL_OVERRUN, SCHED_FLAG_KEEP_POLICY, SCHED_FLAG_KEEP_PARAMS, SCHED_FLAG_UTIL_CLAMP_MIN, SCHED_FLAG_UTIL_CLAMP_MAX"]),
    "invalid-scheduler-nice-int32-overflow": (mutate(S("process.scheduler", {"policy": "SCHED_OTHER", "nice": 2147483648})),
                                              ["process.scheduler.nice: 2147483648 is out of range for int32 (-2147483648..2147483647)"]),
    "invalid-execcpuaffinity-pattern": (mutate(S("process.execCPUAffinity", {"initial": "cpu0"})),
                                        ["process.execCPUAffinity.initial: \"cpu0\" does not match ^[0-9, -]*$"]),
    "invalid-hostname-number": (mutate(S("hostname", 1)), ["hostname: 1 is not a string"]),
    # ---- invalid: mounts, hooks, annotations --------------------------------
    "invalid-mounts-object": (mutate(S("mounts", {"/proc": "proc"})),
                              ["mounts: {\"/proc\": \"proc\"} is not an array"]),
    "invalid-mount-destination-missing": (mutate(D("mounts[0].destination")),
                                          ["mounts[0].destination: required property is missing"]),
    "invalid-mount-options-string": (mutate(S("mounts[1].options", "nosuid,mode=755")),
                                     ["mounts[1].options: \"nosuid,mode=755\" is not an array"]),
    "invalid-mount-uidmapping-size-missing": (mutate(S("mounts[1].uidMappings", [{"containerID": 0, "hostID": 1}])),
                                              ["mounts[1].uidMappings[0].size: required property is missing"]),
    "invalid-hooks-prestart-object": (mutate(S("hooks", {"prestart": {"path": "/bin/true"}})),
                                      ["hooks.prestart: {\"path\": \"/bin/true\"} is not an array"]),
    "invalid-hook-path-missing": (mutate(S("hooks", {"poststop": [{"args": ["x"]}]})),
                                  ["hooks.poststop[0].path: required property is missing"]),
    "invalid-hook-timeout-zero": (mutate(S("hooks", {"createRuntime": [{"path": "/bin/true", "timeout": 0}]})),
                                  ["hooks.createRuntime[0].timeout: 0 is less than the minimum 1"]),
    "invalid-annotation-value-number": (mutate(S("annotations", {"org.example.n": 1})),
                                        ["annotations[\"org.example.n\"]: 1 is not a string"]),
    # ---- invalid: linux ----------------------------------------------------
    "invalid-linux-array": (mutate(S("linux", [])), ["linux: [] is not an object"]),
    "invalid-namespace-type-unknown": (mutate(S("linux.namespaces[2].type", "pidd")),
                                       ["linux.namespaces[2].type: \"pidd\" is not one of mount, pid, network, uts, ipc, user, cgroup, time"]),
    "invalid-namespace-type-missing": (mutate(S("linux.namespaces[0]", {"path": "/proc/1/ns/pid"})),
                                       ["linux.namespaces[0].type: required property is missing"]),
    "invalid-namespace-path-number": (mutate(S("linux.namespaces[1].path", 4)),
                                      ["linux.namespaces[1].path: 4 is not a string"]),
    "invalid-uidmapping-hostid-string": (mutate(S("linux.namespaces[5]", {"type": "user"}),
                                                S("linux.uidMappings", [{"containerID": 0, "hostID": "1000", "size": 1}]),
                                                S("linux.gidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}])),
                                         ["linux.uidMappings[0].hostID: \"1000\" is not an integer"]),
    "invalid-device-type-unknown": (mutate(S("linux.devices", [{"path": "/dev/x", "type": "x", "major": 1, "minor": 1}])),
                                    ["linux.devices[0].type: \"x\" does not match ^[cbup]$"]),
    "invalid-device-path-missing": (mutate(S("linux.devices", [{"type": "p"}])),
                                    ["linux.devices[0].path: required property is missing"]),
    "invalid-device-filemode-too-big": (mutate(S("linux.devices", [{"path": "/dev/p", "type": "p", "fileMode": 512}])),
                                        ["linux.devices[0].fileMode: 512 is out of range for fileMode (0..511)"]),
    "invalid-device-major-string": (mutate(S("linux.devices", [{"path": "/dev/c", "type": "c", "major": "1", "minor": 3}])),
                                    ["linux.devices[0].major: \"1\" is not an integer"]),
    "invalid-netdevice-name-number": (mutate(S("linux.netDevices", {"eth0": {"name": 23}})),
                                      ["linux.netDevices.eth0.name: 23 is not a string"]),
    "invalid-resources-device-allow-missing": (mutate(S("linux.resources", {"devices": [{"access": "rwm"}]})),
                                               ["linux.resources.devices[0].allow: required property is missing"]),
    "invalid-memory-limit-string": (mutate(S("linux.resources", {"memory": {"limit": "1G"}})),
                                    ["linux.resources.memory.limit: \"1G\" is not an integer"]),
    "invalid-memory-swappiness-negative": (mutate(S("linux.resources", {"memory": {"swappiness": -1}})),
                                           ["linux.resources.memory.swappiness: -1 is out of range for uint64 (0..18446744073709551615)"]),
    "invalid-cpu-shares-negative": (mutate(S("linux.resources", {"cpu": {"shares": -2}})),
                                    ["linux.resources.cpu.shares: -2 is out of range for uint64 (0..18446744073709551615)"]),
    "invalid-cpu-cpus-number": (mutate(S("linux.resources", {"cpu": {"cpus": 1}})),
                                ["linux.resources.cpu.cpus: 1 is not a string"]),
    "invalid-pids-limit-missing": (mutate(S("linux.resources", {"pids": {}})),
                                   ["linux.resources.pids.limit: required property is missing"]),
    "invalid-blockio-weight-too-big": (mutate(S("linux.resources", {"blockIO": {"weight": 70000}})),
                                       ["linux.resources.blockIO.weight: 70000 is out of range for uint16 (0..65535)"]),
    "invalid-blockio-weightdevice-major-missing": (mutate(S("linux.resources", {"blockIO": {"weightDevice": [{"minor": 0, "weight": 10}]}})),
                                                   ["linux.resources.blockIO.weightDevice[0].major: required property is missing"]),
    "invalid-blockio-throttle-rate-negative": (mutate(S("linux.resources", {"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": -1}]}})),
                                               ["linux.resources.blockIO.throttleReadBpsDevice[0].rate: -1 is out of range for uint64 (0..18446744073709551615)"]),
    "invalid-hugepage-pagesize-lowercase": (mutate(S("linux.resources", {"hugepageLimits": [{"pageSize": "2mb", "limit": 1}]})),
                                            ["linux.resources.hugepageLimits[0].pageSize: \"2mb\" does not match ^[1-9][0-9]*[KMG]B$"]),
    "invalid-hugepage-limit-missing": (mutate(S("linux.resources", {"hugepageLimits": [{"pageSize": "2MB"}]})),
                                       ["linux.resources.hugepageLimits[0].limit: required property is missing"]),
    "invalid-network-classid-negative": (mutate(S("linux.resources", {"network": {"classID": -1}})),
                                         ["linux.resources.network.classID: -1 is out of range for uint32 (0..4294967295)"]),
    "invalid-network-priority-missing": (mutate(S("linux.resources", {"network": {"priorities": [{"name": "eth0"}]}})),
                                         ["linux.resources.network.priorities[0].priority: required property is missing"]),
    "invalid-rdma-hcahandles-string": (mutate(S("linux.resources", {"rdma": {"mlx5_1": {"hcaHandles": "3"}}})),
                                       ["linux.resources.rdma.mlx5_1.hcaHandles: \"3\" is not an integer"]),
    "invalid-unified-value-number": (mutate(S("linux.resources", {"unified": {"memory.max": 1024}})),
                                     ["linux.resources.unified[\"memory.max\"]: 1024 is not a string"]),
    "invalid-cgroupspath-number": (mutate(S("linux.cgroupsPath", 5)), ["linux.cgroupsPath: 5 is not a string"]),
    "invalid-rootfspropagation-unknown": (mutate(S("linux.rootfsPropagation", "bidirectional")),
                                          ["linux.rootfsPropagation: \"bidirectional\" is not one of private, "
                                           "shared, slave, unbindable, rprivate, rshared, rslave, runbindable"]),
    "invalid-seccomp-defaultaction-missing": (mutate(S("linux.seccomp", {"syscalls": []})),
                                              ["linux.seccomp.defaultAction: required property is missing"]),
    "invalid-seccomp-defaultaction-unknown": (mutate(S("linux.seccomp", {"defaultAction": "SCMP_ACT_DENY"})),
                                              ["linux.seccomp.defaultAction: \"SCMP_ACT_DENY\" is not one of SCMP_ACT_KILL, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, SCMP_ACT_ALLOW, SCMP_ACT_LOG, SCMP_ACT_NOTIFY"]),
    "invalid-seccomp-arch-unknown": (mutate(S("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_AMD64"]})),
                                     ["linux.seccomp.architectures[0]: \"SCMP_ARCH_AMD64\" is not one of SCMP_ARCH_X86, SCMP_ARCH_X86_64, SCMP_ARCH_X32, SCMP_ARCH_ARM, SCMP_ARCH_AARCH64, SCMP_ARCH_LOONGARCH64, SCMP_ARCH_M68K, SCMP_ARCH_MIPS, SCMP_ARCH_MIPS64, SCMP_ARCH_MIPS64N32, SCMP_ARCH_MIPSEL, SCMP_ARCH_MIPSEL64, SCMP_ARCH_MIPSEL64N32, SCMP_ARCH_PPC, SCMP_ARCH_PPC64, SCMP_ARCH_PPC64LE, SCMP_ARCH_S390, SCMP_ARCH_S390X, SCMP_ARCH_SH, SCMP_ARCH_SHEB, SCMP_ARCH_PARISC, SCMP_ARCH_PARISC64, SCMP_ARCH_RISCV64"]),
    "invalid-seccomp-flag-unknown": (mutate(S("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]})),
                                     ["linux.seccomp.flags[0]: \"SECCOMP_FILTER_FLAG_NEW_LISTENER\" is not one of SECCOMP_FILTER_FLAG_TSYNC, SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW, SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]),
    "invalid-seccomp-syscall-names-empty": (mutate(S("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]})),
                                            ["linux.seccomp.syscalls[0].names: must have at least 1 item"]),
    "invalid-seccomp-syscall-action-missing": (mutate(S("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"]}]})),
                                               ["linux.seccomp.syscalls[0].action: required property is missing"]),
    "invalid-seccomp-arg-op-unknown": (mutate(S("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_IN"}]}]})),
                                       ["linux.seccomp.syscalls[0].args[0].op: \"SCMP_CMP_IN\" is not one of SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_EQ, SCMP_CMP_GE, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ"]),
    "invalid-seccomp-arg-value-missing": (mutate(S("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_EQ"}]}]})),
                                          ["linux.seccomp.syscalls[0].args[0].value: required property is missing"]),
    "invalid-seccomp-errnoret-negative": (mutate(S("linux.seccomp", {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": -1})),
                                          ["linux.seccomp.defaultErrnoRet: -1 is out of range for uint32 (0..4294967295)"]),
    "invalid-sysctl-value-number": (mutate(S("linux.sysctl", {"net.ipv4.ip_forward": 1})),
                                    ["linux.sysctl[\"net.ipv4.ip_forward\"]: 1 is not a string"]),
    "invalid-maskedpaths-string": (mutate(S("linux.maskedPaths", "/proc/kcore")),
                                   ["linux.maskedPaths: \"/proc/kcore\" is not an array"]),
    "invalid-intelrdt-membwschema-pattern": (mutate(S("linux.intelRdt", {"memBwSchema": "L3:0=ff"})),
                                             ["linux.intelRdt.memBwSchema: \"L3:0=ff\" does not match ^MB:[^\\n]*$"]),
    "invalid-intelrdt-schemata-string": (mutate(S("linux.intelRdt", {"schemata": "L3:0=ff"})),
                                         ["linux.intelRdt.schemata: \"L3:0=ff\" is not an array"]),
    "invalid-memorypolicy-mode-unknown": (mutate(S("linux.memoryPolicy", {"mode": "MPOL_FAST"})),
                                          ["linux.memoryPolicy.mode: \"MPOL_FAST\" is not one of MPOL_DEFAULT, MPOL_BIND, MPOL_INTERLEAVE, MPOL_WEIGHTED_INTERLEAVE, MPOL_PREFERRED, MPOL_PREFERRED_MANY, MPOL_LOCAL"]),
    "invalid-memorypolicy-flag-unknown": (mutate(S("linux.memoryPolicy", {"mode": "MPOL_BIND", "flags": ["MPOL_F_X"]})),
                                          ["linux.memoryPolicy.flags[0]: \"MPOL_F_X\" is not one of MPOL_F_NUMA_BALANCING, MPOL_F_RELATIVE_NODES, MPOL_F_STATIC_NODES"]),
    "invalid-personality-domain-unknown": (mutate(S("linux.personality", {"domain": "LINUX64"})),
                                           ["linux.personality.domain: \"LINUX64\" is not one of LINUX, LINUX32"]),
    "invalid-timeoffsets-nanosecs-negative": (mutate(S("linux.namespaces[5]", {"type": "time"}),
                                                     S("linux.timeOffsets", {"boottime": {"secs": 1, "nanosecs": -1}})),
                                              ["linux.timeOffsets.boottime.nanosecs: -1 is out of range for uint32 (0..4294967295)"]),
    "invalid-timeoffsets-secs-string": (mutate(S("linux.namespaces[5]", {"type": "time"}),
                                               S("linux.timeOffsets", {"monotonic": {"secs": "1"}})),
                                        ["linux.timeOffsets.monotonic.secs: \"1\" is not an integer"]),
    # ---- invalid: other platforms -----------------------------------------
    "invalid-windows-layerfolders-missing": (mutate(S("windows", {"servicing": True})),
                                             ["windows.layerFolders: required property is missing"]),
    "invalid-vm-kernel-missing": (mutate(S("vm", {"hypervisor": {"path": "/usr/bin/qemu"}})),
                                  ["vm.kernel: required property is missing"]),
    "invalid-freebsd-vnet-disable": (mutate(S("freebsd", {"jail": {"vnet": "disable"}})),
                                     ["freebsd.jail.vnet: \"disable\" is not one of new, inherit"]),
    "invalid-zos-namespace-network": (mutate(S("zos", {"namespaces": [{"type": "network"}]})),
                                      ["zos.namespaces[0].type: \"network\" is not one of mount, pid, uts, ipc"]),
    "invalid-solaris-milestone-number": (mutate(S("solaris", {"milestone": 1})),
                                         ["solaris.milestone: 1 is not a string"]),
    # ---- reject: schema-valid, refused by pyoci's semantic checks ----------
    "reject-ociversion-major-2": (mutate(S("ociVersion", "2.0.0")),
                                  ["ociVersion: \"2.0.0\": runtime-spec major version 2 is not supported (pyoci implements 1.x, up to 1.3.0)"]),
    "reject-ociversion-major-0": (mutate(S("ociVersion", "0.5.0")),
                                  ["ociVersion: \"0.5.0\": runtime-spec major version 0 is not supported (pyoci implements 1.x, up to 1.3.0)"]),
    "reject-ociversion-not-semver": (mutate(S("ociVersion", "1.0")),
                                     ["ociVersion: \"1.0\" is not a semantic version (MAJOR.MINOR.PATCH)"]),
    "reject-process-missing": (mutate(D("process")),
                               ["process: required property is missing (pyoci needs a process to run)"]),
    "reject-root-missing": (mutate(D("root")),
                            ["root: required property is missing (a Linux container needs a root filesystem)"]),
    "reject-root-path-escapes-bundle": (mutate(S("root.path", "rootfs/../../etc")),
                                        ["root.path: \"rootfs/../../etc\" resolves outside the bundle"]),
    "reject-root-path-empty": (mutate(S("root.path", "")), ["root.path: must not be empty"]),
    "reject-process-cwd-relative": (mutate(S("process.cwd", "home")),
                                    ["process.cwd: \"home\" is not an absolute path"]),
    "reject-process-args-empty": (mutate(S("process.args", [])),
                                  ["process.args: must name the program to run (at least one item)"]),
    "reject-capability-unknown": (mutate(S("process.capabilities.effective", ["CAP_KILL", "CAP_FLY"])),
                                  ["process.capabilities.effective[1]: \"CAP_FLY\" is not a known capability"]),
    "reject-capability-lowercase": (mutate(S("process.capabilities.bounding", ["cap_kill"])),
                                    ["process.capabilities.bounding[0]: \"cap_kill\" is not a known capability"]),
    "reject-rlimit-unknown": (mutate(S("process.rlimits[0].type", "RLIMIT_FOO")),
                              ["process.rlimits[0].type: \"RLIMIT_FOO\" is not a Linux resource limit"]),
    "reject-rlimit-duplicate": (mutate(S("process.rlimits[1]", {"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1})),
                                ["process.rlimits[1].type: \"RLIMIT_NOFILE\" is set twice (first at process.rlimits[0])"]),
    "reject-rlimit-soft-above-hard": (mutate(S("process.rlimits[0].soft", 4096)),
                                      ["process.rlimits[0].soft: 4096 is greater than hard 1024"]),
    "reject-namespace-duplicate": (mutate(S("linux.namespaces[5]", {"type": "pid"})),
                                   ["linux.namespaces[5].type: \"pid\" is listed twice (first at linux.namespaces[0])"]),
    "reject-userns-without-mappings": (mutate(S("linux.namespaces[5]", {"type": "user"})),
                                       ["linux.uidMappings: a new user namespace needs uidMappings",
                                        "linux.gidMappings: a new user namespace needs gidMappings"]),
    "reject-mappings-without-userns": (mutate(S("linux.uidMappings", [{"containerID": 0, "hostID": 1000, "size": 1}])),
                                       ["linux.uidMappings: mappings need a user namespace (linux.namespaces has no \"user\")"]),
    "reject-namespace-path-relative": (mutate(S("linux.namespaces[1].path", "netns/x")),
                                       ["linux.namespaces[1].path: \"netns/x\" is not an absolute path (a namespace file, e.g. /proc/PID/ns/net)"]),
    "reject-hostname-without-uts": (mutate(S("linux.namespaces", [{"type": "pid"}, {"type": "mount"}])),
                                    ["hostname: setting the hostname needs a uts namespace"]),
    "reject-timeoffsets-without-timens": (mutate(S("linux.timeOffsets", {"boottime": {"secs": 1}})),
                                          ["linux.timeOffsets: needs a time namespace (linux.namespaces has no \"time\")"]),
    "reject-sysctl-net-without-netns": (mutate(S("linux.namespaces[1]", {"type": "cgroup"}),
                                               S("linux.sysctl", {"net.ipv4.ip_forward": "1"})),
                                        ["linux.sysctl[\"net.ipv4.ip_forward\"]: needs a network namespace (linux.namespaces has no \"network\")"]),
    "reject-sysctl-ipc-without-ipcns": (mutate(S("linux.namespaces[2]", {"type": "cgroup"}),
                                               S("linux.sysctl", {"kernel.shmmax": "1"})),
                                        ["linux.sysctl[\"kernel.shmmax\"]: needs an ipc namespace (linux.namespaces has no \"ipc\")"]),
    "reject-sysctl-not-namespaced": (mutate(S("linux.sysctl", {"vm.swappiness": "10"})),
                                     ["linux.sysctl[\"vm.swappiness\"]: is not namespaced: it would change the host (only net.*, fs.mqueue.*, IPC kernel.* and kernel.hostname/domainname can be set)"]),
    "reject-mount-destination-root": (mutate(S("mounts[1].destination", "/")),
                                      ["mounts[1].destination: \"/\" is the container's root: cannot mount over it"]),
    "reject-mount-destination-empty": (mutate(S("mounts[1].destination", "")),
                                       ["mounts[1].destination: must not be empty"]),
    "reject-bind-mount-without-source": (mutate(S("mounts[2]", {"destination": "/data", "type": "bind", "options": ["rbind"]})),
                                         ["mounts[2].source: a bind mount needs a source"]),
    "reject-idmap-option-without-mappings": (mutate(S("mounts[2]", {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "idmap"]})),
                                             ["mounts[2].options: \"idmap\" needs uidMappings and gidMappings on the mount"]),
    "reject-ridmap-option-without-mappings": (mutate(S("mounts[2]", {"destination": "/data", "type": "bind", "source": "/srv", "options": ["ridmap"]})),
                                              ["mounts[2].options: \"ridmap\" needs uidMappings and gidMappings on the mount"]),
    "reject-mount-uidmappings-only": (mutate(S("mounts[2]", {"destination": "/data", "type": "bind", "source": "/srv", "options": ["bind"],
                                                              "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]})),
                                      ["mounts[2].gidMappings: an idmapped mount needs both uidMappings and gidMappings"]),
    "reject-hook-path-relative": (mutate(S("hooks", {"prestart": [{"path": "bin/hook"}]})),
                                  ["hooks.prestart[0].path: \"bin/hook\" is not an absolute path"]),
    "reject-cgroupspath-systemd-two-parts": (mutate(S("linux.cgroupsPath", "system.slice:pyoci")),
                                             ["linux.cgroupsPath: \"system.slice:pyoci\": a systemd cgroupsPath is slice:prefix:name"]),
    "reject-cgroupspath-systemd-bad-slice": (mutate(S("linux.cgroupsPath", "system:pyoci:x")),
                                             ["linux.cgroupsPath: \"system:pyoci:x\": \"system\" is not a systemd slice name (NAME.slice)"]),
    "reject-cgroupspath-dotdot": (mutate(S("linux.cgroupsPath", "/pyoci/../../escape")),
                                  ["linux.cgroupsPath: \"/pyoci/../../escape\": '..' is not allowed in a cgroup path"]),
    "reject-device-path-relative": (mutate(S("linux.devices", [{"path": "dev/fuse", "type": "c", "major": 10, "minor": 229}])),
                                    ["linux.devices[0].path: \"dev/fuse\" is not an absolute path"]),
    "reject-char-device-without-major": (mutate(S("linux.devices", [{"path": "/dev/x", "type": "c", "minor": 1}])),
                                         ["linux.devices[0].major: a character device needs major"]),
    "reject-maskedpath-relative": (mutate(S("linux.maskedPaths", ["proc/kcore"])),
                                   ["linux.maskedPaths[0]: \"proc/kcore\" is not an absolute path"]),
    # a name this libseccomp does not know is skipped at create, as runc skips it (profiles list
    # syscalls newer than the host's libseccomp)
    "valid-seccomp-syscall-unknown": (mutate(S("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount", "mountt"], "action": "SCMP_ACT_ERRNO"}]})),
                                      []),
    "reject-env-no-equals": (mutate(S("process.env[2]", "FOO")),
                             ["process.env[2]: invalid environment variable: \"FOO\" (no '=')"]),
    "reject-env-empty-name": (mutate(S("process.env[2]", "=x")),
                              ["process.env[2]: environment variable name can't be empty: \"=x\""]),
    "reject-caps-effective-not-permitted": (mutate(S("process.capabilities.effective[1]", "CAP_CHOWN")),
                                            ["process.capabilities.effective[1]: \"CAP_CHOWN\" is not in process.capabilities.permitted: the kernel refuses such a set (unable to apply caps: operation not permitted)"]),

    "reject-seccomp-notify-default": (mutate(S("linux.seccomp", {"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/run/l.sock"})),
                                      ["linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"]),
    "reject-seccomp-notify-without-listener": (mutate(S("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_NOTIFY"}]})),
                                               ["linux.seccomp.listenerPath: SCMP_ACT_NOTIFY needs a listenerPath"]),
}

STATE = {
    "valid-created": {"ociVersion": "1.3.0", "id": "c1", "status": "created", "pid": 4422, "bundle": "/b"},
    "valid-stopped-no-pid": {"ociVersion": "1.3.0", "id": "c1", "status": "stopped", "bundle": "/b",
                             "annotations": {"a": "b"}},
    "valid-creating": {"ociVersion": "1.0.2", "id": "x", "status": "creating", "pid": 0, "bundle": "/b"},
    "invalid-status-unknown": {"ociVersion": "1.3.0", "id": "c1", "status": "paused", "bundle": "/b"},
    "invalid-bundle-missing": {"ociVersion": "1.3.0", "id": "c1", "status": "running", "pid": 1},
    "invalid-pid-negative": {"ociVersion": "1.3.0", "id": "c1", "status": "running", "pid": -1, "bundle": "/b"},
    "invalid-id-number": {"ociVersion": "1.3.0", "id": 1, "status": "running", "bundle": "/b"},
    "invalid-annotations-value-number": {"ociVersion": "1.3.0", "id": "c", "status": "running", "bundle": "/b",
                                         "annotations": {"a": 1}},
}

FEATURES = {
    "valid-minimal": {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0"},
    "valid-linux-full": {
        "ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0",
        "hooks": ["prestart", "poststop"], "mountOptions": ["ro", "rbind"], "annotations": {"a": "b"},
        "potentiallyUnsafeConfigAnnotations": ["org.example."],
        "linux": {"namespaces": ["pid", "time"], "capabilities": ["CAP_KILL"],
                  "cgroup": {"v1": False, "v2": True, "systemd": True, "systemdUser": False, "rdma": False},
                  "seccomp": {"enabled": True, "actions": ["SCMP_ACT_ALLOW"], "operators": ["SCMP_CMP_EQ"],
                              "archs": ["SCMP_ARCH_X86_64"], "knownFlags": ["SECCOMP_FILTER_FLAG_LOG"],
                              "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG"]},
                  "apparmor": {"enabled": False}, "selinux": {"enabled": False}, "intelRdt": {"enabled": False},
                  "mountExtensions": {"idmap": {"enabled": True}}, "netDevices": {"enabled": True}}},
    "invalid-ociversionmax-missing": {"ociVersionMin": "1.0.0"},
    "invalid-namespace-unknown": {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0",
                                  "linux": {"namespaces": ["net"]}},
    "invalid-capability-lowercase": {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0",
                                     "linux": {"capabilities": ["cap_kill"]}},
    "invalid-cgroup-v2-string": {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0",
                                 "linux": {"cgroup": {"v2": "yes"}}},
    "invalid-seccomp-action-unknown": {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0",
                                       "linux": {"seccomp": {"actions": ["SCMP_ACT_DENY"]}}},
    "invalid-idmap-enabled-string": {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0",
                                     "linux": {"mountExtensions": {"idmap": {"enabled": "true"}}}},
}


def main():
    index = {}
    for kind, docs in (("config", CONFIG), ("state", STATE), ("features", FEATURES)):
        folder = os.path.join(HERE, kind)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder)
        for name, entry in docs.items():
            doc, expected = entry if kind == "config" else (entry, None)
            rel = "%s/%s.json" % (kind, name)
            with open(os.path.join(HERE, rel), "w") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
            item = {"schema": not name.startswith("invalid-")}
            if expected is not None:
                item["pyoci"] = expected
            if kind == "config" and name in UPSTREAM_DIFFERS:
                item["upstream"] = UPSTREAM_DIFFERS[name]
            index[rel] = item
    with open(os.path.join(HERE, "index.json"), "w") as f:
        json.dump(index, f, indent=1, sort_keys=True)
        f.write("\n")
    print("%d documents" % len(index))


if __name__ == "__main__":
    main()
