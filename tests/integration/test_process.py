"""The container process's settings, read from inside the container
(/proc/self/...) and from the host (/proc/PID/...): scheduler, I/O
priority, CPU affinity, personality, memory policy, time offsets, rlimits,
domainname, oomScoreAdj; and their bad input."""
import os

import pytest

from conftest import PYOCI  # noqa: F401


def run_out(runtime, make_bundle, script, cid="p1", changes=None):
    b = make_bundle(["sh", "-c", script], changes)
    p = runtime.cmd("run", "-b", b, cid)
    assert p.returncode == 0, p.stderr
    return p.stdout


def fails(runtime, make_bundle, changes, field):
    b = make_bundle(["true"], changes)
    p = runtime.cmd("run", "-b", b, "bad1")
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert field in p.stderr, p.stderr
    assert runtime.ids() == []
    return p.stderr


def status(text):
    return dict(l.split(":\t", 1) for l in text.splitlines() if ":\t" in l)


def test_scheduler_batch_and_reset_on_fork(runtime, make_bundle):
    def ch(c):
        c["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": -5, "flags": ["SCHED_FLAG_RESET_ON_FORK"]}
    out = run_out(runtime, make_bundle, "cut -d' ' -f19,41 /proc/self/stat; cut -d' ' -f19,41 /proc/$$/stat",
                  changes=ch)
    # fields 19 nice, 41 policy. The cut child was forked with
    # RESET_ON_FORK: its negative nice is reset; the shell (exec'd by init)
    # keeps what the config says.
    child, shell = out.split("\n")[:2]
    assert child == "0 3"
    assert shell == "-5 3"


def test_scheduler_realtime_without_rt_runtime_is_a_clear_error(runtime, make_bundle):
    if not os.path.exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"):
        pytest.skip("no real-time group scheduling on this host")
    err = fails(runtime, make_bundle, lambda c: c["process"].update(
        scheduler={"policy": "SCHED_FIFO", "priority": 7}), "process.scheduler: sched_setattr")
    assert "realtimeRuntime" in err


def test_scheduler_batch_nice_seen_from_host(runtime, make_bundle):
    def ch(c):
        c["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 5}
    b = make_bundle(["sleep", "100"], ch)
    runtime.cmd("run", "-d", "-b", b, "s2", check=True)
    pid = runtime.state("s2")["pid"]
    assert os.sched_getscheduler(pid) == os.SCHED_BATCH
    assert os.getpriority(os.PRIO_PROCESS, pid) == 5
    runtime.cmd("delete", "-f", "s2", check=True)


def test_io_priority(runtime, make_bundle):
    def ch(c):
        c["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_IDLE", "priority": 0}
    b = make_bundle(["sleep", "100"], ch)
    runtime.cmd("run", "-d", "-b", b, "io1", check=True)
    pid = runtime.state("io1")["pid"]
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    prio = libc.syscall(252, 1, pid)   # ioprio_get(IOPRIO_WHO_PROCESS, pid), x86_64
    assert prio >> 13 == 3   # IOPRIO_CLASS_IDLE
    runtime.cmd("delete", "-f", "io1", check=True)


def test_io_priority_be_inside(runtime, make_bundle):
    def ch(c):
        c["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    out = run_out(runtime, make_bundle, "/bin/busybox ionice -p $$", changes=ch,
                  cid="io3")
    assert "best-effort: prio 6" in out, out
    b = make_bundle(["sleep", "100"], ch)
    runtime.cmd("run", "-d", "-b", b, "io2", check=True)
    pid = runtime.state("io2")["pid"]
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(252, 1, pid) == (2 << 13) | 6
    runtime.cmd("delete", "-f", "io2", check=True)


def test_cpu_affinity_initial_and_final(runtime, make_bundle):
    if os.cpu_count() < 2:
        pytest.skip("needs 2 CPUs")

    def ch(c):
        c["process"]["execCPUAffinity"] = {"initial": "0-1", "final": "1"}
    out = run_out(runtime, make_bundle, "grep Cpus_allowed_list /proc/self/status", changes=ch)
    assert status(out)["Cpus_allowed_list"].strip() == "1"


def test_personality_linux32(runtime, make_bundle):
    def ch(c):
        c["linux"]["personality"] = {"domain": "LINUX32", "flags": []}
    out = run_out(runtime, make_bundle, "uname -m; cat /proc/self/personality", changes=ch)
    machine, pers = out.split()[:2]
    assert machine in ("i686", "i386")
    assert int(pers, 16) & 0xff == 0x08


def test_memory_policy_bind(runtime, make_bundle):
    if not os.path.exists("/proc/self/numa_maps"):
        pytest.skip("no NUMA support in this kernel")

    def ch(c):
        c["linux"]["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES"]}
    out = run_out(runtime, make_bundle, "cat /proc/self/numa_maps", changes=ch)
    # anonymous memory (heap, stack) follows the task's policy
    assert "bind=static:0" in out or "bind:0" in out, out


def test_time_offsets(runtime, make_bundle):
    def ch(c):
        c["linux"]["namespaces"].append({"type": "time"})
        c["linux"]["timeOffsets"] = {"boottime": {"secs": 1000000, "nanosecs": 0},
                                     "monotonic": {"secs": 2000000, "nanosecs": 0}}
    out = run_out(runtime, make_bundle, "cut -d' ' -f1 /proc/uptime; cat /proc/self/timens_offsets", changes=ch)
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])   # read after the container's
    lines = out.splitlines()
    assert 1000000 - 10 <= float(lines[0]) - host <= 1000000
    offs = {l.split()[0]: l.split()[1] for l in lines[1:]}
    assert offs == {"monotonic": "2000000", "boottime": "1000000"}


def test_domainname_and_hostname(runtime, make_bundle):
    def ch(c):
        c["hostname"] = "h1"
        c["domainname"] = "example.test"
    out = run_out(runtime, make_bundle, "hostname; cat /proc/sys/kernel/domainname", changes=ch)
    assert out.split() == ["h1", "example.test"]


def test_rlimits_soft_and_hard_inside(runtime, make_bundle):
    def ch(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
                                   {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
                                   {"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192}]
    out = run_out(runtime, make_bundle,
                  "grep -E '^Max (open files|core file size|msgqueue size)' /proc/self/limits", changes=ch)
    rows = {l[:26].strip(): l[26:].split()[:2] for l in out.splitlines()}
    assert rows["Max open files"] == ["512", "1000"]
    assert rows["Max core file size"] == ["0", "0"]
    assert rows["Max msgqueue size"] == ["4096", "8192"]


def test_oom_score_adj_inside_and_outside(runtime, make_bundle):
    def ch(c):
        c["process"]["oomScoreAdj"] = 321
    b = make_bundle(["sh", "-c", "cat /proc/self/oom_score_adj"], ch)
    runtime.cmd("create", "-b", b, "o1", check=True)
    pid = runtime.state("o1")["pid"]
    with open("/proc/%d/oom_score_adj" % pid) as f:
        assert f.read().strip() == "321"
    runtime.cmd("delete", "-f", "o1", check=True)
    assert run_out(runtime, make_bundle, "cat /proc/self/oom_score_adj", cid="o2", changes=ch).strip() == "321"


@pytest.mark.parametrize("field,changes", [
    ("process.scheduler.priority", lambda c: c["process"].update(scheduler={"policy": "SCHED_FIFO"})),
    ("process.scheduler", lambda c: c["process"].update(scheduler={"policy": "SCHED_DEADLINE"})),
    ("process.ioPriority.priority",
     lambda c: c["process"].update(ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 9})),
    ("process.execCPUAffinity.final", lambda c: c["process"].update(execCPUAffinity={"final": "x-1"})),
    ("process.execCPUAffinity.initial", lambda c: c["process"].update(execCPUAffinity={"initial": "4000"})),
    ("linux.personality.flags[0]", lambda c: c["linux"].update(personality={"domain": "LINUX", "flags": ["NOPE"]})),
    ("linux.memoryPolicy.nodes", lambda c: c["linux"].update(memoryPolicy={"mode": "MPOL_BIND"})),
    ("linux.memoryPolicy", lambda c: c["linux"].update(memoryPolicy={"mode": "MPOL_BIND", "nodes": "63"})),
    ("linux.intelRdt", lambda c: c["linux"].update(intelRdt={"closID": "x"})),
    ("linux.timeOffsets", lambda c: c["linux"].update(timeOffsets={"boottime": {"secs": 1}})),
    ("process.rlimits[0]", lambda c: c["process"].update(rlimits=[{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}])),
    ("process.capabilities.bounding[0]",
     lambda c: c["process"]["capabilities"].update(bounding=["CAP_NOPE"])),
])
def test_bad_process_settings(runtime, make_bundle, field, changes):
    fails(runtime, make_bundle, changes, field)



def _ignoring(*sigs):
    import signal

    def pre():
        for s in sigs:
            signal.signal(s, signal.SIG_IGN)
    return pre


@pytest.mark.parametrize("how", ["run", "exec"])
def test_signals_the_runtime_ignores_are_default_in_the_container(runtime, make_bundle, how):
    """CPython ignores SIGPIPE and SIGXFSZ, and an exec keeps ignored signals
    ignored: the container's process gets their default action back, as
    with runc (it handles every signal while it starts the process), so a
    writer into a closed pipe dies of SIGPIPE (128 + 13) instead of seeing
    EPIPE; so do the signals the runtime's caller ignored (runc gives none
    of them to the container either). The process is grep itself: busybox
    sh ignores SIGQUIT of its own."""
    import signal

    def go(args, preexec_fn=None):
        if how == "run":
            p = runtime.cmd("run", "-b", make_bundle(args), "sig1", preexec_fn=preexec_fn)
        else:
            runtime.cmd("run", "-d", "-b", make_bundle(["sleep", "1000"]), "sig1", check=True)
            p = runtime.cmd("exec", "sig1", *args, preexec_fn=preexec_fn)
            runtime.cmd("delete", "--force", "sig1", check=True)
        assert p.returncode == 0, p.stderr
        return p

    ignored = ["grep", "^SigIgn", "/proc/self/status"]
    out = go(ignored).stdout
    assert int(status(out)["SigIgn"], 16) == 0, out
    out = go(ignored, _ignoring(signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE, signal.SIGTSTP)).stdout
    assert int(status(out)["SigIgn"], 16) == 0, out
    err = go(["sh", "-c", "(yes; echo \"yes=$?\" >&2) | head -c1 >/dev/null"]).stderr
    assert err.strip() == "yes=141", err
