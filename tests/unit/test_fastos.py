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
    assert fastos.makedirs is os.makedirs and fastos.sep == "/"
    assert fastos.path.realpath is posixpath.realpath
