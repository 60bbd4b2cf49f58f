"""pyoci as a Kubernetes runtime: containerd 1.6's CRI plugin (what the
kubelet talks to) runs pods whose RuntimeClass handler is `pyoci`, a runc v2
shim runtime with pyoci as its BinaryName.

One private containerd serves the module (bench/engines.py CriContainerd:
its own root, state and socket, its own mount and network namespaces, CNI
bridge networking inside them, restrict_oom_score_adj), with two handlers:
`pyoci` and `runc`. Every flow runs for both, with the same assertions, and
each CRI call is timed: the end of the run shows pyoci against runc per flow
and step. The client is the tests' own (cri_client.py, cri_api.proto; Exec's
stream is followed over a WebSocket from inside the daemon's network
namespace, where the streaming server listens); the
sandbox image is a static pause program built here (pause.c), the workload
image the busybox one of the other engine tests: nothing is pulled.
"""
import json
import os
import re
import shutil
import time
from contextlib import contextmanager

import pytest

import conftest
import engines
import make_oci_image
from conftest import PYOCI, TAG
from e2e_fixtures import (cgroup_of, oci_image, read, remove_tag_cgroups, require, settle,  # noqa: F401
                          wait_for)

IMAGE = engines.IMAGE
PAUSE_IMAGE = "localhost/pyoci-pause:1"
HANDLERS = ("pyoci", "runc")
MiB = 1 << 20

# {(flow, step): {handler: [seconds, ...]}}
TIMINGS = {}


# -- the daemon and the client ---------------------------------------------------

def _require_cri():
    require("containerd", "ctr", "containerd-shim-runc-v2", "unshare", "nsenter", "runc", "gcc")
    missing = ["CNI plugin %s (containernetworking-plugins)" % p for p in ("bridge", "host-local", "loopback")
               if not os.path.exists(os.path.join(engines.CriContainerd.CNI_BIN, p))]
    try:
        import grpc_tools  # noqa: F401
        import grpc  # noqa: F401
    except ImportError:
        missing.append("grpcio, grpcio-tools (pip install '.[test]')")
    if missing:
        msg = "CRI tests need: %s (.ci/setup installs them)" % ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


def _pause_image(tmp):
    rootfs = os.path.join(tmp, "pause-rootfs")
    os.makedirs(rootfs)
    p = engines._run(["gcc", "-static", "-Os", "-s", "-Wall", "-o", os.path.join(rootfs, "pause"),
                      os.path.join(os.path.dirname(__file__), "pause.c")])
    assert p.returncode == 0, p.stderr
    tar = os.path.join(tmp, "pause.tar")
    make_oci_image.make(tar, name=PAUSE_IMAGE, rootfs=rootfs, entrypoint=["/pause"], cmd=())
    return tar


@pytest.fixture(scope="module")
def cri_daemon(oci_image, tmp_path_factory):
    _require_cri()
    from cri_client import Cri

    tmp = str(tmp_path_factory.mktemp("cri"))
    pause = _pause_image(tmp)
    had_var_lib_cni = os.path.exists("/var/lib/cni")
    d = engines.CriContainerd({"pyoci": PYOCI, "runc": shutil.which("runc")}, PAUSE_IMAGE,
                              tmp=os.path.join(tmp, "ctrd"))
    d.start()
    client = None
    try:
        d.import_image(pause)
        d.import_image(oci_image)
        client = Cri(d.sock)
        assert client.Version(version="v1").runtime_api_version == "v1"
        for ref in (PAUSE_IMAGE, IMAGE):
            assert client.ImageStatus(image=client.pb.ImageSpec(image=ref)).image.id, ref
        yield d, client
    finally:
        if client is not None:
            client.close()
        d.stop()
        alive = settle()
        remove_tag_cgroups()
    assert not alive, "engine processes still alive: %r" % alive
    assert had_var_lib_cni or not os.path.exists("/var/lib/cni"), "CNI state left in /var/lib/cni"


class Flow:
    """One flow's pods and containers under one handler, each CRI call
    timed under a step name (TIMINGS)."""

    def __init__(self, daemon, client, handler, flow, tmp):
        self.d, self.c, self.pb = daemon, client, client.pb
        self.handler, self.flow, self.tmp = handler, flow, tmp
        self.pods = []

    @contextmanager
    def step(self, name):
        t0 = time.monotonic()
        yield
        TIMINGS.setdefault((self.flow, name), {}).setdefault(self.handler, []).append(time.monotonic() - t0)

    # -- pods -----------------------------------------------------------------
    def ns(self, network="POD", pid="CONTAINER", ipc="POD"):
        pb = self.pb
        return pb.NamespaceOption(network=getattr(pb, network), pid=getattr(pb, pid), ipc=getattr(pb, ipc))

    def pod_config(self, name, network="POD", pid="CONTAINER", privileged=False, sysctls=None):
        pb = self.pb
        logs = os.path.join(self.tmp, "logs-" + name)
        os.makedirs(logs, exist_ok=True)
        return pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid="uid-%s-%s" % (self.handler, name),
                                           namespace="default"),
            # as the kubelet: no hostname for a pod in the node's network
            # (and UTS) namespace (runc and pyoci refuse one there)
            hostname=name if network != "NODE" else "", log_directory=logs,
            labels={"flow": self.flow},
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent="/%s/cri-%s-%s" % (TAG, self.handler, name),
                sysctls=sysctls or {},
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=self.ns(network, pid), privileged=privileged)))

    def run_pod(self, config):
        with self.step("run pod"):
            pod = self.c.RunPodSandbox(config=config, runtime_handler=self.handler).pod_sandbox_id
        self.pods.append(pod)
        return pod

    def pod_status(self, pod):
        r = self.c.PodSandboxStatus(pod_sandbox_id=pod, verbose=True)
        return r.status, json.loads(r.info["info"])

    def stop_remove_pod(self, pod):
        with self.step("stop pod"):
            self.c.StopPodSandbox(pod_sandbox_id=pod)
        with self.step("remove pod"):
            self.c.RemovePodSandbox(pod_sandbox_id=pod)
        self.pods.remove(pod)

    # -- containers -------------------------------------------------------------
    def container_config(self, name, command, pod_config, security=None, resources=None, mounts=()):
        pb = self.pb
        sc = security or pb.LinuxContainerSecurityContext()
        if not sc.HasField("namespace_options"):
            sc.namespace_options.CopyFrom(pod_config.linux.security_context.namespace_options)
        return pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name), image=pb.ImageSpec(image=IMAGE),
            command=list(command), log_path=name + ".log", mounts=list(mounts),
            linux=pb.LinuxContainerConfig(security_context=sc, resources=resources))

    def run_container(self, pod, pod_config, name, command, **kw):
        config = self.container_config(name, command, pod_config, **kw)
        with self.step("create"):
            cid = self.c.CreateContainer(pod_sandbox_id=pod, config=config, sandbox_config=pod_config).container_id
        with self.step("start"):
            self.c.StartContainer(container_id=cid)
        return cid

    def status(self, cid):
        r = self.c.ContainerStatus(container_id=cid, verbose=True)
        return r.status, json.loads(r.info["info"])

    def pid(self, cid):
        return self.status(cid)[1]["pid"]

    def exec(self, cid, *cmd, step="exec"):
        with self.step(step):
            r = self.c.ExecSync(container_id=cid, cmd=list(cmd), timeout=30)
        return r.exit_code, r.stdout.decode(), r.stderr.decode()

    def sh(self, cid, script, step="exec"):
        return self.exec(cid, "sh", "-c", script, step=step)

    def stop_remove(self, cid, timeout=10):
        with self.step("stop ctr"):
            self.c.StopContainer(container_id=cid, timeout=timeout)
        with self.step("remove ctr"):
            self.c.RemoveContainer(container_id=cid)

    # -- the whole module's cleanup ---------------------------------------------
    def cleanup(self):
        """Stop and remove whatever of this flow is left; returns its ids."""
        left = []
        for p in self.c.ListPodSandbox().items:
            if p.labels.get("flow") == self.flow and p.runtime_handler == self.handler:
                left.append(p.id)
                self.c.StopPodSandbox(pod_sandbox_id=p.id)
                self.c.RemovePodSandbox(pod_sandbox_id=p.id)
        return left


def _check_clean(daemon, client, handler, left):
    alive = settle()
    state = [n for n in _ids(daemon.runtime_root(handler))]
    remove_tag_cgroups()
    assert not left, "pods left: %r" % left
    assert not client.ListContainers().containers, "containers left"
    assert not alive, "engine processes still alive: %r" % alive
    assert not state, "%s state left in %s: %r" % (handler, daemon.runtime_root(handler), state)


def _ids(root):
    try:
        return [n for n in os.listdir(root) if not n.startswith("@")]
    except FileNotFoundError:
        return []


@pytest.fixture(params=HANDLERS)
def cri(request, cri_daemon, host_guard, tmp_path):
    """A Flow for one handler; afterwards nothing of it is left: no pod or
    container in containerd, no shim, no runtime state, no cgroup (and
    host_guard: no mount, process or cgroup on the host)."""
    daemon, client = cri_daemon
    flow = Flow(daemon, client, request.param, request.node.originalname.replace("test_", ""), str(tmp_path))
    yield flow
    _check_clean(daemon, client, flow.handler, flow.cleanup())


def _summary():
    if not TIMINGS:
        return None
    lines = ["%-40s %-11s %9s %9s %7s" % ("flow", "step", "pyoci ms", "runc ms", "ratio")]
    for (flow, step), by in sorted(TIMINGS.items(), key=lambda kv: kv[0]):
        ms = {h: 1000 * sum(v) / len(v) for h, v in by.items()}
        ratio = ("%.2f" % (ms["pyoci"] / ms["runc"])) if ms.get("runc") and "pyoci" in ms else "-"
        lines.append("%-40s %-11s %9s %9s %7s" % (flow, step, "%.0f" % ms["pyoci"] if "pyoci" in ms else "-",
                                                  "%.0f" % ms["runc"] if "runc" in ms else "-", ratio))
    return "CRI: mean time of each step, pyoci against runc", lines


conftest.SUMMARY.append(_summary)


# -- helpers on the host side -------------------------------------------------------

def cgroup_dir(pid, ctrl):
    """pid's cgroup directory for v1 controller ctrl; on a cgroup v2 host
    its cgroup2 directory."""
    for ctrls, path in cgroup_of(pid).items():
        if ctrl in ctrls.split(",") or (not ctrls and conftest.unified()):
            return conftest.cgroup_path(ctrl, path)
    raise AssertionError("pid %d has no %s cgroup" % (pid, ctrl))


def status_field(pid, name):
    for line in read("/proc/%d/status" % pid).splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].split()


def alive(pid):
    try:
        data = read("/proc/%d/stat" % pid)
    except (FileNotFoundError, ProcessLookupError):
        return False
    return data[data.rindex(")") + 2] != "Z"


def link_names(ip_link_output):
    return sorted(l.split(":")[1].strip().split("@")[0] for l in ip_link_output.splitlines())


def cri_log(path):
    """[(stream, text)] of a CRI log file (TIMESTAMP STREAM TAG TEXT)."""
    out = []
    for line in read(path).splitlines():
        ts, stream, tag, text = line.split(" ", 3)
        assert re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)$", ts), line
        assert tag == "F", line
        out.append((stream, text))
    return out


TRAP = "trap 'echo got-term; exit 0' TERM; "


# -- flows -----------------------------------------------------------------------

def test_pod_run_logs_exec_stop_remove(cri):
    cfg = cri.pod_config("web")
    pod = cri.run_pod(cfg)
    st, info = cri.pod_status(pod)
    assert st.state == cri.pb.SANDBOX_READY and st.runtime_handler == cri.handler
    assert st.network.ip.startswith(engines.CriContainerd.SUBNET.rsplit(".", 1)[0] + "."), st.network.ip
    sandbox = info["pid"]
    assert "containerd-shim-runc-v2" in engines.cmdline(engines.ppid(sandbox))
    # (runc's start returns before its init executes the program)
    assert wait_for(lambda: engines.cmdline(sandbox) == "/pause"), engines.cmdline(sandbox)
    # the CRI asks -998 for a sandbox; restrict_oom_score_adj makes it no
    # lower than containerd's own, which root without CAP_SYS_RESOURCE can set
    assert read("/proc/%d/oom_score_adj" % sandbox) == read("/proc/%d/oom_score_adj" % cri.d.pid)
    # the sandbox is in the cgroup the CRI asked for (cgroup_parent/ID)
    parent = "/%s/cri-%s-web" % (TAG, cri.handler)
    mem = "" if conftest.unified() else "memory"   # cgroup v2: the one hierarchy
    assert cgroup_of(sandbox)[mem] == parent + "/" + pod

    cid = cri.run_container(pod, cfg, "app", ["sh", "-c", TRAP + "echo to-stdout; echo to-stderr >&2; "
                                                                 "sleep 300 & wait"])
    status, info = cri.status(cid)
    assert status.state == cri.pb.CONTAINER_RUNNING
    pid = info["pid"]
    assert info["runtimeType"] == "io.containerd.runc.v2"
    assert cgroup_of(pid)[mem] == parent + "/" + cid
    assert "containerd-shim-runc-v2" in engines.cmdline(engines.ppid(pid))
    # its own pid namespace (pid CONTAINER), the pod's network namespace
    assert status_field(pid, "NSpid")[-1] == "1"
    assert os.readlink("/proc/%d/ns/net" % pid) == os.readlink("/proc/%d/ns/net" % sandbox)
    assert os.readlink("/proc/%d/ns/pid" % pid) != os.readlink("/proc/%d/ns/pid" % sandbox)
    log = os.path.join(cfg.log_directory, "app.log")
    assert wait_for(lambda: os.path.exists(log) and len(cri_log(log)) == 2), read(log)
    assert sorted(cri_log(log)) == [("stderr", "to-stderr"), ("stdout", "to-stdout")]

    # ExecSync: output, exit status, the pod's address on eth0
    assert cri.sh(cid, "echo out; echo err >&2; exit 3") == (3, "out\n", "err\n")
    code, out, _ = cri.exec(cid, "ip", "-4", "-o", "addr", "show", "eth0")
    assert code == 0 and " %s/" % st.network.ip in out, out
    # Exec: the streaming call `kubectl exec` uses, with and without a terminal
    from cri_client import CriError, stream

    netns = "/proc/%d/ns/net" % cri.d.pid
    with cri.step("exec stream"):
        url = cri.c.Exec(container_id=cid, cmd=["sh", "-c", "echo streamed; echo e >&2; exit 4"],
                         stdout=True, stderr=True).url
        assert stream(url, netns) == (b"streamed\n", b"e\n", 4)
    # (what a terminal exec prints is checked in a file: containerd 1.6's
    # shim loses a tty exec's output now and then, for runc as for pyoci,
    # when it shuts the console down at the exit)
    with cri.step("exec tty"):
        url = cri.c.Exec(container_id=cid, cmd=["sh", "-c", "tty >/tmp/tty; test -t 0 && test -t 1 && "
                                                "echo all-ttys >>/tmp/tty; tty; exit 5"],
                         tty=True, stdout=True).url
        out, err, code = stream(url, netns)
    assert code == 5 and err == b"", (out, err, code)
    code, tty, _ = cri.exec(cid, "cat", "/tmp/tty")
    assert re.match(r"^/dev/pts/\d+\nall-ttys\n$", tty), tty
    assert out in (b"", tty.splitlines()[0].encode() + b"\r\n"), (out, tty)

    with pytest.raises(CriError) as e:
        cri.exec(cid, "nosuchcommand", step="exec fail")
    assert 'exec: "nosuchcommand": executable file not found in $PATH' in e.value.details, e.value.details

    with cri.step("stop ctr"):
        cri.c.StopContainer(container_id=cid, timeout=10)
    status = cri.status(cid)[0]
    assert (status.state, status.exit_code, status.reason) == (cri.pb.CONTAINER_EXITED, 0, "Completed")
    with cri.step("remove ctr"):
        cri.c.RemoveContainer(container_id=cid)
    assert not alive(pid)
    assert not os.path.exists(conftest.cgroup_path("memory", os.path.join(parent, cid)))
    assert wait_for(lambda: ("stdout", "got-term") in cri_log(log)), cri_log(log)
    cri.stop_remove_pod(pod)
    assert not alive(sandbox)


def test_stats_and_update(cri):
    cfg = cri.pod_config("stats")
    pod = cri.run_pod(cfg)
    res = cri.pb.LinuxContainerResources(memory_limit_in_bytes=256 * MiB, cpu_shares=1024, oom_score_adj=500)
    cid = cri.run_container(pod, cfg, "app", ["sh", "-c", TRAP + "sleep 300 & wait"], resources=res)
    pid = cri.pid(cid)
    assert read("/proc/%d/oom_score_adj" % pid) == "500\n"
    mem = cgroup_dir(pid, "memory")
    v2 = conftest.unified()
    limit = "/memory.max" if v2 else "/memory.limit_in_bytes"
    assert int(read(mem + limit)) == 256 * MiB
    # burn some CPU in the container, then the stats the shim reads from its cgroup
    assert cri.sh(cid, "i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; echo done")[1] == "done\n"
    with cri.step("stats"):
        s = cri.c.ContainerStats(container_id=cid).stats
    assert s.attributes.id == cid
    cpu = s.cpu.usage_core_nano_seconds.value
    if v2:
        used = int(dict(l.split() for l in read(cgroup_dir(pid, "cpu") + "/cpu.stat").splitlines())["usage_usec"]) * 1000
    else:
        used = int(read(cgroup_dir(pid, "cpuacct") + "/cpuacct.usage"))
    assert 0 < cpu <= used
    assert s.memory.working_set_bytes.value > 0 and s.memory.usage_bytes.value > 0

    cpu_dir = cgroup_dir(pid, "cpu")
    res = cri.pb.LinuxContainerResources(memory_limit_in_bytes=128 * MiB, cpu_period=100000, cpu_quota=50000,
                                         cpu_shares=512)
    with cri.step("update"):
        cri.c.UpdateContainerResources(container_id=cid, linux=res)
    assert int(read(mem + limit)) == 128 * MiB
    if v2:   # the runtime-spec's shares -> weight conversion
        assert read(cpu_dir + "/cpu.max") == "50000 100000\n"
        assert int(read(cpu_dir + "/cpu.weight")) == 1 + ((512 - 2) * 9999) // 262142
    else:
        assert int(read(cpu_dir + "/cpu.cfs_quota_us")) == 50000
        assert int(read(cpu_dir + "/cpu.cfs_period_us")) == 100000
        assert int(read(cpu_dir + "/cpu.shares")) == 512
    # the container sees its own cgroup's limit
    inside = "/sys/fs/cgroup/memory.max" if v2 else "/sys/fs/cgroup/memory/memory.limit_in_bytes"
    assert cri.sh(cid, "cat " + inside) == (0, "%d\n" % (128 * MiB), "")
    cri.stop_remove(cid)
    cri.stop_remove_pod(pod)


def test_host_network_and_host_pid(cri):
    cfg = cri.pod_config("hostns", network="NODE", pid="NODE")
    pod = cri.run_pod(cfg)
    cid = cri.run_container(pod, cfg, "app", ["sh", "-c", TRAP + "sleep 300 & wait"])
    pid = cri.pid(cid)
    # the node's network namespace is containerd's (private to these tests)
    assert os.readlink("/proc/%d/ns/net" % pid) == os.readlink("/proc/%d/ns/net" % cri.d.pid)
    assert os.readlink("/proc/%d/ns/net" % pid) != os.readlink("/proc/self/ns/net")
    code, out, _ = cri.exec(cid, "ip", "-o", "link", "show")
    node = engines._run(["nsenter", "--net=/proc/%d/ns/net" % cri.d.pid, "ip", "-o", "link", "show"])
    assert code == 0 and node.returncode == 0, (out, node.stderr)
    assert link_names(out) == link_names(node.stdout), (out, node.stdout)
    # the host's pid namespace: the container sees containerd by its host pid
    assert os.readlink("/proc/%d/ns/pid" % pid) == os.readlink("/proc/self/ns/pid")
    assert cri.exec(cid, "cat", "/proc/%d/comm" % cri.d.pid) == (0, "containerd\n", "")
    assert cri.exec(cid, "cat", "/proc/1/comm") == (0, read("/proc/1/comm"), "")
    # stop: the shell exits on TERM and leaves its child (no pid namespace
    # of its own to take it down), which holds the output pipe: the shim's
    # `kill --all` must kill it, or the shim waits out its I/O timeout (2 s)
    left = [int(x) for x in read(cgroup_dir(pid, "pids") + "/cgroup.procs").split() if int(x) != pid]
    assert len(left) == 1
    t0 = time.monotonic()
    cri.stop_remove(cid)
    took = time.monotonic() - t0
    assert not alive(pid) and not alive(left[0])
    assert took < 1.5, "stopping the container took %.1f s" % took
    cri.stop_remove_pod(pod)


def test_security_context_and_sysctls(cri):
    pb = cri.pb
    sysctls = {"kernel.shm_rmid_forced": "1", "net.ipv4.ip_unprivileged_port_start": "80"}
    cfg = cri.pod_config("sec", sysctls=sysctls)
    pod = cri.run_pod(cfg)
    restricted = pb.LinuxContainerSecurityContext(
        run_as_user=pb.Int64Value(value=1000), run_as_group=pb.Int64Value(value=1000),
        readonly_rootfs=True, no_new_privs=True,
        seccomp=pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault))
    r = cri.run_container(pod, cfg, "restricted", ["sh", "-c", TRAP + "sleep 300 & wait"], security=restricted)
    p = cri.run_container(pod, cfg, "plain", ["sh", "-c", TRAP + "sleep 300 & wait"])
    rpid, ppid = cri.pid(r), cri.pid(p)
    # run-as-user, seen inside and from the host
    assert cri.exec(r, "id", "-u")[1] == "1000\n" and cri.exec(r, "id", "-g")[1] == "1000\n"
    assert status_field(rpid, "Uid") == ["1000"] * 4 and status_field(rpid, "Gid") == ["1000"] * 4
    assert cri.exec(p, "id", "-u")[1] == "0\n"
    # read-only rootfs
    code, _, err = cri.exec(r, "touch", "/probe")
    assert code != 0 and "Read-only file system" in err, err
    assert cri.exec(p, "touch", "/probe")[0] == 0
    # NoNewPrivs and seccomp RuntimeDefault (containerd's default profile)
    assert status_field(rpid, "NoNewPrivs") == ["1"] and status_field(rpid, "Seccomp") == ["2"]
    assert status_field(ppid, "NoNewPrivs") == ["0"] and status_field(ppid, "Seccomp") == ["0"]
    code, _, err = cri.exec(r, "busybox", "unshare", "-U", "true")
    assert code != 0 and "Operation not permitted" in err, err
    assert cri.exec(p, "busybox", "unshare", "-U", "true")[0] == 0
    # the pod's sysctls, in both containers
    for cid in (r, p):
        assert cri.exec(cid, "cat", "/proc/sys/kernel/shm_rmid_forced", "/proc/sys/net/ipv4/ip_unprivileged_port_start") \
            == (0, "1\n80\n", "")
    cri.stop_remove(r)
    cri.stop_remove(p)
    cri.stop_remove_pod(pod)


def test_mount_propagation(cri):
    """A Bidirectional mount (rootfsPropagation rshared, the mount rshared)
    and a HostToContainer one (rslave): a mount made inside the first
    reaches the host, one made on the host under the second reaches the
    container. The "host" is containerd's mount namespace, where the
    shared directory is a shared mount (the CRI requires it)."""
    pb = cri.pb
    host = os.path.join(cri.d.shared, cri.handler)
    bidi, h2c = os.path.join(host, "bidi"), os.path.join(host, "h2c")
    for d in (bidi, h2c):
        os.makedirs(os.path.join(d, "sub"))
    cfg = cri.pod_config("mounts", privileged=True)
    pod = cri.run_pod(cfg)
    mounts = [pb.Mount(container_path="/mnt/bidi", host_path=bidi, propagation=pb.PROPAGATION_BIDIRECTIONAL),
              pb.Mount(container_path="/mnt/h2c", host_path=h2c, propagation=pb.PROPAGATION_HOST_TO_CONTAINER)]
    cid = cri.run_container(pod, cfg, "app", ["sh", "-c", TRAP + "sleep 300 & wait"], mounts=mounts,
                            security=pb.LinuxContainerSecurityContext(privileged=True))
    try:
        # inside -> host
        assert cri.sh(cid, "mount -t tmpfs inside-%s /mnt/bidi/sub && touch /mnt/bidi/sub/from-inside"
                      % cri.handler) == (0, "", "")
        p = cri.d.nsenter("cat", os.path.join(bidi, "sub", "from-inside"))
        assert p.returncode == 0, p.stderr
        assert " %s/sub " % bidi in read("/proc/%d/mountinfo" % cri.d.pid)
        # host -> inside
        p = cri.d.nsenter("sh", "-c", "mount -t tmpfs outside-%s %s/sub && touch %s/sub/from-host"
                          % (cri.handler, h2c, h2c))
        assert p.returncode == 0, p.stderr
        assert cri.exec(cid, "cat", "/mnt/h2c/sub/from-host") == (0, "", "")
        # a HostToContainer mount does not propagate back
        assert cri.sh(cid, "mount -t tmpfs back-%s /mnt/h2c && echo ok" % cri.handler) == (0, "ok\n", "")
        assert "back-" + cri.handler not in read("/proc/%d/mountinfo" % cri.d.pid)
        # not beyond containerd's namespace: the test host sees none of it
        assert "inside-" + cri.handler not in read("/proc/self/mountinfo")
        cri.stop_remove(cid)
        cri.stop_remove_pod(pod)
    finally:
        for d in (bidi, h2c):
            cri.d.nsenter("umount", os.path.join(d, "sub"))
        shutil.rmtree(host, ignore_errors=True)


@pytest.fixture
def cri_both(cri_daemon, host_guard, tmp_path, request):
    """A Flow for each handler, runc first."""
    daemon, client = cri_daemon
    name = request.node.originalname.replace("test_", "")
    flows = {h: Flow(daemon, client, h, name, str(tmp_path / h)) for h in ("runc", "pyoci")}
    yield flows
    for h, flow in flows.items():
        _check_clean(daemon, client, h, flow.cleanup())


def test_shared_pid_namespace_stop_with_children(cri_both):
    """Two containers in the pod's pid namespace (pause is its pid 1): each
    sees the other's processes; stopping one whose shell leaves children
    (they are the pod's now, and hold the container's output pipe) kills
    them, as fast with pyoci as with runc."""
    took = {}
    for handler, cri in cri_both.items():
        cfg = cri.pod_config("shared", pid="POD")
        pod = cri.run_pod(cfg)
        a = cri.run_container(pod, cfg, "a", ["sh", "-c", "sleep 301 & sleep 302 & echo started; wait"])
        b = cri.run_container(pod, cfg, "b", ["sh", "-c", TRAP + "sleep 303 & wait"])
        apid, bpid = cri.pid(a), cri.pid(b)
        assert os.readlink("/proc/%d/ns/pid" % apid) == os.readlink("/proc/%d/ns/pid" % bpid)
        code, out, _ = cri.exec(b, "ps", "-o", "pid,args")
        procs = {l.split(None, 1)[1]: int(l.split()[0]) for l in out.splitlines()[1:]}
        assert procs.get("/pause") == 1, out
        assert "sleep 301" in procs and "sleep 302" in procs and "sleep 303" in procs, out
        children = [int(x) for x in read(cgroup_dir(apid, "pids") + "/cgroup.procs").split() if int(x) != apid]
        assert len(children) == 2
        t0 = time.monotonic()
        cri.stop_remove(a)
        took[handler] = time.monotonic() - t0
        assert not any(alive(x) for x in [apid] + children)
        out = cri.exec(b, "ps", "-o", "args")[1]
        assert "sleep 301" not in out and "sleep 303" in out, out
        cri.stop_remove(b)
        cri.stop_remove_pod(pod)
    # the shim waits 2 s for the output pipe when `kill --all` fails
    assert took["pyoci"] <= 2 * took["runc"] + 0.5, took


def test_readme_kubernetes_config(tmp_path):
    """The README's config.toml is accepted by containerd and sets what the
    daemon of these tests runs with (the pyoci runtime's shim type and
    BinaryName, restrict_oom_score_adj) and SystemdCgroup = true (what the
    kubelet's systemd driver pairs with; test_systemd_engines.py runs it
    in the guest); its RuntimeClass and pod name that runtime as their
    handler."""
    require("containerd")
    text = read(os.path.join(conftest.REPO, "README.md"))
    section = text.split("### Kubernetes", 1)[1].split("\n## ", 1)[0]
    toml = re.findall(r"```toml\n(.*?)```", section, re.S)
    yaml = re.findall(r"```yaml\n(.*?)```", section, re.S)
    assert toml and yaml, "README's Kubernetes section lacks its config.toml or manifests"
    cfg = tmp_path / "config.toml"
    cfg.write_text(toml[0].replace("/usr/local/bin/pyoci", PYOCI))
    p = engines._run(["containerd", "--config", str(cfg), "config", "dump"])
    assert p.returncode == 0, p.stderr
    assert re.search(r"^\s*restrict_oom_score_adj = true$", p.stdout, re.M)
    table = p.stdout.split('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pyoci]')[1].split("\n\n")[0]
    assert re.search(r'^\s*runtime_type = "io.containerd.runc.v2"$', table, re.M), table
    opts = p.stdout.split('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.pyoci.options]')[1]
    opts = opts.split("[")[0]
    assert re.search(r'^\s*BinaryName = "%s"$' % re.escape(PYOCI), opts, re.M), opts
    assert re.search(r"^\s*SystemdCgroup = true$", opts, re.M), opts
    assert re.search(r"^handler: pyoci\b", yaml[0], re.M) and "runtimeClassName: pyoci" in yaml[0]
