"""linux.resources -> cgroup files, v1 and v2, against fake cgroup
directories in a tmpdir (a file present = the host supports it)."""
import os

import pytest

from pyoci.errors import ConfigError
from pyoci.linux import cgroups
from pyoci.linux.cgroups import bpf
from pyoci.linux.cgroups import resources as R

V2_FILES = ["cgroup.controllers", "cgroup.procs", "memory.max", "memory.low", "memory.swap.max", "cpu.weight",
            "cpu.max", "cpu.max.burst", "cpu.idle", "cpuset.cpus", "cpuset.mems", "pids.max", "io.weight",
            "io.max", "hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "rdma.max", "memory.high"]


class Recording(cgroups.Cgroup):
    pass


@pytest.fixture
def v2(tmp_path, monkeypatch):
    parent = tmp_path / "parent"
    d = parent / "ctr"
    d.mkdir(parents=True)
    for f in V2_FILES:
        (d / f).write_text("")
    (d / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
    (d / "cpu.max").write_text("max 100000\n")
    (parent / "cpuset.cpus.effective").write_text("0-3\n")
    (parent / "cpuset.mems.effective").write_text("0\n")
    writes = []
    real = cgroups._write_file

    def rec(path, value):
        real(path, value)
        writes.append((os.path.basename(path), value))

    monkeypatch.setattr(cgroups, "_write_file", rec)
    monkeypatch.setattr(R, "host_page_sizes", lambda: ["2MB", "1GB"])
    cg = cgroups.Cgroup({"": str(d)})
    cg.writes = writes
    return cg


def test_v2_conversions(v2):
    res = {"memory": {"limit": 100 << 20, "swap": 150 << 20, "reservation": 50 << 20},
           "cpu": {"shares": 1024, "quota": 50000, "period": 200000, "burst": 1000, "idle": 1, "cpus": "0-1",
                   "mems": "0"},
           "pids": {"limit": 42},
           "blockIO": {"weight": 500, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                       "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 1 << 30}],
           "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
           "unified": {"memory.high": "90M"}}
    v2.apply(res, devices=False)
    assert v2.writes == [
        ("memory.max", str(100 << 20)), ("memory.swap.max", str(50 << 20)), ("memory.low", str(50 << 20)),
        ("cpu.weight", "100"), ("cpu.max", "50000 200000"), ("cpu.max.burst", "1000"), ("cpu.idle", "1"),
        ("cpuset.cpus", "0-1"), ("cpuset.mems", "0"), ("pids.max", "42"),
        ("io.weight", str(1 + (490 * 9999) // 990)), ("io.max", "8:0 rbps=1000"), ("io.max", "8:0 wiops=max"),
        ("hugetlb.2MB.max", str(1 << 30)), ("hugetlb.2MB.rsvd.max", str(1 << 30)),
        ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"), ("memory.high", "90M")]


def test_v2_conversion_formulas():
    assert R.cpu_shares_to_weight(2) == 1
    assert R.cpu_shares_to_weight(262144) == 10000
    assert R.cpu_shares_to_weight(1024) == 100
    assert R.blkio_weight_to_io_weight(10) == 1
    assert R.blkio_weight_to_io_weight(1000) == 10000
    assert R.swap_v2(-1, 5, "f") == "max"
    assert R.swap_v2(300, 100, "f") == "200"
    with pytest.raises(ConfigError):
        R.swap_v2(300, None, "f")


def test_v2_period_alone_keeps_quota(v2):
    v2.apply({"cpu": {"period": 50000}}, devices=False)
    assert v2.writes == [("cpu.max", "max 50000")]


def test_v2_bfq_weight_preferred(v2, tmp_path):
    d = v2.paths[""]
    open(os.path.join(d, "io.bfq.weight"), "w").close()
    v2.apply({"blockIO": {"weight": 300}}, devices=False)
    assert v2.writes == [("io.bfq.weight", "300")]


@pytest.mark.parametrize("res,field", [
    ({"memory": {"kernelTCP": 1 << 20}}, "linux.resources.memory.kernelTCP"),
    ({"memory": {"swappiness": 10}}, "linux.resources.memory.swappiness"),
    ({"memory": {"disableOOMKiller": True}}, "linux.resources.memory.disableOOMKiller"),
    ({"memory": {"swap": 1 << 20}}, "linux.resources.memory.swap"),
    ({"cpu": {"realtimeRuntime": 100}}, "linux.resources.cpu.realtimeRuntime"),
    ({"cpu": {"cpus": "0-7"}}, "linux.resources.cpu.cpus"),
    ({"blockIO": {"leafWeight": 100}}, "linux.resources.blockIO.leafWeight"),
    ({"network": {"classID": 1}}, "linux.resources.network.classID"),
    ({"hugepageLimits": [{"pageSize": "64KB", "limit": 1}]}, "linux.resources.hugepageLimits[0].pageSize"),
    ({"unified": {"../x": "1"}}, "linux.resources.unified.../x"),
    ({"unified": {"misc.max": "1"}}, "linux.resources.unified.misc.max"),
])
def test_v2_refusals_name_the_field(v2, res, field):
    with pytest.raises(ConfigError) as e:
        v2.apply(res, devices=False)
    assert e.value.path == field
    assert v2.writes == []


def test_v2_missing_controller_is_an_error_unless_unlimited(v2):
    d = v2.paths[""]
    with open(os.path.join(d, "cgroup.controllers"), "w") as f:
        f.write("cpu\n")
    v2.apply({"memory": {"limit": -1}, "pids": {"limit": -1}}, devices=False)
    assert v2.writes == []
    with pytest.raises(ConfigError) as e:
        v2.apply({"pids": {"limit": 5}}, devices=False)
    assert e.value.path == "linux.resources.pids.limit" and "not available" in str(e.value)


def test_update_restores_on_failure(v2):
    d = v2.paths[""]
    with open(os.path.join(d, "pids.max"), "w") as f:
        f.write("max\n")
    os.unlink(os.path.join(d, "rdma.max"))
    with pytest.raises(ConfigError) as e:
        v2.apply({"pids": {"limit": 10}, "rdma": {"mlx4_0": {"hcaHandles": 1}}}, devices=False, restore=True)
    assert e.value.path == "linux.resources.rdma.mlx4_0"
    assert v2.writes == [("pids.max", "10"), ("pids.max", "max")]
    with open(os.path.join(d, "pids.max")) as f:
        assert f.read() == "max"


def test_v1_plan_and_memory_order():
    ws = R.plan_v1({"memory": {"limit": 100, "swap": 200, "kernel": 5}, "cpu": {"shares": 100, "quota": -1},
                    "network": {"classID": 7, "priorities": [{"name": "eth0", "priority": 3}]},
                    "blockIO": {"weight": 100, "throttleWriteBpsDevice": [{"major": 8, "minor": 1, "rate": 9}]}},
                   warn=lambda m: None)
    pair = ws[0]
    assert isinstance(pair, R.MemoryPair)
    # lowering: limit first; raising: memsw first
    assert [w.file for w in pair.ordered(1000)] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    assert [w.file for w in pair.ordered(10)] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    files = [(w.file, w.value) for w in ws[1:]]
    assert files == [("cpu.shares", "100"), ("cpu.cfs_quota_us", "-1"),
                     (("blkio.weight", "blkio.bfq.weight"), "100"), ("blkio.throttle.write_bps_device", "8:1 9"),
                     ("net_cls.classid", "7"), ("net_prio.ifpriomap", "eth0 3")]


def test_v1_unified_refused():
    with pytest.raises(ConfigError) as e:
        R.plan_v1({"unified": {"memory.max": "1"}})
    assert e.value.path == "linux.resources.unified"


def test_device_rules_order_and_defaults():
    rules = R.device_rules({"devices": [{"allow": False, "access": "rwm"},
                                        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                                        {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"}]})
    lines = [("allow " if r[0] else "deny ") + R.v1_device_line(r) for r in rules]
    assert lines[:4] == ["deny a *:* rwm", "deny a *:* rwm", "allow c 10:229 rw", "deny c 1:5 w"]
    # runc's defaults follow; a node of linux.devices is not allowed by that alone
    assert lines[4] == "allow c *:* m"
    assert "allow c 1:5 rm" in lines and "allow c 1:3 rwm" in lines and "allow c 136:* rwm" in lines


def _run_filter(prog, typ, acc, major, minor):
    """A tiny interpreter for the instructions bpf.program emits."""
    import struct

    regs = [0] * 11
    ctx = (acc << 16 | typ, major, minor)
    insns = [struct.unpack("<BBhi", prog[i:i + 8]) for i in range(0, len(prog), 8)]
    pc = 0
    while True:
        code, r, off, imm = insns[pc]
        dst, src = r & 15, r >> 4
        pc += 1
        if code == bpf.LDX_W:
            regs[dst] = ctx[off // 4]
        elif code == bpf.ALU32_AND_K:
            regs[dst] &= imm & 0xFFFFFFFF
        elif code == bpf.ALU32_RSH_K:
            regs[dst] >>= imm
        elif code == bpf.ALU32_MOV_K:
            regs[dst] = imm
        elif code == bpf.ALU32_MOV_X:
            regs[dst] = regs[src]
        elif code == bpf.JNE_K:
            if regs[dst] != imm:
                pc += off
        elif code == bpf.EXIT:
            return regs[0]
        else:
            raise AssertionError(hex(code))


def test_bpf_program_semantics():
    rules = R.device_rules({"devices": [{"allow": False, "access": "rwm"},
                                        {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "w"},
                                        {"allow": True, "type": "b", "major": 8, "access": "r"}]})
    prog = bpf.program(rules)
    C, B, RD, WR, MK = bpf.DEV_CHAR, bpf.DEV_BLOCK, bpf.ACC_READ, bpf.ACC_WRITE, bpf.ACC_MKNOD
    assert _run_filter(prog, C, RD | WR, 1, 3) == 1        # /dev/null
    assert _run_filter(prog, C, RD, 1, 5) == 1             # /dev/zero read
    assert _run_filter(prog, C, WR, 1, 5) == 0             # /dev/zero write denied
    assert _run_filter(prog, B, RD, 8, 7) == 1             # b 8:* r
    assert _run_filter(prog, B, WR, 8, 7) == 0
    assert _run_filter(prog, B, MK, 259, 1) == 1           # mknod of any block device
    assert _run_filter(prog, C, RD, 4, 1) == 0             # default deny
    assert _run_filter(prog, C, RD | WR, 136, 9) == 1      # /dev/pts/9
    allow_all = bpf.program([(True, "a", None, None, "rwm")])
    assert _run_filter(allow_all, C, RD, 4, 1) == 1 and len(allow_all) == 8 * 8


def test_v2_create_enables_the_parents_controllers(tmp_path, monkeypatch):
    parent = tmp_path / "p"
    parent.mkdir()
    (parent / "cgroup.controllers").write_text("cpu memory pids\n")
    (parent / "cgroup.subtree_control").write_text("cpu\n")
    writes = []
    monkeypatch.setattr(cgroups, "_write_file", lambda path, v: writes.append((str(path), v)))
    monkeypatch.setattr(cgroups, "controllers_on_v1", lambda: False)
    cg = cgroups.Cgroup({"": str(parent / "a" / "b")})
    cg.create()
    assert cg.created == [str(parent / "a"), str(parent / "a" / "b")]
    # the existing parent gets the missing ones; the new "a" lists none here (a plain directory)
    assert writes == [(str(parent / "cgroup.subtree_control"), "+memory +pids")]
    assert cgroups.Cgroup.from_state(cg.to_state()).enabled == [[str(parent), ["memory", "pids"]]]
    # delete disables them again once nothing else is below the parent
    writes.clear()
    cg.destroy()
    assert writes == [(str(parent / "cgroup.subtree_control"), "-pids -memory")]


def test_v2_delete_keeps_controllers_another_cgroup_uses(tmp_path, monkeypatch):
    parent = tmp_path / "p"
    (parent / "other").mkdir(parents=True)
    writes = []
    monkeypatch.setattr(cgroups, "_write_file", lambda path, v: writes.append((str(path), v)))
    cg = cgroups.Cgroup({"": str(parent / "a")}, created=[str(parent / "a")],
                        enabled=[[str(parent), ["memory"]]])
    (parent / "a").mkdir()
    cg.destroy()
    assert writes == [] and not (parent / "a").exists()


def test_hybrid_host_does_not_enable_cgroup2_controllers(tmp_path, monkeypatch):
    """A mount namespace that shows only cgroup2 on a hybrid host (v1
    hierarchies in /proc/self/cgroup): enabling hugetlb in the cgroup2 root
    would keep it from being mounted on v1 by anyone, ever."""
    parent = tmp_path / "p"
    parent.mkdir()
    (parent / "cgroup.controllers").write_text("hugetlb\n")
    (parent / "cgroup.subtree_control").write_text("")
    writes = []
    monkeypatch.setattr(cgroups, "_write_file", lambda path, v: writes.append(path))
    monkeypatch.setattr(cgroups, "own_cgroups", lambda pid="self": {"": "/", "memory": "/", "name=systemd": "/"})
    cg = cgroups.Cgroup({"": str(parent / "a")})
    cg.create()
    assert writes == [] and cg.enabled == []


def test_v1_host_does_not_touch_subtree_control(tmp_path, monkeypatch):
    writes = []
    monkeypatch.setattr(cgroups, "_write_file", lambda path, v: writes.append(path))
    cg = cgroups.Cgroup({"memory": str(tmp_path / "m" / "x"), "": str(tmp_path / "u" / "x")})
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "cgroup.controllers").write_text("memory\n")
    (tmp_path / "u" / "cgroup.subtree_control").write_text("")
    cg.create()
    assert writes == []


def test_kernel_memory_is_ignored_with_a_warning():
    for plan in (R.plan_v1, R.plan_v2):
        warned = []
        assert plan({"memory": {"kernel": 1 << 20}}, warn=warned.append) == []
        assert len(warned) == 1 and "linux.resources.memory.kernel" in warned[0]
        warned.clear()
        plan({"memory": {"kernel": -1}}, warn=warned.append)
        assert warned == []


def test_kill_all_only_in_a_cgroup_create_made(tmp_path, monkeypatch):
    writes = []
    monkeypatch.setattr(cgroups, "_write_file", lambda path, v: writes.append((os.path.basename(path), v)))
    d = str(tmp_path / "c")
    assert cgroups.Cgroup({"": d}).kill_all() is False          # joined, not made: no cgroup.kill
    assert writes == []
    assert cgroups.Cgroup({"": d}, created=[d]).kill_all() is True
    assert writes == [("cgroup.kill", "1")]
