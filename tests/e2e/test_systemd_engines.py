"""The engines with their defaults on a systemd + cgroup v2 host (the guest,
.ci/guest): podman 4.3 with cgroup_manager = "systemd" and containerd 1.6
with SystemdCgroup (ctr run --runc-systemd-cgroup) run pyoci with
--systemd-cgroup; each flow is checked in the unit systemd reports and in
the cgroup files. Skipped, with the reason, elsewhere."""
import json
import os
import subprocess
import time

import pytest

import engines
from conftest import PYOCI, TAG
from e2e_fixtures import (_ids, _ids_of, oci_image, podman_dir, read, remove_tag_cgroups,  # noqa: F401
                          require, settle, wait_for)

if not engines.systemd_host():
    pytestmark = pytest.mark.skip(reason="not a systemd + cgroup v2 host (the guest, .ci/guest, is one): "
                                         "the engines' systemd cgroup manager needs it")

IMAGE = engines.IMAGE
SLICE = TAG + ".slice"     # podman's cgroup parent: the TAG is in every path below it


def show(unit, *props):
    p = subprocess.run(["systemctl", "show", unit, "-p", ",".join(props)], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    return dict(line.split("=", 1) for line in p.stdout.splitlines() if "=" in line)


def units(pattern):
    p = subprocess.run(["systemctl", "list-units", "--all", "--plain", "--no-legend", pattern],
                       capture_output=True, text=True, timeout=30)
    return [line.split()[0] for line in p.stdout.splitlines() if line.strip()]


def cgdir(pid):
    for line in read("/proc/%d/cgroup" % pid).splitlines():
        if line.startswith("0::"):
            return "/sys/fs/cgroup" + line[3:]
    raise AssertionError("no cgroup2 line for %d" % pid)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except FileNotFoundError:
        return False
    return data[data.rindex(")") + 2] != "Z"


# -- podman ---------------------------------------------------------------------
@pytest.fixture
def podman(host_guard):
    require("podman", "conmon")
    pm = engines.Podman(PYOCI, tmp=podman_dir(), cgroup_parent=SLICE, cgroup_manager="systemd")
    yield pm
    left = pm.remove_all()
    alive_ = settle()
    state_left = _ids_of("/run/pyoci", pm.dir)
    pm.cleanup()
    scopes = units("libpod-*.scope")
    assert not left, "containers left in podman: %r" % left
    assert not alive_, "engine processes still alive: %r" % alive_
    assert not state_left, "pyoci state left: %r" % state_left
    assert not [u for u in scopes if show(u, "Slice")["Slice"] == SLICE], "scopes left: %r" % scopes


def run_d(pm, name, *cmd, opts=()):
    p = pm(*pm.run_args("-d", "--name", name, *opts), *cmd)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_podman_run_rm(podman):
    p = podman(*podman.run_args("--rm"), "sh", "-c", "echo to-stdout; cat /proc/self/cgroup; exit 7")
    assert p.returncode == 7, p.stderr
    assert p.stdout.splitlines() == ["to-stdout", "0::/"]
    assert podman("ps", "-aq").stdout.split() == []


def test_podman_container_is_a_scope_in_the_slice(podman):
    cid = run_d(podman, "sd1", "sleep", "300", opts=("--memory", "64m", "--pids-limit", "40", "--cpus", "0.5"))
    pid = int(podman.inspect("sd1", "{{.State.Pid}}"))
    unit = "libpod-%s.scope" % cid
    p = show(unit, "ActiveState", "Slice", "Delegate", "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec",
             "ControlGroup")
    assert (p["ActiveState"], p["Slice"], p["Delegate"]) == ("active", SLICE, "yes")
    assert (p["MemoryMax"], p["TasksMax"], p["CPUQuotaPerSecUSec"]) == (str(64 << 20), "40", "500ms")
    d = cgdir(pid)
    assert d == "/sys/fs/cgroup" + p["ControlGroup"] and d.endswith("/" + unit)
    assert (read(d + "/memory.max").strip(), read(d + "/pids.max").strip(),
            read(d + "/cpu.max").strip()) == (str(64 << 20), "40", "50000 100000")
    # conmon is in a scope of its own beside it, as with runc
    assert units("libpod-conmon-%s.scope" % cid)
    p = podman("rm", "-f", "-t", "0", "sd1")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: show(unit, "ActiveState")["ActiveState"] == "inactive")


def test_podman_exec_pause_update_stop(podman):
    cid = run_d(podman, "sd2", "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/tick; sleep 0.05; done")
    pid = int(podman.inspect("sd2", "{{.State.Pid}}"))
    unit = "libpod-%s.scope" % cid
    d = cgdir(pid)
    p = podman("exec", "sd2", "cat", "/proc/self/cgroup")
    assert p.returncode == 0 and p.stdout.strip() == "0::/", (p.stdout, p.stderr)
    tick = "/proc/%d/root/tmp/tick" % pid
    assert wait_for(lambda: os.path.exists(tick) and read(tick).strip())
    assert podman("pause", "sd2").returncode == 0
    assert podman.inspect("sd2", "{{.State.Status}}") == "paused" and read(d + "/cgroup.freeze").strip() == "1"
    first = read(tick)
    time.sleep(0.3)
    assert read(tick) == first
    assert podman("unpause", "sd2").returncode == 0
    assert wait_for(lambda: read(tick) != first)
    p = podman("update", "--memory", "96m", "--cpu-shares", "512", "sd2")
    assert p.returncode == 0, p.stderr
    assert show(unit, "MemoryMax", "CPUWeight") == {"MemoryMax": str(96 << 20), "CPUWeight": "59"}
    assert (read(d + "/memory.max").strip(), read(d + "/cpu.weight").strip()) == (str(96 << 20), "59")
    p = podman("stop", "-t", "1", "sd2")
    assert p.returncode == 0, p.stderr
    assert not alive(pid)
    assert wait_for(lambda: show(unit, "ActiveState")["ActiveState"] == "inactive")
    p = podman("restart", "sd2")
    assert p.returncode == 0, p.stderr
    assert show(unit, "ActiveState")["ActiveState"] == "active"
    assert podman("rm", "-f", "-t", "0", "sd2").returncode == 0


# -- containerd ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def ctrd_sd(oci_image, tmp_path_factory):
    require("containerd", "ctr", "containerd-shim-runc-v2", "unshare")
    d = engines.Containerd(namespace=TAG, tmp=str(tmp_path_factory.mktemp("containerd")),
                           systemd_cgroup=True).start()
    try:
        d.import_image(oci_image)
        # containerd enables hugetlb, rdma and misc in the cgroup2 root's
        # subtree_control on its first task (seen with runc as with pyoci):
        # one task first, so that each test's guard sees only what it changed
        p = d.ctr("run", "--rm", "--runc-binary", PYOCI, IMAGE, "warm-up", "true")
        assert p.returncode == 0, p.stderr
        yield d
    finally:
        d.stop()
        remove_tag_cgroups()


@pytest.fixture
def ctr(ctrd_sd, host_guard):
    yield ctrd_sd
    left = ctrd_sd.clean_namespace()
    alive_ = settle()
    state_left = _ids(os.path.join(engines.RUN_CONTAINERD, "runc", ctrd_sd.namespace))
    scopes = units("%s-*.scope" % TAG)
    assert not left, "containers left in containerd: %r" % left
    assert not alive_, "engine processes still alive: %r" % alive_
    assert not state_left, "pyoci state left: %r" % state_left
    assert not scopes, "scopes left: %r" % scopes


def tasks(c):
    out = {}
    for line in c.ctr("task", "ls").stdout.splitlines()[1:]:
        f = line.split()
        if len(f) >= 3:
            out[f[0]] = (int(f[1]), f[2])
    return out


def test_ctr_run_rm(ctr):
    p = ctr.ctr("run", "--rm", "--runc-binary", PYOCI, IMAGE, "s1", "sh", "-c",
                "echo hi; cat /proc/self/cgroup; exit 3")
    assert p.returncode == 3, p.stderr
    # ctr's spec has no cgroup namespace: the scope's path as the host sees it
    assert p.stdout.splitlines() == ["hi", "0::/system.slice/%s-s1.scope" % TAG]
    assert units("%s-s1.scope" % TAG) == []


def test_ctr_task_flows_in_a_scope(ctr):
    p = ctr.ctr("run", "-d", "--runc-binary", PYOCI, IMAGE, "s2", "sh", "-c", "sleep 300 & sleep 300 & wait")
    assert p.returncode == 0, p.stderr
    pid = tasks(ctr)["s2"][0]
    unit = "%s-s2.scope" % TAG
    p = show(unit, "ActiveState", "Slice", "Delegate")
    assert p == {"ActiveState": "active", "Slice": "system.slice", "Delegate": "yes"}
    d = cgdir(pid)
    assert d == "/sys/fs/cgroup/system.slice/" + unit
    # exec joins the scope; ps lists what is in it
    p = ctr.ctr("task", "exec", "--exec-id", "e1", "s2", "cat", "/proc/self/cgroup")
    assert p.returncode == 0 and p.stdout.strip() == "0::/system.slice/" + unit, (p.stdout, p.stderr)
    assert wait_for(lambda: len(read(d + "/cgroup.procs").split()) == 3)
    ps = ctr.ctr("task", "ps", "s2").stdout.split()
    assert str(pid) in ps
    # pause and resume through cgroup.freeze
    assert ctr.ctr("task", "pause", "s2").returncode == 0
    assert tasks(ctr)["s2"][1] == "PAUSED" and read(d + "/cgroup.freeze").strip() == "1"
    assert ctr.ctr("task", "resume", "s2").returncode == 0
    assert tasks(ctr)["s2"][1] == "RUNNING"
    # the shim reads the metrics from the scope's cgroup
    p = ctr.ctr("task", "metrics", "--format", "json", "s2")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["pids"]["current"] == 3
    # kill --all, delete: the scope goes
    assert ctr.ctr("task", "kill", "-a", "-s", "SIGKILL", "s2").returncode == 0
    assert wait_for(lambda: tasks(ctr).get("s2", (0, ""))[1] == "STOPPED")
    assert ctr.ctr("task", "delete", "s2").returncode == 0
    assert ctr.ctr("container", "delete", "s2").returncode == 0
    assert wait_for(lambda: show(unit, "ActiveState")["ActiveState"] == "inactive")


# -- Kubernetes: containerd's CRI with SystemdCgroup = true -------------------------
@pytest.fixture(scope="module")
def cri_sd(oci_image, tmp_path_factory):
    """containerd's CRI plugin with a `pyoci` handler, SystemdCgroup = true
    (what the kubelet's systemd cgroup driver pairs with)."""
    from test_cri import PAUSE_IMAGE, _pause_image, _require_cri

    _require_cri()
    from cri_client import Cri

    tmp = str(tmp_path_factory.mktemp("cri"))
    pause = _pause_image(tmp)
    d = engines.CriContainerd({"pyoci": PYOCI}, PAUSE_IMAGE, tmp=os.path.join(tmp, "ctrd"), systemd_cgroup=True)
    d.start()
    client = None
    try:
        d.import_image(pause)
        d.import_image(oci_image)
        client = Cri(d.sock)
        # containerd enables hugetlb, rdma and misc in the cgroup2 root on its
        # first task (runc as pyoci): a first pod, so that the test's guard
        # sees only what the test changed
        from test_cri import Flow

        flow = Flow(d, client, "pyoci", "warm-up", tmp)
        cfg = flow.pod_config("warmup")
        cfg.linux.cgroup_parent = "system.slice"
        flow.stop_remove_pod(flow.run_pod(cfg))
        yield d, client
    finally:
        if client is not None:
            client.close()
        d.stop()
        settle()


def test_cri_pod_and_container_are_scopes_in_the_pods_slice(cri_sd, host_guard, tmp_path):
    from test_cri import Flow

    d, client = cri_sd
    flow = Flow(d, client, "pyoci", "systemd", str(tmp_path))
    pod_slice = "%s_pod.slice" % TAG.replace("-", "_")     # the kubelet's would be kubepods-...-podUID.slice
    try:
        cfg = flow.pod_config("sdpod")
        cfg.linux.cgroup_parent = pod_slice
        pod = flow.run_pod(cfg)
        sandbox = flow.pod_status(pod)[1]["pid"]
        assert show("cri-containerd-%s.scope" % pod, "ActiveState", "Slice") == \
            {"ActiveState": "active", "Slice": pod_slice}
        assert cgdir(sandbox).endswith("/%s/cri-containerd-%s.scope" % (pod_slice, pod))
        res = flow.pb.LinuxContainerResources(memory_limit_in_bytes=96 << 20, cpu_shares=512)
        # containerd gives a container its cri-containerd.apparmor.d profile on
        # an AppArmor host; applying it is linux/lsm's (proven in test_lsm.py):
        # this flow is about cgroups
        sc = flow.pb.LinuxContainerSecurityContext(apparmor_profile="unconfined")
        cid = flow.run_container(pod, cfg, "app", ["sh", "-c", "sleep 300 & wait"], resources=res, security=sc)
        pid = flow.pid(cid)
        st = flow.status(cid)[0]
        assert st.state == flow.pb.CONTAINER_RUNNING, (st, read(os.path.join(cfg.log_directory, "app.log")))
        unit = "cri-containerd-%s.scope" % cid
        p = show(unit, "ActiveState", "Slice", "MemoryMax", "CPUWeight")
        assert p == {"ActiveState": "active", "Slice": pod_slice, "MemoryMax": str(96 << 20), "CPUWeight": "59"}
        assert read(cgdir(pid) + "/memory.max").strip() == str(96 << 20)
        assert flow.sh(cid, "echo out; exit 3", step="exec") == (3, "out\n", "")
        # the kubelet's resource update: through SetUnitProperties and the files
        client.UpdateContainerResources(container_id=cid, linux=flow.pb.LinuxContainerResources(
            memory_limit_in_bytes=128 << 20, cpu_shares=512))
        assert show(unit, "MemoryMax")["MemoryMax"] == str(128 << 20)
        flow.stop_remove(cid, timeout=1)
        assert wait_for(lambda: show(unit, "ActiveState")["ActiveState"] == "inactive")
        flow.stop_remove_pod(pod)
        assert units("cri-containerd-*.scope") == []
    finally:
        left = flow.cleanup()
        settle()
        engines.stop_slice(pod_slice)
    assert not left, "pods left: %r" % left
