"""The systemd cgroup driver against a fake systemd (fake_systemd.py):
unit naming, resources -> unit properties as runc sets them, the order of
operations (validate at create, the unit started with the first process,
the files written after), update, delete, and the state document. The real
systemd is in tests/integration/test_systemd_driver.py (the guest)."""
import os
import sys

import pytest

from pyoci.errors import ConfigError, PyociError
from pyoci.linux import cgroups
from pyoci.linux.cgroups import resources as R
from pyoci.linux.cgroups import systemd as S

sys.path.insert(0, os.path.dirname(__file__))
from fake_systemd import FakeSystemd  # noqa: E402

INF = (1 << 64) - 1
UNIFIED = [cgroups.Hierarchy("/sys/fs/cgroup", "/", 2, [], "")]


def props_of(props):
    out = {}
    for k, (_, v) in props:
        out.setdefault(k, []).append(v)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def v(n):
    return lambda: n


# -- names ---------------------------------------------------------------------
def test_slices_expand_as_systemd_does():
    assert S.expand_slice("system.slice") == "/system.slice"
    assert S.expand_slice("machine-pods-x.slice") == "/machine.slice/machine-pods.slice/machine-pods-x.slice"
    assert S.expand_slice("-.slice") == "/"
    for bad in ("system", ".slice", "a--b.slice", "-a.slice", "a/b.slice"):
        assert S.expand_slice(bad) is None


def test_unit_names_as_runc():
    assert S.unit_for("machine.slice:libpod:abc", "id") == ("machine.slice", "libpod-abc.scope")
    assert S.unit_for("system.slice:cri-containerd:abc", "id") == ("system.slice", "cri-containerd-abc.scope")
    assert S.unit_for("::abc", "id") == ("system.slice", "-abc.scope")
    assert S.unit_for("", "c1") == ("system.slice", "pyoci-c1.scope")
    assert S.unit_for(None, "c1") == ("system.slice", "pyoci-c1.scope")
    with pytest.raises(ConfigError, match="slice:prefix:name"):
        S.unit_for("/a/b", "id")
    with pytest.raises(ConfigError, match="invalid slice name"):
        S.unit_for("user.slice/x.slice:p:n", "id")
    with pytest.raises(ConfigError, match="names a slice"):
        S.unit_for("system.slice:p:kubepods.slice", "id")
    with pytest.raises(ConfigError, match="valid systemd unit name"):
        S.unit_for("system.slice:p:a b", "id")


def test_no_systemd_keeps_runcs_words(monkeypatch, tmp_path):
    monkeypatch.setattr(S, "RUN_DIR", str(tmp_path / "nope"))
    with pytest.raises(PyociError, match="^systemd not running on this host, cannot use systemd cgroups "
                                         "manager$"):
        cgroups.Cgroup.plan({}, "c", UNIFIED, systemd=True)
    (tmp_path / "nope").mkdir()
    monkeypatch.setattr(cgroups, "controllers_on_v1", lambda: False)
    cg = cgroups.Cgroup.plan({"linux": {"cgroupsPath": "machine.slice:libpod:x"}}, "c", UNIFIED, systemd=True)
    assert type(cg) is S.Systemd and cg.paths == {"": "/sys/fs/cgroup/machine.slice/libpod-x.scope"}
    monkeypatch.setattr(cgroups, "controllers_on_v1", lambda: True)
    with pytest.raises(PyociError, match="needs a cgroup v2 host"):
        cgroups.Cgroup.plan({}, "c", UNIFIED, systemd=True)


# -- properties --------------------------------------------------------------------
def test_resources_become_properties_as_runc_sets_them():
    res = {"memory": {"limit": 100 << 20, "reservation": 50 << 20, "swap": 150 << 20},
           "cpu": {"shares": 1024, "quota": 50000, "period": 200000, "cpus": "0-1,3", "mems": "0"},
           "pids": {"limit": 42}, "blockIO": {"weight": 500}}
    props, files = S.resource_properties(res, v(252))
    p = props_of(props)
    assert p == {"MemoryMax": 100 << 20, "MemoryLow": 50 << 20, "MemorySwapMax": 50 << 20, "CPUWeight": 100,
                 "CPUQuotaPeriodUSec": 200000, "CPUQuotaPerSecUSec": 250000, "TasksMax": 42,
                 "AllowedCPUs": bytes([0b1011]), "AllowedMemoryNodes": b"\x01",
                 "IOWeight": R.blkio_weight_to_io_weight(500)}
    assert files == res
    # old systemd: no period, no cpusets (written to the files only)
    p = props_of(S.resource_properties(res, v(241))[0])
    assert "CPUQuotaPeriodUSec" not in p and "AllowedCPUs" not in p


def test_unlimited_values_are_infinity():
    p = props_of(S.resource_properties({"memory": {"limit": -1}, "pids": {"limit": -1}, "cpu": {"quota": -1}},
                                       v(252))[0])
    assert p == {"MemoryMax": INF, "MemorySwapMax": INF, "TasksMax": INF, "CPUQuotaPerSecUSec": INF}


def test_cpu_quota_is_rounded_up_to_a_percent_and_written_so():
    props, files = S.resource_properties({"cpu": {"quota": 12345, "period": 100000}}, v(252))
    assert props_of(props)["CPUQuotaPerSecUSec"] == 130000
    assert files["cpu"]["quota"] == 13000


def test_cpu_shares_conversion_is_runcs():
    assert [R.cpu_shares_to_weight(s) for s in (2, 3, 100, 1024, 2048, 262143, 262144)] == \
        [1, 2, 17, 100, 174, 10000, 10000]


def test_cpu_idle_is_cpu_weight_zero():
    warned = []
    p = props_of(S.resource_properties({"cpu": {"idle": 1, "shares": 512}}, v(252), warned.append)[0])
    assert p == {"CPUWeight": 0} and warned
    p = props_of(S.resource_properties({"cpu": {"idle": 1}}, v(251))[0])
    assert p == {}


def test_unified_keys_with_a_property():
    res = {"unified": {"memory.high": "90000000", "memory.min": "max", "pids.max": "0", "cpu.max": "max 50000",
                       "cpu.weight": "77", "cpuset.cpus": "1", "io.max": "8:0 rbps=1"}}
    p = props_of(S.resource_properties(res, v(252))[0])
    assert p == {"MemoryHigh": 90000000, "MemoryMin": INF, "TasksMax": 1, "CPUQuotaPeriodUSec": 50000,
                 "CPUQuotaPerSecUSec": INF, "CPUWeight": 77, "AllowedCPUs": b"\x02"}
    with pytest.raises(ConfigError, match="linux.resources.unified.memory.high"):
        S.resource_properties({"unified": {"memory.high": "lots"}}, v(252))


def test_a_bad_value_names_its_field_before_systemd_is_asked():
    with pytest.raises(ConfigError, match="linux.resources.cpu.shares"):
        S.resource_properties({"cpu": {"shares": 1}}, v(252))


def test_device_rules_become_device_allow():
    rules = R.device_rules({"devices": [{"allow": False, "access": "rwm"},
                                        {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"},
                                        {"allow": True, "type": "b", "major": 8, "access": "r"}]})
    p = S.device_properties(rules)
    assert p[:2] == [("DeviceAllow", ("a(ss)", [])), ("DevicePolicy", ("s", "strict"))]
    allow = p[2][1][1]
    assert ("/dev/char/10:229", "rw") in allow and ("block-8", "r") in allow
    assert ("/dev/char/1:3", "rwm") in allow and ("char-*", "m") in allow and ("block-*", "m") in allow
    assert ("char-136", "rwm") in allow
    # allow everything: policy auto, empty list (runc's allowAllDevices)
    rules = R.device_rules({"devices": [{"allow": True, "access": "rwm"}]})
    assert S.device_properties(rules) == [("DeviceAllow", ("a(ss)", [])), ("DevicePolicy", ("s", "auto"))]


def test_annotations_become_properties():
    p = S.annotation_properties({"org.systemd.property.TimeoutStopUSec": "uint64 123456789",
                                 "org.systemd.property.CollectMode": "'inactive-or-failed'",
                                 "org.systemd.property.TimeoutStopSec": "5",
                                 "org.systemd.property.Wants": "['a.service', \"b.service\"]",
                                 "org.systemd.property.Restrict": "@as []",
                                 "other": "x"})
    assert p == [("CollectMode", ("s", "inactive-or-failed")), ("Restrict", ("as", [])),
                 ("TimeoutStopUSec", ("t", 5000000)), ("TimeoutStopUSec", ("t", 123456789)),
                 ("Wants", ("as", ["a.service", "b.service"]))]
    with pytest.raises(ConfigError, match="org.systemd.property.X1"):
        S.annotation_properties({"org.systemd.property.X1": "1"})
    with pytest.raises(ConfigError, match="GVariant"):
        S.annotation_properties({"org.systemd.property.Foo": "(1, 2)"})


# -- the driver against a fake systemd -----------------------------------------------
@pytest.fixture
def fake(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    sock = str(tmp_path / "private")
    cgroot = str(tmp_path / "cg")
    os.mkdir(cgroot)
    f = FakeSystemd(sock, cgroot)
    monkeypatch.setattr(S, "RUN_DIR", str(run))
    monkeypatch.setattr(S, "PRIVATE_SOCKET", sock)
    monkeypatch.setattr(S, "SYSTEM_BUS", str(tmp_path / "no-bus"))
    monkeypatch.delenv("DBUS_SYSTEM_BUS_ADDRESS", raising=False)
    monkeypatch.setattr(cgroups, "controllers_on_v1", lambda: False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    f.hier = [cgroups.Hierarchy(cgroot, "/", 2, [], "")]
    # the fake moves no process: /proc/PID/cgroup is what systemd would make it
    monkeypatch.setattr(cgroups, "own_cgroups", lambda pid="self": {"": f.expect})
    yield f
    f.close()


def plan(fake, cpath="machine.slice:libpod:c1", res=None, annotations=None):
    config = {"linux": {"cgroupsPath": cpath, "resources": res or {}}, "annotations": annotations or {}}
    cg = cgroups.Cgroup.plan(config, "c1", fake.hier, systemd=True)
    fake.expect = "/" + os.path.relpath(cg.paths[""], fake.cgroot)
    return cg


def read(cg, name):
    with open(os.path.join(cg.paths[""], name)) as f:
        return f.read()


def test_create_starts_the_unit_with_the_first_process(fake):
    cg = plan(fake, res={"memory": {"limit": 64 << 20}, "pids": {"limit": 10}, "unified": {"io.weight": "50"}},
              annotations={"org.systemd.property.CollectMode": "'inactive-or-failed'"})
    cg.create()
    cg.apply(cg.resources or {"memory": {"limit": 64 << 20}, "pids": {"limit": 10}, "unified": {"io.weight": "50"}},
             devices=False)
    assert fake.units == {} and not os.path.exists(cg.paths[""])      # nothing before the process exists
    cg.join(4242)
    unit = fake.units["libpod-c1.scope"]
    p = props_of(unit["props"])
    assert p["Slice"] == "machine.slice" and p["Delegate"] is True and p["PIDs"] == [4242]
    assert p["DefaultDependencies"] is False and p["MemoryAccounting"] is True and p["TasksAccounting"] is True
    assert p["MemoryMax"] == 64 << 20 and p["TasksMax"] == 10 and p["CollectMode"] == "inactive-or-failed"
    # then the files, including those systemd has no property for
    assert (read(cg, "memory.max"), read(cg, "pids.max"), read(cg, "io.weight")) == (str(64 << 20), "10", "50")
    st = cg.to_state()
    assert st["driver"] == "systemd" and st["unit"] == "libpod-c1.scope" and st["slice"] == "machine.slice"
    back = cgroups.Cgroup.from_state(st)
    assert type(back) is S.Systemd and back.started and back.resources == cg.resources


def test_exec_joins_the_running_scope_through_its_file(fake):
    cg = plan(fake)
    cg.apply({}, devices=False)
    cg.join(1)
    back = cgroups.Cgroup.from_state(cg.to_state())
    calls = len(fake.calls)
    back.join(77)
    assert read(back, "cgroup.procs") == "77" and len(fake.calls) == calls   # no D-Bus for an exec


def test_update_sets_properties_and_files(fake):
    cg = plan(fake)
    cg.apply({}, devices=False)
    cg.join(1)
    back = cgroups.Cgroup.from_state(cg.to_state())
    back.apply({"memory": {"limit": 32 << 20}, "cpu": {"quota": 20000}}, devices=False, restore=True)
    assert fake.calls[-1][0] == "SetUnitProperties"
    unit, runtime, props = fake.calls[-1][1]
    assert unit == "libpod-c1.scope" and runtime is True
    assert props_of(props) == {"MemoryMax": 32 << 20, "CPUQuotaPerSecUSec": 200000}
    assert read(back, "memory.max") == str(32 << 20) and read(back, "cpu.max") == "20000"


def test_delete_stops_the_unit(fake):
    cg = plan(fake)
    cg.apply({}, devices=False)
    cg.join(1)
    d = cg.paths[""]
    back = cgroups.Cgroup.from_state(cg.to_state())
    back.destroy()
    assert "libpod-c1.scope" not in fake.units and not os.path.exists(d)
    assert [c[0] for c in fake.calls[-2:]] == ["StopUnit", "ResetFailedUnit"]
    # a unit systemd already dropped (the container exited): delete still succeeds
    cgroups.Cgroup.from_state(cg.to_state()).destroy()


def test_a_failed_start_says_so_and_a_failed_leftover_is_reset(fake):
    cg = plan(fake)
    cg.apply({}, devices=False)
    fake.fail_start = "failed"
    with pytest.raises(PyociError, match="error creating systemd unit `libpod-c1.scope`: got `failed`"):
        cg.join(1)
    assert "libpod-c1.scope" not in fake.units       # reset after the failure
    fake.fail_start = None
    fake.units["libpod-c1.scope"] = {"props": [], "state": "failed"}
    cg = plan(fake)
    cg.apply({}, devices=False)
    cg.join(1)                                      # UnitExists -> reset, retried once
    assert fake.units["libpod-c1.scope"]["state"] == "active"
    cg.destroy()


def test_a_process_put_elsewhere_is_an_error(fake):
    cg = plan(fake)
    cg.apply({}, devices=False)
    fake.expect = "/other.scope"
    with pytest.raises(PyociError, match="systemd put the container into the cgroup /other.scope"):
        cg.join(1)
    cg.destroy()
    assert fake.units == {}


def test_system_bus_path_says_hello_and_adds_a_match(tmp_path, monkeypatch, fake):
    bus = FakeSystemd(str(tmp_path / "bus"), fake.cgroot, bus=True)
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=" + str(tmp_path / "bus"))
    try:
        cg = plan(fake)
        cg.apply({"cpu": {"cpus": "0"}}, devices=False)
        cg.join(1)
        assert [c[0] for c in bus.calls[:4]] == ["Hello", "AddMatch", "Get", "StartTransientUnit"]
        assert fake.calls == []
        cg.destroy()
    finally:
        bus.close()


def test_no_bus_is_a_clear_error(fake, monkeypatch, tmp_path):
    monkeypatch.setattr(S, "PRIVATE_SOCKET", str(tmp_path / "gone"))
    cg = plan(fake)
    with pytest.raises(PyociError, match="cannot connect to systemd over D-Bus"):
        cg.apply({"cpu": {"cpus": "0"}}, devices=False)
