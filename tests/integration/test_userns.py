"""Containers with a user namespace, run by root: the ids inside and on the
host, the maps, devices bound from the host, what the mapped root may reach
and own, and the read-only host cgroup hierarchy without a cgroup namespace."""
import os
import shutil
import stat
import tempfile

import pytest

import make_bundle as bundle_maker

HOST = 100000      # container id 0 is host id HOST ...
SIZE = 65536       # ... for SIZE ids


def userns(config, uid=0, gid=0):
    lin = config["linux"]
    lin["namespaces"].append({"type": "user"})
    lin["uidMappings"] = [{"containerID": 0, "hostID": HOST, "size": SIZE}]
    lin["gidMappings"] = [{"containerID": 0, "hostID": HOST, "size": SIZE}]
    config["process"]["user"] = {"uid": uid, "gid": gid}


@pytest.fixture
def open_dir():
    """A directory every uid may search (pytest's tmp_path sits under a
    0700 directory that the container's mapped root could not reach)."""
    d = tempfile.mkdtemp(prefix="pyoci-userns-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


@pytest.fixture
def ubundle(open_dir):
    """ubundle(args, changes=None, name="b") -> bundle in open_dir with a user namespace."""
    def make(args, changes=None, name="b", uid=0, gid=0, own_rootfs=True):
        def change(c):
            userns(c, uid, gid)
            if changes:
                changes(c)

        b = bundle_maker.make(os.path.join(open_dir, name), args, "/bin/busybox", change)
        # the image belongs to the container's root, as a user namespace's image does
        for d, dirs, files in os.walk(os.path.join(b, "rootfs")) if own_rootfs else ():
            for n in [d] + [os.path.join(d, x) for x in dirs + files]:
                os.lchown(n, HOST, HOST)
        return b

    if not os.path.exists("/bin/busybox"):
        pytest.skip("busybox-static is not installed")
    return make


def run(runtime, bundle, cid="u1"):
    p = runtime.cmd("run", "-b", bundle, cid)
    assert p.returncode == 0, p.stderr
    return p.stdout


def owners(*paths):
    return {p: (os.lstat(p).st_uid, os.lstat(p).st_gid, stat.S_IMODE(os.lstat(p).st_mode)) for p in paths}


def test_ids_and_maps_inside_and_outside(runtime, ubundle):
    b = ubundle(["sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; sleep 100"])
    runtime.cmd("run", "-d", "-b", b, "u1", check=True)
    pid = runtime.state("u1")["pid"]
    # outside: the init runs as the mapped ids, in a user namespace of its own
    with open("/proc/%d/status" % pid) as f:
        status = dict(l.split(":", 1) for l in f.read().splitlines())
    assert status["Uid"].split() == [str(HOST)] * 4
    assert status["Gid"].split() == [str(HOST)] * 4
    assert os.readlink("/proc/%d/ns/user" % pid) != os.readlink("/proc/self/ns/user")
    with open("/proc/%d/uid_map" % pid) as f:
        assert f.read().split() == ["0", str(HOST), str(SIZE)]
    runtime.cmd("kill", "u1", "KILL", check=True)
    runtime.cmd("delete", "-f", "u1", check=True)


def test_ids_inside(runtime, ubundle):
    out = run(runtime, ubundle(["sh", "-c", "id -u; id -g; id -G; cat /proc/self/uid_map /proc/self/gid_map"],
                               lambda c: c["process"]["user"].update(additionalGids=[5, 7]), uid=1000, gid=1000))
    lines = [l.split() for l in out.splitlines()]
    assert lines[0] == ["1000"] and lines[1] == ["1000"]
    assert sorted(lines[2]) == ["1000", "5", "7"]
    assert lines[3] == ["0", str(HOST), str(SIZE)] and lines[4] == ["0", str(HOST), str(SIZE)]


def test_namespaces_owned_by_the_user_namespace(runtime, ubundle):
    """The other new namespaces belong to the container's user namespace:
    its root may set the hostname (uts) and bring up an interface (net)."""
    def caps(c):
        c["process"]["capabilities"] = {k: ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
                                        for k in ("bounding", "effective", "permitted")}
    out = run(runtime, ubundle(["sh", "-c", "hostname other && hostname; ip link set lo down && echo netok"],
                               caps))
    assert out.split() == ["other", "netok"]


def test_devices_are_bound_from_the_host(runtime, ubundle):
    out = run(runtime, ubundle(["sh", "-c",
                                "for d in null zero full random urandom tty; do stat -c '%n %t:%T' /dev/$d; done; "
                                "echo x > /dev/null && echo wrote; head -c 3 /dev/zero | wc -c; "
                                "grep -E ' /dev/(null|zero|full|random|urandom|tty) ' /proc/self/mountinfo | wc -l"]))
    lines = out.splitlines()
    assert lines[:6] == ["/dev/null 1:3", "/dev/zero 1:5", "/dev/full 1:7", "/dev/random 1:8",
                         "/dev/urandom 1:9", "/dev/tty 5:0"]
    # no mknod in a user namespace: each node is a bind mount of the host's
    assert lines[6:] == ["wrote", "3", "6"]


def test_device_missing_on_the_host_is_a_clear_error(runtime, ubundle):
    def dev(c):
        c["linux"]["devices"] = [{"path": "/dev/pyoci-nonexistent", "type": "c", "major": 1, "minor": 3}]
    p = runtime.cmd("run", "-b", ubundle(["true"], dev), "u1")
    assert p.returncode == 1
    assert "linux.devices: /dev/pyoci-nonexistent" in p.stderr and "bind-mounted from the host" in p.stderr


def test_device_not_matching_the_host_node_is_refused(runtime, ubundle):
    def dev(c):
        c["linux"]["devices"] = [{"path": "/dev/null", "type": "c", "major": 1, "minor": 5}]
    p = runtime.cmd("run", "-b", ubundle(["true"], dev), "u1")
    assert p.returncode == 1
    assert "linux.devices: /dev/null" in p.stderr and "not that device" in p.stderr


def test_files_created_inside_belong_to_mapped_ids(runtime, ubundle, open_dir):
    data = os.path.join(open_dir, "data")
    os.mkdir(data)
    os.chown(data, HOST, HOST)
    os.chmod(data, 0o1777)

    def bind(c):
        c["mounts"].append({"destination": "/data", "type": "bind", "source": data, "options": ["rbind"]})
    run(runtime, ubundle(["sh", "-c", "touch /data/root-made && mkdir /data/root-dir"], bind, name="b1"), "u1")
    run(runtime, ubundle(["touch", "/data/user-made"], bind, name="b2", uid=1000, gid=1001), "u2")
    assert owners(os.path.join(data, "root-made"))[os.path.join(data, "root-made")][:2] == (HOST, HOST)
    assert os.stat(os.path.join(data, "root-dir")).st_uid == HOST
    st = os.stat(os.path.join(data, "user-made"))
    assert (st.st_uid, st.st_gid) == (HOST + 1000, HOST + 1001)


def test_host_files_stay_out_of_reach(runtime, ubundle, open_dir):
    """Container root is not host root: a root-owned bind source stays
    read-only to it, and nothing of the bundle changes owner or mode."""
    src = os.path.join(open_dir, "hostdir")
    os.mkdir(src, 0o755)
    with open(os.path.join(src, "f"), "w") as f:
        f.write("host\n")

    def bind(c):
        c["mounts"].append({"destination": "/hostdir", "type": "bind", "source": src, "options": ["rbind", "rw"]})
        c["root"]["readonly"] = False
    b = ubundle(["sh", "-c", "touch /hostdir/new 2>&1; (echo x >> /hostdir/f) 2>&1; "
                 "chown 0 /hostdir/f 2>&1; chmod 777 /hostdir 2>&1; echo done"], bind)
    watched = [b, os.path.join(b, "config.json"), os.path.join(b, "rootfs"), os.path.join(b, "rootfs", "bin"),
               os.path.join(b, "rootfs", "bin", "busybox"), src, os.path.join(src, "f")]
    before = owners(*watched)
    out = run(runtime, b)
    assert out.count("Permission denied") == 2 and out.count("Operation not permitted") == 2, out
    assert out.strip().endswith("done")
    assert owners(*watched) == before
    assert before[b][0] == 0 and before[os.path.join(b, "rootfs")][0] == HOST
    assert sorted(os.listdir(src)) == ["f"]
    with open(os.path.join(src, "f")) as f:
        assert f.read() == "host\n"


def test_unreachable_rootfs_is_a_clear_error(runtime, ubundle, open_dir):
    b = ubundle(["true"])
    os.chmod(open_dir, 0o700)
    try:
        p = runtime.cmd("run", "-b", b, "u1")
    finally:
        os.chmod(open_dir, 0o755)
    assert p.returncode == 1
    assert "root.path: %s/rootfs is not reachable by the container's root (uid %d on the host)" % (b, HOST) \
        in p.stderr, p.stderr
    assert "no search permission on %s" % open_dir in p.stderr


def test_unmapped_user_is_refused(runtime, ubundle):
    p = runtime.cmd("run", "-b", ubundle(["true"], uid=SIZE + 5), "u1")
    assert p.returncode == 1
    assert "process.user.uid: %d is not mapped in linux.uidMappings" % (SIZE + 5) in p.stderr


def test_join_user_namespace_by_path(runtime, ubundle):
    runtime.cmd("run", "-d", "-b", ubundle(["sleep", "100"], name="a"), "ua", check=True)
    pid = runtime.state("ua")["pid"]

    def join(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "user"]
        c["linux"]["namespaces"].append({"type": "user", "path": "/proc/%d/ns/user" % pid})
        del c["linux"]["uidMappings"], c["linux"]["gidMappings"]
    runtime.cmd("run", "-d", "-b", ubundle(["sh", "-c", "id -u; cat /proc/self/uid_map; sleep 100"], join,
                                           name="b"), "ub", check=True)
    pid2 = runtime.state("ub")["pid"]
    assert os.readlink("/proc/%d/ns/user" % pid2) == os.readlink("/proc/%d/ns/user" % pid)
    with open("/proc/%d/status" % pid2) as f:
        assert "Uid:\t%d\t" % HOST in f.read()
    for cid in ("ua", "ub"):
        runtime.cmd("delete", "-f", cid, check=True)


@pytest.mark.parametrize("cgroupns", [True, False])
def test_cgroup_mounts_read_only(runtime, ubundle, cgroupns):
    """CVE-2023-25809: every mount at or under /sys/fs/cgroup is read-only
    (runc's check: the topmost mount at each such path)."""
    def ns(c):
        if not cgroupns:
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]
    script = ("for f in $(grep /sys/fs/cgroup /proc/self/mounts | while read a m r; do echo $m; done); do "
              "grep \" $f \" /proc/self/mounts | tail -n 1; done")
    lines = run(runtime, ubundle(["sh", "-c", script], ns)).splitlines()
    assert lines
    for line in lines:
        assert line.split()[3].split(",")[0] == "ro", line


def test_idmapped_mount_in_a_user_namespace(runtime, ubundle, open_dir):
    """An idmapped bind combines with the container's user namespace: host
    files owned by root show (and are writable) as the container's root.
    The runtime makes the idmapped tree (the container's root controls
    neither the mapping's namespace nor the source filesystem)."""
    src = os.path.join(open_dir, "idm")
    os.mkdir(src, 0o755)
    with open(os.path.join(src, "f"), "w") as f:
        f.write("x\n")

    def idm(c):
        c["mounts"].append({"destination": "/idm", "type": "bind", "source": src, "options": ["rbind", "idmap"],
                            "uidMappings": [{"containerID": 0, "hostID": HOST, "size": SIZE}],
                            "gidMappings": [{"containerID": 0, "hostID": HOST, "size": SIZE}]})
    out = run(runtime, ubundle(["sh", "-c", "stat -c '%u:%g' /idm/f; echo y >> /idm/f && echo wrote; "
                                "grep ' /idm ' /proc/self/mountinfo"], idm))
    lines = out.splitlines()
    assert lines[:2] == ["0:0", "wrote"]
    assert "idmapped" in lines[2]
    st = os.stat(os.path.join(src, "f"))
    assert (st.st_uid, st.st_gid) == (0, 0)   # the host's view is unchanged
    with open(os.path.join(src, "f")) as f:
        assert f.read() == "x\ny\n"


def test_joined_network_namespace_gets_the_hosts_sys(runtime, ubundle, named_netns):
    """A joined network namespace is not owned by the new user namespace, so
    no sysfs can be mounted for it: /sys is the host's, read-only."""
    def join(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
        c["linux"]["namespaces"].append({"type": "network", "path": named_netns})
    out = run(runtime, ubundle(["sh", "-c", "grep ' /sys ' /proc/self/mounts; readlink /proc/self/ns/net; "
                                "touch /sys/x 2>&1; true"], join))
    lines = out.splitlines()
    assert lines[0].split()[3].split(",")[0] == "ro"
    assert lines[1] == "net:[%d]" % os.stat(named_netns).st_ino
    assert "Read-only file system" in lines[2]


def test_unreachable_bind_source_is_opened_by_the_runtime(runtime, ubundle, open_dir):
    """A bind source the container's root cannot reach (a 0700 directory
    of the host's root above it) is opened by the runtime before the user
    namespace is entered, as runc does (runc's userns.bats): the container
    sees its files, and still cannot reach the directory above it."""
    hidden = os.path.join(open_dir, "hidden")
    os.makedirs(os.path.join(hidden, "src"))
    with open(os.path.join(hidden, "src", "foo.txt"), "w") as f:
        f.write("seen\n")
    os.chmod(hidden, 0o700)

    def bind(c):
        c["mounts"].append({"destination": "/src", "type": "bind", "source": os.path.join(hidden, "src"),
                            "options": ["rbind", "ro"]})
    p = runtime.cmd("run", "-b", ubundle(["sh", "-c", "cat /src/foo.txt; touch /src/x 2>/dev/null || echo ro"],
                                         bind), "u1")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["seen", "ro"]
    assert sorted(os.listdir(os.path.join(hidden, "src"))) == ["foo.txt"]


def test_terminal_in_a_user_namespace(runtime, ubundle, tmp_path):
    """The pty comes from the container's own devpts; /dev/console is bound
    to it; the devpts gid=5 option works with the mapping."""
    import socket

    from test_terminal import listen, read_until_eof

    def tty(c):
        c["process"]["terminal"] = True
    b = ubundle(["sh", "-c", "tty; stat -c '%u:%g %t' /dev/console; id -u"], tty)
    srv, path = listen(tmp_path)
    with srv:
        runtime.cmd("create", "--console-socket", path, "-b", b, "ut", check=True)
        conn, _ = srv.accept()
        with conn:
            _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
    master = fds[0]
    try:
        pid = runtime.state("ut")["pid"]
        runtime.cmd("start", "ut", check=True)
        out = read_until_eof(master)
    finally:
        os.close(master)
    os.waitpid(pid, 0)
    lines = out.split("\n")
    assert lines[0] == "/dev/pts/0"
    assert lines[1] == "0:5 88"   # owned by the container's root, group tty
    assert lines[2] == "0"
    runtime.cmd("delete", "ut", check=True)


def test_mount_point_the_mapped_root_cannot_create(runtime, ubundle, open_dir):
    """A rootfs owned by the host's root: the set-up, running as the
    container's root, cannot create a new mount point in it."""
    src = os.path.join(open_dir, "src")
    os.mkdir(src)

    def bind(c):
        c["mounts"].append({"destination": "/newdir", "type": "bind", "source": src, "options": ["rbind"]})
    p = runtime.cmd("run", "-b", ubundle(["true"], bind, own_rootfs=False), "u1")
    assert p.returncode == 1
    assert "mounts[7] (bind on /newdir)" in p.stderr and "Permission denied (the container's root is uid %d on " \
        "the host" % HOST in p.stderr, p.stderr


def test_rlimits_are_set_from_outside(runtime, ubundle):
    """The runtime sets process.rlimits on the init (prlimit): inside a user
    namespace it could never raise one."""
    def lim(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                                   {"type": "RLIMIT_NPROC", "soft": 3000, "hard": 4000}]
    runtime.cmd("create", "-b", ubundle(["true"], lim), "ur", check=True)
    pid = runtime.state("ur")["pid"]
    with open("/proc/%d/limits" % pid) as f:
        limits = {l[:26].strip(): l[26:].split()[:2] for l in f.read().splitlines()[1:]}
    assert limits["Max open files"] == ["100", "200"]
    assert limits["Max processes"] == ["3000", "4000"]
    runtime.cmd("delete", "-f", "ur", check=True)


def test_rlimit_above_the_runtimes_own_is_a_clear_error(runtime, ubundle):
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    with open("/proc/sys/fs/nr_open") as f:
        if hard >= int(f.read()):
            pytest.skip("the hard NOFILE limit is already the kernel's maximum")

    def lim(c):
        c["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard + 1}]
    p = runtime.cmd("run", "-b", ubundle(["true"], lim), "ur")
    if p.returncode == 0:
        pytest.skip("this runtime may raise its hard limit (CAP_SYS_RESOURCE)")
    assert "error setting rlimit type 7: operation not permitted (process.rlimits RLIMIT_NOFILE soft 1024 " \
           "hard %d" % (hard + 1) in p.stderr, p.stderr
