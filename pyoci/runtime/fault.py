"""Fault points: named moments of create, start, exec, update and delete
where the crash-safety tests (tests/integration/test_faults.py) stop the
runtime to SIGKILL its whole process group, deterministically, at that
moment and no other.

Off unless the environment says otherwise (one dict lookup at import):
  PYOCI_FAULT_LOG=FILE   every point reached is appended to FILE as
                         "<label> <pid>" (the test lists a command's points
                         from one run)
  PYOCI_FAULT=LABEL      at LABEL the process appends "hit <label> <pid>"
                         and waits to be killed
The points run in the runtime and in its children (create's C1 and C2,
exec's C1), which inherit the log's fd: C2 still writes after pivot_root.
"""
from pyoci import fastos as os

_AT = os.getenv("PYOCI_FAULT")
_LOG = os.getenv("PYOCI_FAULT_LOG")
_fd = -1
if _AT:
    import time   # now: a child may reach its point after pivot_root
if _LOG:
    _fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


def point(label):
    if _fd < 0:
        return
    hit = label == _AT
    os.write(_fd, ("%s%s %d\n" % ("hit " if hit else "", label, os.getpid())).encode())
    if hit:
        while True:
            time.sleep(3600)


def fds():
    """The fd a child must keep open to report its points."""
    return (_fd,) if _fd >= 0 else ()
