import struct

import pytest

from pyoci.errors import ConfigError, PyociError
from pyoci.linux import capabilities, cgroups, mounts, namespaces
from pyoci.linux import sys as s
from pyoci.runtime.plan import Plan
from pyoci.runtime.state import check_id


def test_mount_options():
    o = mounts.parse(["nosuid", "noexec", "ro", "rw", "mode=755", "size=1k", "rprivate"])
    assert o.flags == s.MS_NOSUID | s.MS_NOEXEC
    assert o.data == "mode=755,size=1k"
    assert o.propagation == [s.MS_PRIVATE | s.MS_REC]
    assert mounts.parse(["rbind"]).is_bind and mounts.parse([], "bind").is_bind


def test_capability_masks():
    sets = capabilities.from_config({"bounding": ["CAP_KILL"], "ambient": ["CAP_KILL"],
                                     "permitted": ["CAP_KILL"], "inheritable": []})
    assert sets[0] == 1 << 5 and sets[4] == 0   # ambient needs inheritable
    with pytest.raises(ConfigError, match=r"process.capabilities.bounding\[0\]"):
        capabilities.from_config({"bounding": ["CAP_NOPE"]})
    assert capabilities.from_config(None) is None


def test_namespace_plan():
    p = namespaces.plan({"linux": {"namespaces": [{"type": "pid"}, {"type": "network", "path": "/x"},
                                                  {"type": "mount"}]}})
    assert p.new == {"pid", "mount"} and p.join == [("network", "/x")]
    assert p.unshare_flags == s.CLONE_NEWPID | s.CLONE_NEWNS
    with pytest.raises(ConfigError, match="duplicate"):
        namespaces.plan({"linux": {"namespaces": [{"type": "pid"}, {"type": "pid"}]}})


def test_cgroup_paths():
    hs = [cgroups.Hierarchy("/sys/fs/cgroup/memory", "/", 1, ["memory"], "memory"),
          cgroups.Hierarchy("/sys/fs/cgroup/unified", "/", 2, [], "")]
    cg = cgroups.Cgroup.plan({"linux": {"cgroupsPath": "/a/b"}}, "id", hs)
    assert cg.paths == {"memory": "/sys/fs/cgroup/memory/a/b", "": "/sys/fs/cgroup/unified/a/b"}
    with pytest.raises(ConfigError, match="systemd"):
        cgroups.Cgroup.plan({"linux": {"cgroupsPath": "system.slice:pyoci:x"}}, "id", hs)
    with pytest.raises(ConfigError):
        cgroups.Cgroup.plan({"linux": {"cgroupsPath": "/a/../../b"}}, "id", hs)


def test_cgroup_relative_paths_v1_under_the_caller_v2_beside_it(monkeypatch):
    """v1 and hybrid hosts: a relative (or no) cgroupsPath goes under the
    caller's cgroup. cgroup v2 (unified): beside it, as runc, since the
    caller's cgroup holds processes and so can enable no controller for a
    child (the no-internal-processes rule)."""
    own = "/system.slice/job.service"
    hybrid = [cgroups.Hierarchy("/sys/fs/cgroup/memory", "/", 1, ["memory"], "memory", own),
              cgroups.Hierarchy("/sys/fs/cgroup/unified", "/", 2, [], "", own)]
    monkeypatch.setattr(cgroups, "own_cgroups", lambda pid="self": {"memory": own, "": own})
    cg = cgroups.Cgroup.plan({}, "c1", hybrid)
    assert cg.paths == {"memory": "/sys/fs/cgroup/memory/system.slice/job.service/c1",
                        "": "/sys/fs/cgroup/unified/system.slice/job.service/c1"}
    unified = [cgroups.Hierarchy("/sys/fs/cgroup", "/", 2, [], "", own)]
    monkeypatch.setattr(cgroups, "own_cgroups", lambda pid="self": {"": own})
    assert cgroups.Cgroup.plan({}, "c1", unified).paths == {"": "/sys/fs/cgroup/system.slice/c1"}
    assert cgroups.Cgroup.plan({"linux": {"cgroupsPath": "pods/p1"}}, "c1", unified).paths == {
        "": "/sys/fs/cgroup/system.slice/pods/p1"}
    assert cgroups.Cgroup.plan({"linux": {"cgroupsPath": "/pods/p1"}}, "c1", unified).paths == {
        "": "/sys/fs/cgroup/pods/p1"}
    assert cgroups.Cgroup.own_dirs(unified) == {"": "/sys/fs/cgroup/system.slice/job.service"}
    # a caller in the root cgroup (a container without a cgroup namespace)
    root = [cgroups.Hierarchy("/sys/fs/cgroup", "/", 2, [], "", "/")]
    assert cgroups.Cgroup.plan({}, "c1", root).paths == {"": "/sys/fs/cgroup/c1"}


def test_plan_records():
    p = Plan()
    p.program("/bin/sh", ["sh"], ["A=1"])
    p.user(1, 2)
    data = b"".join(p.parts)
    assert data[:1] == b"x" and struct.unpack("=I", data[1:5])[0] == 7
    assert data.endswith(b"u" + struct.pack("=III", 8, 1, 2))


@pytest.mark.parametrize("cid", ["a", "A-b_c.d", "0"])
def test_good_ids(cid):
    check_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a..b", "a b"])
def test_bad_ids(cid):
    with pytest.raises(PyociError):
        check_id(cid)
