"""Bad input: one clear message, exit 1, nothing left behind (the
host_guard fixture checks mounts, cgroups and processes; these tests check
the state dir)."""
import json
import os
import re

import pytest


def assert_failed(p, *phrases):
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip().splitlines()
    assert len(err) == 1, p.stderr
    m = re.match(r'^time="[^"]+" level=error msg=(".*")$', err[0])
    assert m, err[0]
    err = [json.loads(m.group(1))]
    for ph in phrases:
        assert ph in err[0], (ph, err[0])


def test_missing_bundle(runtime, tmp_path):
    p = runtime.cmd("create", "--bundle", tmp_path / "nope", "b1")
    assert_failed(p, "nope", "no such file or directory")
    assert runtime.ids() == []


def test_missing_config(runtime, tmp_path):
    (tmp_path / "empty").mkdir()
    p = runtime.cmd("create", "--bundle", tmp_path / "empty", "b2")
    assert_failed(p, "config.json", "no such file or directory")
    assert runtime.ids() == []


def test_unparsable_config(runtime, make_bundle):
    b = make_bundle(["true"])
    with open(os.path.join(b, "config.json"), "w") as f:
        f.write("{not json")
    assert_failed(runtime.cmd("create", "-b", b, "b3"), "config.json", "invalid JSON")
    assert runtime.ids() == []


def test_rootfs_not_found(runtime, make_bundle):
    b = make_bundle(["true"], lambda c: c["root"].update(path="missing-rootfs"))
    assert_failed(runtime.cmd("create", "-b", b, "b4"), "root.path", "missing-rootfs", "no such")
    assert runtime.ids() == []


def test_program_not_found(runtime, make_bundle):
    b = make_bundle(["/nonexistent"])
    p = runtime.cmd("create", "-b", b, "b5")
    assert_failed(p, 'pyoci create failed: unable to start container process: exec: "/nonexistent": '
                     'stat /nonexistent: no such file or directory')
    b = make_bundle(["nonexistent-cmd"])
    assert_failed(runtime.cmd("run", "-b", b, "b5"), "executable file not found in $PATH")
    assert runtime.ids() == []


def test_id_in_use(runtime, make_bundle):
    b = make_bundle(["sleep", "10"])
    runtime.cmd("create", "-b", b, "dup", check=True)
    pid = runtime.state("dup")["pid"]
    assert_failed(runtime.cmd("create", "-b", b, "dup"), "container with given ID already exists")
    assert runtime.state("dup")["pid"] == pid
    runtime.cmd("delete", "--force", "dup", check=True)


@pytest.mark.parametrize("cid", ["../x", "a/b", "..", "bad id", "x..y", "é"])
def test_invalid_id(runtime, make_bundle, cid):
    b = make_bundle(["true"])
    assert_failed(runtime.cmd("create", "-b", b, cid), "invalid container id")
    assert runtime.ids() == []


def test_unknown_command_and_flag(runtime):
    assert_failed(runtime.cmd("frobnicate"), "unknown command")
    assert_failed(runtime.cmd("create", "--frob", "x"), "flag provided but not defined: --frob")
    assert_failed(runtime.cmd("--frob", "list"), "flag provided but not defined: --frob")


def test_systemd_cgroup_without_systemd_refused_cleanly(runtime, make_bundle):
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd is running here: test_systemd_driver.py tests the driver")
    b = make_bundle(["true"])
    assert_failed(runtime.cmd("--systemd-cgroup", "create", "-b", b, "sd"),
                  "systemd not running on this host, cannot use systemd cgroups manager")   # runc's words
    assert runtime.ids() == []


def test_failed_mount_undoes_everything(runtime, make_bundle):
    def changes(c):
        c["mounts"].append({"destination": "/data", "type": "bind", "source": "/does/not/exist",
                            "options": ["rbind"]})
    b = make_bundle(["true"], changes)
    assert_failed(runtime.cmd("create", "-b", b, "fm"), "mounts[7]", "/does/not/exist")
    assert runtime.ids() == []


def test_json_log_lines(runtime, make_bundle, tmp_path):
    log = tmp_path / "log.json"
    b = make_bundle(["/nonexistent"])
    p = runtime.cmd("--log", log, "--log-format", "json", "create", "-b", b, "lj")
    assert p.returncode == 1
    p2 = runtime.cmd("--log=" + str(log), "--log-format=json", "state", "nope")
    assert p2.returncode == 1 and p2.stderr.strip() == "container does not exist"
    lines = [json.loads(l) for l in log.read_text().splitlines()]
    assert [l["level"] for l in lines] == ["error", "error"]
    assert "no such file or directory" in lines[0]["msg"]
    assert lines[1]["msg"] == "container does not exist"
    for l in lines:
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", l["time"])


def test_version(runtime):
    p = runtime.cmd("--version")
    lines = p.stdout.splitlines()
    assert p.returncode == 0
    assert re.match(r"^pyoci version \d+\.\d+\.\d+$", lines[0])
    assert "spec: 1.3.0" in lines
    assert runtime.cmd("-v").stdout == p.stdout


def test_root_created_0700(tmp_path, host_guard, make_bundle):
    from conftest import Runtime

    rt = Runtime(str(tmp_path / "a" / "b"))
    b = make_bundle(["true"])
    assert rt.cmd("run", "-b", b, "x").returncode == 0
    assert os.stat(rt.root).st_mode & 0o777 == 0o700
