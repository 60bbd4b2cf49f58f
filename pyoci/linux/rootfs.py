"""The container's root filesystem: propagation, mounts[], /dev, pivot_root,
masked and read-only paths, and a read-only root.

Runs in the container's init (Python, before it becomes pyoci-init), inside
the new mount namespace, before and after pivot_root. Every destination is
resolved inside the rootfs by the kernel (see paths.py), and mounts target
the resolved fd through /proc/self/fd, never a path a symlink could redirect.
"""
import errno
import stat

from pyoci import fastos as os
from pyoci.errors import PyociError
from pyoci.linux import devices, mounts, paths, procfs
from pyoci.linux import sys as s


class MountError(PyociError):
    pass


def json_str(s):
    return '"%s"' % s


def _mount_error(i, m, e):
    reason = getattr(e, "strerror", None) or str(e)
    if getattr(e, "errno", None) == errno.ENODEV and m.get("type"):
        reason += " (unknown filesystem type %r)" % m["type"]
    return MountError("mounts[%d] (%s on %s): %s" % (
        i, m.get("type") or "bind", m.get("destination"), reason))


def _selinux_enabled():
    return os.path.exists("/sys/fs/selinux/enforce")


# Files under /proc that a mount may cover: the ones lxcfs emulates.
PROC_MOUNTABLE = frozenset(("cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg",
                            "slabinfo", "net/dev", "sys/kernel/ns_last_pid"))

# Filesystems the SELinux context= mount option is given to (as runc does:
# not to binds, proc, sysfs or cgroups, whose labels come from the policy).
LABELED = frozenset(("tmpfs", "devpts", "shm", "ramfs", "overlay", "fuse"))
# Filesystems whose root gets the label as an xattr after the mount: an
# mqueue superblock exists before (one per IPC namespace, mounted by the
# kernel), so a context= differing from its settings is refused (EBUSY).
LABELED_ROOT = frozenset(("mqueue",))


def _unescape(field):
    """A mountinfo path: space, tab, newline and backslash are octal escapes."""
    if "\\" not in field:
        return field
    # not `re` (its import, with enum, costs ~3 ms in the container's set-up)
    parts = field.split("\\")
    out = [parts[0]]
    for p in parts[1:]:
        if len(p) >= 3 and all(c in "01234567" for c in p[:3]):
            out.append(chr(int(p[:3], 8)) + p[3:])
        else:
            out.append("\\" + p)
    return "".join(out)


def _parent_mount_private(path):
    """Makes the mount that holds path (the longest mount point above it,
    path itself included) private when it is shared, as runc does: a bind of
    the rootfs would propagate, and pivot_root refuses a shared parent; or
    when it is unbindable (rootfsPropagation [r]unbindable), which a bind of
    the rootfs would fail on (as runc 1.2 does). A slave stays a slave."""
    path = os.path.realpath(path)
    best, opts = None, ()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mp = _unescape(fields[4])
            if (path == mp or mp == "/" or path.startswith(mp + "/")) and (best is None or len(mp) >= len(best)):
                # >=: of mounts stacked on one point the last listed is on top
                best, opts = mp, fields[6:fields.index("-")]
    if best is not None and any(o.startswith("shared:") or o == "unbindable" for o in opts):
        s.mount(None, best, None, s.MS_PRIVATE)


def _hide_full_proc_and_sys(rootfs):
    """--no-pivot leaves the host's mounts in the container's mount namespace,
    out of sight under the chroot but still there: a full procfs or sysfs
    among them lets a process of the container in a new user namespace mount
    a fresh, unmasked proc (the kernel allows it where a full one is already
    mounted), an escape primitive (runc's no_pivot.bats). Unmount every full
    proc and sysfs outside the rootfs, or cover it with a tmpfs where it
    cannot be unmounted, as runc does."""
    rootfs = os.path.realpath(rootfs)
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            mp = _unescape(fields[4])
            if fields[3] != "/" or fields[sep + 1] not in ("proc", "sysfs"):
                continue
            if mp == rootfs or mp.startswith(rootfs + "/"):
                continue
            found.append(mp)
    for mp in found:
        try:
            # none of this may propagate to the host
            s.mount(None, mp, None, s.MS_SLAVE | s.MS_REC)
        except OSError as e:
            if e.errno == errno.ENOENT:
                continue   # under one already unmounted
            raise
        try:
            s.umount2(mp, s.MNT_DETACH)
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EPERM):
                raise
            s.mount("tmpfs", mp, "tmpfs", 0, None)


class Rootfs:
    def __init__(self, config, bundle, rootfs, ns_plan, cgroup_paths, hierarchies,
                 log=None, idmap_fds=None, bind_devices=None):
        self.config = config
        self.log = log
        self.idmap_fds = idmap_fds or {}
        # Devices bind-mounted from the host instead of mknod (a container
        # in a user namespace of its own cannot mknod).
        self.bind_devices = bind_devices
        self.mount_label = None
        self.linux = config.get("linux") or {}
        self.bundle = bundle
        self.rootfs = rootfs
        self.ns = ns_plan
        self.cgroup_paths = cgroup_paths
        self.hierarchies = hierarchies
        self.root_fd = -1
        self.dev_ro_flags = 0
        # Called before a cgroup mount of the container's own cgroup
        # namespace: the caller enters its cgroups and that namespace.
        self.before_cgroup_mount = lambda: None

    # -- before pivot ----------------------------------------------------
    def prepare(self):
        prop = self.linux.get("rootfsPropagation")
        flag = mounts.PROPAGATION.get(prop) if prop else s.MS_SLAVE | s.MS_REC
        if flag is None:
            raise PyociError("linux.rootfsPropagation: unknown value %r" % prop)
        # As runc prepares the root: the requested propagation (rslave by
        # default) on the whole tree first, so that with rshared the binds of
        # shared host mounts stay peers of the host's and what the container
        # mounts under them reaches the host (Kubernetes' Bidirectional
        # volumes); then the mount holding the rootfs is made private, so the
        # rootfs bind and the mounts made on it (proc, /dev, ...) do not
        # propagate anywhere, and pivot_root accepts it (its parent may not
        # be shared).
        if flag & s.MS_UNBINDABLE:
            # unbindable concerns the container's root only (set in finish);
            # on the tree it would refuse the binds of host mounts to come
            flag = s.MS_SLAVE | s.MS_REC
        s.mount(None, "/", None, flag)
        _parent_mount_private(self.rootfs)
        s.mount(self.rootfs, self.rootfs, None, s.MS_BIND | s.MS_REC)
        self.root_fd = os.open(self.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._check_dev()
        label = self.linux.get("mountLabel")
        if label:
            if _selinux_enabled():
                self.mount_label = label
            elif self.log is not None:
                self.log.debug("linux.mountLabel %r not applied: SELinux is not enabled on this host" % label)
        dev_is_mounted = False
        for i, m in enumerate(self.config.get("mounts") or ()):
            dest = m.get("destination") or ""
            if not dest.startswith("/"):
                dest = "/" + dest
            if os.path.normpath(dest) == "/dev":
                dev_is_mounted = True
            try:
                self._mount(i, m, dest)
            except OSError as e:
                raise _mount_error(i, m, e)
        if dev_is_mounted:
            devices.create(self.root_fd, self.config, bind=self.bind_devices)
            devices.symlinks(self.root_fd)
        elif self.linux.get("devices"):
            devices.create(self.root_fd, {"linux": {"devices": self.linux["devices"]}}, bind=self.bind_devices)

    def _check_dev(self):
        """A /dev that is a symlink in the image would send the device nodes
        and the /dev mounts wherever it points: refuse it."""
        try:
            st = os.stat("dev", dir_fd=self.root_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISLNK(st.st_mode):
            raise PyociError("root.path: /dev in the rootfs is a symlink (to %s): refusing it"
                             % os.readlink("dev", dir_fd=self.root_fd))
        if not stat.S_ISDIR(st.st_mode):
            raise PyociError("root.path: /dev in the rootfs is not a directory: refusing it")

    def _mount(self, i, m, dest):
        mtype = m.get("type")
        opts = mounts.parse(m.get("options"), mtype)
        src = m.get("source")
        if mtype == "cgroup" or mtype == "cgroup2":
            return self._mount_cgroup(dest, opts)
        kernel_fs = mtype in ("proc", "sysfs")
        joined_net = self.ns.has("network") and "network" not in self.ns.new
        if mtype == "sysfs" and (not self.ns.has("network") or (joined_net and "user" in self.ns.new)):
            # A sysfs instance belongs to a network namespace: without one of
            # its own (or with a joined one, which a new user namespace does
            # not own) the container gets the host's /sys, read-only.
            mtype, src = None, "/sys"
            opts = mounts.Options(opts.flags | s.MS_BIND | s.MS_REC | s.MS_RDONLY, opts.propagation, "",
                                  opts.attr_set, opts.attr_clr)
        if opts.is_bind:
            if not src:
                raise MountError("mounts[%d].source: a bind mount needs a source" % i)
            if not os.path.isabs(src):
                src = os.path.join(self.bundle, src)
            # a source the runtime opened for us (one our root cannot reach)
            tree = None if opts.idmap else getattr(self, "idmap_trees", {}).get(i)
            try:
                st = os.fstat(tree) if tree is not None else os.stat(src)
            except OSError as e:
                raise MountError("mounts[%d].source: %s: %s" % (i, src, e.strerror))
            fd = self._destination(i, dest, stat.S_ISDIR(st.st_mode), kernel_fs)
            try:
                if opts.idmap:
                    self._mount_idmapped(i, src, fd, opts)
                elif tree is not None:
                    s.move_mount(tree, "", fd, "", s.MOVE_MOUNT_F_EMPTY_PATH | s.MOVE_MOUNT_T_EMPTY_PATH)
                else:
                    s.mount(src, s.fd_path(fd), None, s.MS_BIND | (opts.flags & s.MS_REC))
            finally:
                os.close(fd)
            if opts.flags & mounts.BIND_REMOUNT_FLAGS:
                self._remount_bind(dest, opts.flags)
        else:
            fd = self._destination(i, dest, True, kernel_fs)
            if os.path.normpath(dest) == "/dev" and opts.flags & s.MS_RDONLY:
                # A read-only /dev (runc issue 3248) is made read-only once
                # devpts, the devices, the symlinks and the console are in it.
                self.dev_ro_flags = opts.flags & ~s.MS_REMOUNT
                opts = mounts.Options(opts.flags & ~s.MS_RDONLY, opts.propagation, opts.data,
                                      opts.attr_set, opts.attr_clr)
            data = self._labeled(opts.data) if mtype in LABELED else opts.data
            try:
                s.mount(src or mtype, s.fd_path(fd), mtype, opts.flags & ~s.MS_REMOUNT, data or None)
            finally:
                os.close(fd)
            if self.mount_label and mtype in LABELED_ROOT:
                from pyoci.linux import lsm

                fd = self._reopen(dest)
                try:
                    lsm.set_file_label(s.fd_path(fd), self.mount_label)
                finally:
                    os.close(fd)
        if opts.recursive_attrs:
            fd = self._reopen(dest)
            try:
                s.mount_setattr(fd, "", s.AT_EMPTY_PATH | s.AT_RECURSIVE, opts.attr_set, opts.attr_clr)
            finally:
                os.close(fd)
        self._propagate(dest, opts.propagation)

    def _labeled(self, data):
        """Mount data with linux.mountLabel as SELinux's context= option
        (SELinux on), for a filesystem that takes it."""
        if self.mount_label:
            data = ",".join(x for x in (data, 'context="%s"' % self.mount_label) if x)
        return data or None

    def _destination(self, i, dest, is_dir, kernel_fs):
        """An O_PATH fd of the mount destination inside the rootfs, created
        as needed. proc and sysfs go only onto a real directory reached
        through no symlink (CVE-2019-19921, CVE-2023-27561)."""
        mtype = self.config["mounts"][i].get("type")
        if not kernel_fs:
            return self._not_in_proc(i, dest, mtype, paths.ensure(self.root_fd, dest, is_dir))
        try:
            return self._not_in_proc(i, dest, mtype, paths.open_dir_no_symlinks(self.root_fd, dest))
        except OSError as e:
            # runc's words after ours: scripts match on them
            if e.errno == errno.ELOOP:
                raise MountError("mounts[%d].destination: %s is a symlink in the rootfs: filesystem %s "
                                 "must be mounted on ordinary directory" % (i, dest, json_str(mtype)))
            if e.errno == errno.ENOTDIR:
                raise MountError("mounts[%d].destination: %s is not a directory in the rootfs: filesystem "
                                 "%s must be mounted on ordinary directory" % (i, dest, json_str(mtype)))
            raise

    def _not_in_proc(self, i, dest, mtype, fd):
        """A mount may not cover what is inside the container's procfs (say
        /proc/self/attr, /proc/sys/kernel/core_pattern: it would redirect the
        runtime's or the kernel's own writes), except the few files lxcfs
        emulates, as runc allows; checked on the resolved fd, so a symlink
        into /proc is no way around it. proc onto proc is fine."""
        if mtype == "proc" or s.fstatfs_type(fd) != procfs.PROC_SUPER_MAGIC:
            return fd
        rel = os.readlink(s.fd_path(fd))
        base = self.rootfs.rstrip("/") + "/proc/"
        rel = rel[len(base):] if rel.startswith(base) else rel
        first, _, rest = rel.partition("/")
        if first.isdigit() or first in ("self", "thread-self"):
            rel = rest
        if rel in PROC_MOUNTABLE:
            return fd
        os.close(fd)
        raise MountError("mounts[%d].destination: %s is inside /proc: only %s may be mounted over there"
                         % (i, dest, ", ".join("/proc/" + p for p in sorted(PROC_MOUNTABLE))))

    def _mount_idmapped(self, i, src, fd, opts):
        """A detached copy of the source tree, idmapped with the mount's
        user namespace, then attached on the destination fd."""
        tree = getattr(self, "idmap_trees", {}).get(i)
        if tree is not None:
            # made by the runtime (a container with a user namespace of its
            # own controls neither the mappings' namespace nor the source)
            s.move_mount(tree, "", fd, "", s.MOVE_MOUNT_F_EMPTY_PATH | s.MOVE_MOUNT_T_EMPTY_PATH)
            return
        userns = self.idmap_fds.get(i)
        if userns is None:
            raise MountError("mounts[%d].options: %s without a user namespace" % (i, opts.idmap))
        recursive = opts.idmap == "ridmap"
        tree = s.open_tree(AT_FDCWD, src, s.OPEN_TREE_CLONE | s.OPEN_TREE_CLOEXEC
                           | (s.AT_RECURSIVE if (recursive or opts.flags & s.MS_REC) else 0))
        try:
            s.mount_setattr(tree, "", s.AT_EMPTY_PATH | (s.AT_RECURSIVE if recursive else 0),
                            s.MOUNT_ATTR_IDMAP, 0, 0, userns)
            s.move_mount(tree, "", fd, "", s.MOVE_MOUNT_F_EMPTY_PATH | s.MOVE_MOUNT_T_EMPTY_PATH)
        finally:
            os.close(tree)

    def _reopen(self, dest):
        return paths.open_in_root(self.root_fd, dest)

    def _remount_bind(self, dest, flags):
        fd = self._reopen(dest)
        try:
            target = s.fd_path(fd)
            locked = 0
            st = os.statvfs(target)
            for st_flag, ms_flag in ((os.ST_NOSUID, s.MS_NOSUID), (os.ST_NODEV, s.MS_NODEV),
                                     (os.ST_NOEXEC, s.MS_NOEXEC), (os.ST_RDONLY, s.MS_RDONLY)):
                if st.f_flag & st_flag:
                    locked |= ms_flag
            s.mount(None, target, None,
                    s.MS_BIND | s.MS_REMOUNT | (flags & mounts.BIND_REMOUNT_FLAGS) | locked)
        finally:
            os.close(fd)

    def _propagate(self, dest, props):
        if not props:
            return
        fd = self._reopen(dest)
        try:
            for p in props:
                s.mount(None, s.fd_path(fd), None, p)
        finally:
            os.close(fd)

    def _cgroup_dir(self, key):
        """The container's cgroup directory in a hierarchy: its own, or the
        one it runs in (a rootless container without a delegated cgroup)."""
        d = self.cgroup_paths.get(key)
        if d is None:
            from pyoci.linux.cgroups import Cgroup

            d = Cgroup.own_dirs(self.hierarchies).get(key)
        return d

    def _mount_cgroup(self, dest, opts):
        flags = opts.flags & ~(s.MS_BIND | s.MS_REC | s.MS_REMOUNT)
        ro = flags & s.MS_RDONLY
        own_ns = self.ns.has("cgroup")
        if own_ns:
            self.before_cgroup_mount()
        v1 = [h for h in self.hierarchies if h.version == 1]
        if not v1:
            # cgroup v2 only: one mount of the unified hierarchy.
            fd = paths.ensure(self.root_fd, dest, True)
            bound = not own_ns
            try:
                if own_ns:
                    try:
                        s.mount("cgroup2", s.fd_path(fd), "cgroup2", flags)
                    except OSError as e:
                        # The kernel refuses a new cgroup2 mount on the root
                        # of one (EBUSY: /sys bound from the host brings the
                        # host's /sys/fs/cgroup along) or where the user
                        # namespace may not mount it (EPERM). As runc: bind
                        # the container's own cgroup, which is what its
                        # cgroup namespace would show at the root.
                        if e.errno not in (errno.EBUSY, errno.EPERM):
                            raise
                        bound = True
                if bound:
                    s.mount(self._cgroup_dir(""), s.fd_path(fd), None, s.MS_BIND)
            finally:
                os.close(fd)
            if bound and ro:
                self._remount_bind(dest, flags)
            return
        fd = paths.ensure(self.root_fd, dest, True)
        try:
            s.mount("tmpfs", s.fd_path(fd), "tmpfs", flags & ~s.MS_RDONLY, self._labeled("mode=755"))
        finally:
            os.close(fd)
        for h in self.hierarchies:
            name = os.path.basename(h.mountpoint)
            sub = dest.rstrip("/") + "/" + name
            fd = paths.mkdir_all(self.root_fd, sub)
            try:
                if own_ns:
                    s.mount("cgroup", s.fd_path(fd), "cgroup" if h.version == 1 else "cgroup2",
                            flags, h.mount_data or None)
                else:
                    s.mount(self._cgroup_dir(h.key), s.fd_path(fd), None, s.MS_BIND)
            finally:
                os.close(fd)
            if not own_ns and (flags & mounts.BIND_REMOUNT_FLAGS):
                self._remount_bind(sub, flags)
            if "," in name:
                parent = paths.mkdir_all(self.root_fd, dest)
                try:
                    for part in name.split(","):
                        try:
                            os.symlink(name, part, dir_fd=parent)
                        except FileExistsError:
                            pass
                finally:
                    os.close(parent)
        if ro:
            fd = self._reopen(dest)
            try:
                s.mount(None, s.fd_path(fd), None, s.MS_REMOUNT | flags)
            finally:
                os.close(fd)

    # -- the switch ----------------------------------------------------
    def switch_root(self, no_pivot=False):
        if no_pivot:
            _hide_full_proc_and_sys(self.rootfs)
            os.chdir(self.rootfs)
            s.mount(self.rootfs, "/", None, s.MS_MOVE)
            os.chroot(".")
        else:
            old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            new = os.open(self.rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fchdir(new)
                s.pivot_root(".", ".")
                os.fchdir(old)
                # The old root sits on top of the new one: detach it without
                # its unmount propagating anywhere.
                s.mount(None, ".", None, s.MS_SLAVE | s.MS_REC)
                s.umount2(".", s.MNT_DETACH)
            finally:
                os.close(old)
                os.close(new)
        os.chdir("/")
        os.close(self.root_fd)
        self.root_fd = -1

    # -- after pivot ---------------------------------------------------
    def dev_readonly(self):
        """The /dev mount asked read-only, now that everything is in it."""
        if self.dev_ro_flags:
            s.mount(None, "/dev", None, s.MS_REMOUNT | self.dev_ro_flags)

    def finish(self):
        root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for p in self.linux.get("readonlyPaths") or ():
                self._readonly(root, p)
            masked = self.linux.get("maskedPaths")
            if masked:
                null = _verified_null(root)
                try:
                    for p in masked:
                        self._mask(root, null, p)
                finally:
                    os.close(null)
        finally:
            os.close(root)
        # The requested propagation on the new root itself, last: the masked
        # and read-only paths above are binds, which an unbindable tree
        # would refuse.
        prop = self.linux.get("rootfsPropagation")
        if prop:
            s.mount(None, "/", None, mounts.PROPAGATION[prop])
        if (self.config.get("root") or {}).get("readonly"):
            s.mount(None, "/", None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY)

    @staticmethod
    def _open(root, p, what):
        try:
            return paths.open_in_root(root, p)
        except (FileNotFoundError, NotADirectoryError):
            return -1
        except OSError as e:
            raise PyociError("%s: %s: %s" % (what, p, e.strerror))

    def _readonly(self, root, p):
        """A read-only bind of p onto itself, recursively (mount_setattr)."""
        fd = self._open(root, p, "linux.readonlyPaths")
        if fd < 0:
            return
        try:
            tree = s.open_tree(fd, "", s.OPEN_TREE_CLONE | s.OPEN_TREE_CLOEXEC | s.AT_EMPTY_PATH
                               | s.AT_RECURSIVE)
            try:
                s.mount_setattr(tree, "", s.AT_EMPTY_PATH | s.AT_RECURSIVE, s.MOUNT_ATTR_RDONLY)
                s.move_mount(tree, "", fd, "", s.MOVE_MOUNT_F_EMPTY_PATH | s.MOVE_MOUNT_T_EMPTY_PATH)
            finally:
                os.close(tree)
        except OSError as e:
            raise PyociError("linux.readonlyPaths: %s: %s" % (p, e.strerror))
        finally:
            os.close(fd)

    def _mask(self, root, null, p):
        fd = self._open(root, p, "linux.maskedPaths")
        if fd < 0:
            return
        try:
            if paths.is_dir_fd(fd):
                s.mount("tmpfs", s.fd_path(fd), "tmpfs", s.MS_RDONLY, self._labeled(""))
            else:
                s.mount(s.fd_path(null), s.fd_path(fd), None, s.MS_BIND)
        except OSError as e:
            raise PyociError("linux.maskedPaths: %s: %s" % (p, e.strerror))
        finally:
            os.close(fd)


def _verified_null(root):
    """An fd of the container's /dev/null, checked to be the character device
    1:3 itself, not a symlink or another file put there (CVE-2025-31133)."""
    try:
        fd = paths.open_in_root(root, "/dev/null", os.O_PATH | os.O_NOFOLLOW, s.RESOLVE_NO_SYMLINKS)
    except OSError as e:
        raise PyociError("linux.maskedPaths: /dev/null in the container: %s: refusing to mask" % e.strerror)
    st = os.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise PyociError("linux.maskedPaths: /dev/null in the container is not the null device (1:3): "
                         "refusing to mask with it")
    return fd


AT_FDCWD = -100
