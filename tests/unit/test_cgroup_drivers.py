"""The cgroup driver interface: the driver is chosen once (plan for a new
container, the state document for an existing one) and recorded."""
import json

import pytest

from pyoci.errors import PyociError
from pyoci.linux import cgroups
from pyoci.linux.cgroups.v1 import V1
from pyoci.linux.cgroups.v2 import V2

HYBRID = [cgroups.Hierarchy("/sys/fs/cgroup/memory", "/", 1, ["memory"], "memory"),
          cgroups.Hierarchy("/sys/fs/cgroup/systemd", "/", 1, [], "name=systemd"),
          cgroups.Hierarchy("/sys/fs/cgroup/unified", "/", 2, [], "")]
UNIFIED = [cgroups.Hierarchy("/sys/fs/cgroup", "/", 2, [], "")]


def test_plan_chooses_the_driver_by_the_host():
    cg = cgroups.Cgroup.plan({"linux": {"cgroupsPath": "/a"}}, "id", HYBRID)
    assert type(cg) is V1 and cg.version() == 1 and cg.to_state()["driver"] == "v1"
    cg = cgroups.Cgroup.plan({"linux": {"cgroupsPath": "/a"}}, "id", UNIFIED)
    assert type(cg) is V2 and cg.version() == 2 and cg.paths == {"": "/sys/fs/cgroup/a"}
    assert cg.to_state()["driver"] == "v2"
    # only a named v1 hierarchy (name=systemd) besides cgroup2: the controllers are on v2
    cg = cgroups.Cgroup.plan({}, "id", UNIFIED + [HYBRID[1]])
    assert type(cg) is V2


def test_cgroup_of_paths_is_the_cgroupfs_driver():
    assert type(cgroups.Cgroup({"": "/x"})) is V2
    assert type(cgroups.Cgroup({"memory": "/m", "": "/u"})) is V1
    assert type(cgroups.Cgroup({})) is V2


def test_state_round_trip():
    cg = cgroups.Cgroup({"memory": "/m/x", "": "/u/x"}, created=["/m/x"], resources={"pids": {"limit": 3}},
                        enabled=[["/u", ["pids"]]])
    d = json.loads(json.dumps(cg.to_state()))
    back = cgroups.Cgroup.from_state(d)
    assert type(back) is V1
    assert (back.paths, back.created, back.resources, back.enabled) == (cg.paths, cg.created, cg.resources,
                                                                         cg.enabled)


def test_state_of_the_previous_version_loads():
    """A container created before drivers: no "driver" key; v1 or v2 by its
    directories, as that version decided."""
    old = {"paths": {"cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/c", "": "/sys/fs/cgroup/unified/c"},
           "created": ["/sys/fs/cgroup/cpu,cpuacct/c"]}
    assert type(cgroups.Cgroup.from_state(old)) is V1
    old = {"paths": {"": "/sys/fs/cgroup/c"}, "created": ["/sys/fs/cgroup/c"], "enabled": [["/sys/fs/cgroup",
                                                                                             ["memory"]]]}
    cg = cgroups.Cgroup.from_state(old)
    assert type(cg) is V2 and cg.enabled == [["/sys/fs/cgroup", ["memory"]]]
    assert cgroups.Cgroup.from_state(None).paths == {}


def test_unknown_or_malformed_state_fails_clearly():
    with pytest.raises(PyociError, match="cgroup driver 'cgmanager'.*known drivers are systemd, v1, v2"):
        cgroups.Cgroup.from_state({"driver": "cgmanager", "paths": {}})
    with pytest.raises(PyociError, match="malformed cgroup section"):
        cgroups.Cgroup.from_state({"paths": ["/x"]})
    with pytest.raises(PyociError, match="malformed cgroup section"):
        cgroups.Cgroup.from_state("/sys/fs/cgroup/x")
