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
