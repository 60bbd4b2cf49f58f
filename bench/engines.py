"""Real container engines, run privately for tests and benchmarks.

`Containerd` starts a containerd daemon of its own (config, root, state and
sockets under a temporary directory; the CRI plugin off) and stops it by pid.
`CriContainerd` is one with the CRI plugin on (Kubernetes' node API), runtime
handlers, CNI networking and a network namespace of its own.
It runs in a private mount namespace, so the snapshot and rootfs mounts it and
its shims make are never seen on the host, and die with it. In that namespace
every cgroup v1 hierarchy the caller belongs to but that is not mounted (on
this kind of host: hugetlb) is mounted under the temporary directory: the
containerd cgroups library fails `ctr task metrics` when a hierarchy listed in
/proc/PID/cgroup has no mount, for runc as for any runtime.

`Podman` runs podman with --root/--runroot/--tmpdir in a temporary directory,
the vfs storage driver, the cgroupfs manager, file events, file locks and a
private containers.conf and storage.conf, so it never touches the machine's
own storage; containers run with `--rootfs DIR`.

The runtime under test is handed over as a path: `ctr run --runc-binary PATH`,
a `runc` in containerd's PATH (what the shim looks up when no BinaryName is
set), or `podman --runtime PATH`.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import make_bundle
import make_oci_image

IMAGE = make_oci_image.DEFAULT_NAME
RUN_CONTAINERD = "/run/containerd"


def _run(argv, timeout=60, env=None, input=None, pass_fds=(), cwd=None):
    """Run argv; stdout/stderr through files, not pipes: a daemonised helper
    (conmon, a shim) that inherits them must not hold the caller up."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL if input is None else None,
                           input=input, text=True, timeout=timeout, env=env, pass_fds=pass_fds, cwd=cwd)
        out.seek(0)
        err.seek(0)
        p.stdout, p.stderr = out.read(), err.read()
    return p


def _unmounted_v1_hierarchies():
    """v1 controllers this process is in whose hierarchy is mounted nowhere."""
    listed = []
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, _ = line.rstrip("\n").split(":", 2)
            if ctrls and not ctrls.startswith("name="):
                listed.append(ctrls)
    mounted = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            _, _, right = line.partition(" - ")
            r = right.split()
            if r and r[0] == "cgroup":
                mounted.update(r[2].split(","))
    return [c for c in listed if not set(c.split(",")) & mounted]


def remove_empty_cgroups(prefix):
    """rmdir, deepest first, the empty cgroups whose top directory (under a
    hierarchy's root) starts with prefix: the parents an engine made for its
    namespace or --cgroup-parent (a runtime's delete removes only the
    container's own cgroup, as runc's does). Returns the ones the kernel
    still called busy although no process nor cgroup is left in them (a v1
    cgroup whose last task has just exited is released a moment later)."""
    import errno

    base = "/sys/fs/cgroup"
    busy = []
    # v1: a hierarchy per directory of base; v2: base is the hierarchy
    for h in [os.path.join(base, c) for c in os.listdir(base)] + [base]:
        if os.path.islink(h) or not os.path.isdir(h):
            continue
        for name in os.listdir(h):
            top = os.path.join(h, name)
            if not name.startswith(prefix) or not os.path.isdir(top):
                continue
            for dirpath, dirnames, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError as e:
                    if e.errno == errno.EBUSY and not _populated(dirpath):
                        busy.append(dirpath)
    return busy


def _populated(d):
    try:
        if any(e.is_dir(follow_symlinks=False) for e in os.scandir(d)):
            return True
        with open(os.path.join(d, "cgroup.procs")) as f:
            return bool(f.read().strip())
    except OSError:
        return False


def pids_with_cmdline(needle):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % name, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmd:
            out.append(int(name))
    return out


def ppid(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return int(data[data.rindex(")") + 2:].split()[1])


def cmdline(pid):
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().split(b"\0")[0].decode(errors="replace")


def stop_slice(name):
    """Stop a slice systemd made for an engine's cgroup parent (and reset
    it), so that nothing of it stays loaded."""
    subprocess.run(["systemctl", "stop", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["systemctl", "reset-failed", name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Containerd:
    def __init__(self, namespace="pyoci-e2e", tmp=None, path_runtime=None, systemd_cgroup=False):
        """path_runtime: a runtime installed as `runc` first in containerd's
        PATH (for flows where ctr drops --runc-binary, e.g. --no-pivot).
        systemd_cgroup: `ctr run` asks the runc shim for SystemdCgroup (the
        runtime gets --systemd-cgroup) and the cgroup SLICE:NAMESPACE:ID."""
        self.namespace = namespace
        self.systemd_cgroup = systemd_cgroup
        self.slice = "system.slice"
        self.dir = tmp or tempfile.mkdtemp(prefix="pyoci-ctrd-")
        self.sock = os.path.join(self.dir, "containerd.sock")
        self.log = os.path.join(self.dir, "containerd.log")
        self.proc = None
        self.path_runtime = path_runtime

    # -- life --------------------------------------------------------------
    def start(self, timeout=20):
        d = self.dir
        os.makedirs(d, exist_ok=True)
        cfg = os.path.join(d, "config.toml")
        with open(cfg, "w") as f:
            f.write(self.config_toml())
        env = dict(os.environ)
        if self.path_runtime:
            bindir = os.path.join(d, "bin")
            os.makedirs(bindir, exist_ok=True)
            os.symlink(self.path_runtime, os.path.join(bindir, "runc"))
            env["PATH"] = bindir + ":" + env.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        script = " && ".join(self.setup_commands() + ['exec containerd --config "$0"'])
        with open(self.log, "w") as logf:
            self.proc = subprocess.Popen(
                ["unshare"] + self.UNSHARE + ["sh", "-c", script, cfg],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env, cwd=d,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("containerd exited (%s): %s" % (self.proc.returncode, self.log_text()[-2000:]))
            if os.path.exists(self.sock) and self.ctr("version").returncode == 0:
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("containerd did not come up: " + self.log_text()[-2000:])

    # the runtime's --root is /run/containerd/runc/NAMESPACE (no Root option)
    RUNC_ROOT_FIXED = True

    # the namespaces containerd runs in (unshare(1) flags; no --fork: the
    # daemon is the Popen's process)
    UNSHARE = ["--mount", "--propagation", "private"]

    def setup_commands(self):
        """Shell commands run in the new namespaces before containerd: mount
        each v1 hierarchy this process is in that is mounted nowhere."""
        out = []
        for ctrls in _unmounted_v1_hierarchies():
            mp = os.path.join(self.dir, "cgroup-" + ctrls.replace(",", "-"))
            os.makedirs(mp, exist_ok=True)
            out.append("mount -t cgroup -o %s pyoci-e2e-%s %s" % (ctrls, ctrls.replace(",", "-"), mp))
        return out

    def config_toml(self):
        d = self.dir
        return "\n".join([
            "version = 2",
            'root = "%s/root"' % d,
            'state = "%s/state"' % d,
            "disabled_plugins = [%s]" % ", ".join('"%s"' % p for p in self.DISABLED),
            "[grpc]", '  address = "%s"' % self.sock,
            "[ttrpc]", '  address = "%s.ttrpc"' % self.sock,
            "[debug]", '  address = ""', '  level = "info"',
            "[metrics]", '  address = ""',
            "",
        ])

    DISABLED = ("io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",
                "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp",
                "io.containerd.internal.v1.opt")

    def log_text(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def clean_namespace(self):
        """Kill and delete every task and container left in the namespace;
        returns the ids that were left."""
        left = []
        for line in self.ctr("task", "ls", "-q").stdout.split():
            left.append(line)
            self.ctr("task", "kill", "-a", "-s", "SIGKILL", line)
        for cid in left:
            for _ in range(100):
                if self.ctr("task", "delete", cid).returncode == 0:
                    break
                self.ctr("task", "delete", "--force", cid)
                time.sleep(0.05)
        for cid in self.ctr("container", "ls", "-q").stdout.split():
            if cid not in left:
                left.append(cid)
            self.ctr("container", "delete", cid)
        return left

    def stop(self):
        if self.proc is None:
            return
        try:
            self.clean_namespace()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # shims are started with the daemon's address on their command line
        for pid in pids_with_cmdline("-address " + self.sock):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)
        remove_empty_cgroups(self.namespace)
        # containerd 1.6 keeps some paths fixed whatever its config says: the
        # runc shim's --root (/run/containerd/runc/NAMESPACE), shim sockets
        # (/run/containerd/s) and ctr's fifos (/run/containerd/fifo). Remove
        # what is left of them once empty (rmdir: never another's files; the
        # runtime root of this daemon's own namespace goes with its caches).
        if self.RUNC_ROOT_FIXED:
            shutil.rmtree(os.path.join(RUN_CONTAINERD, "runc", self.namespace), ignore_errors=True)
        for d in (os.path.join(RUN_CONTAINERD, "runc", self.namespace), os.path.join(RUN_CONTAINERD, "runc"),
                  os.path.join(RUN_CONTAINERD, "s"), os.path.join(RUN_CONTAINERD, "fifo"), RUN_CONTAINERD):
            try:
                os.rmdir(d)
            except OSError:
                pass

    # -- commands ----------------------------------------------------------
    def ctr(self, *args, timeout=60, **kw):
        return _run(self.ctr_argv(*args), timeout=timeout, **kw)

    def ctr_argv(self, *args):
        """ctr's argv; `run` and `task exec` get --fifo-dir in this daemon's
        directory (ctr leaves a detached exec's fifos behind, by default in
        /run/containerd/fifo)."""
        args = [str(a) for a in args]
        if args[:1] == ["run"]:
            if self.systemd_cgroup and "--cgroup" not in args:
                cid = _ctr_run_id(args[1:])
                args[1:1] = ["--runc-systemd-cgroup", "--cgroup", "%s:%s:%s" % (self.slice, self.namespace, cid)]
            args[1:1] = ["--fifo-dir", os.path.join(self.dir, "fifo")]
        elif args[:2] in (["task", "exec"], ["t", "exec"]):
            args[2:2] = ["--fifo-dir", os.path.join(self.dir, "fifo")]
        return ["ctr", "--address", self.sock, "--namespace", self.namespace] + args

    def import_image(self, tar):
        p = self.ctr("image", "import", tar, timeout=120)
        if p.returncode != 0:
            raise RuntimeError("ctr image import failed: " + p.stderr)

    def bundle(self, cid):
        return os.path.join(self.dir, "state", "io.containerd.runtime.v2.task", self.namespace, cid)


class CriContainerd(Containerd):
    """A private containerd with its CRI plugin (Kubernetes' node API; the
    namespace is always k8s.io), in a network namespace of its own too.

    handlers: {name: runtime binary}, each a runc v2 shim runtime whose
    `BinaryName` is the binary and whose `Root` (the runtime's --root, per
    namespace) is under the temporary directory. Pods get addresses from
    CNI (Debian's containernetworking-plugins: bridge + host-local, and
    loopback) in that network namespace only; the bridge and the veths die
    with it. sandbox_image must be in the k8s.io namespace before the first
    pod (import_image): nothing is pulled.

    What would leave host state is kept inside the daemon's namespaces: the
    pods' network namespaces are bind-mounted under the state directory
    (netns_mounts_under_state_dir), host-local's leases are under the
    temporary directory, and /var/lib is an overlay whose upper layer is
    there too (libcni caches results in /var/lib/cni). `shared` is a
    directory made a shared mount in the daemon's mount namespace (the
    "host" of its pods): the host path for Bidirectional and
    HostToContainer mounts, which the CRI requires to be shared (or slave).
    restrict_oom_score_adj is on: root here lacks CAP_SYS_RESOURCE and
    cannot lower oom_score_adj below its own (the CRI asks -998 for a
    sandbox).
    """
    RUNC_ROOT_FIXED = False
    UNSHARE = ["--mount", "--net", "--propagation", "private"]
    DISABLED = tuple(p for p in Containerd.DISABLED if p != "io.containerd.grpc.v1.cri")
    CNI_BIN = "/usr/lib/cni"
    SUBNET = "10.88.0.0/24"

    def __init__(self, handlers, sandbox_image, tmp=None, default_handler=None, systemd_cgroup=False):
        """systemd_cgroup: every handler gets SystemdCgroup = true (the
        kubelet's systemd cgroup driver: pod cgroup parents are slices)."""
        super().__init__(namespace="k8s.io", tmp=tmp, systemd_cgroup=systemd_cgroup)
        self.handlers = dict(handlers)
        self.sandbox_image = sandbox_image
        self.default_handler = default_handler or next(iter(self.handlers))
        self.shared = os.path.join(self.dir, "shared")

    def runtime_root(self, handler):
        """The runtime's --root for this daemon's pods (Root/NAMESPACE)."""
        return os.path.join(self.dir, "rt-" + handler, self.namespace)

    def setup_commands(self):
        d = self.dir
        for sub in ("shared", "varlib-upper", "varlib-work", "net.d", "cni-ipam"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        with open(os.path.join(d, "net.d", "10-pyoci.conflist"), "w") as f:
            f.write(self.cni_conflist())
        return super().setup_commands() + [
            "ip link set lo up",
            "mount -t overlay pyoci-e2e-varlib -o lowerdir=/var/lib,upperdir=%s/varlib-upper,workdir=%s/varlib-work "
            "/var/lib" % (d, d),
            "mount --bind %s %s" % (self.shared, self.shared),
            "mount --make-shared %s" % self.shared,
        ]

    def cni_conflist(self):
        return json.dumps({
            "cniVersion": "1.0.0",
            "name": "pyoci-e2e",
            "plugins": [{
                "type": "bridge", "bridge": "pyoci-cni0", "isGateway": True, "ipMasq": False,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": self.SUBNET}]],
                         "routes": [{"dst": "0.0.0.0/0"}],
                         "dataDir": os.path.join(self.dir, "cni-ipam")},
            }],
        }, indent=1)

    def config_toml(self):
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        lines = [
            "[%s]" % cri,
            '  sandbox_image = "%s"' % self.sandbox_image,
            "  restrict_oom_score_adj = true",
            "  netns_mounts_under_state_dir = true",
            "  enable_selinux = false",
            '  stream_server_address = "127.0.0.1"',
            '  stream_server_port = "0"',
            "[%s.containerd]" % cri,
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "%s"' % self.default_handler,
        ]
        for name, binary in self.handlers.items():
            lines += [
                "[%s.containerd.runtimes.%s]" % (cri, name),
                '  runtime_type = "io.containerd.runc.v2"',
                "[%s.containerd.runtimes.%s.options]" % (cri, name),
                '  BinaryName = "%s"' % binary,
                '  Root = "%s"' % os.path.dirname(self.runtime_root(name)),
                "  SystemdCgroup = %s" % ("true" if self.systemd_cgroup else "false"),
            ]
        lines += [
            "[%s.cni]" % cri,
            '  bin_dir = "%s"' % self.CNI_BIN,
            '  conf_dir = "%s/net.d"' % self.dir,
            "  max_conf_num = 1",
            "",
        ]
        return super().config_toml() + "\n".join(lines)

    @property
    def pid(self):
        return self.proc.pid

    def nsenter(self, *args, timeout=30):
        """Run a command in the daemon's mount namespace (the pods' host)."""
        return _run(["nsenter", "--mount=/proc/%d/ns/mnt" % self.pid, "--"] + [str(a) for a in args],
                    timeout=timeout)
def systemd_host():
    """systemd is PID 1 and the controllers are on cgroup v2: where engines
    use systemd's cgroup manager by default (podman's cgroup_manager,
    containerd's SystemdCgroup)."""
    if not os.path.isdir("/run/systemd/system"):
        return False
    with open("/proc/self/cgroup") as f:
        return all(line.split(":")[1] in ("", "name=systemd") for line in f)


# `ctr run` flags that take a value (containerd 1.6), to find IMAGE and ID
_CTR_RUN_VALUED = {"--runc-binary", "--runtime", "--runc-root", "--fifo-dir", "--cgroup", "--snapshotter",
                   "--snapshotter-label", "--config", "-c", "--cwd", "--env", "--env-file", "--label",
                   "--mount", "--user", "-u", "--pid-file", "--log-uri", "--runtime-config-path", "--platform",
                   "--memory-limit", "--device", "--seccomp-profile", "--apparmor-profile", "--hostname",
                   "--with-ns", "--cpus", "--cpu-shares", "--uidmap", "--gidmap", "--annotation",
                   "--rootfs-propagation", "--cni-plugin", "--gpus", "--cap-add", "--cap-drop",
                   "--runtime-config", "--blockio-config-file", "--blockio-class", "--rdt-class",
                   "--sandbox"}


def _ctr_run_id(args):
    """The container ID of `ctr run [FLAGS] IMAGE ID [CMD...]`."""
    pos, i = [], 0
    while i < len(args) and len(pos) < 2:
        a = args[i]
        if a.startswith("-") and "=" not in a and a in _CTR_RUN_VALUED:
            i += 2
            continue
        if not a.startswith("-"):
            pos.append(a)
        i += 1
    if len(pos) < 2:
        raise ValueError("ctr run %r: no IMAGE ID" % (args,))
    return pos[1]


class Podman:
    def __init__(self, runtime, tmp=None, cgroup_parent=None, supports_json=True, cgroup_manager="cgroupfs"):
        """cgroup_manager "systemd": podman asks the runtime for systemd
        scopes (--systemd-cgroup, cgroupsPath SLICE:libpod:ID); cgroup_parent
        is then a slice."""
        self.runtime = runtime
        self.dir = tmp or tempfile.mkdtemp(prefix="pyoci-pm-")
        self.cgroup_parent = cgroup_parent
        self.cgroup_manager = cgroup_manager
        d = self.dir
        for sub in ("root", "runroot", "tmp", "net"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self.rootfs = os.path.join(d, "rootfs")
        if not os.path.isdir(self.rootfs):
            make_bundle.make_rootfs(self.rootfs)
        names = ["crun", "runc"] + ([os.path.basename(runtime)] if supports_json else [])
        with open(os.path.join(d, "containers.conf"), "w") as f:
            f.write("\n".join([
                "[containers]",
                # this kind of host has no CAP_SYS_RESOURCE and hard limits
                # below podman's defaults (1048576): stay under them
                'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
                "[engine]",
                'cgroup_manager = "%s"' % cgroup_manager,
                'events_logger = "file"',
                'events_logfile_path = "%s/events.log"' % d,
                'lock_type = "file"',
                'tmp_dir = "%s/tmp"' % d,
                "runtime_supports_json = [%s]" % ", ".join('"%s"' % n for n in names),
                "[network]",
                'network_config_dir = "%s/net"' % d,
                "",
            ]))
        with open(os.path.join(d, "storage.conf"), "w") as f:
            f.write('[storage]\ndriver = "vfs"\ngraphroot = "%s/root"\nrunroot = "%s/runroot"\n' % (d, d))
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(d, "containers.conf"),
                        CONTAINERS_STORAGE_CONF=os.path.join(d, "storage.conf"))

    def argv(self, *args):
        d = self.dir
        return ["podman", "--root", d + "/root", "--runroot", d + "/runroot", "--tmpdir", d + "/tmp",
                "--storage-driver", "vfs", "--cgroup-manager", self.cgroup_manager, "--events-backend", "file",
                "--runtime", self.runtime] + [str(a) for a in args]

    def __call__(self, *args, timeout=60, **kw):
        return _run(self.argv(*args), timeout=timeout, env=self.env, **kw)

    def run_args(self, *opts):
        """`podman run` options and the rootfs, for `podman run OPTS ROOTFS CMD...`."""
        extra = ["--cgroup-parent", self.cgroup_parent] if self.cgroup_parent else []
        return ["run", "--network", "none"] + extra + list(opts) + ["--rootfs", self.rootfs]

    def inspect(self, name, fmt):
        p = self("inspect", "--format", fmt, name)
        if p.returncode != 0:
            raise RuntimeError("podman inspect failed: " + p.stderr)
        return p.stdout.strip()

    def remove_all(self):
        p = self("ps", "-aq")
        ids = p.stdout.split()
        if ids:
            self("rm", "-f", "-t", "0", *ids)
        return ids

    def cleanup(self):
        self.remove_all()
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.cgroup_parent and self.cgroup_manager == "systemd":
            stop_slice(self.cgroup_parent)
        elif self.cgroup_parent:
            remove_empty_cgroups(self.cgroup_parent.strip("/"))
