"""Crash safety: the runtime's whole process group is SIGKILLed at every
fault point of create, start, exec, update and delete (pyoci's named
moments, see pyoci/runtime/fault.py and faultlib.py), and the container's
state file is truncated, garbage or missing; each time `delete --force`
must exit 0 and leave the host as it was: no process, mount, cgroup,
state directory, and the interface moved into the container back on the
host with its addresses. Until then `list` shows the container (as broken
when its state is unusable), never nothing.

The container of every probe has what leaves traces: its own cgroup under
a parent create makes, resources, a host veth moved in by linux.netDevices
(its network namespace pinned by a mount in the state directory), a pid
namespace and the rest of the default namespaces.

bench/faults_bench.py runs the same probes with timed kills against
Debian's runc for comparison."""
import json
import os
import shutil
import subprocess

import pytest

import conftest
import faultlib
from conftest import PYOCI

SUFFIX = "%d" % (os.getpid() % 100000)
CID = "fault"


@pytest.fixture
def veth(host_guard):
    a, b = "pf%sa" % SUFFIX, "pf%sb" % SUFFIX
    subprocess.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    subprocess.run(["ip", "addr", "add", "10.78.%d.1/24" % (os.getpid() % 250), "dev", a], check=True)
    yield a, b
    subprocess.run(["ip", "link", "del", a], capture_output=True)
    subprocess.run(["ip", "link", "del", b], capture_output=True)


@pytest.fixture
def probe(runtime, make_bundle, veth, tmp_path, tmp_path_factory):
    return Probe(runtime, make_bundle, veth, tmp_path, str(tmp_path_factory.getbasetemp()))


class Probe:
    def __init__(self, runtime, make_bundle, veth, tmp_path, base):
        self.rt = runtime
        self.tmp = tmp_path
        a, b = veth

        def change(c):
            c["linux"]["cgroupsPath"] = "faults-parent/" + CID   # under the caller's cgroup; parent made too
            c["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}
            c["linux"]["netDevices"] = {a: {"name": "eth7"}}
        self.bundle = make_bundle(["sleep", "100"], change)
        self.host = faultlib.Host(runtime.root, base, links=[a, b])
        self.log = str(tmp_path / "fault.log")
        self.results = []   # (command, point, problems)

    def argv(self, *args):
        return [PYOCI, "--root", self.rt.root] + [str(a) for a in args]

    def points(self, *args):
        """The fault points of one normal run of the command."""
        pts, code = faultlib.list_points(self.argv(*args), self.log)
        assert code == 0, open(self.log + ".stderr").read()
        return pts

    def listed(self):
        out = self.rt.cmd("list", "--format", "json").stdout
        return {i["id"]: i["status"] for i in json.loads(out) or ()}

    def check(self, what, point):
        """delete --force, then the host as it was before the probe."""
        problems = []
        if os.path.isdir(os.path.join(self.rt.root, CID)) and CID not in self.listed():
            problems.append("list shows nothing while the state directory exists")
        code, err = faultlib.run_reaping(self.argv("delete", "--force", CID))
        if code != 0:
            problems.append("delete --force exited %d: %s" % (code, err.strip()))
        problems += self.host.problems()
        self.results.append((what, point, problems))

    def report(self, name):
        path = os.environ.get("PYOCI_FAULT_REPORT")
        if path:
            with open(path, "a") as f:
                for what, point, problems in self.results:
                    f.write(json.dumps({"runtime": "pyoci", "probe": name, "command": what, "point": point,
                                        "clean": not problems, "left": problems}) + "\n")
        dirty = [r for r in self.results if r[2]]
        assert not dirty, "%d of %d probes left the host changed:\n%s" % (
            len(dirty), len(self.results), "\n".join("%s at %s: %s" % (w, pt, "; ".join(pr)) for w, pt, pr in dirty))


def test_sigkill_at_every_point_of_create(probe):
    create = ("create", "-b", probe.bundle, CID)
    points = probe.points(*create)
    probe.check("create", "(none)")
    assert len(points) >= 25, points
    # no user namespace: the runtime forks the container's init itself (no C1)
    assert "c2:unshared" in points and not any(p.startswith("c1:") for p in points), points
    for point in points:
        assert faultlib.kill_at_point(probe.argv(*create), point, probe.log), point
        probe.check("create", point)
    probe.report("create")


def test_sigkill_at_every_point_of_create_with_a_user_namespace(runtime, make_bundle, tmp_path,
                                                                 tmp_path_factory):
    """The create that goes through C1 (which makes the user namespace and
    waits for its maps): same promise at each of its points."""
    import tempfile

    open_dir = tempfile.mkdtemp(prefix="pyoci-fault-userns-")
    try:
        os.chmod(open_dir, 0o755)

        def userns(c):
            c["linux"]["namespaces"].append({"type": "user"})
            c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
            c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
            c["linux"]["cgroupsPath"] = "faults-parent/" + CID
        import make_bundle as bundle_maker

        bundle = bundle_maker.make(os.path.join(open_dir, "b"), ["sleep", "100"], "/bin/busybox", userns)
        for d, dirs, files in os.walk(os.path.join(bundle, "rootfs")):   # the image is the mapped root's
            for n in [d] + [os.path.join(d, x) for x in dirs + files]:
                os.lchown(n, 100000, 100000)
        host = faultlib.Host(runtime.root, str(tmp_path_factory.getbasetemp()))
        log = str(tmp_path / "fault.log")
        argv = [PYOCI, "--root", runtime.root, "create", "-b", bundle, CID]
        points, code = faultlib.list_points(argv, log)
        assert code == 0, open(log + ".stderr").read()
        assert any(p.startswith("c1:") for p in points) and "create:userns-mapped" in points, points
        dirty = []
        for point in ["(none)"] + points:
            if point != "(none)":
                assert faultlib.kill_at_point(argv, point, log), point
            code, err = faultlib.run_reaping([PYOCI, "--root", runtime.root, "delete", "--force", CID])
            problems = ([] if code == 0 else ["delete --force exited %d: %s" % (code, err.strip())]) + host.problems()
            if problems:
                dirty.append("%s: %s" % (point, "; ".join(problems)))
        assert not dirty, "\n".join(dirty)
    finally:
        shutil.rmtree(open_dir)


def test_sigkill_at_every_point_of_start_update_exec_and_delete(probe):
    def running():
        probe.rt.cmd("run", "-d", "-b", probe.bundle, CID, check=True)

    cases = [
        ("start", lambda: probe.rt.cmd("create", "-b", probe.bundle, CID, check=True), ("start", CID)),
        ("update", running, ("update", "--memory", "32M", "--pids-limit", "32", CID)),
        ("exec", running, ("exec", CID, "sleep", "1")),
        ("exec -d", running, ("exec", "-d", CID, "sleep", "50")),
        ("delete", running, ("delete", "--force", CID)),
    ]
    for what, setup, cmd in cases:
        setup()
        points = [p for p in probe.points(*cmd) if p.split(":")[0] in ("start", "update", "exec", "delete")]
        if what != "delete":
            probe.check(what, "(none)")
        else:
            probe.results.append((what, "(none)", probe.host.problems()))
        assert points, what
        for point in points:
            setup()
            assert faultlib.kill_at_point(probe.argv(*cmd), point, probe.log), (what, point)
            probe.check(what, point)
    probe.report("lifecycle")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "not-a-state", "missing"])
def test_delete_force_with_an_unusable_state_file(probe, damage):
    probe.rt.cmd("run", "-d", "-b", probe.bundle, CID, check=True)
    pid = probe.rt.state(CID)["pid"]
    d = os.path.join(probe.rt.root, CID)
    path = os.path.join(d, "state.json")
    data = open(path, "rb").read()
    if damage == "truncated":
        open(path, "wb").write(data[:len(data) // 2])
    elif damage == "garbage":
        open(path, "wb").write(os.urandom(300))
    elif damage == "empty":
        open(path, "wb").close()
    elif damage == "not-a-state":
        open(path, "w").write('{"id": 7, "pid": "x"}')
    else:
        os.unlink(path)
    assert probe.listed() == {CID: "broken"}
    p = probe.rt.cmd("state", CID)
    assert p.returncode == 1 and "broken" in p.stderr
    probe.check("delete --force (%s state)" % damage, "-")
    assert not os.path.exists("/proc/%d/stat" % pid) or open("/proc/%d/stat" % pid).read().split(") ")[1][0] == "Z"
    probe.report("state-" + damage)
