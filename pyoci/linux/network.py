"""Network namespace set-up: the loopback interface.

Bringing `lo` up needs two ioctls on any socket; pyroute2 (265 ms to import
here) stays off this path and is for network devices only.
"""
import fcntl
import struct

from pyoci import fastos as os

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up():
    import _socket

    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM, 0)
    try:
        req = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req)[:18])[1]
        if not flags & IFF_UP:
            fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))
    finally:
        s.close()


# -- linux.netDevices ----------------------------------------------------------
# Host interfaces moved into the container's network namespace (renamed when
# asked), with their permanent addresses and up state carried over (the
# kernel drops addresses on a move), and moved back on delete. pyroute2 is
# imported only here, only for a config that has netDevices.
IFA_F_PERMANENT = 0x80
AF_INET6 = 10


def _addresses(ip, idx):
    out = []
    for a in ip.get_addr(index=idx):
        flags = a.get_attr("IFA_FLAGS")
        if flags is None:
            flags = a["flags"]
        addr = a.get_attr("IFA_ADDRESS")
        if not flags & IFA_F_PERMANENT or (a["family"] == AF_INET6 and addr.lower().startswith("fe80:")):
            continue
        rec = {"address": addr, "prefixlen": a["prefixlen"]}
        for key, attr in (("local", "IFA_LOCAL"), ("broadcast", "IFA_BROADCAST")):
            v = a.get_attr(attr)
            if v and v != addr:
                rec[key] = v
        out.append(rec)
    return out


def _setns_net(fd):
    from pyoci.linux import sys as lsys

    lsys.setns(fd, lsys.CLONE_NEWNET)


def _netlink_error(field, key, what, e):
    from pyoci.errors import PyociError

    code = getattr(e, "code", 0)
    return PyociError("%s[%r]: %s: %s" % (field, key, what, os.strerror(code) if code else e))


def _move(pairs, src_fd, dst_fd, field, rename_first=False):
    """Move [(name in src, name in dst)] from the network namespace src_fd
    (None: the current one) to dst_fd, keeping addresses and up state.
    Renamed after the move (into the container, whose namespace may hold
    the host name freely) or before it (rename_first: back to the host,
    where the container's name may be taken). Returns the pairs moved, in
    order, also when it raises (e.moved)."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    from pyoci.errors import PyociError

    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    moved, saved, failure = [], [], None
    try:
        if src_fd is not None:
            _setns_net(src_fd)
        with IPRoute() as ip:
            # every interface must be there before any moves
            for a, _ in pairs:
                if not ip.link_lookup(ifname=a):
                    raise PyociError("%s[%r]: no network interface %s to move" % (field, a, a))
            for a, b in pairs:
                try:
                    idx = ip.link_lookup(ifname=a)[0]
                    up = bool(ip.get_links(idx)[0]["flags"] & IFF_UP)
                    addrs = _addresses(ip, idx)
                    name = a
                    if rename_first and b != a:
                        ip.link("set", index=idx, state="down")
                        ip.link("set", index=idx, ifname=b)
                        name = b
                    ip.link("set", index=idx, net_ns_fd=dst_fd)
                except (NetlinkError, IndexError) as e:
                    failure = _netlink_error(field, a, "move " + a, e)
                    break
                moved.append([a, name])
                saved.append((len(moved) - 1, b, addrs, up))
        # Renamed there, then its addresses and up state back. What moved is
        # set up also when a later one failed, so moving it back carries them.
        _setns_net(dst_fd)
        with IPRoute() as ip:
            for i, b, addrs, up in saved:
                a = moved[i][1]
                try:
                    idx = ip.link_lookup(ifname=a)[0]
                    if b != a:
                        ip.link("set", index=idx, ifname=b)
                        moved[i][1] = b
                    for rec in addrs:
                        ip.addr("add", index=idx, **rec)
                    if up:
                        ip.link("set", index=idx, state="up")
                except (NetlinkError, IndexError) as e:
                    failure = failure or _netlink_error(field, moved[i][0], "rename %s to %s" % (a, b), e)
        if failure is not None:
            failure.moved = moved
            raise failure
        return moved
    finally:
        _setns_net(own)
        os.close(own)


def move_in(net_devices, pid):
    """Move linux.netDevices ({host name: {"name": new}}) into the network
    namespace of pid. Returns [[host name, name inside]]; on failure moves
    back what it moved and raises."""
    pairs = [(h, (d or {}).get("name") or h) for h, d in sorted(net_devices.items())]
    ns = os.open("/proc/%d/ns/net" % pid, os.O_RDONLY | os.O_CLOEXEC)
    host = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            moved = _move(pairs, None, ns, "linux.netDevices")
        except Exception as e:
            back = [(b, a) for a, b in getattr(e, "moved", ())]
            if back:
                try:
                    _move(back, ns, host, "linux.netDevices", rename_first=True)
                except Exception:
                    pass
            raise
        return [[a, b] for a, b in moved]
    finally:
        os.close(ns)
        os.close(host)


def pin(pid, path):
    """Keep the network namespace of pid alive at path (a bind mount of its
    nsfs file, as `ip netns` does) so the moved devices outlive the
    container's processes until delete moves them back."""
    from pyoci.linux import sys as lsys

    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    lsys.mount("/proc/%d/ns/net" % pid, path, None, lsys.MS_BIND)


def unpin(path):
    from pyoci.linux import sys as lsys

    try:
        lsys.umount2(path, lsys.MNT_DETACH)
    except OSError:
        pass
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def move_out(moved, ns_path):
    """Move the devices recorded by move_in back to this (the host's)
    network namespace under their host names. Best effort: a namespace that
    is gone took its virtual devices with it (and gave physical ones back)."""
    try:
        ns = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    host = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for a, b in moved:
            try:
                _move([(b, a)], ns, host, "linux.netDevices", rename_first=True)
            except Exception:
                pass
    finally:
        os.close(ns)
        os.close(host)
