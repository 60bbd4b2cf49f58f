"""The container's root filesystem: propagation, mounts[], /dev, pivot_root,
masked and read-only paths, and a read-only root.

Runs in the container's init (Python, before it becomes pyoci-init), inside
the new mount namespace, before and after pivot_root. Every destination is
resolved inside the rootfs by the kernel (see paths.py), and mounts target
the resolved fd through /proc/self/fd, never a path a symlink could redirect.
"""
import os
import stat

from pyoci.errors import PyociError
from pyoci.linux import devices, mounts, paths
from pyoci.linux import sys as s


class MountError(PyociError):
    pass


def _mount_error(i, m, e):
    return MountError("mounts[%d] (%s on %s): %s" % (
        i, m.get("type") or "bind", m.get("destination"), getattr(e, "strerror", None) or e))


class Rootfs:
    def __init__(self, config, bundle, rootfs, ns_plan, cgroup_paths, hierarchies):
        self.config = config
        self.linux = config.get("linux") or {}
        self.bundle = bundle
        self.rootfs = rootfs
        self.ns = ns_plan
        self.cgroup_paths = cgroup_paths
        self.hierarchies = hierarchies
        self.root_fd = -1

    # -- before pivot ----------------------------------------------------
    def prepare(self):
        prop = self.linux.get("rootfsPropagation")
        flag = mounts.PROPAGATION.get(prop) if prop else None
        if prop and flag is None:
            raise PyociError("linux.rootfsPropagation: unknown value %r" % prop)
        # Nothing done from here on may propagate back to the host.
        s.mount(None, "/", None, s.MS_SLAVE | s.MS_REC)
        s.mount(self.rootfs, self.rootfs, None, s.MS_BIND | s.MS_REC)
        self.root_fd = os.open(self.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
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
            devices.create(self.root_fd, self.config)
            devices.symlinks(self.root_fd)
        elif self.linux.get("devices"):
            devices.create(self.root_fd, {"linux": {"devices": self.linux["devices"]}})

    def _mount(self, i, m, dest):
        mtype = m.get("type")
        opts = mounts.parse(m.get("options"), mtype)
        src = m.get("source")
        if mtype == "cgroup" or mtype == "cgroup2":
            return self._mount_cgroup(dest, opts)
        if mtype == "sysfs" and not self.ns.has("network"):
            # A sysfs instance belongs to a network namespace: without one of
            # its own the container gets the host's /sys, read-only.
            mtype, src = None, "/sys"
            opts = mounts.Options(opts.flags | s.MS_BIND | s.MS_REC | s.MS_RDONLY, opts.propagation, "")
        if opts.is_bind:
            if not src:
                raise MountError("mounts[%d].source: a bind mount needs a source" % i)
            if not os.path.isabs(src):
                src = os.path.join(self.bundle, src)
            try:
                st = os.stat(src)
            except OSError as e:
                raise MountError("mounts[%d].source: %s: %s" % (i, src, e.strerror))
            fd = paths.ensure(self.root_fd, dest, stat.S_ISDIR(st.st_mode))
            try:
                s.mount(src, s.fd_path(fd), None, s.MS_BIND | (opts.flags & s.MS_REC))
            finally:
                os.close(fd)
            if opts.flags & mounts.BIND_REMOUNT_FLAGS:
                self._remount_bind(dest, opts.flags)
        else:
            fd = paths.ensure(self.root_fd, dest, True)
            try:
                s.mount(src or mtype, s.fd_path(fd), mtype, opts.flags & ~s.MS_REMOUNT, opts.data or None)
            finally:
                os.close(fd)
        self._propagate(dest, opts.propagation)

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

    def _mount_cgroup(self, dest, opts):
        flags = opts.flags & ~(s.MS_BIND | s.MS_REC | s.MS_REMOUNT)
        ro = flags & s.MS_RDONLY
        own_ns = self.ns.has("cgroup")
        v1 = [h for h in self.hierarchies if h.version == 1]
        if not v1:
            # cgroup v2 only: one mount of the unified hierarchy.
            fd = paths.ensure(self.root_fd, dest, True)
            try:
                if own_ns:
                    s.mount("cgroup2", s.fd_path(fd), "cgroup2", flags)
                else:
                    s.mount(self.cgroup_paths.get(""), s.fd_path(fd), None, s.MS_BIND)
            finally:
                os.close(fd)
            if not own_ns and ro:
                self._remount_bind(dest, flags)
            return
        fd = paths.ensure(self.root_fd, dest, True)
        try:
            s.mount("tmpfs", s.fd_path(fd), "tmpfs", flags & ~s.MS_RDONLY, "mode=755")
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
                    s.mount(self.cgroup_paths[h.key], s.fd_path(fd), None, s.MS_BIND)
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
        prop = self.linux.get("rootfsPropagation")
        if prop:
            s.mount(None, "/", None, mounts.PROPAGATION[prop])

    # -- after pivot ---------------------------------------------------
    def finish(self):
        for p in self.linux.get("readonlyPaths") or ():
            try:
                s.mount(p, p, None, s.MS_BIND | s.MS_REC)
            except FileNotFoundError:
                continue
            except OSError as e:
                raise PyociError("linux.readonlyPaths: %s: %s" % (p, e.strerror))
            s.mount(None, p, None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY | s.MS_NOSUID
                    | s.MS_NODEV | s.MS_NOEXEC)
        for p in self.linux.get("maskedPaths") or ():
            self._mask(p)
        if (self.config.get("root") or {}).get("readonly"):
            s.mount(None, "/", None, s.MS_BIND | s.MS_REMOUNT | s.MS_RDONLY)

    @staticmethod
    def _mask(p):
        try:
            st = os.lstat(p)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            if stat.S_ISDIR(st.st_mode):
                s.mount("tmpfs", p, "tmpfs", s.MS_RDONLY, None)
            else:
                null = os.lstat("/dev/null")
                if not stat.S_ISCHR(null.st_mode) or null.st_rdev != os.makedev(1, 3):
                    raise PyociError("/dev/null in the container is not the null device: refusing to mask %s" % p)
                s.mount("/dev/null", p, None, s.MS_BIND)
        except OSError as e:
            raise PyociError("linux.maskedPaths: %s: %s" % (p, e.strerror))
