"""Path safety against a hostile rootfs: each test builds a malicious image
(or mount configuration) and says in its docstring what a naive runtime,
one that joins paths as strings and mounts or writes by path, would have
done. The host_guard fixture checks that nothing is left on the host."""
import json
import os
import re

from test_bad_input import assert_failed


def run_ok(runtime, bundle, cid):
    p = runtime.cmd("run", "-b", bundle, cid)
    assert p.returncode == 0, p.stderr
    return p.stdout


def rootfs(bundle):
    return os.path.join(bundle, "rootfs")


def test_mount_destination_through_escaping_symlink_stays_inside(runtime, make_bundle, tmp_path):
    """CVE-2021-30465. The image's /data is a symlink climbing out of the
    rootfs to a host directory. A naive runtime mounts on
    rootfs + "/data", which the kernel follows to the host directory: the
    volume lands there (and with a racing symlink swap, anywhere on the
    host). pyoci resolves the destination inside the rootfs and mounts onto
    that fd, so the volume is at the container's /data."""
    victim = tmp_path / "victim"
    victim.mkdir()
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "marker").write_text("volume\n")

    def changes(c):
        c["mounts"].append({"destination": "/data", "type": "bind", "source": str(payload),
                            "options": ["bind"]})
    b = make_bundle(["sh", "-c", "cat /data/marker; readlink /data"], changes)
    os.symlink("../" * 30 + str(victim).lstrip("/"), os.path.join(rootfs(b), "data"))
    out = run_ok(runtime, b, "ps1")
    assert out.splitlines()[0] == "volume"
    # the symlink target was created inside the rootfs, the host dir is untouched
    assert os.path.isdir(rootfs(b) + str(victim))
    assert os.listdir(victim) == []


def test_destination_creation_never_leaves_the_rootfs(runtime, make_bundle, tmp_path):
    """CVE-2024-45310. The image has /link -> <host dir> (absolute). A mount
    at /link/sub/dir (and a file bind at /link/file) makes a naive runtime
    call makedirs(rootfs + "/link/sub/dir") and open(..., O_CREAT), which
    follow the symlink on the host and create sub/dir and file in the host
    directory. pyoci creates them inside the rootfs."""
    host = tmp_path / "hostdir"
    host.mkdir()
    src = tmp_path / "srcfile"
    src.write_text("f\n")

    def changes(c):
        c["mounts"] += [{"destination": "/link/sub/dir", "type": "tmpfs", "source": "tmpfs"},
                        {"destination": "/link/file", "type": "bind", "source": str(src), "options": ["bind"]}]
    b = make_bundle(["sh", "-c", "cat /link/file"], changes)
    os.symlink(str(host), os.path.join(rootfs(b), "link"))
    p = runtime.cmd("run", "-b", b, "ps2")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "f"
    assert os.listdir(host) == []
    inside = rootfs(b) + str(host)
    assert os.path.isdir(inside + "/sub/dir") and os.path.isfile(inside + "/file")


def test_proc_symlink_refused(runtime, make_bundle):
    """CVE-2019-19921. The image's /proc is a symlink to a directory of the
    attacker's. A naive runtime mounts procfs where it points, and later
    writes (LSM label, sysctls) through /proc/... may reach files the image
    planted instead of procfs. pyoci refuses a proc mount through a symlink."""
    b = make_bundle(["true"])
    os.rmdir(os.path.join(rootfs(b), "proc"))
    os.mkdir(os.path.join(rootfs(b), "fakeproc"))
    os.symlink("/fakeproc", os.path.join(rootfs(b), "proc"))
    assert_failed(runtime.cmd("create", "-b", b, "ps3"), "mounts[0].destination", "/proc is a symlink")
    assert runtime.ids() == []


def test_sys_symlink_refused(runtime, make_bundle):
    """Same attack on /sys (youki GHSA 2025-54867): refused."""
    b = make_bundle(["true"])
    os.rmdir(os.path.join(rootfs(b), "sys"))
    os.symlink("tmp", os.path.join(rootfs(b), "sys"))
    assert_failed(runtime.cmd("create", "-b", b, "ps4"), ".destination", "/sys is a symlink")
    assert runtime.ids() == []


def test_proc_onto_non_directory_refused(runtime, make_bundle):
    """CVE-2023-27561 class. The image's /proc is a regular file. A naive
    runtime that creates what is missing and mounts by path ends up with a
    procfs-less container whose /proc the image controls; pyoci refuses a
    proc mount onto anything but a directory."""
    b = make_bundle(["true"])
    os.rmdir(os.path.join(rootfs(b), "proc"))
    with open(os.path.join(rootfs(b), "proc"), "w") as f:
        f.write("not a directory\n")
    assert_failed(runtime.cmd("create", "-b", b, "ps5"), "mounts[0].destination", "not a directory")
    assert runtime.ids() == []


def _no_dev_mount(c):
    c["mounts"] = [m for m in c["mounts"] if not m["destination"].startswith("/dev")]


def test_masking_with_a_fake_dev_null_refused(runtime, make_bundle):
    """CVE-2025-31133. The image (no /dev mount) has /dev/null as a symlink
    to /proc/sys/kernel/core_pattern. A naive runtime bind-mounts
    "/dev/null" over each masked path: the bind follows the symlink and
    puts the host-global core_pattern, writable, at /proc/timer_list, and
    the container escapes through it. pyoci checks that /dev/null is the
    character device 1:3 itself, reached through no symlink."""
    b = make_bundle(["true"], _no_dev_mount)
    os.symlink("/proc/sys/kernel/core_pattern", os.path.join(rootfs(b), "dev", "null"))
    with open("/proc/sys/kernel/core_pattern") as f:
        before = f.read()
    assert_failed(runtime.cmd("create", "-b", b, "ps6"), "linux.maskedPaths", "/dev/null")
    assert runtime.ids() == []
    with open("/proc/sys/kernel/core_pattern") as f:
        assert f.read() == before


def test_dev_symlink_in_image_refused(runtime, make_bundle, tmp_path):
    """A /dev that is a symlink to a host directory: a naive runtime mounts
    the /dev tmpfs and mknods the devices at rootfs + "/dev/null", which
    follows the absolute symlink on the host and creates device nodes in the
    host directory. pyoci refuses such a /dev."""
    host = tmp_path / "hostdev"
    host.mkdir()
    b = make_bundle(["true"])
    os.rmdir(os.path.join(rootfs(b), "dev"))
    os.symlink(str(host), os.path.join(rootfs(b), "dev"))
    assert_failed(runtime.cmd("create", "-b", b, "ps7"), "/dev in the rootfs is a symlink")
    assert runtime.ids() == []
    assert os.listdir(host) == []


def _over_domainname(source, dest="/proc/sys/kernel/domainname"):
    def changes(c):
        c["linux"]["sysctl"] = {"kernel.domainname": "ptevil"}
        c["mounts"].append({"destination": dest, "type": "bind", "source": source, "options": ["bind"]})
    return changes


def test_mount_over_a_procfs_file_refused(runtime, make_bundle):
    """CVE-2019-16884 / CVE-2025-52881 through the config. A mount puts
    another procfs file (the UTS hostname) over /proc/sys/kernel/domainname.
    A naive runtime mounts it, then writes the sysctl by path (even checking
    that the file is on procfs): the value lands in the hostname, and with
    core_pattern as the hidden file in a host-wide setting. As runc, pyoci
    refuses mounts inside /proc but for the files lxcfs emulates."""
    b = make_bundle(["hostname"], _over_domainname("/proc/sys/kernel/hostname"))
    assert_failed(runtime.cmd("create", "-b", b, "ps8"), "mounts[7].destination",
                  "/proc/sys/kernel/domainname is inside /proc")
    assert runtime.ids() == []


def test_mount_into_proc_through_a_symlink_refused(runtime, make_bundle, tmp_path):
    """The same through a symlink of the image (/k -> /proc/sys/kernel): a
    check of the destination string passes, the mount lands in /proc. The
    check is made on the resolved fd."""
    decoy = tmp_path / "decoy"
    decoy.write_text("decoy\n")
    b = make_bundle(["true"], _over_domainname(str(decoy), "/k/domainname"))
    os.symlink("/proc/sys/kernel", os.path.join(rootfs(b), "k"))
    assert_failed(runtime.cmd("create", "-b", b, "ps9"), "mounts[7].destination", "is inside /proc")
    assert decoy.read_text() == "decoy\n"
    assert runtime.ids() == []


def test_lxcfs_style_proc_files_may_be_covered(runtime, make_bundle, tmp_path):
    """The exception: /proc/uptime and the like (lxcfs) may be bound over."""
    up = tmp_path / "uptime"
    up.write_text("12.00 34.00\n")

    def changes(c):
        c["mounts"].append({"destination": "/proc/uptime", "type": "bind", "source": str(up), "options": ["bind"]})
    b = make_bundle(["cat", "/proc/uptime"], changes)
    assert run_ok(runtime, b, "ps11") == "12.00 34.00\n"


def test_procfs_writes_refuse_a_file_mounted_over_them(tmp_path):
    """CVE-2019-16884 / CVE-2025-52881 at the write itself (a mount made by
    a racing container through a shared volume, which no config check sees).
    In a private mount namespace, a regular file and then another procfs
    file are bound over /proc/sys/kernel/domainname: a naive write by path
    (even with a statfs check, for the procfs file) goes into them;
    pyoci.linux.procfs refuses both and still writes when nothing covers it."""
    from pyoci.errors import PyociError
    from pyoci.linux import procfs
    from pyoci.linux import sys as s

    decoy = tmp_path / "decoy"
    decoy.write_text("decoy\n")
    target = "/proc/sys/kernel/domainname"
    pid = os.fork()
    if pid == 0:
        code = 10
        try:
            s.unshare(s.CLONE_NEWNS | s.CLONE_NEWUTS)
            s.mount(None, "/", None, s.MS_PRIVATE | s.MS_REC)
            for k, src in enumerate((str(decoy), "/proc/sys/kernel/hostname")):
                s.mount(src, target, None, s.MS_BIND)
                try:
                    procfs.write(target, "ptevil")
                    os._exit(1 + k)   # written through the mount
                except PyociError as e:
                    if "refusing" not in str(e):
                        os._exit(3)
                s.umount2(target, s.MNT_DETACH)
            procfs.write(target, "ptok")
            with open(target) as f:
                code = 0 if f.read().strip() == "ptok" else 4
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert decoy.read_text() == "decoy\n"


def test_sysctl_still_written_when_nothing_covers_it(runtime, make_bundle):
    """The guard above does not stop a normal sysctl."""
    def changes(c):
        c["linux"]["sysctl"] = {"kernel.domainname": "ptdomain"}
    b = make_bundle(["cat", "/proc/sys/kernel/domainname"], changes)
    assert run_ok(runtime, b, "ps10").strip() == "ptdomain"


def test_racing_symlink_swap_never_reaches_the_host(runtime, make_bundle, tmp_path):
    """CVE-2021-30465 with the race itself. While containers are created, a
    thread keeps swapping the image's /data between a symlink into the
    rootfs and one climbing out to a host directory. A runtime that checks
    the path in user space and then creates and mounts by path loses the
    race now and then: the file destination /data/f is created in the host
    directory. pyoci resolves every step in the kernel inside the rootfs
    and mounts onto the fd it resolved, so the host directory stays empty."""
    import threading

    host = tmp_path / "hostside"
    host.mkdir()
    src = tmp_path / "vol"
    src.write_text("vol\n")

    def changes(c):
        c["mounts"].append({"destination": "/data/f", "type": "bind", "source": str(src), "options": ["bind"]})
    b = make_bundle(["cat", "/data/f"], changes)
    rf = rootfs(b)
    os.mkdir(os.path.join(rf, "inside"))
    inside_link, outside_link = os.path.join(rf, ".in"), os.path.join(rf, ".out")
    data = os.path.join(rf, "data")
    os.symlink("inside", data)
    stop = threading.Event()

    def swap():
        while not stop.is_set():
            for target, tmp in (("inside", inside_link), ("../" * 20 + str(host).lstrip("/"), outside_link)):
                try:
                    os.symlink(target, tmp)
                    os.replace(tmp, data)
                except OSError:
                    pass

    t = threading.Thread(target=swap)
    t.start()
    try:
        for i in range(8):
            p = runtime.cmd("run", "-b", b, "race%d" % i)
            assert p.returncode in (0, 1), p.stderr   # cat may see either side
            assert os.listdir(host) == []
    finally:
        stop.set()
        t.join()
    assert os.listdir(host) == []
