"""Rootless containers: pyoci run by an unprivileged user the test creates
(`pyoci-t…`, removed afterwards), with `pyoci spec --rootless` and with a
subordinate id range (newuidmap/newgidmap), through the whole lifecycle.

The user runs the installed pyoci in a mount namespace of its own where
/root (0700 here, and home of the Python the venv uses) is replaced by a
directory holding only that Python: no host permission changes."""
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import BUSYBOX, PYOCI, TAG, unified

import make_bundle as bundle_maker

SUB_START = 1000000 + (os.getpid() % 500) * 65536
SUB_SIZE = 65536


def _python_under_root():
    """The directory right under /root that holds this Python, if any."""
    real = os.path.realpath(sys.executable)
    if real.startswith("/root/"):
        return "/root/" + real.split("/")[2]
    return None


class User:
    def __init__(self, name, work):
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid = name, pw.pw_uid, pw.pw_gid
        self.work = work
        self.xdg = os.path.join(work, "xdg")
        self.stash = os.path.join(work, ".python")
        self.cgroups = []    # cgroup directories to start in (a delegated subtree)

    def _pre(self):
        from pyoci.linux import sys as s

        keep = _python_under_root()
        if keep:
            s.unshare(s.CLONE_NEWNS)
            s.mount(None, "/", None, s.MS_SLAVE | s.MS_REC)
            s.mount(keep, self.stash, None, s.MS_BIND | s.MS_REC)
            s.mount("tmpfs", "/root", "tmpfs", s.MS_NOSUID | s.MS_NODEV, "mode=0755")
            os.mkdir(keep)
            s.mount(self.stash, keep, None, s.MS_BIND | s.MS_REC)
        for d in self.cgroups:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))
        os.setgroups([])
        os.setresgid(self.gid, self.gid, self.gid)
        os.setresuid(self.uid, self.uid, self.uid)

    def run(self, argv, cwd=None, timeout=60, env=None):
        env = dict({"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": self.work, "XDG_RUNTIME_DIR": self.xdg,
                    "USER": self.name, "LANG": "C.UTF-8"}, **(env or {}))
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, text=True, env=env,
                               cwd=cwd or self.work, preexec_fn=self._pre, timeout=timeout)
            out.seek(0)
            err.seek(0)
            p.stdout, p.stderr = out.read(), err.read()
        return p

    def pyoci(self, *args, check=False, **kw):
        p = self.run([PYOCI] + [str(a) for a in args], **kw)
        if check:
            assert p.returncode == 0, "pyoci %s: %s%s" % (" ".join(map(str, args)), p.stdout, p.stderr)
        return p

    def chown_tree(self, path):
        for d, dirs, files in os.walk(path):
            for n in [d] + [os.path.join(d, x) for x in dirs + files]:
                os.lchown(n, self.uid, self.gid)


@pytest.fixture
def user(host_guard):
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    if not shutil.which("useradd") or not shutil.which("newuidmap"):
        pytest.skip("needs useradd and newuidmap (Debian packages passwd, uidmap)")
    name = "pyoci-t%d" % (os.getpid() % 100000)
    subprocess.run(["useradd", "-M", "-N", "-g", "nogroup", "-d", "/nonexistent", "-s", "/usr/sbin/nologin",
                    "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name], check=True)
    work = None
    try:
        # its own group, so that its gid is its own
        subprocess.run(["groupadd", name], check=True)
        subprocess.run(["usermod", "-g", name, "--add-subuids", "%d-%d" % (SUB_START, SUB_START + SUB_SIZE - 1),
                        "--add-subgids", "%d-%d" % (SUB_START, SUB_START + SUB_SIZE - 1), name], check=True)
        work = tempfile.mkdtemp(prefix="pyoci-rootless-")
        u = User(name, work)
        os.chmod(work, 0o755)
        os.mkdir(u.xdg, 0o700)
        os.mkdir(u.stash)
        u.chown_tree(work)
        yield u
        left = os.path.join(u.xdg, "pyoci")
        leftover = os.listdir(left) if os.path.isdir(left) else []
        for cid in leftover:
            u.pyoci("delete", "-f", cid)
        assert not leftover, "containers left: %r" % leftover
    finally:
        if work:
            shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", name], check=False, stderr=subprocess.DEVNULL)
        for f in ("/etc/subuid", "/etc/subgid"):
            with open(f) as fh:
                assert name + ":" not in fh.read(), "%s still lists %s" % (f, name)


def rootless_bundle(u, args, changes=None, name="b"):
    """A busybox bundle owned by the user, config from `pyoci spec --rootless`
    run as that user, then args/terminal adjusted."""
    b = os.path.join(u.work, name)
    bundle_maker.make(b, ["true"], BUSYBOX)
    os.unlink(os.path.join(b, "config.json"))
    u.chown_tree(b)
    u.pyoci("spec", "--rootless", check=True, cwd=b)
    path = os.path.join(b, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = list(args)
    if changes:
        changes(config)
    with open(path, "w") as f:
        json.dump(config, f)
    os.lchown(path, u.uid, u.gid)
    return b, config


def wait_status(u, cid, want, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        st = json.loads(u.pyoci("state", cid, check=True).stdout)
        if st["status"] == want or time.monotonic() > deadline:
            return st
        time.sleep(0.02)


def test_spec_rootless_maps_the_caller(user):
    b, config = rootless_bundle(user, ["true"])
    lin = config["linux"]
    assert {"type": "user"} in lin["namespaces"]
    assert "network" not in [n["type"] for n in lin["namespaces"]]
    assert lin["uidMappings"] == [{"containerID": 0, "hostID": user.uid, "size": 1}]
    assert lin["gidMappings"] == [{"containerID": 0, "hostID": user.gid, "size": 1}]
    assert "resources" not in lin


def test_lifecycle_as_unprivileged_user(user):
    b, _ = rootless_bundle(user, ["sh", "-c", "echo started > /dev/shm/mark; sleep 100"])
    p = user.pyoci("create", "-b", b, "r1", check=True)
    assert "rootless: no cgroup this user may write" in p.stderr
    state_dir = os.path.join(user.xdg, "pyoci", "r1")          # the default root of a non-root caller
    assert os.path.isfile(os.path.join(state_dir, "state.json"))
    assert os.stat(state_dir).st_uid == user.uid
    assert os.stat(os.path.dirname(state_dir)).st_mode & 0o7777 == 0o1700   # sticky in XDG_RUNTIME_DIR
    st = json.loads(user.pyoci("state", "r1", check=True).stdout)
    assert st["status"] == "created"
    pid = st["pid"]
    user.pyoci("start", "r1", check=True)
    assert wait_status(user, "r1", "running")["status"] == "running"
    # from the host: the init is the user, in a user namespace mapping only it
    with open("/proc/%d/status" % pid) as f:
        status = dict(l.split(":", 1) for l in f.read().splitlines())
    assert status["Uid"].split() == [str(user.uid)] * 4
    with open("/proc/%d/uid_map" % pid) as f:
        assert f.read().split() == ["0", str(user.uid), "1"]
    with open("/proc/%d/setgroups" % pid) as f:
        assert f.read().strip() == "deny"
    # its caps are those of the config, in its own namespace only
    assert int(status["CapEff"], 16) == (1 << 29) | (1 << 5) | (1 << 10)   # AUDIT_WRITE, KILL, NET_BIND_SERVICE
    listed = json.loads(user.pyoci("list", "--format", "json", check=True).stdout)
    assert [c["id"] for c in listed] == ["r1"]
    # exec joins the container's namespaces, user namespace first
    p = user.pyoci("exec", "r1", "sh", "-c", "id -u; cat /dev/shm/mark; readlink /proc/self/ns/user; "
                   "cat /proc/self/uid_map", check=True)
    lines = p.stdout.splitlines()
    assert lines[:3] == ["0", "started", os.readlink("/proc/%d/ns/user" % pid)]
    assert lines[3].split() == ["0", str(user.uid), "1"]
    user.pyoci("kill", "r1", "KILL", check=True)
    assert wait_status(user, "r1", "stopped")["status"] == "stopped"
    user.pyoci("delete", "r1", check=True)
    assert not os.path.exists(state_dir)
    p = user.pyoci("state", "r1")
    assert p.returncode == 1 and "does not exist" in p.stderr


def test_inside_the_rootless_container(user):
    script = ("id -u; id -g; cat /proc/self/uid_map; stat -c '%t:%T' /dev/null; echo x > /dev/null && echo devok; "
              "hostname; touch /dev/shm/x && echo shmok")
    b, _ = rootless_bundle(user, ["sh", "-c", script])
    p = user.pyoci("run", "-b", b, "r2", check=True)
    lines = p.stdout.splitlines()
    assert lines[:2] == ["0", "0"]
    assert lines[2].split() == ["0", str(user.uid), "1"]
    assert lines[3:] == ["1:3", "devok", "pyoci", "shmok"]


def test_subuid_range_through_newuidmap(user):
    data = os.path.join(user.work, "data")
    os.mkdir(data, 0o755)
    os.chown(data, SUB_START + 999, SUB_START + 999)   # container 1000 is SUB_START + 999 on the host

    def ranges(c):
        for key, own in (("uidMappings", user.uid), ("gidMappings", user.gid)):
            c["linux"][key] = [{"containerID": 0, "hostID": own, "size": 1},
                               {"containerID": 1, "hostID": SUB_START, "size": SUB_SIZE}]
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5]}
        c["mounts"].append({"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]})
    b, _ = rootless_bundle(user, ["sh", "-c", "id -u; id -g; id -G; cat /proc/self/uid_map /proc/self/gid_map; "
                                  "touch /data/made"], ranges)
    p = user.pyoci("run", "-b", b, "r3", check=True)
    lines = [l.split() for l in p.stdout.splitlines()]
    assert lines[0] == ["1000"] and lines[1] == ["1000"] and sorted(lines[2]) == ["1000", "5"]
    assert lines[3:5] == [["0", str(user.uid), "1"], ["1", str(SUB_START), str(SUB_SIZE)]]
    assert lines[5:7] == [["0", str(user.gid), "1"], ["1", str(SUB_START), str(SUB_SIZE)]]
    st = os.stat(os.path.join(data, "made"))
    assert (st.st_uid, st.st_gid) == (SUB_START + 999, SUB_START + 999)


def test_range_not_in_subuid_is_refused(user):
    def ranges(c):
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": user.uid, "size": 1},
                                     {"containerID": 1, "hostID": 5000, "size": 10}]
    b, _ = rootless_bundle(user, ["true"], ranges)
    p = user.pyoci("run", "-b", b, "r4")
    assert p.returncode == 1
    assert "linux.uidMappings: newuidmap failed" in p.stderr, p.stderr
    assert not os.listdir(os.path.join(user.xdg, "pyoci"))


def test_limits_without_a_delegated_cgroup_are_refused(user):
    def limit(c):
        c["linux"]["resources"] = {"memory": {"limit": 64 << 20}}
    b, _ = rootless_bundle(user, ["true"], limit)
    p = user.pyoci("run", "-b", b, "r5")
    assert p.returncode == 1
    assert "linux.resources.memory: cannot be applied by a rootless container" in p.stderr, p.stderr


def test_without_user_namespace_is_refused(user):
    def no_userns(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "user"]
        del c["linux"]["uidMappings"], c["linux"]["gidMappings"]
    b, _ = rootless_bundle(user, ["true"], no_userns)
    p = user.pyoci("run", "-b", b, "r6")
    assert p.returncode == 1
    assert "needs a user namespace" in p.stderr, p.stderr


@pytest.mark.parametrize("cgroupns", [True, False])
def test_cgroup_hierarchy_read_only(user, cgroupns):
    """CVE-2023-25809: /sys bound from the host (rbind, ro) and no cgroup
    namespace must not leave any cgroup mount writable."""
    def ns(c):
        if not cgroupns:
            c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "cgroup"]
    script = ("for f in $(grep /sys/fs/cgroup /proc/self/mounts | while read a m r; do echo $m; done); do "
              "grep \" $f \" /proc/self/mounts | tail -n 1; done")
    b, _ = rootless_bundle(user, ["sh", "-c", script], ns)
    p = user.pyoci("run", "-b", b, "r7", check=True)
    lines = p.stdout.splitlines()
    assert lines
    for line in lines:
        assert line.split()[3].split(",")[0] == "ro", line


@pytest.fixture
def delegated(user):
    """A cgroup per hierarchy handed to the user (chown), TAG in its name."""
    from pyoci.linux.cgroups import layout

    made = []
    name = TAG + "-deleg"
    try:
        for h in layout():
            d = os.path.join(h.mountpoint, name)
            os.mkdir(d)
            made.append(d)
            if os.path.exists(os.path.join(d, "cpuset.cpus")) and not unified():
                for f in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(h.mountpoint, f)) as src, open(os.path.join(d, f), "w") as dst:
                        dst.write(src.read())
            os.chown(d, user.uid, user.gid)
            for f in ("cgroup.procs", "tasks", "cgroup.subtree_control", "cgroup.threads"):
                if os.path.exists(os.path.join(d, f)):
                    os.chown(os.path.join(d, f), user.uid, user.gid)
        # the user's commands start in it, as a systemd user session starts in its delegated unit;
        # on cgroup v2 in a leaf of it (as systemd's init.scope of user@UID.service): a cgroup
        # with processes in it can enable no controller for the ones below it
        starts = list(made)
        if unified():
            leaf = os.path.join(made[-1], "session")
            os.mkdir(leaf)
            for f in ("", "cgroup.procs", "cgroup.threads"):
                os.chown(os.path.join(leaf, f), user.uid, user.gid)
            starts = [m for m in made if m != made[-1]] + [leaf]
        user.cgroups = starts
        yield "/" + name
        user.cgroups = []
    finally:
        for d in reversed(made):
            for sub in sorted((os.path.join(d, x) for x in os.listdir(d)
                               if os.path.isdir(os.path.join(d, x))), reverse=True):
                os.rmdir(sub)
            os.rmdir(d)


def test_delegated_cgroup_is_used(user, delegated):
    def place(c):
        c["linux"]["cgroupsPath"] = delegated + "/r8"
        c["linux"]["resources"] = {"pids": {"limit": 42}}
    b, _ = rootless_bundle(user, ["sleep", "100"], place)
    p = user.pyoci("run", "-d", "-b", b, "r8", check=True)
    assert "rootless" not in p.stderr
    pid = json.loads(user.pyoci("state", "r8", check=True).stdout)["pid"]
    with open("/proc/%d/cgroup" % pid) as f:
        placed = [l.strip().split(":", 2) for l in f]
    key = "" if unified() else "pids"
    assert any(path == delegated + "/r8" for _, ctrl, path in placed if ctrl == key)
    from pyoci.linux.cgroups import layout

    pids = next(h for h in layout() if (h.version == 2 if unified() else "pids" in h.controllers))
    with open(os.path.join(pids.mountpoint, delegated.lstrip("/"), "r8", "pids.max")) as f:
        assert f.read().strip() == "42"
    user.pyoci("kill", "r8", "KILL", check=True)
    wait_status(user, "r8", "stopped")
    user.pyoci("delete", "r8", check=True)
    assert not os.path.exists(os.path.join(pids.mountpoint, delegated.lstrip("/"), "r8"))


@pytest.mark.parametrize("change,phrase", [
    (lambda c: c["process"].update(oomScoreAdj=-500), "process.oomScoreAdj"),
    (lambda c: c["linux"].update(sysctl={"net.ipv4.ip_forward": "1"}), "net.ipv4.ip_forward"),
    (lambda c: c["linux"].update(devices=[{"path": "/dev/pyoci-nonexistent", "type": "c", "major": 1,
                                           "minor": 3}]), "linux.devices: /dev/pyoci-nonexistent"),
    (lambda c: c["process"]["user"].update(additionalGids=[5]), "process.user.additionalGids"),
])
def test_what_a_rootless_user_cannot_do(user, change, phrase):
    b, _ = rootless_bundle(user, ["true"], change)
    p = user.pyoci("run", "-b", b, "r9")
    assert p.returncode == 1
    assert phrase in p.stderr, p.stderr
    root = os.path.join(user.xdg, "pyoci")
    assert not os.path.isdir(root) or not os.listdir(root)


def test_validate_host_checks_the_users_ranges(user):
    def ranges(c):
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": user.uid, "size": 1},
                                     {"containerID": 1, "hostID": SUB_START, "size": SUB_SIZE}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": user.gid, "size": 1},
                                     {"containerID": 1, "hostID": 5000, "size": 10}]
    b, _ = rootless_bundle(user, ["true"], ranges)
    p = user.pyoci("validate", "--bundle", b, "--host")
    out = p.stdout + p.stderr
    assert p.returncode == 1, out
    assert "linux.gidMappings[1]" in out and "host ids 5000-5009 are not among %s's ranges in /etc/subgid" \
        % user.name in out, out
    assert "linux.uidMappings" not in out


def test_lifecycle_with_a_subuid_range(user):
    """create, state, start, exec (as another mapped user), kill, delete of a
    container whose maps went through newuidmap/newgidmap."""
    def ranges(c):
        for key, own in (("uidMappings", user.uid), ("gidMappings", user.gid)):
            c["linux"][key] = [{"containerID": 0, "hostID": own, "size": 1},
                               {"containerID": 1, "hostID": SUB_START, "size": SUB_SIZE}]
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
    b, _ = rootless_bundle(user, ["sleep", "100"], ranges)
    user.pyoci("create", "-b", b, "r10", check=True)
    st = json.loads(user.pyoci("state", "r10", check=True).stdout)
    assert st["status"] == "created"
    pid = st["pid"]
    user.pyoci("start", "r10", check=True)
    assert wait_status(user, "r10", "running")["status"] == "running"
    with open("/proc/%d/status" % pid) as f:
        status = dict(l.split(":", 1) for l in f.read().splitlines())
    assert status["Uid"].split() == [str(SUB_START + 999)] * 4     # container uid 1000 on the host
    with open("/proc/%d/setgroups" % pid) as f:
        assert f.read().strip() == "allow"                          # newgidmap left setgroups allowed
    p = user.pyoci("exec", "--user", "2000:2000", "r10", "sh", "-c", "id -u; cat /proc/self/gid_map", check=True)
    lines = [l.split() for l in p.stdout.splitlines()]
    assert lines[0] == ["2000"]
    assert lines[1:] == [["0", str(user.gid), "1"], ["1", str(SUB_START), str(SUB_SIZE)]]
    user.pyoci("kill", "r10", "KILL", check=True)
    assert wait_status(user, "r10", "stopped")["status"] == "stopped"
    user.pyoci("delete", "r10", check=True)
    assert not os.path.exists(os.path.join(user.xdg, "pyoci", "r10"))


@pytest.fixture
def user_manager(user):
    """The user's systemd instance (user@UID.service, which systemd
    delegates to the user: Delegate=pids memory cpu), started by lingering,
    as a login would start it."""
    if not unified() or not os.path.isdir("/run/systemd/system") or not shutil.which("loginctl"):
        pytest.skip("needs systemd as PID 1 on a cgroup v2 host (the Debian 12 guest: .ci/guest)")
    unit = "user@%d.service" % user.uid
    subprocess.run(["loginctl", "enable-linger", user.name], check=True)
    try:
        bus = "/run/user/%d/bus" % user.uid
        deadline = time.monotonic() + 60
        while not (subprocess.run(["systemctl", "is-active", "-q", unit]).returncode == 0 and os.path.exists(bus)):
            assert time.monotonic() < deadline, "%s did not start" % unit
            time.sleep(0.1)
        yield {"XDG_RUNTIME_DIR": "/run/user/%d" % user.uid, "DBUS_SESSION_BUS_ADDRESS": "unix:path=" + bus}
    finally:
        subprocess.run(["loginctl", "disable-linger", user.name])
        subprocess.run(["systemctl", "stop", unit, "user-runtime-dir@%d.service" % user.uid,
                        "user-%d.slice" % user.uid])


def test_rootless_in_a_delegated_user_slice(user, user_manager):
    """Rootless on cgroup v2 as podman does it: the user's command runs in a
    scope of its systemd instance (systemd-run --user --scope); pyoci puts
    the container beside it, in the user's delegated app.slice, with its
    limits; delete removes it."""
    from pyoci.linux.cgroups import own_cgroups

    def limits(c):
        c["linux"]["resources"] = {"pids": {"limit": 33}, "memory": {"limit": 64 << 20}}
    b, _ = rootless_bundle(user, ["sleep", "100"], limits)
    root = os.path.join(user.xdg, "pyoci")
    p = user.run(["systemd-run", "--user", "--scope", "--quiet", "--", PYOCI, "--root", root,
                  "run", "-d", "-b", b, "r10"], env=user_manager)
    assert p.returncode == 0, p.stderr
    assert "rootless" not in p.stderr, p.stderr
    pid = json.loads(user.pyoci("--root", root, "state", "r10", check=True).stdout)["pid"]
    path = own_cgroups(pid)[""]
    assert path == "/user.slice/user-%d.slice/user@%d.service/app.slice/r10" % (user.uid, user.uid), path
    d = "/sys/fs/cgroup" + path
    with open(d + "/pids.max") as f1, open(d + "/memory.max") as f2:
        assert (f1.read().strip(), f2.read().strip()) == ("33", str(64 << 20))
    user.pyoci("--root", root, "kill", "r10", "KILL", check=True)
    wait_status(user, "r10", "stopped")
    user.pyoci("--root", root, "delete", "r10", check=True)
    assert not os.path.exists(d)
