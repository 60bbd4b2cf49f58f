"""The systemd cgroup driver (--systemd-cgroup) against the real systemd of
a cgroup v2 host (the guest: .ci/guest): the container's transient scope as
`systemctl show` reports it, the cgroup files the kernel uses, the effect
inside the container, update, pause, exec, kill --all and delete. Skipped,
with the reason, on a host without systemd as PID 1 or without cgroup v2."""
import os
import subprocess
import time

import pytest

from conftest import TAG

pytestmark = pytest.mark.integration

SLICE = "system.slice"


def _why_not():
    if not os.path.isdir("/run/systemd/system"):
        return "systemd is not PID 1 here (no /run/systemd/system); the guest (.ci/guest) has it"
    from pyoci.linux.cgroups import controllers_on_v1

    if controllers_on_v1():
        return "the cgroup controllers are on v1 here: pyoci's systemd driver is for cgroup v2 hosts"
    if subprocess.run(["systemctl", "--version"], capture_output=True).returncode != 0:
        return "systemctl does not work here"
    return None


WHY = _why_not()
if WHY:
    pytestmark = [pytestmark, pytest.mark.skip(reason=WHY)]


def show(unit, *props):
    """{property: value} as `systemctl show` prints them; a property shown on
    several lines (DeviceAllow) is a list."""
    p = subprocess.run(["systemctl", "show", unit, "-p", ",".join(props)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    out = {}
    for line in p.stdout.splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            out[k] = v if k not in out else (out[k] if isinstance(out[k], list) else [out[k]]) + [v]
    return out


def units_of_tag():
    p = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", "*%s*" % TAG],
                       capture_output=True, text=True, timeout=30)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


@pytest.fixture
def sd(runtime):
    """The runtime with --systemd-cgroup; after the test no unit of this
    session may be loaded (active, failed or otherwise)."""

    class SD:
        def __init__(self, rt):
            self.rt = rt

        def cmd(self, *args, **kw):
            return self.rt.cmd("--systemd-cgroup", *args, **kw)

        def state(self, cid):
            return self.rt.state(cid)

    yield SD(runtime)
    for cid in runtime.ids():
        runtime.cmd("--systemd-cgroup", "delete", "--force", cid)
    left = units_of_tag()
    for u in left:
        subprocess.run(["systemctl", "stop", u], capture_output=True)
        subprocess.run(["systemctl", "reset-failed", u], capture_output=True)
    assert not left, "systemd units left: %r" % left


def bundle(make_bundle, args, res=None, cpath=None, **linux):
    def change(c):
        if res:
            c["linux"]["resources"].update(res)
        if cpath is not None:
            c["linux"]["cgroupsPath"] = cpath
        c["linux"].update(linux)
    return make_bundle(list(args), change)


def cgdir(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        for line in f:
            if line.startswith("0::"):
                return "/sys/fs/cgroup" + line[3:].strip()
    raise AssertionError("no cgroup2 entry for %d" % pid)


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def unit_name(cid):
    return "%s-%s.scope" % (TAG, cid)


def cpath(cid, slice_=SLICE):
    return "%s:%s:%s" % (slice_, TAG, cid)


def test_created_container_lives_in_its_scope_until_delete(sd, make_bundle):
    res = {"memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
           "cpu": {"shares": 2048, "quota": 50000, "period": 100000, "cpus": "0"},
           "pids": {"limit": 64}, "blockIO": {"weight": 500}}
    b = bundle(make_bundle, ["sleep", "300"], res, cpath("c1"))
    sd.cmd("create", "-b", b, "c1", check=True)
    unit = unit_name("c1")
    pid = sd.state("c1")["pid"]
    # create returned; the scope lives with the waiting init in it
    p = show(unit, "ActiveState", "Slice", "Delegate", "ControlGroup", "MemoryMax", "MemoryLow", "MemorySwapMax",
             "CPUWeight", "CPUQuotaPerSecUSec", "CPUQuotaPeriodUSec", "TasksMax", "AllowedCPUs", "IOWeight",
             "DevicePolicy", "MemoryAccounting", "TasksAccounting")
    assert p["ActiveState"] == "active" and p["Slice"] == SLICE and p["Delegate"] == "yes"
    assert p["ControlGroup"] == "/%s/%s" % (SLICE, unit)
    assert (p["MemoryMax"], p["MemoryLow"], p["MemorySwapMax"]) == (str(64 << 20), str(32 << 20), str(32 << 20))
    assert (p["CPUWeight"], p["CPUQuotaPerSecUSec"], p["CPUQuotaPeriodUSec"]) == ("174", "500ms", "100ms")
    assert (p["TasksMax"], p["AllowedCPUs"], p["DevicePolicy"]) == ("64", "0", "strict")
    assert p["IOWeight"] == "4950" and p["MemoryAccounting"] == "yes" and p["TasksAccounting"] == "yes"
    d = cgdir(pid)
    assert d == "/sys/fs/cgroup/%s/%s" % (SLICE, unit)
    assert (read(d, "memory.max"), read(d, "memory.low"), read(d, "memory.swap.max")) == \
        (str(64 << 20), str(32 << 20), str(32 << 20))
    assert (read(d, "cpu.weight"), read(d, "cpu.max"), read(d, "pids.max"), read(d, "cpuset.cpus")) == \
        ("174", "50000 100000", "64", "0")
    sd.cmd("start", "c1", check=True)
    assert sd.state("c1")["status"] == "running"
    sd.cmd("kill", "c1", "KILL", check=True)
    sd.cmd("delete", "--force", "c1", check=True)
    assert show(unit, "LoadState", "ActiveState")["ActiveState"] in ("inactive", "")
    assert not os.path.exists(d)


def test_default_unit_and_delete_of_a_created_container(sd, make_bundle):
    b = bundle(make_bundle, ["true"])
    cid = TAG + "-dflt"
    sd.cmd("create", "-b", b, cid, check=True)
    unit = "pyoci-%s.scope" % cid
    assert show(unit, "ActiveState", "Slice") == {"ActiveState": "active", "Slice": "system.slice"}
    sd.cmd("delete", cid, check=True)        # a created container: killed and deleted, as runc
    assert show(unit, "ActiveState")["ActiveState"] == "inactive"


def test_files_systemd_has_no_property_for(sd, make_bundle):
    res = {"memory": {"limit": 64 << 20}, "unified": {"memory.high": str(50 << 20), "io.weight": "default 77",
                                                      "memory.oom.group": "1"}}
    b = bundle(make_bundle, ["sleep", "300"], res, cpath("c2"))
    sd.cmd("run", "-d", "-b", b, "c2", check=True)
    d = cgdir(sd.state("c2")["pid"])
    assert show(unit_name("c2"), "MemoryHigh")["MemoryHigh"] == str(50 << 20)
    assert read(d, "memory.high") == str(50 << 20) and read(d, "memory.oom.group") == "1"
    assert "default 77" in read(d, "io.weight")
    sd.cmd("delete", "--force", "c2", check=True)


def test_memory_limit_is_enforced_inside(sd, make_bundle):
    script = "awk 'BEGIN{s=\"x\"; for(;;) s=s s}'"
    b = bundle(make_bundle, ["sh", "-c", script], {"memory": {"limit": 16 << 20, "swap": 16 << 20}}, cpath("c3"))
    p = sd.cmd("run", "-b", b, "c3", timeout=120)
    assert p.returncode == 137, (p.returncode, p.stderr)   # OOM-killed
    assert units_of_tag() == []


def test_update_sets_the_unit_and_the_files(sd, make_bundle):
    b = bundle(make_bundle, ["sleep", "300"], {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}}, cpath("c4"))
    sd.cmd("run", "-d", "-b", b, "c4", check=True)
    d = cgdir(sd.state("c4")["pid"])
    sd.cmd("update", "--memory", "128M", "--pids-limit", "70", "--cpu-quota", "12345", "c4", check=True)
    p = show(unit_name("c4"), "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec")
    assert p == {"MemoryMax": str(128 << 20), "TasksMax": "70", "CPUQuotaPerSecUSec": "130ms"}
    # the quota is rounded up to a whole percent as systemd keeps it, and written so
    assert (read(d, "memory.max"), read(d, "pids.max"), read(d, "cpu.max")) == \
        (str(128 << 20), "70", "13000 100000")
    sd.cmd("delete", "--force", "c4", check=True)


def test_pause_exec_kill_all(sd, make_bundle):
    b = bundle(make_bundle, ["sh", "-c", "sleep 300 & sleep 300 & wait"], None, cpath("c5"))
    sd.cmd("run", "-d", "-b", b, "c5", check=True)
    pid = sd.state("c5")["pid"]
    d = cgdir(pid)
    sd.cmd("pause", "c5", check=True)
    assert sd.state("c5")["status"] == "paused" and read(d, "cgroup.freeze") == "1"
    sd.cmd("resume", "c5", check=True)
    assert sd.state("c5")["status"] == "running"
    p = sd.cmd("exec", "c5", "cat", "/proc/self/cgroup", check=True)
    # in the scope (the bundle has no cgroup namespace: runc's default spec)
    assert p.stdout.strip() == "0::/%s/%s" % (SLICE, unit_name("c5"))
    assert len(read(d, "cgroup.procs").split()) >= 3
    procs = read(d, "cgroup.procs").split()
    assert len(procs) >= 3
    sd.cmd("kill", "--all", "c5", "KILL", check=True)
    deadline = time.monotonic() + 10
    while sd.state("c5")["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    sd.cmd("delete", "c5", check=True)
    assert show(unit_name("c5"), "ActiveState")["ActiveState"] == "inactive"


def test_devices(sd, make_bundle):
    """/dev/fuse is in linux.devices but its rule denies it: systemd is told
    only what some rule allows, pyoci's filter the exact rules; the open
    fails inside, /dev/null works."""
    res = {"devices": [{"allow": False, "access": "rwm"},
                       {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]}
    dev = {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o666, "uid": 0, "gid": 0}
    b = bundle(make_bundle, ["sh", "-c", "echo x > /dev/null && echo null-ok; cat /dev/fuse"], res, cpath("c6"),
               devices=[dev])
    p = sd.cmd("run", "-b", b, "c6", timeout=60)
    assert p.stdout.strip() == "null-ok" and "Operation not permitted" in p.stderr + p.stdout, (p.stdout, p.stderr)


def test_device_allow_as_systemd_shows_it(sd, make_bundle):
    b = bundle(make_bundle, ["sleep", "300"], None, cpath("c7"))
    sd.cmd("create", "-b", b, "c7", check=True)
    allow = show(unit_name("c7"), "DeviceAllow")["DeviceAllow"]
    for entry in ("/dev/char/1:3 rwm", "char-136 rwm", "char-* m", "block-* m"):
        assert entry in allow, allow
    sd.cmd("delete", "c7", check=True)


def test_annotation_properties(sd, make_bundle):
    def change(c):
        c["linux"]["cgroupsPath"] = cpath("c8")
        c.setdefault("annotations", {})["org.systemd.property.TimeoutStopSec"] = "uint64 7"
        c["annotations"]["org.systemd.property.CollectMode"] = "'inactive-or-failed'"
    b = make_bundle(["sleep", "300"], change)
    sd.cmd("create", "-b", b, "c8", check=True)
    p = show(unit_name("c8"), "TimeoutStopUSec", "CollectMode")
    assert p == {"TimeoutStopUSec": "7s", "CollectMode": "inactive-or-failed"}
    sd.cmd("delete", "c8", check=True)


def test_failed_create_stops_the_unit(sd, make_bundle):
    b = bundle(make_bundle, ["/nonexistent"], {"pids": {"limit": 10}}, cpath("c9"))
    p = sd.cmd("run", "-b", b, "c9")
    assert p.returncode != 0
    assert units_of_tag() == []


def test_a_bad_cgroups_path_names_the_field(sd, make_bundle):
    b = bundle(make_bundle, ["true"], None, "/not/systemd")
    p = sd.cmd("create", "-b", b, "c10")
    assert p.returncode != 0 and "linux.cgroupsPath" in p.stderr and "slice:prefix:name" in p.stderr
    assert units_of_tag() == []
