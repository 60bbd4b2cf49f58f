"""Fault injection: SIGKILL a runtime's whole process group at a moment of
one of its commands, then `delete --force` the container, and say what
the host was left with.

Two ways to pick the moment:
  - pyoci's fault points (pyoci/runtime/fault.py): the runtime stops at a
    named point (in itself or a child) and says so in a file; the probe
    kills the group then. Deterministic, whatever the machine's load.
  - a delay after the command started (any runtime, runc too): the
    moments spread over the command's duration; where they fall depends
    on the machine.

Used by tests/integration/test_faults.py and bench/faults_bench.py."""
import os
import signal
import subprocess
import time

import conftest


class Host:
    """What a probe must find again afterwards: this session's cgroups,
    the mounts, our children (the pytest process is a subreaper), the host
    interfaces given to the containers, the state root's entries."""

    def __init__(self, state_root, base, links=()):
        self.root = state_root
        self.base = base
        self.links = list(links)
        conftest.reap()
        self.mounts = set(conftest.mounts(base))
        self.cgroups = conftest.cgroup_dirs()
        self.children = {p for p, _ in conftest.our_children()}
        self.link_state = {n: link_info(n) for n in self.links}

    def problems(self, repair=True):
        """What is left, as a list of short strings; with repair, removed
        (so that the next probe starts from a clean host)."""
        conftest.reap()
        out = []
        procs = [c for c in conftest.our_children() if c[0] not in self.children]
        if procs:
            out.append("processes %s" % sorted(n for _, n in procs))
            if repair:
                for pid, _ in procs:
                    try:
                        os.kill(pid, 9)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)
                conftest.reap()
        mounts = sorted(set(conftest.mounts(self.base)) - self.mounts)
        if mounts:
            out.append("mounts %s" % [m.split()[1] for m in mounts])
            if repair:
                for m in reversed(mounts):
                    subprocess.run(["umount", "-l", m.split()[1]], capture_output=True)
        cgroups = sorted(conftest.cgroup_dirs() - self.cgroups)
        if cgroups:
            out.append("cgroups %d dirs" % len(cgroups))
            if repair:
                for d in reversed(cgroups):
                    _kill_cgroup(d)
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
        try:
            entries = sorted(n for n in os.listdir(self.root) if not n.startswith("@"))
        except FileNotFoundError:
            entries = []
        if entries:
            out.append("state %s" % entries)
            if repair:
                subprocess.run(["rm", "-rf"] + [os.path.join(self.root, e) for e in entries])
        for name, before in self.link_state.items():
            now = link_info(name)
            if now != before:
                out.append("interface %s %s" % (name, "gone" if now is None else "changed"))
        return out


def _kill_cgroup(d):
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            for pid in f.read().split():
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
    except OSError:
        pass
    time.sleep(0.02)


def link_info(name):
    """(flags, addresses) of a host interface, or None."""
    p = subprocess.run(["ip", "-o", "addr", "show", "dev", name], capture_output=True, text=True)
    if p.returncode != 0:
        return None
    addrs = sorted(l.split()[3] for l in p.stdout.splitlines() if " inet" in l)
    return addrs


def run_reaping(argv, timeout=60):
    """Run argv (a delete --force) while reaping our other children: the
    exec'd processes of a container are re-parented to us (the pytest
    process is a subreaper, as an engine's shim is), and the container's
    init cannot finish dying until each process of its pid namespace has
    been reaped. Returns (exit code, stderr)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout
        while p.poll() is None:
            for pid, _ in conftest.our_children():
                if pid != p.pid:
                    try:
                        os.waitpid(pid, os.WNOHANG)
                    except ChildProcessError:
                        pass
            if time.monotonic() > deadline:
                p.kill()
            time.sleep(0.005)
        err.seek(0)
        return p.returncode, err.read()


def _start(argv, env, log_path):
    err = open(log_path + ".stderr", "w")
    p = subprocess.Popen(argv, env=env, start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=err)
    err.close()
    return p


def _kill_group(p, timeout=10):
    """SIGKILL the process group and wait until none of it is left but
    zombies (a killed process takes a moment to exit, more on a loaded
    machine: the probe must not count a dying C1 or C2 as left behind; one
    that escaped the group, by a session of its own, is still counted)."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()
    deadline = time.monotonic() + timeout
    while _group_members(p.pid) and time.monotonic() < deadline:
        conftest.reap()
        time.sleep(0.005)


def _group_members(pgid):
    """Pids of the live (not zombie) processes in process group pgid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            out.append(int(name))
    return out


def list_points(argv, log_path, env=None):
    """The fault points one run of argv reaches, in order; its exit code."""
    env = dict(env or os.environ, PYOCI_FAULT_LOG=log_path)
    env.pop("PYOCI_FAULT", None)
    if os.path.exists(log_path):
        os.unlink(log_path)
    p = _start(argv, env, log_path)
    code = p.wait(120)
    seen = []
    with open(log_path) as f:
        for line in f:
            label = line.split()[0]
            if label not in seen:
                seen.append(label)
    return seen, code


def kill_at_point(argv, label, log_path, env=None, timeout=60):
    """Run argv until it reaches `label`, then SIGKILL its process group.
    True if the point was reached (False: the command ended first)."""
    env = dict(env or os.environ, PYOCI_FAULT_LOG=log_path, PYOCI_FAULT=label)
    if os.path.exists(log_path):
        os.unlink(log_path)
    p = _start(argv, env, log_path)
    deadline = time.monotonic() + timeout
    want = "hit %s " % label
    while True:
        try:
            with open(log_path) as f:
                if any(line.startswith(want) for line in f):
                    break
        except FileNotFoundError:
            pass
        if p.poll() is not None:
            return False
        if time.monotonic() > deadline:
            _kill_group(p)
            raise AssertionError("%s: point %s not reached in %d s" % (" ".join(argv), label, timeout))
        time.sleep(0.005)
    _kill_group(p)
    return True


def kill_after(argv, delay, log_path, env=None):
    """Run argv and SIGKILL its process group `delay` seconds after it
    started (or let it finish first). Returns the seconds it ran."""
    t0 = time.monotonic()
    p = _start(argv, env or os.environ, log_path)
    try:
        p.wait(delay)
    except subprocess.TimeoutExpired:
        pass
    _kill_group(p)
    return time.monotonic() - t0
