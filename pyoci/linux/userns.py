"""User namespaces: id mappings and what changes for a container whose root
is not the host's root.

The runtime (P) writes the maps of the new user namespace while C1 waits
(see runtime/child.py): directly when P may (root, or an unprivileged
caller mapping only its own uid/gid, with setgroups denied first as the
kernel requires), through the setuid helpers newuidmap/newgidmap (Debian
`uidmap`, ranges from /etc/subuid and /etc/subgid) otherwise.
"""

from pyoci import fastos as os
from pyoci.errors import ConfigError, PyociError

# Linux accepts at most 340 lines in uid_map/gid_map (5 before 4.15).
MAX_LINES = 340


def mappings(config, key):
    """[(containerID, hostID, size)] of linux.uidMappings / gidMappings."""
    out = []
    for i, m in enumerate((config.get("linux") or {}).get(key) or ()):
        try:
            t = (int(m["containerID"]), int(m["hostID"]), int(m["size"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError("linux.%s[%d]" % (key, i), "needs containerID, hostID and size")
        if t[2] < 1 or min(t) < 0 or t[0] + t[2] > 1 << 32 or t[1] + t[2] > 1 << 32:
            raise ConfigError("linux.%s[%d]" % (key, i), "range %d:%d:%d is out of bounds" % t)
        out.append(t)
    if len(out) > MAX_LINES:
        raise ConfigError("linux." + key, "%d ranges: the kernel accepts at most %d" % (len(out), MAX_LINES))
    spans = sorted(out)
    for a, b in zip(spans, spans[1:]):
        if a[0] + a[2] > b[0]:
            raise ConfigError("linux." + key, "container ranges %d+%d and %d+%d overlap" % (a[0], a[2], b[0], b[2]))
    spans = sorted(out, key=lambda t: t[1])
    for a, b in zip(spans, spans[1:]):
        if a[1] + a[2] > b[1]:
            raise ConfigError("linux." + key, "host ranges %d+%d and %d+%d overlap" % (a[1], a[2], b[1], b[2]))
    return out


def to_host(maps, cid):
    """The host id that container id cid maps to, or None."""
    for c, h, n in maps:
        if c <= cid < c + n:
            return h + cid - c
    return None


def format_map(maps):
    return "".join("%d %d %d\n" % m for m in maps)


def read_map(path):
    """[(inside, outside, size)] from /proc/PID/uid_map or gid_map."""
    with open(path) as f:
        return [tuple(int(x) for x in line.split()) for line in f if line.strip()]


def inside(pid="self"):
    """True when PID runs in a user namespace other than the initial one
    (whose map is the identity over the whole 32-bit range)."""
    try:
        return read_map("/proc/%s/uid_map" % pid) != [(0, 0, 4294967295)]
    except OSError:
        return False


def setgroups_allowed(pid="self"):
    try:
        with open("/proc/%s/setgroups" % pid) as f:
            return f.read().strip() != "deny"
    except OSError:
        return True


# -- writing the maps (the runtime, for C1) ----------------------------------
def write_maps(pid, uid_maps, gid_maps):
    """Give the new user namespace of PID its maps. Raises PyociError naming
    the config field."""
    euid, egid = os.geteuid(), os.getegid()
    privileged = euid == 0
    if privileged or _own_only(uid_maps, euid):
        _write(pid, "uid_map", uid_maps, "linux.uidMappings")
    else:
        _helper("newuidmap", pid, uid_maps, "linux.uidMappings", "/etc/subuid")
    if privileged or _own_only(gid_maps, egid):
        if not privileged:
            # An unprivileged writer may map its own gid only once it has
            # given up setgroups(2) in the namespace (user_namespaces(7)).
            _write_proc(pid, "setgroups", "deny\n", "linux.gidMappings")
        _write(pid, "gid_map", gid_maps, "linux.gidMappings")
    else:
        _helper("newgidmap", pid, gid_maps, "linux.gidMappings", "/etc/subgid")


def _own_only(maps, own):
    return len(maps) == 1 and maps[0][1] == own and maps[0][2] == 1


def _write_proc(pid, name, data, field):
    path = "/proc/%d/%s" % (pid, name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, data.encode())   # one write(2): the kernel needs the whole map at once
        finally:
            os.close(fd)
    except OSError as e:
        raise PyociError("%s: write %s: %s" % (field, path, e.strerror))


def _write(pid, name, maps, field):
    _write_proc(pid, name, format_map(maps), field)


def _helper(prog, pid, maps, field, idfile):
    import shutil
    import subprocess

    exe = shutil.which(prog) or next((p for p in ("/usr/bin/" + prog, "/bin/" + prog) if os.path.exists(p)), None)
    if exe is None:
        raise PyociError("%s: mapping more than your own id needs %s (Debian package uidmap) and a "
                         "range in %s" % (field, prog, idfile))
    argv = [exe, str(pid)] + [str(x) for m in maps for x in m]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       close_fds=True)
    if p.returncode != 0:
        out = p.stdout.decode(errors="replace").strip().replace("\n", "; ")
        raise PyociError("%s: %s failed (are the ranges yours in %s?): %s" % (field, prog, idfile, out))


# -- inside the new user namespace (C1, C2) ----------------------------------
def become_root():
    """After the maps are written: root of the namespace, so that what the
    set-up creates belongs to the container's root, not to an unmapped id."""
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
    except OSError as e:
        raise PyociError("user namespace: cannot become its root (is container id 0 mapped in "
                         "linux.uidMappings and linux.gidMappings?): %s" % e.strerror)


def host_root():
    try:
        m = read_map("/proc/self/uid_map")
    except OSError:
        return None
    return to_host(m, 0)


def check_reachable(path, field):
    """A clear error when the container's root cannot reach path (a
    directory on the way that its host uid may not search)."""
    try:
        os.stat(path)
        return
    except PermissionError:
        pass
    except OSError:
        return   # not ours to report: the mount itself will say what is wrong
    blocked = "/"
    parts = [p for p in path.split("/") if p]
    cur = ""
    for p in parts:
        nxt = cur + "/" + p
        try:
            os.stat(nxt)
        except PermissionError:
            blocked = cur or "/"
            break
        cur = nxt
    uid = host_root()
    raise PyociError("%s: %s is not reachable by the container's root (uid %s on the host): no search "
                     "permission on %s; give that uid access or use a directory it can reach"
                     % (field, path, "?" if uid is None else uid, blocked))


def check_sources(config, bundle, rootfs, opened=()):
    """check_reachable for the rootfs and every bind mount source (but
    those the runtime opened for the container: `opened`, by index)."""
    check_reachable(rootfs, "root.path")
    for i, m in enumerate(config.get("mounts") or ()):
        if i in opened:
            continue
        opts = m.get("options") or ()
        if m.get("type") == "bind" or "bind" in opts or "rbind" in opts:
            src = m.get("source")
            if src:
                check_reachable(src if os.path.isabs(src) else os.path.join(bundle, src),
                                "mounts[%d].source" % i)


def readonly_cgroupfs(rootfs):
    """CVE-2023-25809: in a user namespace without a cgroup namespace of its
    own, /sys/fs/cgroup shows the host's hierarchy (the caller's delegated
    cgroups included): make every mount at or under it read-only. Runs
    before pivot_root; mount points come from this mount namespace's
    mountinfo."""
    from pyoci.linux import paths
    from pyoci.linux import sys as s
    from pyoci.linux.cgroups import _unescape

    top = rootfs.rstrip("/") + "/sys/fs/cgroup"
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = _unescape(line.split()[4])
            if mp == top or mp.startswith(top + "/"):
                points.append(mp)
    root_fd = os.open(rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for mp in sorted(set(points), key=len):
            try:
                fd = paths.open_in_root(root_fd, mp[len(rootfs.rstrip("/")):])
            except OSError:
                continue
            try:
                s.mount_setattr(fd, "", s.AT_EMPTY_PATH | s.AT_RECURSIVE, attr_set=s.MOUNT_ATTR_RDONLY)
            except OSError as e:
                raise PyociError("make %s read-only: %s" % (mp[len(rootfs.rstrip("/")):], e.strerror))
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)


# -- the runtime's side, for containers with a user namespace -----------------
def set_rlimits(pid, config):
    """process.rlimits on the container's init from outside (prlimit(2)):
    inside its user namespace it could lower them but never raise them."""
    import resource

    from pyoci.linux import process

    for res, soft, hard in process.rlimits(config.get("process") or {}):
        conv = [resource.RLIM_INFINITY if v == process.RLIM_INFINITY else v for v in (soft, hard)]
        try:
            resource.prlimit(pid, res, tuple(conv))
        except (OSError, ValueError) as e:
            raise process.rlimit_error(res, soft, hard, e)


def _may_create(d, own=None):
    """Whether this process may make (or use) the cgroup directory d and,
    on cgroup v2 (own: the caller's cgroup there), move a process from its
    own cgroup into it (write access to the common ancestor's cgroup.procs)."""
    if own is not None:
        anc = os.path.commonpath([own, d])
        if not os.access(os.path.join(anc, "cgroup.procs"), os.W_OK):
            return False
    if os.path.isdir(d):
        return os.access(os.path.join(d, "cgroup.procs"), os.W_OK)
    p = os.path.dirname(d)
    while not os.path.isdir(p):
        p = os.path.dirname(p)
    return os.access(p, os.W_OK | os.X_OK)


def rootless_cgroup(cg, config, warn, hierarchies):
    """--rootless: the container gets its cgroup where the caller may make
    it (a delegated subtree); otherwise none, with a warning, unless the
    config asks for limits, which then cannot be applied."""
    from pyoci.linux.cgroups import Cgroup

    own = Cgroup.own_dirs(hierarchies)
    blocked = sorted(d for k, d in cg.paths.items() if not _may_create(d, own.get(k) if k == "" else None))
    if not blocked:
        return cg
    res = (config.get("linux") or {}).get("resources") or {}
    limits = sorted(k for k, v in res.items() if v not in (None, {}, []) and k != "devices")
    if limits:
        raise ConfigError("linux.resources." + limits[0], "cannot be applied by a rootless container: no "
                          "delegated cgroup it may write (%s is not writable)" % blocked[0])
    warn("rootless: no cgroup this user may write (%s): the container stays in the caller's cgroup "
         "and linux.resources are not applied" % blocked[0])
    return type(cg)({})


def idmapped_trees(config, bundle, idmap_fds):
    """{mount index: detached idmapped tree} made by the runtime for a
    container with a new user namespace: setting MOUNT_ATTR_IDMAP needs
    CAP_SYS_ADMIN over the mapping's user namespace and over the source
    filesystem, which the container's root has not; its init only attaches
    the trees (move_mount)."""
    from pyoci.linux import mounts
    from pyoci.linux import sys as s

    out = {}
    try:
        for i, ns_fd in sorted(idmap_fds.items()):
            m = config["mounts"][i]
            opts = mounts.parse(m.get("options"), m.get("type"))
            src = m.get("source") or ""
            if not os.path.isabs(src):
                src = os.path.join(bundle, src)
            recursive = opts.idmap == "ridmap"
            try:
                tree = s.open_tree(-100, src, s.OPEN_TREE_CLONE | s.OPEN_TREE_CLOEXEC
                                   | (s.AT_RECURSIVE if recursive or opts.flags & s.MS_REC else 0))
                out[i] = tree
                s.mount_setattr(tree, "", s.AT_EMPTY_PATH | (s.AT_RECURSIVE if recursive else 0),
                                s.MOUNT_ATTR_IDMAP, 0, 0, ns_fd)
            except OSError as e:
                raise PyociError("mounts[%d] (idmapped bind of %s): %s" % (i, src, e.strerror))
    except BaseException:
        for fd in out.values():
            os.close(fd)
        raise
    return out


def _searchable(path, uid, gid):
    """Whether uid:gid (no supplementary groups) may search every directory
    above path, by the mode bits; None when that cannot be told here."""
    import stat

    cur = "/"
    for part in [p for p in os.path.dirname(path).split("/") if p] + [None]:
        try:
            st = os.stat(cur)
        except OSError:
            return None
        if stat.S_ISDIR(st.st_mode) and uid != 0:
            bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else stat.S_IXOTH
            if not st.st_mode & bit:
                return False
        if part is None:
            break
        cur = os.path.join(cur, part)
    return True


def unreachable_bind_trees(config, bundle, id_maps, skip=()):
    """{mount index: detached clone of the source} for the bind mounts whose
    source the container's root (its host uid and gid) cannot reach through
    the directories above it, made by the runtime while it still has its
    own credentials, as runc opens such sources before the user namespace is
    entered. The container's init attaches them (move_mount); nothing of the
    path is resolved by it, so no symlink it controls can redirect them."""
    from pyoci.linux import mounts
    from pyoci.linux import sys as s

    uid = to_host(id_maps[0], 0)
    gid = to_host(id_maps[1], 0)
    out = {}
    try:
        for i, m in enumerate(config.get("mounts") or ()):
            if i in skip:
                continue
            opts = mounts.parse(m.get("options"), m.get("type"))
            src = m.get("source")
            if not opts.is_bind or not src or opts.idmap:
                continue
            if not os.path.isabs(src):
                src = os.path.join(bundle, src)
            if uid is None or _searchable(src, uid, gid) is not False:
                continue
            try:
                out[i] = s.open_tree(-100, src, s.OPEN_TREE_CLONE | s.OPEN_TREE_CLOEXEC
                                     | (s.AT_RECURSIVE if opts.flags & s.MS_REC else 0))
            except OSError as e:
                raise PyociError("mounts[%d].source: %s: %s" % (i, src, e.strerror))
    except BaseException:
        for fd in out.values():
            os.close(fd)
        raise
    return out


# -- `pyoci validate --host` ----------------------------------------------
def subid_ranges(path, name, uid):
    """[(start, count)] of NAME's (or UID's) lines in /etc/subuid or /etc/subgid."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in (name, str(uid)):
                    try:
                        out.append((int(parts[1]), int(parts[2])))
                    except ValueError:
                        continue
    except OSError:
        pass
    return out


def _covered(start, size, ranges):
    """Whether [start, start+size) lies within the union of ranges."""
    pos, end = start, start + size
    for s, n in sorted(ranges):
        if s <= pos < s + n:
            pos = s + n
            if pos >= end:
                return True
    return pos >= end


def host_problems(config, euid=None, egid=None, subuid="/etc/subuid", subgid="/etc/subgid"):
    """What keeps this caller from making the config's user namespace:
    [(config field, reason)]."""
    lin = config.get("linux") or {}
    if not any(isinstance(n, dict) and n.get("type") == "user" and not n.get("path")
               for n in lin.get("namespaces") or ()):
        return []
    out = []
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            if f.read().strip() == "0":
                out.append(("linux.namespaces", "user namespaces are disabled (user.max_user_namespaces = 0)"))
    except OSError:
        pass
    euid = os.geteuid() if euid is None else euid
    egid = os.getegid() if egid is None else egid
    if euid == 0:
        return out
    try:
        with open("/proc/sys/kernel/unprivileged_userns_clone") as f:
            if f.read().strip() == "0":
                out.append(("linux.namespaces", "unprivileged user namespaces are disabled "
                            "(kernel.unprivileged_userns_clone = 0)"))
    except OSError:
        pass
    import pwd

    try:
        name = pwd.getpwuid(euid).pw_name
    except KeyError:
        name = str(euid)
    for key, own, path, prog in (("uidMappings", euid, subuid, "newuidmap"),
                                 ("gidMappings", egid, subgid, "newgidmap")):
        try:
            maps = mappings(config, key)
        except ConfigError:
            continue
        if not maps or _own_only(maps, own):
            continue
        import shutil

        if not shutil.which(prog) and not os.path.exists("/usr/bin/" + prog):
            out.append(("linux." + key, "mapping more than your own id needs %s (Debian package uidmap)" % prog))
        ranges = subid_ranges(path, name, euid)
        for i, (c, h, n) in enumerate(maps):
            if (h, n) == (own, 1) or (h <= own < h + n and n == 1):
                continue
            if not _covered(h, n, ranges):
                out.append(("linux.%s[%d]" % (key, i), "host ids %d-%d are not among %s's ranges in %s"
                            % (h, h + n - 1, name, path)))
    return out
