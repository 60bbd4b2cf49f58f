"""The hand-off between the runtime and its children: named, typed
messages (runtime/sync.py) and pyoci-init's plan records (init.c parse()),
each refusing what it does not expect with a named error."""
import os
import struct
import subprocess

import pytest

from pyoci.errors import ProtocolError, PyociError
from pyoci.linux.executable import INIT_PATH
from pyoci.runtime import sync
from pyoci.runtime.plan import Plan


def test_records_name_their_fields():
    assert sync.Go().seccomp_state is None
    assert sync.InitPid(pid=5).pid == 5
    with pytest.raises(TypeError, match="missing field pid"):
        sync.InitPid()
    with pytest.raises(TypeError, match="unknown fields nope"):
        sync.Joined(nope=1)


def test_a_message_crosses_a_channel_typed():
    ch = sync.Channel()
    try:
        ch.send(sync.Go(seccomp_state={"a": 1}))
        ch.send(sync.InitPid(pid=42))
        msg = ch.recv()
        assert isinstance(msg, sync.Go) and msg.seccomp_state == {"a": 1}
        assert ch.expect("test", sync.InitPid).pid == 42
        with pytest.raises(TypeError):
            ch.send({"go": True})   # bare dicts are not messages
    finally:
        ch.close()


def test_unexpected_messages_are_named_errors():
    ch = sync.Channel()
    try:
        ch.send(sync.Ready())
        with pytest.raises(ProtocolError, match=r"create \(C2\): unexpected message ready \(expected joined\)"):
            ch.expect("create (C2)", sync.Joined)
        ch.send(sync.Failed(error="mount /proc: boom"))
        with pytest.raises(PyociError, match="^mount /proc: boom$"):
            ch.expect("create (C2)", sync.Ready)
        os.write(ch.wfd, b'{"type": "hello"}\n')
        with pytest.raises(ProtocolError, match="expected one of"):
            ch.recv()
        os.write(ch.wfd, b'not json\n')
        with pytest.raises(ProtocolError):
            ch.recv()
        ch.close_write()
        assert ch.expect("x", sync.Ready, eof=True) is None
        with pytest.raises(ProtocolError, match="unexpected message end-of-file"):
            ch.expect("x", sync.Ready)
    finally:
        ch.close()


def run_init(data):
    fd = os.memfd_create("plan", 0)
    try:
        os.write(fd, data)
        return subprocess.run([INIT_PATH, str(fd)], pass_fds=[fd], capture_output=True, text=True, timeout=10)
    finally:
        os.close(fd)


def rec(tag, payload):
    return tag + struct.pack("=I", len(payload)) + payload


@pytest.mark.skipif(not os.path.exists(INIT_PATH), reason="pyoci-init is not built")
@pytest.mark.parametrize("bad,words", [
    (rec(b"u", b"\0\0\0"), "plan: record 'u' of 3 bytes"),
    (rec(b"c", b"\0" * 40), "plan: record 'c' of 40 bytes"),
    (rec(b"G", b"\0" * 6), "plan: record 'G' of 6 bytes"),
    (rec(b"s", b"\0" * 4 + b"\0" * 7), "plan: record 's' of 11 bytes"),
    (rec(b"W", b"\0" * 4), "plan: record 'W' of 4 bytes"),
    (rec(b"k", b""), "plan: record 'k' of 0 bytes"),
    (rec(b"n", b"x"), "plan: record 'n' of 1 bytes"),
    (b"a\x05\0\0", "plan: truncated record"),
    (b"a\xff\0\0\0true", "plan record"),
    (rec(b"?", b""), "plan: unknown record"),
])
def test_pyoci_init_checks_every_record_length(bad, words):
    good = Plan()
    good.program("/bin/true", ["true"], [])
    p = run_init(b"".join(good.parts) + bad)
    assert p.returncode == 127 and ("pyoci-init: " + words) in p.stderr, (p.returncode, p.stderr)


@pytest.mark.skipif(not os.path.exists(INIT_PATH), reason="pyoci-init is not built")
def test_pyoci_init_runs_a_well_formed_plan():
    plan = Plan()
    plan.program("/bin/sh", ["sh", "-c", "exit 3"], [])
    plan.keep_fds(3)
    plan.umask(0o22)
    assert run_init(b"".join(plan.parts)).returncode == 3
