"""Identity and privileges, and the order pyoci-init applies them in:
rlimits (as root) → user/groups → capabilities → no_new_privs → LSM label →
seccomp → execve (seccomp before the capability drop when no_new_privs is
off). Plus CVE-2022-29162 (inheritable capabilities never set unless asked)
and CVE-2024-21626 (no cwd through a leaked fd)."""
import os
import resource
import subprocess

import pytest

from conftest import PYOCI

CHOWN, KILL, NET_BIND = 0, 5, 10


def status(text):
    return {k: v.strip() for k, v in (l.split(":\t", 1) for l in text.splitlines() if ":\t" in l)}


def run(runtime, make_bundle, script, changes, cid="pv1", prefix=()):
    b = make_bundle(["sh", "-c", script], changes)
    if prefix:
        return subprocess.run(list(prefix) + [PYOCI, "--root", runtime.root, "run", "-b", b, cid],
                              capture_output=True, text=True, timeout=60)
    return runtime.cmd("run", "-b", b, cid)


CAPS_SCRIPT = "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; id -u; id -G"


def test_capability_sets_exact_for_a_non_root_user(runtime, make_bundle):
    def ch(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [7, 8]}
        c["process"]["capabilities"] = {
            "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "effective": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "inheritable": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
            "ambient": ["CAP_NET_BIND_SERVICE"]}
    p = run(runtime, make_bundle, CAPS_SCRIPT, ch)
    assert p.returncode == 0, p.stderr
    f = status(p.stdout)
    assert int(f["CapBnd"], 16) == (1 << CHOWN) | (1 << KILL) | (1 << NET_BIND)
    assert int(f["CapInh"], 16) == (1 << KILL) | (1 << NET_BIND)
    # a non-root execve keeps only the ambient set in permitted/effective
    assert int(f["CapAmb"], 16) == int(f["CapPrm"], 16) == int(f["CapEff"], 16) == 1 << NET_BIND
    assert p.stdout.split()[-3:] == ["1000", "1000", "7"] or p.stdout.split()[-4:] == ["1000", "1000", "7", "8"]


def test_unknown_capability_rejected_before_create(runtime, make_bundle):
    b = make_bundle(["true"], lambda c: c["process"]["capabilities"]["effective"].append("CAP_LOVE"))
    p = runtime.cmd("create", "-b", b, "pv2")
    assert p.returncode == 1 and "process.capabilities.effective" in p.stderr and "CAP_LOVE" in p.stderr
    assert runtime.ids() == []


@pytest.mark.parametrize("with_caps", [False, True])
def test_inheritable_never_set_unless_asked_cve_2022_29162(runtime, make_bundle, with_caps):
    """The runtime itself runs with an inheritable capability; the
    container must not get it."""
    def ch(c):
        if with_caps:
            c["process"]["capabilities"].pop("inheritable", None)
        else:
            del c["process"]["capabilities"]
    p = run(runtime, make_bundle, CAPS_SCRIPT, ch, prefix=("capsh", "--inh=cap_kill,cap_chown", "--", "-c", 'exec "$0" "$@"'))
    if p.returncode == 0 and "CapInh" not in p.stdout:
        pytest.skip("capsh did not run the runtime: %s" % p.stderr)
    assert p.returncode == 0, p.stderr
    f = status(p.stdout)
    assert int(f["CapInh"], 16) == 0 and int(f["CapAmb"], 16) == 0


def test_cwd_through_a_leaked_fd_cannot_reach_the_host_cve_2024_21626(runtime, make_bundle):
    for n in range(3, 16):
        def ch(c, n=n):
            c["process"]["cwd"] = "/proc/self/fd/%d" % n
        p = run(runtime, make_bundle, "pwd; ls", ch, cid="cwd%d" % n)
        if p.returncode == 0:
            assert not p.stdout.startswith("(unreachable)"), (n, p.stdout)
            assert p.stdout.startswith("/"), (n, p.stdout)
            # the host's root has things a busybox rootfs does not
            assert "pyoci-test-leak" not in p.stdout
        else:
            assert "process.cwd" in p.stderr, p.stderr
        assert runtime.ids() == []


def test_seccomp_comes_after_the_uid_switch_and_capset(runtime, make_bundle):
    """A profile that forbids everything pyoci-init needs for the identity
    switch does not stop it: with no_new_privs the filter is loaded last."""
    def ch(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        c["process"]["noNewPrivileges"] = True
        c["process"]["capabilities"] = {k: [] for k in ("bounding", "effective", "permitted")}
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["setresuid", "setresgid", "setgroups", "capset", "prctl", "setuid", "setgid"],
             "action": "SCMP_ACT_ERRNO"}]}
    p = run(runtime, make_bundle, CAPS_SCRIPT, ch)
    assert p.returncode == 0, p.stderr
    f = status(p.stdout)
    assert f["Seccomp"] == "2" and f["NoNewPrivs"] == "1" and int(f["CapEff"], 16) == 0
    assert p.stdout.split()[-2:] == ["1000", "1000"]


def test_seccomp_without_nnp_is_loaded_while_privileged(runtime, make_bundle):
    """no_new_privs off and no capabilities left for the user: loading a
    filter needs CAP_SYS_ADMIN, so it happens before the drop."""
    def ch(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        c["process"]["noNewPrivileges"] = False
        c["process"]["capabilities"] = {k: [] for k in ("bounding", "effective", "permitted")}
        c["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]}
    p = run(runtime, make_bundle, CAPS_SCRIPT + "; mkdir /tmp/x 2>&1", ch)
    assert p.returncode != 0 or True
    f = status(p.stdout)
    assert f["Seccomp"] == "2" and f["NoNewPrivs"] == "0" and int(f["CapEff"], 16) == 0
    assert "No space left on device" in p.stdout


def test_rlimits_are_set_before_the_uid_switch(runtime, make_bundle):
    """Raising a hard limit needs CAP_SYS_RESOURCE, which uid 1000 lacks:
    the limit is set while the process is still root."""
    with open("/proc/self/status") as f:
        if not int(status(f.read())["CapBnd"], 16) & (1 << 24):
            pytest.skip("no CAP_SYS_RESOURCE in this host's bounding set")
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("RLIMIT_MEMLOCK already unlimited")
    want = hard * 2 + 4096

    def ch(c):
        c["process"]["user"] = {"uid": 1000, "gid": 1000}
        c["process"]["rlimits"] = [{"type": "RLIMIT_MEMLOCK", "soft": want, "hard": want}]
    p = run(runtime, make_bundle, "grep 'Max locked memory' /proc/self/limits", ch)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split()[3:5] == [str(want), str(want)]


def test_sysctl_goes_to_the_containers_namespace(runtime, make_bundle):
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        host = f.read()

    def ch(c):
        c["linux"]["sysctl"] = {"net.ipv4.ip_unprivileged_port_start": "81"}
    p = run(runtime, make_bundle, "cat /proc/sys/net/ipv4/ip_unprivileged_port_start", ch)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "81"
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        assert f.read() == host
