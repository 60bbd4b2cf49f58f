"""pause/resume, update, events, ps, kill --all on real containers: the
effect in the cgroup files and inside the container."""
import json
import os
import subprocess
import time

import pytest

from conftest import PYOCI, TAG, freezer_state
from test_cgroups import V2, cg_dir, exec_in, read, res_changes, start_sleeping

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /dev/shm/c; sleep 0.02; done"


def counter(pid):
    try:
        with open("/proc/%d/root/dev/shm/c" % pid) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def mem_limit(pid):
    return read(cg_dir(pid, "memory"), "memory.max" if V2 else "memory.limit_in_bytes")


def weight(shares):
    """The runtime-spec's cpu.shares -> cpu.weight conversion."""
    return str(1 + ((shares - 2) * 9999) // 262142)


def advancing(pid, wait=0.15):
    a = counter(pid)
    time.sleep(wait)
    return counter(pid) > a


def test_pause_resume_freezes_and_thaws(runtime, make_bundle):
    pid = start_sleeping(runtime, make_bundle, "pz", {}, args=("sh", "-c", COUNTER))
    fz = cg_dir(pid, "freezer")
    assert advancing(pid)
    runtime.cmd("pause", "pz", check=True)
    assert freezer_state(fz) == "FROZEN"
    assert runtime.state("pz")["status"] == "paused"
    assert not advancing(pid)
    p = runtime.cmd("pause", "pz")
    assert p.returncode == 1 and "not running" in p.stderr
    runtime.cmd("resume", "pz", check=True)
    assert freezer_state(fz) == "THAWED"
    assert runtime.state("pz")["status"] == "running"
    assert advancing(pid)
    assert runtime.cmd("resume", "pz").returncode == 1
    # a paused container can be updated, and deleted with --force
    runtime.cmd("pause", "pz", check=True)
    runtime.cmd("update", "--pids-limit", "7", "pz", check=True)
    assert read(cg_dir(pid, "pids"), "pids.max") == "7" and freezer_state(fz) == "FROZEN"
    runtime.cmd("delete", "-f", "pz", check=True)
    assert not os.path.exists(fz)


def test_v2_freeze_on_the_cgroup2_mount(host_guard):
    """cgroup.freeze and cgroup.events for real on this host's cgroup2 mount."""
    from pyoci.linux.cgroups import Cgroup, layout

    v2 = [h for h in layout() if h.version == 2]
    if not v2:
        pytest.skip("no cgroup2 mount")
    d = os.path.join(v2[0].mountpoint, TAG + "-frz")
    cg = Cgroup({"": d})
    cg.create()
    p = subprocess.Popen(["sh", "-c", "echo $$ > %s/cgroup.procs; exec sleep 30" % d])
    try:
        for _ in range(200):
            if cg.pids():
                break
            time.sleep(0.01)
        assert cg.pids() == [p.pid]
        cg.freeze(True)
        assert "frozen 1" in read(d, "cgroup.events") and cg.frozen()
        cg.freeze(False)
        assert "frozen 0" in read(d, "cgroup.events") and not cg.frozen()
    finally:
        p.kill()
        p.wait()
        cg.destroy()
    assert not os.path.exists(d)


def test_update_flags_change_files_and_inside(runtime, make_bundle):
    pid = start_sleeping(runtime, make_bundle, "up1", {"memory": {"limit": 64 << 20}, "pids": {"limit": 50}})
    runtime.cmd("update", "--memory", "100M", "--pids-limit", "20", "--cpu-quota", "30000",
                "--cpu-period", "100000", "--cpu-share", "256", "--cpuset-cpus", "0", "up1", check=True)
    assert mem_limit(pid) == str(100 << 20)
    assert read(cg_dir(pid, "pids"), "pids.max") == "20"
    c = cg_dir(pid, "cpu")
    if V2:
        assert (read(c, "cpu.max"), read(c, "cpu.weight")) == ("30000 100000", weight(256))
    else:
        assert (read(c, "cpu.cfs_quota_us"), read(c, "cpu.shares")) == ("30000", "256")
    assert read(cg_dir(pid, "cpuset"), "cpuset.cpus") == "0"
    r = exec_in(pid, "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/memory.max" if V2 else
                "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert r.stdout.split() == ["20", str(100 << 20)], r
    runtime.cmd("delete", "-f", "up1", check=True)


def test_update_resources_file_forms(runtime, make_bundle, tmp_path):
    pid = start_sleeping(runtime, make_bundle, "up2", {"pids": {"limit": 50}})
    f = tmp_path / "r.json"
    f.write_text(json.dumps({"pids": {"limit": 31}, "memory": {"limit": 80 << 20, "swap": 90 << 20}}))
    runtime.cmd("update", "--resources", str(f), "up2", check=True)
    assert read(cg_dir(pid, "pids"), "pids.max") == "31"
    if V2:   # swap alone: memory+swap 90M less memory 80M
        assert read(cg_dir(pid, "memory"), "memory.swap.max") == str(10 << 20)
    else:
        assert read(cg_dir(pid, "memory"), "memory.memsw.limit_in_bytes") == str(90 << 20)
    f.write_text(json.dumps({"pids": {"limit": 32}}))
    runtime.cmd("update", "--resources=" + str(f), "up2", check=True)
    assert read(cg_dir(pid, "pids"), "pids.max") == "32"
    runtime.cmd("update", "-r", "-", "up2", input='{"pids": {"limit": 33}}', check=True)
    assert read(cg_dir(pid, "pids"), "pids.max") == "33"
    # lowering memory below memsw and raising it above the old memsw both work
    runtime.cmd("update", "--memory", "200M", "--memory-swap", "300M", "up2", check=True)
    assert mem_limit(pid) == str(200 << 20)
    runtime.cmd("delete", "-f", "up2", check=True)


@pytest.mark.parametrize("args,text", [
    (["--cpuset-cpus", "4000"], "linux.resources.cpu.cpus"),
    (["--memory", "abc"], "--memory"),
    (["--memory", "10M", "--memory-swap", "5M"], "linux.resources.memory.swap"),
    (["--cpu-quota", "x"], "--cpu-quota"),
    (["--blkio-weight", "5000"], "linux.resources.blockIO.weight"),
])
def test_update_bad_values_leave_cgroup_unchanged(runtime, make_bundle, args, text):
    pid = start_sleeping(runtime, make_bundle, "up3", {"pids": {"limit": 50}, "memory": {"limit": 64 << 20}})
    before = {c: sorted(os.listdir(cg_dir(pid, c))) for c in ("pids",)}
    p = runtime.cmd("update", "--pids-limit", "7", *args, "up3")
    assert p.returncode == 1 and text in p.stderr, p.stderr
    assert read(cg_dir(pid, "pids"), "pids.max") == "50"
    assert mem_limit(pid) == str(64 << 20)
    assert {c: sorted(os.listdir(cg_dir(pid, c))) for c in ("pids",)} == before
    runtime.cmd("delete", "-f", "up3", check=True)


def test_update_check_before_update_and_stopped(runtime, make_bundle):
    pid = start_sleeping(runtime, make_bundle, "up4", {"memory": {"limit": 64 << 20, "checkBeforeUpdate": True}})
    p = runtime.cmd("update", "--memory", "4096", "up4")
    assert p.returncode == 1 and "linux.resources.memory.limit" in p.stderr and "usage" in p.stderr, p.stderr
    assert mem_limit(pid) == str(64 << 20)
    runtime.cmd("kill", "up4", "KILL", check=True)
    for _ in range(300):
        if runtime.state("up4")["status"] == "stopped":
            break
        time.sleep(0.01)
    p = runtime.cmd("update", "--pids-limit", "5", "up4")
    assert p.returncode == 1 and "container not running" in p.stderr
    runtime.cmd("delete", "up4", check=True)


def test_events_stats_runc_fields(runtime, make_bundle):
    pid = start_sleeping(runtime, make_bundle, "ev1", {"memory": {"limit": 64 << 20}, "pids": {"limit": 40}})
    out = runtime.cmd("events", "--stats", "ev1", check=True).stdout
    assert out.count("\n") == 1
    ev = json.loads(out)
    assert (ev["type"], ev["id"]) == ("stats", "ev1")
    d = ev["data"]
    assert list(d) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt", "network_interfaces"]
    assert d["memory"]["usage"]["limit"] == 64 << 20 and d["memory"]["usage"]["usage"] > 0
    assert set(d["memory"]) >= {"usage", "swap", "kernel", "kernelTCP", "raw"}
    assert d["pids"] == {"current": 1, "limit": 40}
    assert d["cpu"]["usage"]["total"] > 0 and "user" in d["cpu"]["usage"]
    if V2:   # cgroup v2 has no per-CPU usage: runc leaves it out
        assert "percpu" not in d["cpu"]["usage"]
    else:
        assert len(d["cpu"]["usage"]["percpu"]) == os.cpu_count()
    assert d["network_interfaces"] is None
    runtime.cmd("delete", "-f", "ev1", check=True)
    p = runtime.cmd("events", "--stats", "ev1")
    assert p.returncode == 1


def test_events_stream_reports_oom_and_ends_with_the_container(runtime, make_bundle):
    # the allocation waits for /tmp/go, made once `events` has taken its
    # baseline (its first stats line): events reports rises of the counter
    script = ("while [ ! -e /tmp/go ]; do sleep 0.05; done; dd if=/dev/zero of=/dev/null bs=64M count=1; "
              "sleep 0.5")
    pid = start_sleeping(runtime, make_bundle, "ev2", {"memory": {"limit": 16 << 20, "swap": 16 << 20}},
                         args=("sh", "-c", script))
    assert pid
    p = subprocess.Popen([PYOCI, "--root", runtime.root, "events", "--interval", "200ms", "ev2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = p.stdout.readline()
        with open(os.path.join(runtime.state("ev2")["bundle"], "rootfs", "tmp", "go"), "w"):
            pass
        out, err = p.communicate(timeout=60)
        out = first + out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    events = [json.loads(l) for l in out.splitlines()]
    types = [e["type"] for e in events]
    assert "oom" in types, (types, err)
    assert types.count("stats") >= 2
    assert {"type": "oom", "id": "ev2"} in events
    assert p.returncode == 0
    runtime.cmd("delete", "ev2", check=True)


def test_ps_formats_and_kill_all(runtime, make_bundle):
    pid = start_sleeping(runtime, make_bundle, "ps1", {}, args=("sh", "-c", "sleep 100 & sleep 101 & wait"))
    pdir = cg_dir(pid, "pids")
    for _ in range(200):
        procs = read(pdir, "cgroup.procs").split()
        if len(procs) == 3:
            break
        time.sleep(0.01)
    pids = json.loads(runtime.cmd("ps", "--format", "json", "ps1", check=True).stdout)
    assert sorted(pids) == sorted(int(x) for x in procs) and pid in pids
    table = runtime.cmd("ps", "ps1", "-o", "pid,args", check=True).stdout.splitlines()
    assert table[0].split() == ["PID", "COMMAND"]
    assert sorted(int(l.split()[0]) for l in table[1:]) == sorted(pids)
    assert sum(l.split(None, 1)[1].startswith("sleep 10") for l in table[1:]) == 2
    # kill --all reaches the children too, even when the container is paused
    runtime.cmd("pause", "ps1", check=True)
    runtime.cmd("kill", "--all", "ps1", "KILL", check=True)
    deadline = time.monotonic() + 10   # a loaded machine takes its time
    while read(pdir, "cgroup.procs") and time.monotonic() < deadline:
        time.sleep(0.01)
    for p in pids:
        assert not os.path.exists("/proc/%d/status" % p) or "zombie" in open("/proc/%d/status" % p).read()
    runtime.cmd("delete", "-f", "ps1", check=True)


V2_ONLY = r'''
import json, os, subprocess, sys, time
# this mount namespace only: drop the v1 hierarchies, as on a unified host
for line in open("/proc/self/mountinfo"):
    f = line.split()
    if line.split(" - ")[1].startswith("cgroup "):
        subprocess.run(["umount", "-l", f[4]], check=True)
pyoci, root, bundle = sys.argv[1:4]
rt = [pyoci, "--root", root]
out = {}
def run(*a, **kw):
    return subprocess.run(rt + list(a), capture_output=True, text=True, **kw)
# the container's init keeps its stdio: no pipes for run
out["run"] = subprocess.run(rt + ["run", "-d", "-b", bundle, "v2c"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
pid = json.loads(run("state", "v2c").stdout)["pid"]
d = "/sys/fs/cgroup/unified" + [l.split(":", 2)[2].strip() for l in open("/proc/%d/cgroup" % pid)
                                if l.startswith("0::")][0]
sys.path[:0] = [os.path.dirname(os.path.dirname(__import__("pyoci").__file__))]
from pyoci.linux.cgroups import bpf
out["bpf_programs"] = len(bpf.query(d))
for _ in range(200):
    if os.path.exists("/proc/%d/root/dev/shm/r" % pid) and "null" in open("/proc/%d/root/dev/shm/r" % pid).read():
        break
    time.sleep(0.01)
out["inside"] = open("/proc/%d/root/dev/shm/r" % pid).read().split()
out["pause"] = run("pause", "v2c").returncode
out["frozen"] = open(d + "/cgroup.freeze").read().strip()
out["status_paused"] = json.loads(run("state", "v2c").stdout)["status"]
out["resume"] = run("resume", "v2c").returncode
out["thawed"] = open(d + "/cgroup.freeze").read().strip()
ev = json.loads(run("events", "--stats", "v2c").stdout)
out["stats_keys"] = list(ev["data"])
out["cpu_total"] = ev["data"]["cpu"]["usage"].get("total", 0)
u = run("update", "--pids-limit", "5", "v2c")
out["update"] = [u.returncode, "linux.resources.pids.limit" in u.stderr]
out["ps"] = json.loads(run("ps", "--format", "json", "v2c").stdout) == [pid]
out["descendants"] = open(d + "/cgroup.max.descendants").read().strip()
u = subprocess.run(rt + ["update", "-r", "-", "v2c"], input='{"unified": {"cgroup.max.depth": "2"}}',
                   capture_output=True, text=True)
out["update_unified"] = [u.returncode, open(d + "/cgroup.max.depth").read().strip()]
out["kill_all"] = run("kill", "--all", "v2c", "KILL").returncode
for _ in range(300):
    if json.loads(run("state", "v2c").stdout)["status"] == "stopped":
        break
    time.sleep(0.01)
out["delete"] = run("delete", "v2c").returncode
out["removed"] = not os.path.exists(d)
print(json.dumps(out))
'''


def test_unified_only_host_devices_freeze_events_delete(runtime, make_bundle, tmp_path):
    """A cgroup v2-only host, made in a private mount namespace by dropping
    the v1 mounts: pyoci then uses the v2 code for real — the eBPF device
    filter (checked inside), cgroup.freeze, v2 stats, kill --all, delete."""
    import sys

    if V2:
        pytest.skip("simulates a unified host on a hybrid one: on this real cgroup v2 host the version-aware "
                    "tests check the same (device filter, freeze, stats, update, kill --all, delete)")
    if not any(h.version == 2 for h in __import__("pyoci.linux.cgroups", fromlist=["layout"]).layout()):
        pytest.skip("no cgroup2 mount")
    rules = [{"allow": False, "access": "rwm"}, {"allow": False, "type": "c", "major": 1, "minor": 5, "access": "r"}]
    script = ("head -c1 /dev/zero >/dev/null 2>&1; echo zero=$? > /dev/shm/r; echo x > /dev/null; "
              "echo null=$? >> /dev/shm/r; sleep 100")
    b = make_bundle(["sh", "-c", script], res_changes({"devices": rules,
                                                        "unified": {"cgroup.max.descendants": "7"}}))
    helper = tmp_path / "v2only.py"
    helper.write_text(V2_ONLY)
    p = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, str(helper), PYOCI,
                        runtime.root, b], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["run"] == 0 and out["bpf_programs"] == 1
    assert out["inside"] == ["zero=1", "null=0"]
    assert (out["pause"], out["frozen"], out["status_paused"]) == (0, "1", "paused")
    assert (out["resume"], out["thawed"]) == (0, "0")
    assert out["stats_keys"][:4] == ["cpu", "cpuset", "memory", "pids"] and out["cpu_total"] > 0
    # no controllers on this cgroup2 mount: a limit is an error naming the field
    assert out["update"] == [1, True] and out["ps"]
    # linux.resources.unified: core cgroup2 files work without controllers
    assert out["descendants"] == "7" and out["update_unified"] == [0, "2"]
    assert (out["kill_all"], out["delete"], out["removed"]) == (0, 0, True)


def test_disabled_oom_killer_waits_and_events_reports_oom(runtime, make_bundle):
    res = {"memory": {"limit": 16 << 20, "swap": 16 << 20, "disableOOMKiller": True}}
    if V2:
        # cgroup v2 has no switch for the OOM killer (memory.oom_control)
        p = runtime.cmd("create", "-b", make_bundle(["true"], res_changes(res)), "ev3")
        assert p.returncode == 1 and "linux.resources.memory.disableOOMKiller" in p.stderr, p.stderr
        assert runtime.ids() == []
        return
    # the allocation waits for /tmp/go, made once `events` has taken its
    # baseline (its first stats line): events reports rises of the counter
    # (awk fills a 64 MiB string in user space: its page faults wait under
    # OOM, where a charge inside a syscall such as dd's read() would fail)
    pid = start_sleeping(runtime, make_bundle, "ev3", res,
                         args=("sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; "
                               "/bin/busybox awk 'BEGIN { s = sprintf(\"%67108864s\", \"x\"); "
                               "print length(s) }'; echo done"))
    m = cg_dir(pid, "memory")
    assert "oom_kill_disable 1" in read(m, "memory.oom_control")
    p = subprocess.Popen([PYOCI, "--root", runtime.root, "events", "--interval", "10s", "ev3"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = [json.loads(p.stdout.readline())]
        assert lines[0]["type"] == "stats", lines
        with open(os.path.join(runtime.state("ev3")["bundle"], "rootfs", "tmp", "go"), "w"):
            pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = p.stdout.readline()
            if not line:
                break
            lines.append(json.loads(line))
            if lines[-1]["type"] == "oom":
                break
        assert {"type": "oom", "id": "ev3"} in lines, (lines, p.stderr)
        # the task waits under OOM instead of being killed
        assert "under_oom 1" in read(m, "memory.oom_control")
        assert "oom_kill 0" in read(m, "memory.oom_control")
        assert runtime.state("ev3")["status"] == "running"
    finally:
        p.kill()
        p.wait()
    runtime.cmd("delete", "-f", "ev3", check=True)
    assert not os.path.exists(m)


V1_ONLY = r'''
import json, os, subprocess, sys, time
# this mount namespace only: drop the cgroup2 mount, as on a v1-only host
for line in open("/proc/self/mountinfo"):
    if line.split(" - ")[1].startswith("cgroup2 "):
        subprocess.run(["umount", "-l", line.split()[4]], check=True)
pyoci, root, bundle = sys.argv[1:4]
rt = [pyoci, "--root", root]
def run(*a):
    return subprocess.run(rt + list(a), capture_output=True, text=True)
out = {"run": subprocess.run(rt + ["run", "-d", "-b", bundle, "v1c"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode}
pid = json.loads(run("state", "v1c").stdout)["pid"]
own = dict(l.strip().split(":", 2)[1:] for l in open("/proc/%d/cgroup" % pid))
out["v2_path"] = own[""]
pids = "/sys/fs/cgroup/pids" + own["pids"]
out["pids_max"] = open(pids + "/pids.max").read().strip()
out["pause"] = run("pause", "v1c").returncode
out["state"] = open("/sys/fs/cgroup/freezer" + own["freezer"] + "/freezer.state").read().strip()
out["resume"] = run("resume", "v1c").returncode
out["stats_pids"] = json.loads(run("events", "--stats", "v1c").stdout)["data"]["pids"]
u = subprocess.run(rt + ["update", "-r", "-", "v1c"], input='{"unified": {"pids.max": "3"}}',
                   capture_output=True, text=True)
out["unified"] = [u.returncode, "linux.resources.unified" in u.stderr]
out["delete"] = run("delete", "-f", "v1c").returncode
out["removed"] = not os.path.exists(pids)
print(json.dumps(out))
'''


def test_v1_only_host(runtime, make_bundle, tmp_path):
    """A cgroup v1-only host, made in a private mount namespace by dropping
    the cgroup2 mount: placement, limits, freezer, stats, delete."""
    import sys

    if V2:
        pytest.skip("a cgroup v2 host has no v1 hierarchies to keep")
    b = make_bundle(["sleep", "100"], res_changes({"pids": {"limit": 9}}))
    helper = tmp_path / "v1only.py"
    helper.write_text(V1_ONLY)
    p = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, str(helper), PYOCI,
                        runtime.root, b], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    with open("/proc/self/cgroup") as f:
        mine = [l.strip().split(":", 2)[2] for l in f if l.startswith("0::")][0]
    assert out["run"] == 0
    assert out["v2_path"] == mine       # no cgroup2 directory was made
    assert out["pids_max"] == "9" and out["stats_pids"] == {"current": 1, "limit": 9}
    assert (out["pause"], out["state"], out["resume"]) == (0, "FROZEN", 0)
    assert out["unified"] == [1, True]     # cgroup v2 keys refused on v1
    assert (out["delete"], out["removed"]) == (0, True)


def test_kill_all_through_cgroup_kill_reaches_a_forking_shell(runtime, make_bundle):
    """A shell that keeps forking: kill --all KILL uses cgroup.kill on the
    container's cgroup2 directory, which no new child escapes."""
    pid = start_sleeping(runtime, make_bundle, "ka", {}, args=("sh", "-c", "while :; do sleep 0.01 & done"))
    v2 = cg_dir(pid, "")
    time.sleep(0.2)
    assert len(read(v2, "cgroup.procs").split()) > 1
    runtime.cmd("kill", "--all", "ka", "KILL", check=True)
    for _ in range(300):
        if not read(v2, "cgroup.procs"):
            break
        time.sleep(0.01)
    assert read(v2, "cgroup.procs") == ""
    assert "populated 0" in read(v2, "cgroup.events")
    runtime.cmd("delete", "ka", check=True)
