"""User namespace mappings: parsing, bounds, overlaps, lookup, format."""

import pytest

from pyoci.errors import ConfigError
from pyoci.linux import userns


def cfg(key, maps):
    return {"linux": {key: [{"containerID": c, "hostID": h, "size": s} for c, h, s in maps]}}


def test_mappings_and_lookup():
    maps = userns.mappings(cfg("uidMappings", [(0, 1000, 1), (1, 100000, 65536)]), "uidMappings")
    assert maps == [(0, 1000, 1), (1, 100000, 65536)]
    assert userns.to_host(maps, 0) == 1000
    assert userns.to_host(maps, 1) == 100000
    assert userns.to_host(maps, 65536) == 165535
    assert userns.to_host(maps, 65537) is None
    assert userns.format_map(maps) == "0 1000 1\n1 100000 65536\n"


@pytest.mark.parametrize("maps, msg", [
    ([(0, 1000, 10), (5, 2000, 10)], "linux.uidMappings: container ranges 0+10 and 5+10 overlap"),
    ([(0, 1000, 10), (20, 1005, 10)], "linux.uidMappings: host ranges 1000+10 and 1005+10 overlap"),
    ([(0, 1000, 0)], "linux.uidMappings[0]: range 0:1000:0 is out of bounds"),
    ([(0, 4294967295, 2)], "linux.uidMappings[0]: range 0:4294967295:2 is out of bounds"),
])
def test_bad_mappings(maps, msg):
    with pytest.raises(ConfigError) as e:
        userns.mappings(cfg("uidMappings", maps), "uidMappings")
    assert msg in str(e.value)


def test_too_many_ranges():
    with pytest.raises(ConfigError) as e:
        userns.mappings(cfg("gidMappings", [(i, 1000 + i, 1) for i in range(341)]), "gidMappings")
    assert "at most 340" in str(e.value)


def test_own_only():
    assert userns._own_only([(0, 1000, 1)], 1000)
    assert not userns._own_only([(0, 1000, 2)], 1000)
    assert not userns._own_only([(0, 1000, 1), (1, 100000, 10)], 1000)


def test_inside_reads_the_map(tmp_path, monkeypatch):
    assert userns.inside() is False   # the tests run in the initial user namespace


def test_subid_ranges_and_coverage(tmp_path):
    f = tmp_path / "subuid"
    f.write_text("alice:100000:65536\nbob:200000:10\n1234:300000:5\nalice:165536:100\nbroken\n")
    r = userns.subid_ranges(str(f), "alice", 1000)
    assert r == [(100000, 65536), (165536, 100)]
    assert userns.subid_ranges(str(f), "carol", 1234) == [(300000, 5)]
    assert userns._covered(100000, 65636, r)          # spans both adjacent ranges
    assert not userns._covered(100000, 65637, r)
    assert not userns._covered(99999, 2, r)


def test_host_problems_for_an_unprivileged_caller(tmp_path):
    sub = tmp_path / "subuid"
    sub.write_text("%d:100000:65536\n" % 1000)
    cfg = {"linux": {"namespaces": [{"type": "user"}],
                     "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1},
                                     {"containerID": 1, "hostID": 100000, "size": 65536}],
                     "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1},
                                     {"containerID": 1, "hostID": 500000, "size": 10}]}}
    got = userns.host_problems(cfg, euid=1000, egid=1000, subuid=str(sub), subgid=str(sub))
    fields = [f for f, _ in got if f.startswith("linux.")]
    assert "linux.gidMappings[1]" in fields and "linux.uidMappings[1]" not in fields
    assert any("host ids 500000-500009 are not among" in r for _, r in got)
    # root may map anything; a joined namespace needs nothing
    assert userns.host_problems(cfg, euid=0, egid=0, subuid=str(sub), subgid=str(sub)) == []
    cfg["linux"]["namespaces"] = [{"type": "user", "path": "/proc/1/ns/user"}]
    assert userns.host_problems(cfg, euid=1000, egid=1000, subuid=str(sub), subgid=str(sub)) == []


def test_rootless_flag(monkeypatch):
    from pyoci import fastos
    from pyoci.cli import GLOBAL_FLAGS, Context
    from pyoci.cli.args import parse

    def ctx(*argv):
        return Context(parse(list(argv) + ["state", "x"], GLOBAL_FLAGS)[0])

    assert ctx("--rootless", "true").rootless is True
    assert ctx("--rootless=false").rootless is False
    # pyoci.cli's os is pyoci.fastos (posix's calls)
    monkeypatch.setattr(fastos, "geteuid", lambda: 1000)
    assert ctx().rootless is True
    monkeypatch.setattr(fastos, "geteuid", lambda: 0)
    monkeypatch.setattr(userns, "inside", lambda pid="self": True)
    assert ctx().rootless is True          # root of a user namespace
    monkeypatch.setattr(userns, "inside", lambda pid="self": False)
    assert ctx().rootless is False
