"""pyoci's messages: one line per problem, the JSON path and the reason,
exactly as index.json of oci-spec-fixtures/ writes them."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from pyoci.config.validate import validate
from pyoci.errors import ConfigError
from _fixtures import FIXTURES, REPO, index, load

CONFIGS = {rel: item["pyoci"] for rel, item in index().items() if rel.startswith("config/")}
REFUSED = sorted(rel for rel, lines in CONFIGS.items() if lines)


def test_enough_refused_fixtures():
    assert len(REFUSED) >= 20
    assert sum(r.startswith("config/invalid-") for r in REFUSED) >= 20


@pytest.mark.parametrize("rel", sorted(CONFIGS))
def test_messages(rel):
    problems = validate(load(os.path.join(FIXTURES, rel)))
    assert all(isinstance(p, ConfigError) for p in problems)
    assert [str(p) for p in problems] == ["config.json: " + line for line in CONFIGS[rel]]


def test_issue_example():
    doc = load(os.path.join(FIXTURES, "config", "invalid-namespace-type-unknown.json"))
    (p,) = validate(doc)
    assert p.path == "linux.namespaces[2].type"
    assert str(p).startswith('config.json: linux.namespaces[2].type: "pidd" is not one of mount, ')


@pytest.mark.parametrize("version", ["1.0.0", "1.0.1", "1.0.2-dev", "1.1.0", "1.1.0-rc.3", "1.2.0",
                                     "1.2.1", "1.3.0", "1.3.0+dev", "1.4.0"])
def test_every_1x_version_is_accepted(version):
    doc = load(os.path.join(FIXTURES, "config", "valid-base.json"))
    doc["ociVersion"] = version
    assert validate(doc) == []


@pytest.mark.parametrize("version", ["0.6.0", "2.0.0", "10.1.0-rc1"])
def test_other_majors_are_refused(version):
    doc = load(os.path.join(FIXTURES, "config", "valid-base.json"))
    doc["ociVersion"] = version
    (p,) = validate(doc)
    assert p.path == "ociVersion" and "major version" in p.reason


def test_root_must_exist_in_the_bundle(tmp_path):
    doc = load(os.path.join(FIXTURES, "config", "valid-base.json"))
    (p,) = validate(doc, str(tmp_path))
    assert p.path == "root.path" and "no such directory" in p.reason
    (tmp_path / "rootfs").mkdir()
    assert validate(doc, str(tmp_path)) == []


def test_systemd_driver_wants_the_systemd_form():
    doc = load(os.path.join(FIXTURES, "config", "valid-cgroupspath-relative.json"))
    assert validate(doc, systemd_cgroup=False) == []
    (p,) = validate(doc, systemd_cgroup=True)
    assert p.path == "linux.cgroupsPath"


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pyoci"] + list(args), cwd=cwd or REPO,
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO))


def test_validate_command_prints_every_problem(tmp_path):
    doc = load(os.path.join(FIXTURES, "config", "valid-base.json"))
    doc["ociVersion"] = "2.0.0"
    doc["process"]["capabilities"]["bounding"] = ["CAP_NOPE"]
    doc["linux"]["namespaces"].append({"type": "pid"})
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(doc))
    r = _cli("validate", "--bundle", str(tmp_path))
    assert r.returncode == 1
    assert r.stdout.splitlines() == [
        'config.json: ociVersion: "2.0.0": runtime-spec major version 2 is not supported '
        "(pyoci implements 1.x, up to 1.3.0)",
        'config.json: process.capabilities.bounding[0]: "CAP_NOPE" is not a known capability',
        'config.json: linux.namespaces[5].type: "pid" is listed twice (first at linux.namespaces[0])',
    ]


def test_validate_command_clean_bundle(tmp_path):
    shutil.copy(os.path.join(FIXTURES, "config", "valid-base.json"), tmp_path / "config.json")
    (tmp_path / "rootfs").mkdir()
    r = _cli("validate", "--bundle", str(tmp_path))
    assert (r.returncode, r.stdout) == (0, "")
    r = _cli("validate", cwd=str(tmp_path))
    assert (r.returncode, r.stdout) == (0, "")


def test_validate_host_reports_what_the_host_lacks(tmp_path):
    doc = load(os.path.join(FIXTURES, "config", "valid-base.json"))
    doc["linux"]["netDevices"] = {"ptnosuchif": {}}
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "config.json").write_text(json.dumps(doc))
    assert _cli("validate", "--bundle", str(tmp_path)).returncode == 0
    r = _cli("validate", "--host", "--bundle", str(tmp_path))
    assert r.returncode == 1
    assert "config.json: linux.netDevices: " in r.stdout
