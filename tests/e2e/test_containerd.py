"""pyoci under containerd 1.6 (runc shim v2), driven through ctr: the flows
of ../shared/dropin-contract.md section 1, against a private containerd."""
import os
import re
import shlex
import time

import pytest

import engines
from conftest import PYOCI, REPO, TAG, cgroup_file, cgroup_path, freezer_state, unified
from e2e_fixtures import (cgroup_of, ctr, ctrd, mounted_v1, oci_image, read,  # noqa: F401
                          remove_tag_cgroups, require, settle, wait_for)

IMAGE = engines.IMAGE


def run(c, *args, timeout=60):
    """ctr run with pyoci as the runc binary."""
    return c.ctr("run", "--runc-binary", PYOCI, *args, timeout=timeout)


def run_d(c, cid, *cmd):
    p = run(c, "-d", IMAGE, cid, *cmd)
    assert p.returncode == 0, p.stderr
    return task_pid(c, cid)


def tasks(c):
    """{id: (pid, status)} from ctr task ls."""
    out = {}
    for line in c.ctr("task", "ls").stdout.splitlines()[1:]:
        f = line.split()
        if len(f) >= 3:
            out[f[0]] = (int(f[1]), f[2])
    return out


def task_pid(c, cid):
    return tasks(c)[cid][0]


def status(c, cid):
    return tasks(c).get(cid, (0, None))[1]


def remove(c, cid):
    p = c.ctr("task", "delete", cid)
    assert p.returncode == 0, p.stderr
    p = c.ctr("container", "delete", cid)
    assert p.returncode == 0, p.stderr


def nspid(pid):
    """The pid in the process's own (innermost) pid namespace."""
    for line in read("/proc/%d/status" % pid).splitlines():
        if line.startswith("NSpid:"):
            return int(line.split()[-1])


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except FileNotFoundError:
        return False
    return data[data.rindex(")") + 2] != "Z"


def test_run_rm_exit_status_and_stdio(ctr):
    p = run(ctr, "--rm", IMAGE, "c1", "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7")
    assert p.returncode == 7, p.stderr
    assert p.stdout == "to-stdout\n"
    assert "to-stderr" in p.stderr
    assert ctr.ctr("container", "ls", "-q").stdout.split() == []


def test_run_rm_true(ctr):
    p = run(ctr, "--rm", IMAGE, "c1", "/bin/true")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""


def test_inherited_fds_closed(ctr):
    # The shim leaks its listening socket as fd 3 into `create`: the
    # container must see only its stdio. Outside: the shim does hold fd 3.
    p = run(ctr, "--rm", IMAGE, "c1", "sh", "-c", "ls /proc/$$/fd; exit 0")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "1", "2"]


def test_detached_pidfile_parent_cgroup_ps(ctr):
    pid = run_d(ctr, "c2", "sleep", "300")
    assert status(ctr, "c2") == "RUNNING"
    # the pid file containerd read right after create: the host pid, no newline
    assert read(os.path.join(ctr.bundle("c2"), "init.pid")) == str(pid)
    # nothing of pyoci between the shim (the subreaper) and the init
    parent = engines.ppid(pid)
    assert "containerd-shim-runc-v2" in engines.cmdline(parent)
    assert engines.cmdline(pid) == "sleep"
    # the cgroup containerd asked for (/NAMESPACE/ID), in every hierarchy
    cg = cgroup_of(pid)
    for ctrls, path in cg.items():
        if (ctrls and mounted_v1(ctrls.split(",")[0].replace("name=", ""))) or (not ctrls and unified()):
            assert path == "/%s/c2" % TAG, (ctrls, path)
    assert str(pid) in read(cgroup_file("memory", "/%s/c2" % TAG, "cgroup.procs")).split()
    # inside: pid 1, its own pid namespace
    assert os.readlink("/proc/%d/ns/pid" % pid) != os.readlink("/proc/self/ns/pid")
    assert nspid(pid) == 1
    # ctr task ps -> pyoci ps --format json: host pids
    p = ctr.ctr("task", "ps", "c2")
    assert p.returncode == 0, p.stderr
    assert [int(l.split()[0]) for l in p.stdout.splitlines()[1:]] == [pid]
    p = ctr.ctr("task", "kill", "-s", "SIGKILL", "c2")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: status(ctr, "c2") == "STOPPED")
    remove(ctr, "c2")


def test_pause_resume(ctr):
    pid = run_d(ctr, "c3", "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/tick; sleep 0.05; done")
    freezer = cgroup_path("freezer", "/%s/c3" % TAG)
    tick = "/proc/%d/root/tmp/tick" % pid
    assert wait_for(lambda: os.path.exists(tick) and read(tick).strip())
    p = ctr.ctr("task", "pause", "c3")
    assert p.returncode == 0, p.stderr
    assert status(ctr, "c3") == "PAUSED"
    assert freezer_state(freezer) == "FROZEN"
    first = read(tick)
    time.sleep(0.3)
    assert read(tick) == first, "the container kept running while paused"
    p = ctr.ctr("task", "resume", "c3")
    assert p.returncode == 0, p.stderr
    assert status(ctr, "c3") == "RUNNING"
    assert freezer_state(freezer) == "THAWED"
    assert wait_for(lambda: read(tick) != first), "the container did not run again after resume"
    ctr.ctr("task", "kill", "-s", "SIGKILL", "c3")
    assert wait_for(lambda: status(ctr, "c3") == "STOPPED")
    remove(ctr, "c3")


def test_metrics_read_from_pyoci_cgroup(ctr):
    pid = run_d(ctr, "c4", "sh", "-c", "sleep 300 & sleep 300 & wait")
    assert wait_for(lambda: len(read(cgroup_file("pids", "/%s/c4" % TAG, "cgroup.procs")).split()) == 3)
    p = ctr.ctr("task", "metrics", "c4")
    assert p.returncode == 0, p.stderr
    m = dict(re.findall(r"^(\S+)\s+(\S+)\s*$", p.stdout, re.M))
    # the shim read the cgroup pyoci placed the init in: 3 processes, and
    # the memory charged there
    assert m.get("pids.current") == "3", p.stdout
    # (cgroup v2: containerd's v2 metrics, memory.usage)
    assert int(m.get("memory.usage_in_bytes") or m["memory.usage"]) > 0
    assert alive(pid)
    ctr.ctr("task", "kill", "--all", "-s", "SIGKILL", "c4")
    assert wait_for(lambda: status(ctr, "c4") == "STOPPED")
    remove(ctr, "c4")


def test_kill_term_and_kill(ctr):
    # pid 1 without a handler ignores TERM (kernel rule, runc too): the task stays up
    pid = run_d(ctr, "c5", "sleep", "300")
    p = ctr.ctr("task", "kill", "c5")
    assert p.returncode == 0, p.stderr
    time.sleep(0.3)
    assert status(ctr, "c5") == "RUNNING" and alive(pid)
    p = ctr.ctr("task", "kill", "-s", "SIGKILL", "c5")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: status(ctr, "c5") == "STOPPED")
    assert not alive(pid)
    p = ctr.ctr("task", "delete", "c5")
    assert p.returncode == 0 and "137" in p.stderr, p.stderr
    # kill of a stopped task: containerd matches pyoci's "not running" wording
    # (or answers itself): the error must say the process is gone
    ctr.ctr("container", "delete", "c5")
    # TERM reaches a pid 1 that handles it
    pid = run_d(ctr, "c6", "sh", "-c", "trap 'exit 42' TERM; touch /tmp/ready; while :; do sleep 0.1; done")
    assert wait_for(lambda: os.path.exists("/proc/%d/root/tmp/ready" % pid))   # the handler is set
    p = ctr.ctr("task", "kill", "-s", "SIGTERM", "c6")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: status(ctr, "c6") == "STOPPED")
    p = ctr.ctr("task", "delete", "c6")
    assert p.returncode == 0 and "42" in p.stderr, p.stderr
    ctr.ctr("container", "delete", "c6")


def test_kill_all(ctr):
    pid = run_d(ctr, "c7", "sh", "-c", "sleep 300 & sleep 300 & wait")
    procs = cgroup_file("pids", "/%s/c7" % TAG, "cgroup.procs")
    assert wait_for(lambda: len(read(procs).split()) == 3)
    pids = [int(x) for x in read(procs).split()]
    assert pid in pids
    p = ctr.ctr("task", "kill", "--all", "-s", "SIGKILL", "c7")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: status(ctr, "c7") == "STOPPED")
    assert wait_for(lambda: not any(alive(x) for x in pids))
    remove(ctr, "c7")


def test_task_delete_force_running(ctr):
    pid = run_d(ctr, "c8", "sleep", "300")
    p = ctr.ctr("task", "delete", "--force", "c8")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: not alive(pid))
    assert "c8" not in tasks(ctr)
    p = ctr.ctr("container", "delete", "c8")
    assert p.returncode == 0, p.stderr
    assert ctr.ctr("container", "ls", "-q").stdout.split() == []


def test_tty_run(ctr):
    require("script")
    cmd = " ".join(shlex.quote(a) for a in ctr.ctr_argv(
        "run", "--rm", "-t", "--runc-binary", PYOCI, IMAGE, "c9", "sh", "-c",
        "tty; test -t 0 && test -t 1 && test -t 2 && echo all-ttys; exit 4"))
    p = engines._run(["script", "-qec", cmd, "/dev/null"], timeout=60)
    assert p.returncode == 4, (p.stdout, p.stderr)
    out = p.stdout.replace("\r", "")
    assert re.search(r"^(\^@)?/dev/pts/\d+$", out, re.M), out
    assert "all-ttys" in out


def test_create_failure_reports_pyoci_error(ctr):
    p = run(ctr, "--rm", IMAGE, "c10", "/nonexistent")
    assert p.returncode != 0
    assert ('OCI runtime create failed: pyoci create failed: unable to start container process: '
            'exec: "/nonexistent": stat /nonexistent: no such file or directory') in p.stderr, p.stderr
    # the shim's `delete --force` after the failed create exited 0: no task is left
    assert "c10" not in tasks(ctr)
    ctr.ctr("container", "delete", "c10")
    p = run(ctr, "--rm", IMAGE, "c11", "nosuchcommand")
    assert p.returncode != 0
    assert 'exec: "nosuchcommand": executable file not found in $PATH' in p.stderr, p.stderr
    ctr.ctr("container", "delete", "c11")


def test_exec(ctr):
    pid = run_d(ctr, "c12", "sleep", "300")
    p = ctr.ctr("task", "exec", "--exec-id", "e1", "c12", "sh", "-c", "echo exec-out; echo $$ > /tmp/e1; exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout == "exec-out\n"
    # inside: the exec'd process was in the container's pid namespace
    assert read("/proc/%d/root/tmp/e1" % pid).strip() not in ("", "1")
    # a detached exec: re-parented to the shim, in the container's cgroup, seen by ps
    p = ctr.ctr("task", "exec", "-d", "--exec-id", "e2", "c12", "sleep", "301")
    assert p.returncode == 0, p.stderr
    procs = cgroup_file("memory", "/%s/c12" % TAG, "cgroup.procs")
    assert wait_for(lambda: len(read(procs).split()) == 2)
    epid = [int(x) for x in read(procs).split() if int(x) != pid][0]
    assert read(os.path.join(ctr.bundle("c12"), "e2.pid")) == str(epid)
    assert "containerd-shim-runc-v2" in engines.cmdline(engines.ppid(epid))
    assert os.readlink("/proc/%d/ns/pid" % epid) == os.readlink("/proc/%d/ns/pid" % pid)
    assert os.readlink("/proc/%d/ns/mnt" % epid) == os.readlink("/proc/%d/ns/mnt" % pid)
    p = ctr.ctr("task", "ps", "c12")
    assert p.returncode == 0, p.stderr
    rows = {int(l.split()[0]): l for l in p.stdout.splitlines()[1:]}
    assert set(rows) == {pid, epid}
    assert "e2" in rows[epid]
    p = ctr.ctr("task", "kill", "--exec-id", "e2", "-s", "SIGKILL", "c12")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: not alive(epid))
    # a failing exec: the shim reports pyoci's error
    p = ctr.ctr("task", "exec", "--exec-id", "e3", "c12", "/nonexistent")
    assert p.returncode != 0
    assert "OCI runtime exec failed" in p.stderr and "/nonexistent" in p.stderr, p.stderr
    # with a terminal
    require("script")
    cmd = " ".join(shlex.quote(a) for a in ctr.ctr_argv(
        "task", "exec", "-t", "--exec-id", "e4", "c12", "sh", "-c", "tty; test -t 1 && echo is-tty; exit 5"))
    p = engines._run(["script", "-qec", cmd, "/dev/null"], timeout=60)
    assert p.returncode == 5, (p.stdout, p.stderr)
    out = p.stdout.replace("\r", "")
    assert re.search(r"/dev/pts/\d+", out) and "is-tty" in out, out
    ctr.ctr("task", "kill", "-s", "SIGKILL", "c12")
    assert wait_for(lambda: status(ctr, "c12") == "STOPPED")
    remove(ctr, "c12")


def test_runc_from_path_and_no_pivot(oci_image, tmp_path_factory, host_guard):
    """No BinaryName: the shim looks `runc` up in containerd's PATH, where
    pyoci is installed under that name (also the way to test --no-pivot:
    ctr drops --runc-binary when --no-pivot is given)."""
    require("containerd", "ctr", "containerd-shim-runc-v2", "unshare")
    d = engines.Containerd(namespace=TAG + "-path", tmp=str(tmp_path_factory.mktemp("containerd-path")),
                           path_runtime=PYOCI).start()
    try:
        d.import_image(oci_image)
        p = d.ctr("run", "--rm", "--no-pivot", IMAGE, "np1", "sh", "-c", "echo no-pivot-ok; exit 3")
        assert p.returncode == 3, p.stderr
        assert p.stdout == "no-pivot-ok\n"
        p = d.ctr("run", "--rm", IMAGE, "np2", "/nonexistent")
        assert "pyoci create failed" in p.stderr, p.stderr   # it was pyoci, not runc
        d.ctr("container", "delete", "np2")
        assert d.clean_namespace() == []
    finally:
        d.stop()
        alive = settle()
        remove_tag_cgroups()
        assert not alive

