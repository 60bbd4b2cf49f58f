"""Shared fixtures.

Integration tests run real containers as root. The `host_guard` fixture
(used by every test that takes `runtime`) fails a test that leaves
mounts, cgroups, processes or state behind. The pytest process makes itself
a child subreaper, so container inits whose parents exit become its
children: it can reap them and see any it did not.
"""
import ctypes
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "bench"))

import make_bundle as bundle_maker  # noqa: E402

PYOCI = os.path.join(os.path.dirname(sys.executable), "pyoci")
BUSYBOX = "/bin/busybox"
PR_SET_CHILD_SUBREAPER = 36


# Several test sessions may run on one machine at once (worktrees, helpers,
# the conformance suite). Each session moves itself into a cgroup of its own
# in every hierarchy, so containers placed by default (under the caller's
# cgroup) land in it; tests that give an absolute cgroupsPath put TAG in it.
# The guard watches only the session's subtree and paths that carry TAG.
# On cgroup v2 (a unified host) pyoci places a container beside the caller's
# cgroup, as runc: the session directory is made beside the caller's cgroup
# and the pytest process goes into a leaf of it (LEAF), so that containers land
# in the session directory, which holds no process and can enable controllers.
TAG = "pyoci-test-%d" % os.getpid()
LEAF = "pytest"
_SESSION_CGROUPS = []   # (hierarchy mountpoint, own directory, session dir, pytest's dir)


def _enter_session_cgroups():
    from pyoci.linux import cgroups

    unified = not cgroups.controllers_on_v1()
    for h in cgroups.layout():
        own = os.path.join(h.mountpoint, h.own.lstrip("/"))
        if unified and h.version == 2:
            d = os.path.join(os.path.dirname(own) if h.own != "/" else own, TAG)
            leaf = os.path.join(d, LEAF)
            _enable_down_to(h.mountpoint, os.path.dirname(d))
        else:
            d = leaf = os.path.join(own, TAG)
        made = []
        try:
            for x in (d, leaf) if leaf != d else (d,):
                os.mkdir(x)
                made.append(x)
                if os.path.exists(os.path.join(x, "cpuset.cpus")):
                    for f in ("cpuset.cpus", "cpuset.mems"):
                        with open(os.path.join(os.path.dirname(x), f)) as src, open(os.path.join(x, f), "w") as dst:
                            dst.write(src.read())
            with open(os.path.join(leaf, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        except OSError:
            for x in reversed(made):
                try:
                    os.rmdir(x)
                except OSError:
                    pass
            continue
        _SESSION_CGROUPS.append((h.mountpoint, own, d, leaf))


_ENABLED = []   # (directory, controller) the session enabled in cgroup.subtree_control


def _enable_down_to(top, d):
    """cgroup v2: enable every controller from the hierarchy's root down to
    d, as pyoci (and runc) do when they place a container below d, so that
    no test sees the root's cgroup.subtree_control change (the host guard
    checks it). The session disables them again at its end where nothing
    else uses them."""
    cur = top
    for part in [""] + os.path.relpath(d, top).split("/"):
        cur = os.path.normpath(os.path.join(cur, part))
        try:
            with open(os.path.join(cur, "cgroup.controllers")) as f:
                ctrls = f.read().split()
            with open(os.path.join(cur, "cgroup.subtree_control")) as f:
                have = f.read().split()
        except OSError:
            return
        for c in ctrls:
            if c not in have:
                try:
                    with open(os.path.join(cur, "cgroup.subtree_control"), "w") as f:
                        f.write("+" + c)
                    _ENABLED.append((cur, c))
                except OSError:
                    pass


def pytest_configure(config):
    os.environ["PYOCI_TEST_TAG"] = TAG
    if os.geteuid() == 0:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        _enter_session_cgroups()


def pytest_unconfigure(config):
    for _, own, d, leaf in reversed(_SESSION_CGROUPS):
        try:
            with open(os.path.join(own, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
            if leaf != d:
                os.rmdir(leaf)
            os.rmdir(d)
        except OSError as e:
            sys.stderr.write("conftest: cannot remove session cgroup %s: %s\n" % (d, e))
    _SESSION_CGROUPS.clear()
    for d, c in reversed(_ENABLED):
        try:
            with open(os.path.join(d, "cgroup.subtree_control"), "w") as f:
                f.write("-" + c)
        except OSError:
            pass   # in use by a cgroup below (another session, a container)
    _ENABLED.clear()


# Summary sections test modules add (callables returning (title, lines)),
# shown at the end of the run: the CRI tests' timings of pyoci against runc.
SUMMARY = []


def pytest_terminal_summary(terminalreporter):
    for make in SUMMARY:
        section = make()
        if section:
            title, lines = section
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)


def unified():
    """A cgroup v2 host: no resource controller on a v1 hierarchy (as
    /proc/self/cgroup tells; runc decides the same way)."""
    from pyoci.linux import cgroups

    return not cgroups.controllers_on_v1()


def cgroup_path(ctrl, rel):
    """The host directory of the cgroup at hierarchy path rel (as a
    cgroupsPath: "/TAG/c1") for v1 controller ctrl; on a cgroup v2 host the
    cgroup2 directory, whatever ctrl."""
    from pyoci.linux import cgroups

    for h in cgroups.layout():
        if (h.version == 2 and (unified() or not ctrl)) or (h.version == 1 and ctrl in h.controllers):
            return h.directory(rel)
    raise LookupError(ctrl)


def cgroup_file(ctrl, rel, name):
    return os.path.join(cgroup_path(ctrl, rel), name)


def freezer_state(d):
    """FROZEN, THAWED (or FREEZING) of cgroup directory d: v1 freezer.state;
    v2 cgroup.freeze, with the kernel's word in cgroup.events."""
    def read(name):
        with open(os.path.join(d, name)) as f:
            return f.read().strip()

    if os.path.exists(os.path.join(d, "freezer.state")):
        return read("freezer.state")
    want, events = read("cgroup.freeze"), read("cgroup.events").split("\n")
    if want == "1" and "frozen 1" in events:
        return "FROZEN"
    if want == "0" and "frozen 0" in events:
        return "THAWED"
    return "FREEZING"


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def our_children():
    me = str(os.getpid())
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                data = f.read()
        except OSError:
            continue
        fields = data[data.rindex(")") + 2:].split()
        if fields[1] == me:
            out.append((int(name), data[data.index("(") + 1:data.rindex(")")]))
    return out


def cgroup_dirs():
    """This session's cgroups: its own subtrees, and any path carrying TAG."""
    out = set()
    for _, _, d, _ in _SESSION_CGROUPS:
        for dirpath, _, _ in os.walk(d):
            out.add(dirpath)
    for ctrl in os.listdir("/sys/fs/cgroup"):
        base = os.path.join("/sys/fs/cgroup", ctrl)
        if not os.path.isdir(base) or os.path.islink(base):
            continue
        for dirpath, dirnames, _ in os.walk(base):
            if dirpath.count("/") - base.count("/") >= 3:
                dirnames[:] = []
            if TAG in dirpath:
                out.add(dirpath)
    return out


def _others_temp(mountpoint, own_base):
    """A mount that another session made: under /tmp outside this session's
    temporary base and without TAG (a podman run in /tmp/pyoci-pm-*, say),
    or a named network namespace (/run/netns) without this session's pid
    (tests name theirs pt<pid % 100000>...); never one that this session's
    containers could leave."""
    if mountpoint.startswith("/run/netns/"):
        return str(os.getpid() % 100000) not in mountpoint
    return (mountpoint.startswith("/tmp/") and not mountpoint.startswith(own_base + "/")
            and TAG not in mountpoint)


def mounts(own_base=None):
    with open("/proc/self/mountinfo") as f:
        out = [l.split()[3:5] for l in f]
    if own_base:
        out = [m for m in out if not _others_temp(m[1], own_base)]
    return sorted(" ".join(m) for m in out)


class Runtime:
    """Runs the installed pyoci CLI with a private state root."""

    def __init__(self, root):
        self.root = root

    def cmd(self, *args, check=False, input=None, timeout=60, **kw):
        """Run pyoci; stdout and stderr go through files, not pipes: after
        `create` the container's init holds them until it exits."""
        import tempfile

        argv = [PYOCI, "--root", self.root] + [str(a) for a in args]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(argv, stdout=out, stderr=err, text=True, input=input,
                               timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        if check and p.returncode != 0:
            raise AssertionError("pyoci %s failed (%d): %s%s" % (" ".join(map(str, args)), p.returncode,
                                                                p.stdout, p.stderr))
        return p

    def state(self, cid):
        return json.loads(self.cmd("state", cid, check=True).stdout)

    def ids(self):
        try:
            # '@...' entries are the runtime's caches (no container id starts so)
            return sorted(n for n in os.listdir(self.root) if not n.startswith("@"))
        except FileNotFoundError:
            return []


def subtree_controls():
    """cgroup.subtree_control of every cgroup2 mount's root directory: the
    host-global cgroup state a runtime must not change on its own (on a
    hybrid host a controller enabled there can no longer be mounted on v1)."""
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.startswith("cgroup2 ") and left.split()[3] == "/":
                path = os.path.join(left.split()[4], "cgroup.subtree_control")
                try:
                    with open(path) as c:
                        out[path] = c.read().split()
                except OSError:
                    pass
    return out


@pytest.fixture
def host_guard(tmp_path, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("integration tests run containers as root")
    reap()
    base = str(tmp_path_factory.getbasetemp())
    before_mounts, before_cgroups = mounts(base), cgroup_dirs()
    before_controls = subtree_controls()
    before_children = {p for p, _ in our_children()}
    yield
    reap()
    problems = []
    leftover = [c for c in our_children() if c[0] not in before_children]
    for pid, _ in leftover:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    reap()
    if leftover:
        problems.append("processes left: %r" % leftover)
    new_mounts = sorted(set(mounts(base)) - set(before_mounts))
    if new_mounts:
        problems.append("mounts left: %r" % new_mounts)
    new_cgroups = sorted(cgroup_dirs() - before_cgroups)
    if new_cgroups:
        problems.append("cgroups left: %r" % new_cgroups)
        for d in reversed(new_cgroups):
            try:
                os.rmdir(d)
            except OSError:
                pass
    controls = subtree_controls()
    if controls != before_controls:
        problems.append("cgroup2 root cgroup.subtree_control changed: %r -> %r" % (before_controls, controls))
    assert not problems, "the test left the host changed: " + "; ".join(problems)


@pytest.fixture
def runtime(tmp_path, host_guard):
    rt = Runtime(str(tmp_path / "state"))
    yield rt
    left = rt.ids()
    for cid in left:
        rt.cmd("delete", "--force", cid)
    assert not left, "containers left in the state dir: %r" % left


@pytest.fixture
def named_netns(tmp_path, host_guard):
    """A persistent network namespace bound onto a file of the test's own
    (util-linux `unshare --net=FILE`), removed after the test and before
    the guard looks. Not `ip netns add`: the first one on a machine makes
    /run/netns a mount of its own, which stays (host-global state)."""
    path = str(tmp_path / "netns")
    open(path, "w").close()
    subprocess.run(["unshare", "--net=" + path, "true"], check=True)
    yield path
    subprocess.run(["umount", path], check=False)


@pytest.fixture
def make_bundle(tmp_path):
    """make_bundle(args, changes=None) -> bundle path (busybox-static rootfs)."""
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    counter = [0]

    def make(args=("sh",), changes=None):
        counter[0] += 1
        out = str(tmp_path / ("bundle%d" % counter[0]))
        return bundle_maker.make(out, args, BUSYBOX, changes)

    return make
