"""runc's command-line contract where engines, scripts and people rely on
it: help on every command, flags after the container id, --debug lines,
--log opened at start-up, list/state JSON in runc's key order, argument
counts refused in runc's words."""
import json
import os
import subprocess

import pytest

from conftest import PYOCI, unified
from test_cgroups import cg_dir, read, start_sleeping

COMMANDS = ["checkpoint", "create", "delete", "events", "exec", "features", "kill", "list", "pause", "ps",
            "restore", "resume", "run", "spec", "start", "state", "update"]


def pyoci(*args, **kw):
    return subprocess.run([PYOCI] + list(args), capture_output=True, text=True, timeout=30, **kw)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_on_every_command(cmd):
    for form in ([cmd, "-h"], [cmd, "--help"], ["help", cmd]):
        p = pyoci(*form)
        assert p.returncode == 0, (form, p.stderr)
        lines = p.stdout.splitlines()
        assert lines[0] == "NAME:" and lines[1].startswith("   pyoci %s - " % cmd), (form, lines[:2])
        assert "USAGE:" in lines and "OPTIONS:" in lines


def test_global_help_and_unknown_topic():
    for form in (["-h"], ["--help"], ["help"]):
        p = pyoci(*form)
        assert p.returncode == 0 and p.stdout.startswith("NAME:\n   pyoci - ")
        assert "COMMANDS:" in p.stdout and "GLOBAL OPTIONS:" in p.stdout
    for form in (["foo", "-h"], ["help", "foo"]):
        p = pyoci(*form)
        assert p.returncode != 0 and "No help topic for 'foo'" in p.stderr


def test_argument_counts_in_runcs_words(tmp_path):
    root = str(tmp_path / "root")
    assert 'pyoci: \\"state\\" requires exactly 1 argument(s)' in pyoci("--root", root, "state").stderr
    assert 'requires exactly 1 argument(s)' in pyoci("--root", root, "start", "a", "b").stderr
    assert '"kill\\" requires a maximum of 2 argument(s)' in pyoci("--root", root, "kill", "a", "9", "x").stderr
    assert '"exec\\" requires a minimum of 1 argument(s)' in pyoci("--root", root, "exec").stderr
    # an unknown flag after the id is a stray argument, never silently ignored
    p = pyoci("--root", root, "delete", "a", "--nope")
    assert p.returncode == 1 and "requires exactly 1 argument(s)" in p.stderr


def test_checkpoint_fails_clearly(tmp_path):
    p = pyoci("--root", str(tmp_path), "checkpoint", "x")
    assert p.returncode == 1 and "checkpoint is not supported by pyoci" in p.stderr


def test_flags_after_the_container_id(runtime, make_bundle):
    """`update ID --pids-limit N`: runc reorders flags (urfave/cli), so a
    flag after the id counts; pyoci ignored it silently before."""
    pid = start_sleeping(runtime, make_bundle, "fa1", {"pids": {"limit": 50}})
    runtime.cmd("update", "fa1", "--pids-limit", "21", "--cpu-period=250000", check=True)
    assert read(cg_dir(pid, "pids"), "pids.max") == "21"
    if unified():   # cgroup v2: quota and period in cpu.max
        assert read(cg_dir(pid, "cpu"), "cpu.max").split()[1] == "250000"
    else:
        assert read(cg_dir(pid, "cpu"), "cpu.cfs_period_us") == "250000"
    # kill ID SIGNAL --all, delete ID --force
    assert runtime.cmd("kill", "fa1", "KILL", "--all").returncode == 0
    runtime.cmd("delete", "fa1", "--force", check=True)
    assert runtime.ids() == []


def test_exec_keeps_its_command_flags(runtime, make_bundle):
    """exec (and ps) do not reorder: what follows the id is the command's."""
    start_sleeping(runtime, make_bundle, "fa2", {})
    p = runtime.cmd("exec", "fa2", "echo", "-e", "--help")
    assert p.returncode == 0 and p.stdout.strip() == "--help", p.stderr
    runtime.cmd("delete", "-f", "fa2", check=True)


def test_debug_lines_to_stderr_and_to_log(runtime, make_bundle, tmp_path):
    b = make_bundle(["true"])
    p = runtime.cmd("--debug", "run", "-b", b, "dbg1")
    assert p.returncode == 0, p.stderr
    for stage in ("nsexec container setup", "child process in init()", "init: closing the pipe"):
        assert stage in p.stderr and "level=debug" in p.stderr, p.stderr
    log = tmp_path / "log.json"
    p = runtime.cmd("--log", log, "--log-format", "json", "--debug", "run", "-b", b, "dbg2")
    assert p.returncode == 0 and "level=debug" not in p.stderr, p.stderr
    lines = [json.loads(l) for l in log.read_text().splitlines()]
    msgs = [l["msg"] for l in lines if l["level"] == "debug"]
    # the container's set-up processes wrote too (after pivot_root: the fd was opened at start-up)
    assert any("child process in init()" in m for m in msgs)
    assert any("init: closing the pipe" in m for m in msgs)


def test_log_opened_at_start_up(tmp_path):
    log = tmp_path / "made.log"
    p = pyoci("--root", str(tmp_path / "r"), "--log", str(log), "list")
    assert p.returncode == 0 and log.exists()   # engines look for the file
    p = pyoci("--log", str(tmp_path / "no" / "dir" / "log"), "list")
    assert p.returncode == 1 and "failed to open log file" in p.stderr


def test_list_and_state_json_in_runcs_key_order(runtime, make_bundle):
    b = make_bundle(["sleep", "100"], lambda c: c.update(annotations={"a": "b"}))
    runtime.cmd("create", "-b", b, "ko1", check=True)
    order = ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations", "owner"]
    items = json.loads(runtime.cmd("list", "--format", "json").stdout)
    assert list(items[0]) == order
    assert list(runtime.state("ko1")) == order
    assert runtime.cmd("kill", "ko1", "0").returncode == 0
    runtime.cmd("delete", "-f", "ko1", check=True)
