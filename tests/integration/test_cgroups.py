"""linux.resources on create: the cgroup files outside, the effect inside,
and the errors (naming the field, nothing left behind)."""
import os
import time

import pytest

from conftest import unified
from pyoci.linux.cgroups import layout


V2 = unified()   # a cgroup v2 host: the controllers' files are in the one cgroup2 directory


def cg_dir(pid, ctrl):
    """Host directory of pid's cgroup for a v1 controller ("" = cgroup2); on
    a cgroup v2 host the cgroup2 directory, whatever the controller."""
    with open("/proc/%d/cgroup" % pid) as f:
        own = {k: p for _, k, p in (l.rstrip("\n").split(":", 2) for l in f)}
    for h in layout():
        if (h.version == 2 and (ctrl == "" or V2)) or (h.version == 1 and ctrl in h.controllers):
            return os.path.join(h.mountpoint, own[h.key].lstrip("/"))
    raise LookupError(ctrl)


def read(d, name):
    with open(os.path.join(d, name)) as f:
        return f.read().strip()


def res_changes(res, **extra):
    def change(c):
        c["linux"]["resources"].update(res)
        for k, v in extra.items():
            c["linux"][k] = v
    return change


def start_sleeping(runtime, make_bundle, cid, res, args=("sleep", "100"), **extra):
    b = make_bundle(list(args), res_changes(res, **extra))
    runtime.cmd("run", "-d", "-b", b, cid, check=True)
    return runtime.state(cid)["pid"]


def exec_in(pid, script):
    """Run a shell command in the container's namespaces and cgroup."""
    import subprocess

    dirs = [os.path.join(h.mountpoint, p.lstrip("/")) for h, p in _own(pid)]

    def join():
        for d in dirs:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write("0")

    return subprocess.run(["nsenter", "-t", str(pid), "-a", "-F", "--", "/bin/sh", "-c", script],
                          capture_output=True, text=True, timeout=30, preexec_fn=join)


def _own(pid):
    with open("/proc/%d/cgroup" % pid) as f:
        own = {k: p for _, k, p in (l.rstrip("\n").split(":", 2) for l in f)}
    return [(h, own[h.key]) for h in layout() if h.key in own]


def test_memory_cpu_pids_files_outside_and_inside(runtime, make_bundle):
    res = {"memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 32 << 20, "disableOOMKiller": False},
           "cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"},
           "pids": {"limit": 17}}
    if not V2:
        res["memory"]["swappiness"] = 7     # v1 only (see test_swappiness_is_refused_on_v2)
    inside = ("/sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpuset.cpus"
              if V2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
              "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpuset/cpuset.cpus")
    b = make_bundle(["sh", "-c", "cat " + inside], res_changes(res))
    p = runtime.cmd("run", "-b", b, "res1")
    assert p.returncode == 0, p.stderr
    # inside, the container's own cgroup is the root of each hierarchy
    if V2:
        assert p.stdout.split() == [str(64 << 20), "17", "20000", "100000", "0"]
    else:
        assert p.stdout.split() == [str(64 << 20), "17", "20000", "0"]
    pid = start_sleeping(runtime, make_bundle, "res2", res)
    m = cg_dir(pid, "memory")
    if V2:
        # the runtime-spec's v1 -> v2 conversions: swap alone, shares -> weight
        assert read(m, "memory.max") == str(64 << 20)
        assert read(m, "memory.swap.max") == str(32 << 20)
        assert read(m, "memory.low") == str(32 << 20)
        assert read(m, "cpu.max") == "20000 100000"
        assert read(m, "cpu.weight") == str(1 + ((512 - 2) * 9999) // 262142)
        assert read(m, "cpuset.cpus") == "0" and read(m, "cpuset.mems") == "0"
        assert read(m, "pids.max") == "17"
        runtime.cmd("delete", "-f", "res2", check=True)
        assert not os.path.exists(m)
        return
    assert read(m, "memory.limit_in_bytes") == str(64 << 20)
    assert read(m, "memory.memsw.limit_in_bytes") == str(96 << 20)
    assert read(m, "memory.soft_limit_in_bytes") == str(32 << 20)
    assert read(m, "memory.swappiness") == "7"
    c = cg_dir(pid, "cpu")
    assert (read(c, "cpu.shares"), read(c, "cpu.cfs_quota_us"), read(c, "cpu.cfs_period_us")) == \
        ("512", "20000", "100000")
    assert read(cg_dir(pid, "cpuset"), "cpuset.cpus") == "0"
    assert read(cg_dir(pid, "pids"), "pids.max") == "17"
    runtime.cmd("delete", "-f", "res2", check=True)
    assert not os.path.exists(m)


def test_v2_placement_beside_the_caller_with_controllers(runtime, make_bundle):
    """cgroup v2 (as runc): with no or a relative cgroupsPath the container's
    cgroup is made beside the caller's cgroup, not in it (the caller's
    cgroup holds processes, so no controller could be enabled below it), and
    the limits are applied there; delete removes what create made."""
    from pyoci.linux.cgroups import own_cgroups

    if not V2:
        pytest.skip("cgroup v1 host: containers go under the caller's cgroup (test_cgroup_placement_every_hierarchy)")
    own = own_cgroups()[""]
    parent = os.path.dirname(own)
    res = {"memory": {"limit": 48 << 20}, "pids": {"limit": 23}, "cpu": {"quota": 30000, "period": 100000}}
    pid = start_sleeping(runtime, make_bundle, "pl1", res)
    assert own_cgroups(pid)[""] == os.path.join(parent, "pl1")
    d = cg_dir(pid, "")
    assert (read(d, "memory.max"), read(d, "pids.max"), read(d, "cpu.max")) == (
        str(48 << 20), "23", "30000 100000")
    pid2 = start_sleeping(runtime, make_bundle, "pl2", res, cgroupsPath="rel/pl2")
    assert own_cgroups(pid2)[""] == os.path.join(parent, "rel/pl2")
    d2 = cg_dir(pid2, "")
    assert read(d2, "memory.max") == str(48 << 20) and read(d2, "pids.max") == "23"
    runtime.cmd("delete", "-f", "pl1", check=True)
    runtime.cmd("delete", "-f", "pl2", check=True)
    assert not os.path.exists(d) and not os.path.exists(os.path.dirname(d2))


def test_pids_limit_stops_forks_inside(runtime, make_bundle):
    b = make_bundle(["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 5 & done 2>&1; echo forked; kill $(jobs -p) 2>/dev/null"],
                    res_changes({"pids": {"limit": 4}}))
    p = runtime.cmd("run", "-b", b, "pids1")
    out = p.stdout + p.stderr
    assert "can't fork" in out or "Resource temporarily unavailable" in out, out


def test_memory_limit_oom_kills_inside(runtime, make_bundle):
    # dd's 64 MiB buffer cannot fit in 16 MiB (swap limited as well)
    b = make_bundle(["sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1 2>/dev/null; echo status=$?"],
                    res_changes({"memory": {"limit": 16 << 20, "swap": 16 << 20}}))
    p = runtime.cmd("run", "-b", b, "oom1")
    assert "status=137" in p.stdout, (p.stdout, p.stderr)
    b = make_bundle(["sh", "-c", "dd if=/dev/zero of=/dev/null bs=4M count=1 2>/dev/null; echo status=$?"],
                    res_changes({"memory": {"limit": 16 << 20, "swap": 16 << 20}}))
    assert "status=0" in runtime.cmd("run", "-b", b, "oom2").stdout


def test_swappiness_is_refused_on_v2(runtime, make_bundle):
    """cgroup v2 has no memory.swappiness: create names the field."""
    if not V2:
        pytest.skip("cgroup v1 host: memory.swappiness is applied (test_memory_cpu_pids_files_outside_and_inside)")
    p = runtime.cmd("create", "-b", make_bundle(["true"], res_changes({"memory": {"swappiness": 7}})), "sw1")
    assert p.returncode == 1 and "linux.resources.memory.swappiness" in p.stderr, p.stderr
    assert runtime.ids() == []


def attached_programs(pid):
    from pyoci.linux.cgroups import bpf

    return len(bpf.query(cg_dir(pid, "")))


def test_devices_rules_in_order_and_enforced(runtime, make_bundle):
    rules = [{"allow": False, "access": "rwm"},
             {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
             {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"},
             {"allow": True, "type": "b", "major": 8, "minor": 20, "access": "r"}]
    pid = start_sleeping(runtime, make_bundle, "dev1", {"devices": rules})
    if V2:
        # one eBPF program on the container's cgroup (its effect: below)
        assert attached_programs(pid) == 1
    else:
        lines = read(cg_dir(pid, "devices"), "devices.list").splitlines()
        assert lines[:2] == ["c 10:229 rwm", "b 8:20 r"]
        assert "c 1:3 rwm" in lines and "c 136:* rwm" in lines
    # /dev/zero: the write was denied by the spec, reading stays allowed
    r = exec_in(pid, "head -c1 /dev/zero | wc -c; echo x > /dev/zero; echo w=$?; echo x > /dev/null; echo n=$?")
    assert r.stdout.split()[0] == "1", r
    assert "w=1" in r.stdout and "n=0" in r.stdout, r
    assert "Operation not permitted" in r.stderr
    runtime.cmd("delete", "-f", "dev1", check=True)


def test_linux_devices_are_made_but_not_allowed_by_that_alone(runtime, make_bundle):
    """As runc (dev.bats "device cgroup deny"): linux.devices makes the node;
    only linux.resources.devices (and runc's default devices) allow it."""
    dev = {"path": "/dev/kmsg", "type": "c", "major": 1, "minor": 11, "fileMode": 0o666}
    pid = start_sleeping(runtime, make_bundle, "dev2", {}, devices=[dev])
    if not V2:
        assert "c 1:11 rwm" not in read(cg_dir(pid, "devices"), "devices.list").splitlines()
    r = exec_in(pid, "test -c /dev/kmsg && echo node; echo x > /dev/kmsg || echo refused")
    assert r.stdout.split() == ["node", "refused"], r
    runtime.cmd("delete", "-f", "dev2", check=True)
    res = {"devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "rw"}]}
    pid = start_sleeping(runtime, make_bundle, "dev3", res, devices=[dev])
    if V2:   # the eBPF filter lets it through
        r = exec_in(pid, "echo pyoci-test > /dev/kmsg && echo written")
        assert r.stdout.split() == ["written"], r
    else:
        assert "c 1:11 rw" in read(cg_dir(pid, "devices"), "devices.list").splitlines()
    runtime.cmd("delete", "-f", "dev3", check=True)


@pytest.mark.parametrize("res,field", [
    ({"memory": {"limit": -5}}, "linux.resources.memory.limit"),
    ({"memory": {"limit": 1 << 20, "swap": 1 << 19}}, "linux.resources.memory.swap"),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness"),
    ({"cpu": {"cpus": "0-4096"}}, "linux.resources.cpu.cpus"),
    ({"cpu": {"cpus": "zero"}}, "linux.resources.cpu.cpus"),
    ({"cpu": {"shares": 1}}, "linux.resources.cpu.shares"),
    ({"cpu": {"quota": 5}}, "linux.resources.cpu.quota"),
    ({"hugepageLimits": [{"pageSize": "3MB", "limit": 1 << 30}]}, "linux.resources.hugepageLimits[0].pageSize"),
    # v1: cgroup v2 keys cannot be applied; v2: not a file name
    ({"unified": {"memory.max" if not V2 else "../memory.max": "1G"}}, "linux.resources.unified"),
    ({"network": {"classID": 5}}, "linux.resources.network.classID"),
    ({"devices": [{"allow": True, "type": "x", "access": "r"}]}, "linux.resources.devices[0].type"),
    ({"devices": [{"allow": True, "type": "c"}]}, "linux.resources.devices[0].access"),   # runc: cannot be empty
])
def test_bad_resources_name_the_field_and_leave_nothing(runtime, make_bundle, res, field):
    b = make_bundle(["true"], res_changes(res))
    p = runtime.cmd("create", "-b", b, "bad1")
    assert p.returncode == 1
    assert field in p.stderr, p.stderr
    assert runtime.ids() == []


def test_defaults_and_unlimited_are_skipped(runtime, make_bundle):
    res = {"memory": {"limit": -1, "swap": -1, "reservation": 0}, "cpu": {"shares": 0, "quota": -1, "cpus": ""},
           "pids": {"limit": 0}, "blockIO": {}, "hugepageLimits": [], "network": {}, "unified": {}}
    b = make_bundle(["true"], res_changes(res))
    p = runtime.cmd("run", "-b", b, "def1")
    assert p.returncode == 0, p.stderr


def test_delete_after_kill9_removes_cgroups(runtime, make_bundle):
    pid = start_sleeping(runtime, make_bundle, "k9", {"pids": {"limit": 10}})
    dirs = [cg_dir(pid, c) for c in ("memory", "pids", "cpu", "")]
    os.kill(pid, 9)
    for _ in range(500):
        if runtime.state("k9")["status"] == "stopped":
            break
        time.sleep(0.01)
    runtime.cmd("delete", "k9", check=True)
    assert [d for d in dirs if os.path.exists(d)] == []


def test_v2_device_filter_on_the_cgroup2_mount(host_guard, tmp_path):
    """The eBPF device filter, loaded and attached for real to a cgroup on
    this host's cgroup2 mount (no controllers needed), with a process in it."""
    import subprocess

    from conftest import TAG
    from pyoci.linux.cgroups import Cgroup

    v2 = [h for h in layout() if h.version == 2]
    if not v2:
        pytest.skip("no cgroup2 mount")
    d = os.path.join(v2[0].mountpoint, TAG + "-bpf")
    cg = Cgroup({"": d})
    cg.create()
    try:
        cg.apply_devices({"devices": [{"allow": False, "access": "rwm"},
                                      {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"}]})
        script = ("echo $$ > %s/cgroup.procs; echo x > /dev/null && echo null-ok; "
                  "head -c1 /dev/zero >/dev/null && echo zero-read-ok; echo y > /dev/zero || echo zero-write-denied; "
                  "head -c1 /dev/sda >/dev/null 2>&1; echo sda=$?" % d)
        p = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
        assert p.stdout.split() == ["null-ok", "zero-read-ok", "zero-write-denied", "sda=1"], p
        assert "Operation not permitted" in p.stderr
    finally:
        cg.destroy()
    assert not os.path.exists(d)


PRIVATE_HUGETLB = r'''
set -e
O=$(mktemp -d)
mount --rbind /sys/fs/cgroup "$O"
mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup
for d in $(ls "$O"); do mkdir /sys/fs/cgroup/$d; mount --bind "$O/$d" /sys/fs/cgroup/$d; done
umount -l "$O"; rmdir "$O"
mkdir -p /sys/fs/cgroup/hugetlb   # -p: another tool may have left an empty hugetlb dir on the host
mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
"$@"
'''


def test_hugetlb_limits_in_a_private_mount_of_the_controller(runtime, make_bundle, tmp_path):
    """This host has the hugetlb controller but does not mount it; the test
    mounts it in a private mount namespace (the host's mounts stay as they
    are) and runs pyoci there."""
    import subprocess

    from pyoci.linux.cgroups.resources import host_page_sizes

    if V2:
        pytest.skip("cgroup v2 host: hugetlb is a v2 controller (test_hugetlb_limits_on_v2)")
    if any("hugetlb" in h.controllers for h in layout()):
        pytest.skip("hugetlb is mounted on this host: covered by the conformance suite")
    sizes = host_page_sizes()
    if "2MB" not in sizes:
        pytest.skip("no 2MB huge pages")
    b = make_bundle(["sh", "-c", "cat /sys/fs/cgroup/hugetlb/hugetlb.2MB.limit_in_bytes"],
                    res_changes({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]}))
    script = tmp_path / "ns.sh"
    script.write_text(PRIVATE_HUGETLB)
    from conftest import PYOCI

    rt = "%s --root %s" % (PYOCI, runtime.root)
    inner = ("{rt} run -b {b} hz1; echo status=$?; {rt} create -b {b} hz2; "
             "pid=$({rt} state hz2 | sed -n 's/.*\"pid\": \\([0-9]*\\).*/\\1/p'); "
             "d=/sys/fs/cgroup/hugetlb$(grep :hugetlb: /proc/$pid/cgroup | cut -d: -f3); "
             "cat $d/hugetlb.2MB.limit_in_bytes; {rt} delete -f hz2; test -d $d && echo left || echo removed"
             ).format(rt=rt, b=b)
    p = subprocess.run(["unshare", "-m", "--propagation", "private", "bash", str(script), "bash", "-c", inner],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.split() == [str(4 << 21), "status=0", str(4 << 21), "removed"], (p.stdout, p.stderr)


def test_hugetlb_limits_on_v2(runtime, make_bundle):
    from pyoci.linux.cgroups.resources import host_page_sizes

    if not V2:
        pytest.skip("cgroup v1 host (test_hugetlb_limits_in_a_private_mount_of_the_controller)")
    if "2MB" not in host_page_sizes():
        pytest.skip("no 2MB huge pages")
    res = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}]}
    p = runtime.cmd("run", "-b", make_bundle(["cat", "/sys/fs/cgroup/hugetlb.2MB.max"], res_changes(res)), "hz3")
    assert p.returncode == 0 and p.stdout.split() == [str(4 << 21)], p
    pid = start_sleeping(runtime, make_bundle, "hz4", res)
    assert read(cg_dir(pid, "hugetlb"), "hugetlb.2MB.max") == str(4 << 21)
    runtime.cmd("delete", "-f", "hz4", check=True)


def test_delete_after_kill9_without_pid_namespace_kills_the_rest(runtime, make_bundle):
    """No pid namespace: the init's children outlive a kill -9 of the init;
    delete kills them and removes every cgroup create made."""
    def change(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "pid"]

    b = make_bundle(["sh", "-c", "sleep 100 & sleep 101 & wait"], change)
    runtime.cmd("run", "-d", "-b", b, "k9b", check=True)
    pid = runtime.state("k9b")["pid"]
    dirs = [cg_dir(pid, c) for c in ("memory", "pids", "freezer", "")]
    for _ in range(200):
        if len(read(dirs[1], "cgroup.procs").split()) == 3:
            break
        time.sleep(0.01)
    kids = [int(x) for x in read(dirs[1], "cgroup.procs").split() if int(x) != pid]
    assert len(kids) == 2
    os.kill(pid, 9)
    for _ in range(500):
        if runtime.state("k9b")["status"] == "stopped":
            break
        time.sleep(0.01)
    runtime.cmd("delete", "k9b", check=True)
    assert [d for d in dirs if os.path.exists(d)] == []
    time.sleep(0.05)
    from conftest import reap

    reap()
    assert [k for k in kids if os.path.exists("/proc/%d" % k)] == []


def test_cpu_quota_throttles_a_busy_loop(runtime, make_bundle):
    pid = start_sleeping(runtime, make_bundle, "cpuq", {"cpu": {"quota": 10000, "period": 100000}},
                         args=("sh", "-c", "while :; do :; done"))
    acct = cg_dir(pid, "cpuacct")

    def usage():   # seconds of CPU
        if V2:
            return int(dict(l.split() for l in read(acct, "cpu.stat").splitlines())["usage_usec"]) / 1e6
        return int(read(acct, "cpuacct.usage")) / 1e9

    if V2:
        assert read(acct, "cpu.max") == "10000 100000"
    u0, t0 = usage(), time.monotonic()
    time.sleep(0.6)
    used = (usage() - u0) / (time.monotonic() - t0)
    # 10 % of one CPU (a busy loop alone would use 100 %)
    assert used < 0.3, used
    stat = dict(l.split() for l in read(cg_dir(pid, "cpu"), "cpu.stat").splitlines())
    assert int(stat["nr_throttled"]) > 0
    runtime.cmd("delete", "-f", "cpuq", check=True)


def test_blkio_weight_and_throttle_files(runtime, make_bundle):
    disks = [d for d in os.listdir("/sys/block") if not d.startswith(("loop", "zram", "ram"))]
    if not disks:
        pytest.skip("no disk")
    with open("/sys/block/%s/dev" % disks[0]) as f:
        major, minor = (int(x) for x in f.read().split(":"))
    res = {"blockIO": {"weight": 300, "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1 << 20}],
                       "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]}}
    p = runtime.cmd("create", "-b", make_bundle(["true"], res_changes(res)), "blk1")
    if p.returncode and "blockIO.weight" in p.stderr:
        assert "config.json: linux.resources.blockIO.weight" in p.stderr   # no weight file on this host
        return
    assert p.returncode == 0, p.stderr
    pid = runtime.state("blk1")["pid"]
    b = cg_dir(pid, "blkio")
    if V2:
        if os.path.exists(os.path.join(b, "io.bfq.weight")):
            assert read(b, "io.bfq.weight").split()[-1] == "300"
        else:   # the runtime-spec's conversion of a blkio weight
            assert read(b, "io.weight").split()[-1] == str(1 + (300 - 10) * 9999 // 990)
        assert read(b, "io.max").split() == ["%d:%d" % (major, minor), "rbps=%d" % (1 << 20), "wbps=max",
                                             "riops=max", "wiops=100"]
        runtime.cmd("delete", "-f", "blk1", check=True)
        return
    w = read(b, "blkio.weight") if os.path.exists(os.path.join(b, "blkio.weight")) else \
        read(b, "blkio.bfq.weight").split()[-1]
    assert w == "300"
    assert read(b, "blkio.throttle.read_bps_device") == "%d:%d %d" % (major, minor, 1 << 20)
    assert read(b, "blkio.throttle.write_iops_device") == "%d:%d 100" % (major, minor)
    runtime.cmd("delete", "-f", "blk1", check=True)
