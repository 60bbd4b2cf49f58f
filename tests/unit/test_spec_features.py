"""`pyoci spec` and `pyoci features`: their output passes upstream's schema
(and pyoci's own checks), spec never overwrites, both through the CLI."""
import json
import os
import subprocess
import sys

import pytest

from pyoci.config.features import features
from pyoci.config.schema import jsonschema_validator
from pyoci.config.spec import default_spec
from pyoci.config.validate import validate
from _fixtures import REPO, UPSTREAM, need_upstream


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pyoci"] + list(args), cwd=cwd or REPO,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO))


def _upstream_errors(kind, doc):
    need_upstream()
    return [e.message for e in jsonschema_validator(kind, UPSTREAM).iter_errors(doc)]


@pytest.mark.parametrize("rootless", [False, True])
def test_spec_passes_upstream_schema_and_pyoci(rootless, tmp_path):
    doc = default_spec(rootless=rootless)
    assert _upstream_errors("config", doc) == []
    (tmp_path / "rootfs").mkdir()
    assert validate(doc, str(tmp_path)) == []


def test_spec_defaults():
    doc = default_spec()
    assert doc["ociVersion"] == "1.3.0"
    p = doc["process"]
    assert p["terminal"] is True and p["args"] == ["sh"] and p["noNewPrivileges"] is True
    assert p["capabilities"]["bounding"] == ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    assert p["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}]
    # runc 1.1.5's: no cgroup namespace (runc's suite appends one where it wants it)
    assert [n["type"] for n in doc["linux"]["namespaces"]] == ["pid", "network", "ipc", "uts", "mount"]
    assert [m["destination"] for m in doc["mounts"]] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                                         "/sys", "/sys/fs/cgroup"]
    assert "/proc/kcore" in doc["linux"]["maskedPaths"] and "/proc/sys" in doc["linux"]["readonlyPaths"]


def test_rootless_spec_maps_the_caller():
    doc = default_spec(rootless=True, uid=1234, gid=5678)
    lin = doc["linux"]
    assert {"type": "user"} in lin["namespaces"] and {"type": "network"} not in lin["namespaces"]
    assert lin["uidMappings"] == [{"containerID": 0, "hostID": 1234, "size": 1}]
    assert lin["gidMappings"] == [{"containerID": 0, "hostID": 5678, "size": 1}]
    assert not any(o.startswith(("uid=", "gid=")) for m in doc["mounts"] for o in m["options"])
    assert "resources" not in lin


@pytest.mark.parametrize("flags", [[], ["--rootless"]])
def test_spec_command_writes_and_refuses_overwrite(flags, tmp_path):
    r = _cli("spec", "--bundle", str(tmp_path), *flags)
    assert r.returncode == 0, r.stderr
    path = tmp_path / "config.json"
    doc = json.loads(path.read_text())
    if flags:
        assert doc["linux"]["uidMappings"][0]["hostID"] == os.geteuid()
    before = path.read_text()
    r = _cli("spec", "--bundle", str(tmp_path), *flags)
    assert r.returncode == 1
    assert "exists" in r.stderr
    assert path.read_text() == before
    if os.path.isdir(UPSTREAM):
        assert _upstream_errors("config", doc) == []


def test_spec_command_defaults_to_cwd(tmp_path):
    assert _cli("spec", cwd=str(tmp_path)).returncode == 0
    assert (tmp_path / "config.json").exists()


def test_features_passes_upstream_schema():
    doc = features()
    assert _upstream_errors("features", doc) == []
    assert jsonschema_validator("features").is_valid(doc)


def test_features_is_truthful():
    from pyoci.linux.capabilities import CAPS, last_cap

    doc = features()
    assert doc["ociVersionMax"] == "1.3.0"
    lin = doc["linux"]
    assert lin["capabilities"] == [n for n, v in sorted(CAPS.items(), key=lambda kv: kv[1]) if v <= last_cap()]
    with open("/proc/self/mountinfo") as f:
        types = {line.split(" - ")[1].split()[0] for line in f}
    assert lin["cgroup"]["v2"] == ("cgroup2" in types)
    assert lin["cgroup"]["v1"] == ("cgroup" in types)
    assert set(lin["namespaces"]) <= {"mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time"}
    assert set(lin["seccomp"]["supportedFlags"]) <= set(lin["seccomp"]["knownFlags"])
    assert "rbind" in doc["mountOptions"] and "ro" in doc["mountOptions"]


def test_features_command():
    r = _cli("features")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["ociVersionMin"] == "1.0.0"
    if os.path.isdir(UPSTREAM):
        assert _upstream_errors("features", doc) == []
