"""mounts[], devices, masked/read-only paths, rootfs propagation, --no-pivot
and mountLabel: each checked from inside the container and from the host."""
import os
import subprocess

import pytest

from test_bad_input import assert_failed
from test_userns import open_dir, ubundle  # noqa: F401  (fixtures)


def run_out(runtime, make_bundle, script, cid, changes=None, args=()):
    b = make_bundle(["sh", "-c", script], changes)
    p = runtime.cmd(*args, "run", "-b", b, cid)
    assert p.returncode == 0, p.stderr
    return p.stdout


def mountinfo(out, dest):
    """(per-mount options, super options) of dest in a mountinfo dump."""
    for line in out.splitlines():
        f = line.split()
        if len(f) > 6 and f[4] == dest:
            sep = f.index("-")
            return set(f[5].split(",")), set(f[sep + 3].split(","))
    raise AssertionError("%s not mounted: %s" % (dest, out))


def add_mounts(*ms):
    def changes(c):
        c["mounts"] += list(ms)
    return changes


def test_flags_data_and_bind_remount(runtime, make_bundle, tmp_path):
    src = tmp_path / "vol"
    src.mkdir()
    (src / "f").write_text("x\n")
    out = run_out(runtime, make_bundle, "cat /proc/self/mountinfo; touch /vol/new 2>/dev/null; echo rc=$?",
                  "m1", add_mounts(
                      {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosuid", "nodev", "noexec", "noatime", "size=64k", "mode=700"]},
                      {"destination": "/vol", "type": "bind", "source": str(src),
                       "options": ["rbind", "ro", "nosuid", "nodev"]},
                      {"destination": "/s", "type": "tmpfs", "source": "tmpfs",
                       "options": ["nosymfollow", "sync", "dirsync"]},
                      {"destination": "rel/dest", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}))
    mnt, sup = mountinfo(out, "/t")
    assert {"nosuid", "nodev", "noexec", "noatime"} <= mnt and "size=64k" in sup and "mode=700" in sup
    mnt, _ = mountinfo(out, "/vol")
    assert {"ro", "nosuid", "nodev"} <= mnt
    assert "rc=1" in out   # read-only bind inside
    mnt, sup = mountinfo(out, "/s")
    assert "nosymfollow" in mnt and "sync" in sup and "dirsync" in sup
    assert "ro" in mountinfo(out, "/rel/dest")[0]
    # from the host: the source is untouched and writable
    assert sorted(os.listdir(src)) == ["f"]


def test_rro_is_recursive_and_ro_is_not(runtime, make_bundle):
    """/sys/fs/cgroup has submounts: rbind+rro makes all of them read-only
    (mount_setattr AT_RECURSIVE); rbind+ro only the top one."""
    sub = [l.split()[4] for l in open("/proc/self/mountinfo") if l.split()[4].startswith("/sys/fs/cgroup/")]
    if not sub:
        pytest.skip("no submounts under /sys/fs/cgroup")
    name = sub[0][len("/sys/fs/cgroup"):]
    out = run_out(runtime, make_bundle, "cat /proc/self/mountinfo", "m2", add_mounts(
        {"destination": "/a", "type": "bind", "source": "/sys/fs/cgroup", "options": ["rbind", "rro"]},
        {"destination": "/b", "type": "bind", "source": "/sys/fs/cgroup", "options": ["rbind", "ro"]}))
    assert "ro" in mountinfo(out, "/a")[0] and "ro" in mountinfo(out, "/a" + name)[0]
    assert "ro" in mountinfo(out, "/b")[0]
    # on the host the cgroup hierarchy is still writable
    host = [l.split() for l in open("/proc/self/mountinfo") if l.split()[4] == sub[0]][0]
    assert "rw" in host[5].split(",")
    # the container's own (non-rro) copy keeps its submount flags
    assert mountinfo(out, "/b" + name)[0] & {"rw", "ro"}


def test_propagation_options(runtime, make_bundle):
    out = run_out(runtime, make_bundle, "cat /proc/self/mountinfo", "m3", add_mounts(
        {"destination": "/sh", "type": "tmpfs", "source": "tmpfs", "options": ["shared"]},
        {"destination": "/pr", "type": "tmpfs", "source": "tmpfs", "options": ["private"]},
        {"destination": "/ub", "type": "tmpfs", "source": "tmpfs", "options": ["unbindable"]}))
    lines = {l.split()[4]: l for l in out.splitlines()}
    assert "shared:" in lines["/sh"]
    assert "shared:" not in lines["/pr"] and "master:" not in lines["/pr"]
    assert "unbindable" in lines["/ub"]


@pytest.mark.parametrize("prop,tag", [("shared", "shared:"), ("slave", None),
                                      ("private", None), ("unbindable", "unbindable")])
def test_rootfs_propagation(runtime, make_bundle, prop, tag):
    def changes(c):
        c["linux"]["rootfsPropagation"] = prop
    out = run_out(runtime, make_bundle, "cat /proc/self/mountinfo", "m4" + prop, changes)
    root = [l for l in out.splitlines() if l.split()[4] == "/"][0]
    if tag:
        assert tag in root, root
    else:
        assert "shared:" not in root, root   # slave of a private mount is private


@pytest.mark.parametrize("prop", ["rprivate", "rshared", "rslave", "runbindable"])
def test_rootfs_propagation_recursive_variants(runtime, make_bundle, prop):
    """runc's r-variants (containerd's CRI sends rshared and rslave) are taken."""
    def changes(c):
        c["linux"]["rootfsPropagation"] = prop
    out = run_out(runtime, make_bundle, "cat /proc/self/mountinfo", "m4" + prop, changes)
    root = [l for l in out.splitlines() if l.split()[4] == "/"][0]
    assert ("shared:" in root) == (prop == "rshared"), root
    assert ("unbindable" in root) == (prop == "runbindable"), root


def _host_mounts_under(path):
    path = str(path)
    return [l.split()[4] for l in open("/proc/self/mountinfo") if l.split()[4].startswith(path + "/")]


@pytest.mark.parametrize("prop,back", [("rshared", True), ("rslave", False)])
def test_rshared_root_propagates_mounts_back_to_host(runtime, make_bundle, tmp_path, prop, back):
    """Kubernetes' Bidirectional volume: with rootfsPropagation rshared a
    bind (rshared) of a shared host mount stays a peer of the host's, so a
    mount the container makes under it appears on the host (as with runc);
    with rslave it does not. The container's own mounts (proc, /dev) never
    reach the host either way (the host guard checks it)."""
    vol = tmp_path / "vol"
    (vol / "sub").mkdir(parents=True)
    subprocess.run(["mount", "--bind", str(vol), str(vol)], check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(vol)], check=True)

        def changes(c):
            c["linux"]["rootfsPropagation"] = prop
            c["mounts"].append({"destination": "/vol", "type": "bind", "source": str(vol),
                                "options": ["rbind", "rshared"]})
            for k in ("bounding", "effective", "permitted"):
                c["process"]["capabilities"][k].append("CAP_SYS_ADMIN")
        b = make_bundle(["sh", "-c", "mount -t tmpfs -o size=16k bidir /vol/sub && echo mounted"], changes)
        p = runtime.cmd("run", "-b", b, "m9" + prop)
        assert p.returncode == 0 and "mounted" in p.stdout, p.stderr
        seen = _host_mounts_under(vol)
        assert (str(vol / "sub") in seen) == back, seen
        # the container's root and its own mounts did not reach the host
        rootfs = os.path.join(b, "rootfs")
        assert not [m for m in _host_mounts_under(rootfs)], _host_mounts_under(rootfs)
    finally:
        subprocess.run(["umount", "-R", str(vol)], check=False)


def test_custom_devices(runtime, make_bundle):
    def changes(c):
        c["linux"]["devices"] = [
            {"path": "/dev/ptnull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 7, "gid": 8},
            {"path": "/dev/sub/ptfifo", "type": "p", "fileMode": 0o600}]
    out = run_out(runtime, make_bundle, "stat -c '%n %F %t:%T %a %u:%g' /dev/ptnull /dev/sub/ptfifo; "
                  "readlink /dev/stderr", "m5", changes)
    lines = out.splitlines()
    assert lines[0] == "/dev/ptnull character special file 1:3 640 7:8"
    assert lines[1].startswith("/dev/sub/ptfifo fifo") and " 600 " in lines[1]
    assert lines[2] == "/proc/self/fd/2"


def test_devices_bound_from_host_when_asked(tmp_path):
    """devices.create(bind=True), the path a user-namespaced container takes
    (no mknod there): each node is the host's, bind-mounted on an empty file.
    Run in a private mount namespace of a child process."""
    from pyoci.linux import devices
    from pyoci.linux import sys as s

    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            s.unshare(s.CLONE_NEWNS)
            s.mount(None, "/", None, s.MS_PRIVATE | s.MS_REC)
            fd = os.open(str(root), os.O_PATH | os.O_DIRECTORY)
            devices.create(fd, {"linux": {"devices": [
                {"path": "/dev/full", "type": "c", "major": 1, "minor": 7}]}}, bind=True)
            st = os.stat(str(root / "dev" / "zero"))
            full = os.stat(str(root / "dev" / "full"))
            reg = os.lstat(str(root / "dev"))
            ok = st.st_rdev == os.makedev(1, 5) and full.st_rdev == os.makedev(1, 7) and st.st_dev != reg.st_dev
            code = 0 if ok else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # the files are left in the rootfs, empty: the mounts died with the namespace
    assert os.path.getsize(root / "dev" / "zero") == 0


def test_masked_and_readonly_paths(runtime, make_bundle, tmp_path):
    def changes(c):
        c["linux"]["maskedPaths"] = ["/etc/secret", "/etc/secretdir", "/nonexistent/x"]
        c["linux"]["readonlyPaths"] = ["/rw", "/absent"]
        c["root"]["readonly"] = False
        c["mounts"].append({"destination": "/rw/inner", "type": "tmpfs", "source": "tmpfs"})
    b = make_bundle(["sh", "-c", "cat /etc/secret; ls /etc/secretdir; touch /etc/secretdir/x 2>/dev/null; "
                     "echo m=$?; touch /rw/x 2>/dev/null; echo r=$?; touch /rw/inner/x 2>/dev/null; echo i=$?;"
                     "touch /ok; echo root=$?"], changes)
    rf = os.path.join(b, "rootfs")
    with open(os.path.join(rf, "etc", "secret"), "w") as f:
        f.write("s3cret\n")
    os.makedirs(os.path.join(rf, "etc", "secretdir", "inside"))
    os.makedirs(os.path.join(rf, "rw"))
    p = runtime.cmd("run", "-b", b, "m6")
    assert p.returncode == 0, p.stderr
    # masked file reads empty, masked dir is an empty read-only tmpfs,
    # /rw is read-only recursively (its submount too), the root is writable
    assert p.stdout.split() == ["m=1", "r=1", "i=1", "root=0"], p.stdout
    assert open(os.path.join(rf, "etc", "secret")).read() == "s3cret\n"
    assert os.path.exists(os.path.join(rf, "ok"))


def test_no_pivot(runtime, make_bundle):
    """--no-pivot: MS_MOVE + chroot. The container sees its rootfs as /, with
    its mounts, and the host's root is not reachable through /proc/1/root."""
    b = make_bundle(["sh", "-c", "ls /; ls /proc/1/root/; grep -c ' /proc proc ' /proc/mounts"])
    p = runtime.cmd("run", "--no-pivot", "-b", b, "m8")
    assert p.returncode == 0, p.stderr
    words = p.stdout.split()
    assert "bin" in words and "busybox" not in words and words[-1] == "1"
    assert sorted(os.listdir("/")) != sorted(set(words[:-1]))


def test_mount_label_without_selinux(runtime, make_bundle, tmp_path):
    if os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("SELinux is enabled here")

    def changes(c):
        c["linux"]["mountLabel"] = "system_u:object_r:container_file_t:s0:c1,c2"
    log = tmp_path / "log"
    out = run_out(runtime, make_bundle, "grep -c context= /proc/self/mountinfo || true", "m9", changes,
                  args=("--debug", "--log", str(log)))
    assert out.strip() == "0"
    assert "mountLabel" in log.read_text() and "SELinux is not enabled" in log.read_text()


def test_idmapped_mount(runtime, make_bundle, tmp_path):
    src = tmp_path / "idm"
    src.mkdir()
    (src / "f").write_text("x\n")
    os.chown(src / "f", 0, 0)

    def changes(c):
        c["mounts"].append({"destination": "/idm", "type": "bind", "source": str(src),
                            "options": ["rbind", "idmap"],
                            "uidMappings": [{"containerID": 0, "hostID": 4321, "size": 10}],
                            "gidMappings": [{"containerID": 0, "hostID": 4322, "size": 10}]})
    out = run_out(runtime, make_bundle, "stat -c '%u:%g' /idm/f; grep ' /idm ' /proc/self/mountinfo", "m10",
                  changes)
    assert out.splitlines()[0] == "4321:4322"
    assert "idmapped" in out
    st = os.stat(src / "f")
    assert (st.st_uid, st.st_gid) == (0, 0)   # the host sees the file unchanged


# -- bad input: mounts[i] and the kernel's reason, exit 1, nothing left -------
@pytest.mark.parametrize("mount,phrases", [
    ({"destination": "/x", "type": "bind", "source": "/does/not/exist", "options": ["bind"]},
     ("mounts[7].source", "/does/not/exist", "No such file or directory")),
    ({"destination": "/x", "type": "ptnosuchfs", "source": "none"},
     ("mounts[7]", "No such device", "unknown filesystem type 'ptnosuchfs'")),
    ({"destination": "/x", "type": "tmpfs", "source": "tmpfs", "options": ["size=lots"]},
     ("mounts[7] (tmpfs on /x)", "Invalid argument")),
    ({"destination": "/x", "type": "bind", "source": "/does/not/exist", "options": ["rbind", "idmap"],
      "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
      "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]},
     ("mounts[7]", "/does/not/exist", "No such file or directory")),
    ({"destination": "/x", "type": "bind", "source": "/etc", "options": ["rbind", "rro", "rnosuid"]},
     None),
])
def test_bad_mounts_fail_cleanly(runtime, make_bundle, mount, phrases):
    b = make_bundle(["true"], add_mounts(mount))
    if phrases is None:   # the control: the same shape of mount, valid, works
        assert runtime.cmd("run", "-b", b, "good").returncode == 0
        return
    assert_failed(runtime.cmd("create", "-b", b, "bad"), *phrases)
    assert runtime.ids() == []


def test_idmapped_mount_in_a_user_namespace(runtime, ubundle, open_dir):
    """The idmapped tree is made by the runtime on the host (the container's
    root may not idmap a host filesystem) and attached inside: a file the
    host's root owns shows as the container's root, and the container's
    root writes into it as the host's root would (mapped back on disk)."""
    from test_userns import HOST, SIZE

    src = os.path.join(open_dir, "idm")
    os.mkdir(src)
    with open(os.path.join(src, "f"), "w") as f:
        f.write("x\n")

    def changes(c):
        c["mounts"].append({"destination": "/idm", "type": "bind", "source": src,
                            "options": ["rbind", "idmap"],
                            "uidMappings": [{"containerID": 0, "hostID": HOST, "size": SIZE}],
                            "gidMappings": [{"containerID": 0, "hostID": HOST, "size": SIZE}]})
    b = ubundle(["sh", "-c", "stat -c '%u:%g' /idm/f; touch /idm/new && stat -c '%u:%g' /idm/new"], changes)
    p = runtime.cmd("run", "-b", b, "m11")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0:0", "0:0"]
    st = os.stat(os.path.join(src, "new"))
    assert (st.st_uid, st.st_gid) == (0, 0)   # on disk: the host's root


@pytest.mark.parametrize("atime", ["noatime", "strictatime"])
def test_bind_remount_keeps_locked_flags_in_a_user_namespace(runtime, ubundle, open_dir, atime):
    """A bind of a host mount that is nosuid,nodev,<atime> into a user
    namespace: its flags are locked there, and a naive read-only remount
    (MS_BIND|MS_REMOUNT|MS_RDONLY) that dropped nosuid,nodev fails with
    EPERM. The remount carries the source's flags over (the kernel keeps
    the atime mode of a remount that names none)."""
    from pyoci.linux import sys as s

    src = os.path.join(open_dir, "locked")
    os.mkdir(src)
    s.mount("tmpfs", src, "tmpfs", s.MS_NOSUID | s.MS_NODEV
            | (s.MS_NOATIME if atime == "noatime" else s.MS_STRICTATIME), "mode=755")
    try:
        b = ubundle(["sh", "-c", "touch /l/x 2>/dev/null; echo rc=$?; grep ' /l ' /proc/self/mountinfo"],
                    add_mounts({"destination": "/l", "type": "bind", "source": src, "options": ["bind", "ro"]}))
        p = runtime.cmd("run", "-b", b, "m12")
        assert p.returncode == 0, p.stderr
        assert "rc=1" in p.stdout
        opts = p.stdout.split("\n")[1].split()[5].split(",")
        assert "ro" in opts and "nosuid" in opts and "nodev" in opts
        assert (atime in opts) if atime == "noatime" else ("relatime" not in opts and "noatime" not in opts)
    finally:
        s.umount2(src, s.MNT_DETACH)


def test_overlay_and_tmpfs_data_options(runtime, make_bundle, tmp_path):
    """Any filesystem type with its data options: an overlay of two host
    directories (writes land in the upper one, on the host), a tmpfs with
    uid/gid/mode."""
    for d in ("lower", "upper", "work"):
        (tmp_path / d).mkdir()
    (tmp_path / "lower" / "from-lower").write_text("l\n")
    ov = "lowerdir=%s,upperdir=%s,workdir=%s" % (tmp_path / "lower", tmp_path / "upper", tmp_path / "work")
    out = run_out(runtime, make_bundle, "cat /ov/from-lower; echo w > /ov/written; stat -c '%u:%g %a' /t",
                  "m13", add_mounts(
                      {"destination": "/ov", "type": "overlay", "source": "overlay", "options": ov.split(",")},
                      {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
                       "options": ["uid=12", "gid=34", "mode=1750"]}))
    assert out.split() == ["l", "12:34", "1750"]
    assert (tmp_path / "upper" / "written").read_text() == "w\n"
    assert not (tmp_path / "lower" / "written").exists()


def test_sysfs_without_a_network_namespace_is_the_hosts_read_only(runtime, make_bundle):
    """A sysfs instance belongs to a network namespace: without one of its
    own the container gets the host's /sys (same interfaces), read-only."""
    def changes(c):
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
    out = run_out(runtime, make_bundle, "ls /sys/class/net; grep ' /sys ' /proc/self/mountinfo", "m14", changes)
    names = [l for l in out.splitlines() if " - " not in l]
    sys_mounts = [l for l in out.splitlines() if " - " in l]
    assert sorted(names) == sorted(os.listdir("/sys/class/net"))
    assert sys_mounts and all("ro" in l.split()[5].split(",") for l in sys_mounts), sys_mounts


def test_block_and_unbuffered_char_devices(runtime, make_bundle):
    def changes(c):
        c["linux"]["devices"] = [{"path": "/dev/ptloop", "type": "b", "major": 7, "minor": 0, "fileMode": 0o600},
                                 {"path": "/dev/ptzero", "type": "u", "major": 1, "minor": 5}]
    out = run_out(runtime, make_bundle, "stat -c '%F %t:%T %a' /dev/ptloop /dev/ptzero", "m15", changes)
    assert out.splitlines() == ["block special file 7:0 600", "character special file 1:5 666"]
