"""The mount option table: every flag, propagation, recursive attribute and
idmap option runc accepts, and what is left as filesystem data."""
import pytest

from pyoci.linux import mounts
from pyoci.linux import sys as s


@pytest.mark.parametrize("opt,flag", [
    ("ro", s.MS_RDONLY), ("nosuid", s.MS_NOSUID), ("nodev", s.MS_NODEV), ("noexec", s.MS_NOEXEC),
    ("sync", s.MS_SYNCHRONOUS), ("dirsync", s.MS_DIRSYNC), ("remount", s.MS_REMOUNT),
    ("mand", s.MS_MANDLOCK), ("noatime", s.MS_NOATIME), ("nodiratime", s.MS_NODIRATIME),
    ("relatime", s.MS_RELATIME), ("strictatime", s.MS_STRICTATIME), ("lazytime", s.MS_LAZYTIME),
    ("silent", s.MS_SILENT), ("nosymfollow", s.MS_NOSYMFOLLOW), ("bind", s.MS_BIND),
    ("rbind", s.MS_BIND | s.MS_REC)])
def test_flag_set(opt, flag):
    assert mounts.parse([opt]).flags == flag


@pytest.mark.parametrize("on,off", [("ro", "rw"), ("nosuid", "suid"), ("nodev", "dev"), ("noexec", "exec"),
                                    ("sync", "async"), ("mand", "nomand"), ("noatime", "atime"),
                                    ("nodiratime", "diratime"), ("relatime", "norelatime"),
                                    ("strictatime", "nostrictatime"), ("lazytime", "nolazytime"),
                                    ("silent", "loud"), ("nosymfollow", "symfollow")])
def test_flag_cleared_by_its_opposite(on, off):
    assert mounts.parse([on, off]).flags == 0
    assert mounts.parse([off, on]).flags == mounts.parse([on]).flags


def test_propagation_all_forms():
    o = mounts.parse(list(mounts.PROPAGATION))
    assert o.propagation == list(mounts.PROPAGATION.values()) and o.flags == 0 and o.data == ""


def test_recursive_attributes():
    o = mounts.parse(["rro", "rnosuid", "rnodev", "rnoexec", "rnosymfollow", "rnodiratime"])
    assert o.attr_set == (s.MOUNT_ATTR_RDONLY | s.MOUNT_ATTR_NOSUID | s.MOUNT_ATTR_NODEV | s.MOUNT_ATTR_NOEXEC
                          | s.MOUNT_ATTR_NOSYMFOLLOW | s.MOUNT_ATTR_NODIRATIME)
    assert o.attr_clr == 0 and o.flags == 0 and o.data == ""
    o = mounts.parse(["rro", "rrw", "rsuid"])
    assert o.attr_set == 0 and o.attr_clr == s.MOUNT_ATTR_RDONLY | s.MOUNT_ATTR_NOSUID


def test_recursive_atime_is_one_field():
    o = mounts.parse(["rnoatime"])
    assert o.attr_set == s.MOUNT_ATTR_NOATIME and o.attr_clr == s.MOUNT_ATTR__ATIME
    o = mounts.parse(["rnoatime", "rstrictatime"])
    assert o.attr_set == s.MOUNT_ATTR_STRICTATIME and o.attr_clr == s.MOUNT_ATTR__ATIME


def test_idmap_and_data():
    o = mounts.parse(["rbind", "ridmap", "tmpcopyup", "size=1k", "mode=755"])
    assert o.idmap == "ridmap" and o.is_bind and o.data == "size=1k,mode=755"
    assert mounts.parse([], "bind").is_bind


def test_map_lines():
    assert mounts._map_lines([{"containerID": 0, "hostID": 1000, "size": 5},
                              {"containerID": 5, "hostID": 2000, "size": 1}]) == "0 1000 5\n5 2000 1\n"
