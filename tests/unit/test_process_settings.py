"""Pure parsing of the process settings (pyoci.linux.process) and the
seccomp cache key: each bad value names its field."""
import pytest

from pyoci.errors import ConfigError
from pyoci.linux import process, seccomp


def test_parse_list():
    assert process.parse_list("0-2,5, 7-8", "x") == [0, 1, 2, 5, 7, 8]
    for bad in ("", "a", "3-1", "-1", "1-"):
        with pytest.raises(ConfigError):
            process.parse_list(bad, "x")


def test_scheduler():
    assert process.parse_scheduler({"policy": "SCHED_RR", "priority": 5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}) \
        == (2, 1, 0, 5, 0, 0, 0)
    assert process.parse_scheduler({"policy": "SCHED_DEADLINE", "runtime": 10, "deadline": 20, "period": 30}) \
        == (6, 0, 0, 0, 10, 20, 30)
    for bad, field in (({"policy": "SCHED_NOPE"}, "process.scheduler.policy"),
                       ({"policy": "SCHED_OTHER", "priority": 3}, "process.scheduler.priority"),
                       ({"policy": "SCHED_OTHER", "nice": 40}, "process.scheduler.nice"),
                       ({"policy": "SCHED_OTHER", "flags": ["X"]}, "process.scheduler.flags[0]"),
                       ({"policy": "SCHED_BATCH", "runtime": 5}, "process.scheduler")):
        with pytest.raises(ConfigError) as e:
            process.parse_scheduler(bad)
        assert str(e.value).startswith("config.json: %s: " % field), e.value


def test_ioprio_personality_mempolicy():
    assert process.parse_ioprio({"class": "IOPRIO_CLASS_RT", "priority": 3}) == (1 << 13) | 3
    assert process.parse_personality({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]}) == 0x0040008
    assert process.parse_mempolicy({"mode": "MPOL_INTERLEAVE", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]}) \
        == (3 | 1 << 15, [0, 1])
    assert process.parse_mempolicy({"mode": "MPOL_LOCAL"}) == (4, [])
    with pytest.raises(ConfigError):
        process.parse_mempolicy({"mode": "MPOL_LOCAL", "nodes": "0"})
    with pytest.raises(ConfigError):
        process.parse_mempolicy({"mode": "MPOL_BIND", "nodes": "0",
                                 "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]})


def test_seccomp_flags_and_cache_key():
    sc = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
          "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}
    assert seccomp.flags(sc) == 2 | 32
    assert seccomp.uses_notify(sc)
    k = seccomp.cache_key(sc)
    if k is None:
        pytest.skip("no libseccomp.so.2 found")
    assert k == seccomp.cache_key(dict(sc, listenerPath="/x", listenerMetadata="m", flags=[]))
    assert k != seccomp.cache_key(dict(sc, defaultAction="SCMP_ACT_LOG"))


def test_capabilities_unknown_to_the_kernel_are_skipped(monkeypatch):
    from pyoci.linux import capabilities

    monkeypatch.setattr(capabilities, "_last_cap", 38)   # a kernel without CAP_BPF, CAP_CHECKPOINT_RESTORE
    said = []
    assert capabilities.mask(["CAP_CHOWN", "CAP_BPF"], "process.capabilities.bounding", said.append) == 1
    assert said and "CAP_BPF" in said[0]
    with pytest.raises(ConfigError) as e:
        capabilities.mask(["CAP_NOPE"], "process.capabilities.bounding")
    assert "process.capabilities.bounding[0]" in str(e.value)
    # ambient only where permitted and inheritable
    sets = capabilities.from_config({"permitted": ["CAP_KILL"], "inheritable": ["CAP_KILL", "CAP_CHOWN"],
                                     "ambient": ["CAP_KILL", "CAP_CHOWN"]})
    assert sets[4] == 1 << 5


def _entries(d, n, t0=1_000_000):
    import os

    for i in range(n):
        p = d / ("%064x.bpf" % i)
        p.write_bytes(b"\0" * 8)
        os.utime(p, (t0 + i, t0 + i))


def test_seccomp_cache_keeps_the_newest(tmp_path):
    import os

    _entries(tmp_path, seccomp.CACHE_KEEP + 6)
    (tmp_path / "a.bpf.1.tmp").write_bytes(b"")          # being written
    (tmp_path / "b.bpf.2.tmp").write_bytes(b"")          # left by a crash
    os.utime(tmp_path / "b.bpf.2.tmp", (1, 1))
    seccomp.prune_cache(str(tmp_path))
    left = sorted(os.listdir(tmp_path))
    assert left == ["%064x.bpf" % i for i in range(6, seccomp.CACHE_KEEP + 6)] + ["a.bpf.1.tmp"]


def test_seccomp_cache_pruned_when_a_program_is_written(tmp_path, monkeypatch):
    import os

    cache = tmp_path / seccomp.CACHE_DIR
    cache.mkdir()
    _entries(cache, seccomp.CACHE_KEEP)
    compiled = []
    monkeypatch.setattr(seccomp, "compile", lambda sc, warn=None: compiled.append(1) or (b"\1" * 8, 0))
    monkeypatch.setattr(seccomp, "cache_key", lambda sc: "%064x" % 0)
    # a hit: no compile, and the entry becomes the newest
    assert seccomp.program({}, root=str(tmp_path)) == (b"\0" * 8, 0) and not compiled
    monkeypatch.setattr(seccomp, "cache_key", lambda sc: "f" * 64)
    assert seccomp.program({}, root=str(tmp_path)) == (b"\1" * 8, 0) and compiled
    left = set(os.listdir(cache))
    assert len(left) == seccomp.CACHE_KEEP and "f" * 64 + ".bpf" in left
    assert "%064x.bpf" % 0 in left and "%064x.bpf" % 1 not in left   # the oldest went


def test_seccomp_listener_state_pid_mark():
    import json

    sc = {"listenerMetadata": "m\x01\"x"}
    text = seccomp.listener_state(sc, "c1", None, "/b", {"k": "\x01"}, status="running", init_pid=7)
    assert text.count(seccomp.PID_MARK) == 1
    st = json.loads(text.replace(seccomp.PID_MARK, "1234"))
    assert st["pid"] == 1234 and st["metadata"] == "m\x01\"x" and st["fds"] == ["seccompFd"]
    assert st["state"] == {"ociVersion": st["ociVersion"], "id": "c1", "status": "running", "pid": 7,
                           "bundle": "/b", "annotations": {"k": "\x01"}}
    st = json.loads(seccomp.listener_state(sc, "c1", 9, "/b", None))
    assert st["pid"] == st["state"]["pid"] == 9 and st["state"]["status"] == "creating"
