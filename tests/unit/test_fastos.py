"""pyoci.fastos: posix's calls under their os names, and the path functions
the frequent commands use, which must behave as posixpath's."""
import os
import posixpath

import pytest

from pyoci import fastos

PATHS = ["", "/", "//", "///", "a", "/a", "a/", "/a/", "a/b", "/a/b/", "//a//b//", "a/./b", "a/../b", "../a",
         "/../a", "a/b/../../..", "/a/b/../../..", ".", "..", "./", "/.", "a/..", "/a/.", "x//y/./z/../w"]


@pytest.mark.parametrize("p", PATHS)
def test_single_path_functions_as_posixpath(p):
    for name in ("dirname", "basename", "normpath"):
        assert getattr(fastos.path, name)(p) == getattr(posixpath, name)(p), (name, p)
    if p:
        assert fastos.path.abspath(p) == posixpath.abspath(p)


@pytest.mark.parametrize("a", PATHS)
def test_join_as_posixpath(a):
    for rest in ([], ["b"], ["/b"], ["b/", "c"], ["", "c"], ["b", "/c", "d"], [""]):
        assert fastos.path.join(a, *rest) == posixpath.join(a, *rest), (a, rest)


def test_file_tests(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    (tmp_path / "link").symlink_to(f)
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")
    for p in (tmp_path, f, tmp_path / "link", tmp_path / "dangling", tmp_path / "nothing", "/dev/null", "a\0b"):
        p = str(p)
        for name in ("exists", "isfile", "isdir"):
            assert getattr(fastos.path, name)(p) == getattr(posixpath, name)(p), (name, p)


def test_os_names():
    assert fastos.open is os.open and fastos.kill is os.kill and fastos.O_CLOEXEC == os.O_CLOEXEC
    assert fastos._exit is os._exit
    # the rest comes from the real os (imported then), environ str-keyed
    assert fastos.environ is os.environ
    assert fastos.walk is os.walk and fastos.sep == "/"
    assert fastos.path.commonpath is posixpath.commonpath


def test_realpath_as_posixpath(tmp_path):
    d = str(tmp_path)
    os.makedirs(d + "/a/b")
    os.symlink("a/b", d + "/l1")
    os.symlink(d + "/a", d + "/l2")
    os.symlink("../..", d + "/a/b/up")
    os.symlink("loop2", d + "/loop1")
    os.symlink("loop1", d + "/loop2")
    os.symlink("nowhere/x", d + "/dangling")
    for p in ("/", d, d + "/l1", d + "/l1/..", d + "/l2/b/up", d + "/l2/b/up/a/../l1/x/y", d + "/dangling",
              d + "/dangling/z", d + "/nonexistent/..", "relative", ".", d + "/./a//b/", d + "/loop1",
              d + "/loop1/x"):
        assert fastos.path.realpath(p) == posixpath.realpath(p), p


def test_makedirs_fsencode_getenv(tmp_path, monkeypatch):
    d = str(tmp_path / "m" / "n" / "o")
    fastos.makedirs(d, 0o700, exist_ok=True)
    assert os.path.isdir(d) and os.stat(d).st_mode & 0o777 == 0o700
    fastos.makedirs(d, exist_ok=True)
    with pytest.raises(FileExistsError):
        fastos.makedirs(d)
    for s in ("plain", "caf\u00e9", "bad\udcff"):
        assert fastos.fsencode(s) == os.fsencode(s) and fastos.fsdecode(os.fsencode(s)) == s
    assert fastos.getenv("PATH") == os.environ.get("PATH")
    assert fastos.getenv("PYOCI_SURELY_UNSET", "x") == "x"
