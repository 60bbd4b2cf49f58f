"""linux.netDevices: host interfaces moved into the container (renamed,
addresses and up state kept) and given back to the host on delete. The
interfaces are veth pairs (and dummies where the kernel has them) made by
the tests, named pt<pid><letter>; each test checks the host is left as found."""
import json
import os
import subprocess
import time

import pytest

from test_bad_input import assert_failed

SUFFIX = "%d" % (os.getpid() % 100000)


def ip(*args, check=True):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True, check=check).stdout


def link_info(name):
    """(up?, sorted global addresses) of a host interface, or None."""
    out = ip("-j", "addr", "show", "dev", name, check=False)
    if not out.strip():
        return None
    d = json.loads(out)[0]
    addrs = sorted("%s/%d" % (a["local"], a["prefixlen"]) for a in d.get("addr_info", ())
                   if a.get("scope") == "global")
    return "UP" in d["flags"], addrs


@pytest.fixture
def veth():
    a, b = "pt%sa" % SUFFIX, "pt%sb" % SUFFIX
    ip("link", "add", a, "type", "veth", "peer", "name", b)
    ip("addr", "add", "10.77.%d.1/24" % (os.getpid() % 250), "dev", a)
    ip("addr", "add", "fd00:77::%x/64" % (os.getpid() % 65000 + 1), "dev", a, "nodad")
    ip("link", "set", a, "up")
    before = link_info(a)
    yield a, b
    after = link_info(a)
    peer = link_info(b)
    ip("link", "del", a, check=False)
    ip("link", "del", b, check=False)
    assert after == before, "host interface %s not as found: %r != %r" % (a, after, before)
    assert peer is not None


def nd_changes(devs):
    def changes(c):
        c["linux"]["netDevices"] = devs
    return changes


def test_moved_in_renamed_with_addresses(runtime, make_bundle, veth):
    a, _ = veth
    b = make_bundle(["sh", "-c", "ip -o addr show; cat /sys/class/net/ptin0/operstate /sys/class/net/ptin0/flags"],
                    nd_changes({a: {"name": "ptin0"}}))
    p = runtime.cmd("run", "-b", b, "nd1")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "ptin0" in out and a not in out
    assert "inet 10.77.%d.1/24" % (os.getpid() % 250) in out
    assert "inet6 fd00:77::%x/64" % (os.getpid() % 65000 + 1) in out
    assert int(out.split()[-1], 16) & 1   # IFF_UP
    # run deleted the container: the interface is back (checked by the fixture)


def test_host_loses_it_while_running_and_gets_it_back_on_delete(runtime, make_bundle, veth):
    a, peer = veth
    b = make_bundle(["sleep", "60"], nd_changes({a: {}}))
    runtime.cmd("create", "-b", b, "nd2", check=True)
    assert link_info(a) is None and link_info(peer) is not None
    # the container sees it under its own name
    pid = runtime.state("nd2")["pid"]
    inside = subprocess.run(["nsenter", "-t", str(pid), "-n", "ip", "-o", "link", "show", a],
                            capture_output=True, text=True)
    assert inside.returncode == 0 and a in inside.stdout
    runtime.cmd("start", "nd2", check=True)
    runtime.cmd("kill", "nd2", "KILL", check=True)
    for _ in range(500):
        if runtime.state("nd2")["status"] == "stopped":
            break
        time.sleep(0.01)
    # the container has exited: the pinned namespace still holds the device
    assert link_info(a) is None
    runtime.cmd("delete", "nd2", check=True)
    assert link_info(a) is not None


def test_joined_namespace(runtime, make_bundle, veth, named_netns):
    a, _ = veth

    def changes(c):
        c["linux"]["netDevices"] = {a: {"name": "ptj0"}}
        for n in c["linux"]["namespaces"]:
            if n["type"] == "network":
                n["path"] = named_netns
    b = make_bundle(["ip", "-o", "link", "show", "ptj0"], changes)
    p = runtime.cmd("run", "-b", b, "nd3")
    assert p.returncode == 0 and "ptj0" in p.stdout, p.stderr
    inside = subprocess.run(["nsenter", "--net=" + named_netns, "ip", "-o", "link"],
                            capture_output=True, text=True, check=True).stdout
    assert "ptj0" not in inside


def test_dummy_interface(runtime, make_bundle):
    d = "pt%sd" % SUFFIX
    if subprocess.run(["ip", "link", "add", d, "type", "dummy"], capture_output=True).returncode != 0:
        pytest.skip("this kernel has no dummy interfaces")
    try:
        ip("addr", "add", "10.78.0.1/24", "dev", d)
        before = link_info(d)
        b = make_bundle(["ip", "-o", "addr", "show", "ptdum"], nd_changes({d: {"name": "ptdum"}}))
        p = runtime.cmd("run", "-b", b, "nd4")
        assert p.returncode == 0 and "10.78.0.1/24" in p.stdout, p.stderr
        assert link_info(d) == before
    finally:
        ip("link", "del", d, check=False)


def test_missing_interface_fails_cleanly(runtime, make_bundle, veth):
    a, _ = veth
    b = make_bundle(["true"], nd_changes({a: {}, "ptnope%s" % SUFFIX: {}}))
    assert_failed(runtime.cmd("create", "-b", b, "nd5"), "linux.netDevices", "ptnope")
    assert runtime.ids() == []
    # the one that was moved before the failure is back (checked by the fixture)


def test_needs_a_network_namespace(runtime, make_bundle, veth):
    a, _ = veth

    def changes(c):
        c["linux"]["netDevices"] = {a: {}}
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
    b = make_bundle(["true"], changes)
    assert_failed(runtime.cmd("create", "-b", b, "nd6"), "linux.netDevices", "network namespace")
    assert runtime.ids() == []


def test_failed_move_puts_back_what_moved(runtime, make_bundle, veth):
    """Both ends of the pair renamed to one name: the second move fails
    (EEXIST in the container's namespace) and the first goes back to the
    host with its addresses and up state (checked by the fixture)."""
    a, peer = veth
    b = make_bundle(["true"], nd_changes({a: {"name": "ptsame"}, peer: {"name": "ptsame"}}))
    assert_failed(runtime.cmd("create", "-b", b, "nd7"), "linux.netDevices", peer, "File exists")
    assert runtime.ids() == []
