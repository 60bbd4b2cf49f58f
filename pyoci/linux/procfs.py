"""Writes to /proc that the runtime makes, through a verified procfs.

A hostile image or mount configuration can put another file where a procfs
file should be (CVE-2019-16884, CVE-2025-52881): every file opened here is
checked to live on a real procfs (statfs magic) before it is written.
"""
import os

from pyoci.errors import PyociError
from pyoci.linux import sys as lsys

PROC_SUPER_MAGIC = 0x9FA0


def open_verified(path, flags=os.O_WRONLY):
    fd = os.open(path, flags | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        if lsys.fstatfs_type(fd) != PROC_SUPER_MAGIC:
            raise PyociError("%s is not on a procfs: refusing to write to it" % path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def write(path, data):
    fd = open_verified(path)
    try:
        os.write(fd, data.encode() if isinstance(data, str) else data)
    finally:
        os.close(fd)
