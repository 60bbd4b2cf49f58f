"""linux.seccomp: the filter covers the user's program only, every action
and operator reaches the kernel, the compiled-program cache is used, and
SCMP_ACT_NOTIFY hands the listener fd to an agent (a small one here) that
answers a notification."""
import array
import fcntl
import json
import os
import socket
import struct
import subprocess
import threading

import pytest

PODMAN_CONFIG = "/work/shared/dropin/dropin-config-podman.json"


def _sc(rules, default="SCMP_ACT_ALLOW", **kw):
    d = {"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"], "syscalls": rules}
    d.update(kw)
    return d


def run(runtime, make_bundle, script, seccomp, cid="sc1", nnp=True):
    def ch(c):
        c["linux"]["seccomp"] = seccomp
        c["process"]["noNewPrivileges"] = nnp
        c["root"]["readonly"] = False
    b = make_bundle(["sh", "-c", script], ch)
    return runtime.cmd("run", "-b", b, cid)


MKDIR = ["mkdir", "mkdirat"]


@pytest.mark.parametrize("nnp", [True, False])
def test_filter_covers_the_program_not_the_runtime(runtime, make_bundle, nnp):
    # getcwd blocked: the runtime's own start-up must not trip on it
    # (runtime-tools linux_seccomp; runc 1.1 fails it)
    p = run(runtime, make_bundle, "grep -E '^(Seccomp|Seccomp_filters|NoNewPrivs):' /proc/self/status; "
            "mkdir /d1; echo rc=$?",
            _sc([{"names": ["getcwd"] + MKDIR, "action": "SCMP_ACT_ERRNO"}]), nnp=nnp)
    assert p.returncode == 0, p.stderr
    f = dict(l.split(":\t") for l in p.stdout.splitlines() if ":\t" in l)
    assert f["Seccomp"] == "2" and f["Seccomp_filters"] == "1"
    assert f["NoNewPrivs"] == ("1" if nnp else "0")
    assert "rc=1" in p.stdout and "Operation not permitted" in p.stderr + p.stdout


def test_errno_ret_and_default_errno_ret(runtime, make_bundle):
    p = run(runtime, make_bundle, "mkdir /d1 2>&1; echo rc=$?",
            _sc([{"names": MKDIR, "action": "SCMP_ACT_ERRNO", "errnoRet": 28}]))
    assert p.returncode == 0, p.stderr
    assert "No space left on device" in p.stdout and "rc=1" in p.stdout


def test_args_masked_eq(runtime, make_bundle):
    # chmod with the setuid bit refused, plain chmod allowed
    rules = [{"names": ["chmod"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 1, "value": 0o4000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]},
             {"names": ["fchmodat"], "action": "SCMP_ACT_ERRNO",
              "args": [{"index": 2, "value": 0o4000, "valueTwo": 0o4000, "op": "SCMP_CMP_MASKED_EQ"}]}]
    p = run(runtime, make_bundle, "touch /f; chmod 755 /f; echo a=$?; chmod 4755 /f; echo b=$?; stat -c %a /f",
            _sc(rules, flags=["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["a=0", "b=1", "755"]


def test_kill_process_and_trap(runtime, make_bundle):
    p = run(runtime, make_bundle, "mkdir /d1", _sc([{"names": MKDIR, "action": "SCMP_ACT_KILL_PROCESS"}]))
    assert p.returncode == 128 + 31, (p.returncode, p.stderr)   # SIGSYS
    p = run(runtime, make_bundle, "mkdir /d1", _sc([{"names": MKDIR, "action": "SCMP_ACT_TRAP"}]), cid="sc2")
    assert p.returncode == 128 + 31, (p.returncode, p.stderr)


@pytest.mark.parametrize("action,rc,text", [
    # the shell forks mkdir: its only thread dies of SIGSYS (runc's KILL = KILL_THREAD)
    ("SCMP_ACT_KILL", 0, "rc=159"),
    ("SCMP_ACT_KILL_THREAD", 0, "rc=159"),
    ("SCMP_ACT_TRACE", 0, "rc=1"),              # no tracer: the call fails (ENOSYS)
    ("SCMP_ACT_LOG", 0, "rc=0"),                # allowed, and logged
    ("SCMP_ACT_ERRNO", 0, "Operation not permitted"),   # EPERM without errnoRet
])
def test_every_action(runtime, make_bundle, action, rc, text):
    p = run(runtime, make_bundle, "mkdir /d1 2>&1; echo rc=$?", _sc([{"names": MKDIR, "action": action}]))
    assert p.returncode == rc, (p.returncode, p.stderr)
    if text:
        assert text in p.stdout, p.stdout


def test_wait_killable_recv_needs_a_notify_rule(runtime, make_bundle):
    p = run(runtime, make_bundle, "true", _sc([{"names": MKDIR, "action": "SCMP_ACT_ERRNO"}],
                                              flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]))
    assert p.returncode == 1 and "linux.seccomp.flags[0]" in p.stderr, p.stderr
    assert runtime.ids() == []


def test_default_action_errno_with_allow_list(runtime, make_bundle):
    """podman's default profile (437 names, defaultErrnoRet 38) runs a shell."""
    with open(PODMAN_CONFIG) as f:
        sc = json.load(f)["linux"]["seccomp"]
    p = run(runtime, make_bundle, "echo hi; grep ^Seccomp: /proc/self/status", sc)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["hi", "Seccomp:", "2"]


def test_compiled_program_cache_is_used(runtime, make_bundle):
    from pyoci.linux import seccomp

    sc = _sc([{"names": MKDIR, "action": "SCMP_ACT_ERRNO"}])
    p = run(runtime, make_bundle, "mkdir /d1; echo rc=$?", sc)
    assert "rc=1" in p.stdout, p.stderr
    cache = os.path.join(runtime.root, seccomp.CACHE_DIR)
    files = os.listdir(cache)
    assert files == [seccomp.cache_key(sc) + ".bpf"]
    # replace the cached program by an allow-all one: the next create uses it
    allow, _ = seccomp.compile({"defaultAction": "SCMP_ACT_ALLOW"})
    with open(os.path.join(cache, files[0]), "wb") as f:
        f.write(allow)
    p = run(runtime, make_bundle, "mkdir /d1; echo rc=$?", sc, cid="sc2")
    assert "rc=0" in p.stdout, p.stderr
    # listenerMetadata does not change the program: same key
    assert seccomp.cache_key(dict(sc, listenerMetadata="x")) == seccomp.cache_key(sc)
    assert seccomp.cache_key(dict(sc, defaultErrnoRet=5)) != seccomp.cache_key(sc)


def test_unknown_syscall_skipped_and_unknown_arch_rejected(runtime, make_bundle):
    """As runc: a syscall name the host's libseccomp does not know is skipped
    (profiles list syscalls newer than the library; the others still apply);
    an unknown architecture is refused."""
    p = run(runtime, make_bundle, "mkdir /d1 2>/dev/null || echo denied",
            _sc([{"names": ["nosuchcall"] + MKDIR, "action": "SCMP_ACT_ERRNO"}]))
    assert p.returncode == 0 and p.stdout.strip() == "denied", p.stderr
    p = run(runtime, make_bundle, "true", _sc([], architectures=["SCMP_ARCH_NOPE"]))
    assert p.returncode == 1 and "linux.seccomp.architectures[0]" in p.stderr, p.stderr
    assert runtime.ids() == []


def test_listener_path_nobody_listens(runtime, make_bundle, tmp_path):
    sc = _sc([{"names": MKDIR, "action": "SCMP_ACT_NOTIFY"}], listenerPath=str(tmp_path / "none.sock"))
    p = run(runtime, make_bundle, "true", sc)
    assert p.returncode == 1
    assert "linux.seccomp.listenerPath" in p.stderr and "none.sock" in p.stderr
    assert runtime.ids() == []


def test_notify_on_sendmsg_refused(runtime, make_bundle, tmp_path):
    sc = _sc([{"names": ["mkdir", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}], listenerPath=str(tmp_path / "a.sock"))
    p = run(runtime, make_bundle, "true", sc)
    assert p.returncode == 1 and "linux.seccomp.syscalls[0].names[1]" in p.stderr, p.stderr
    assert runtime.ids() == []


# struct seccomp_notif (80 bytes) / seccomp_notif_resp (24 bytes) ioctls
NOTIF_RECV = 0xC0502100
NOTIF_SEND = 0xC0182101


class Agent(threading.Thread):
    """Receives the listener fd and the state from `conns` connections, and
    answers one notification on the last one (the others' fds are closed:
    their notified calls fail with ENOSYS). Then stops listening."""

    def __init__(self, path, errno_ret, conns=1):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.errno_ret = errno_ret
        self.conns = conns
        self.states = []
        self.state = self.syscall_nr = self.error = self.task = None

    def run(self):
        try:
            for i in range(self.conns):
                conn, _ = self.sock.accept()
                fds = array.array("i")
                msg, anc, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
                for level, typ, data in anc:
                    if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                        fds.frombytes(data[:4])
                self.state = json.loads(msg)
                self.states.append(self.state)
                conn.close()
                lfd = fds[0]
                if i == self.conns - 1:
                    self._answer(lfd)
                os.close(lfd)
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            self.sock.close()

    def _answer(self, lfd):
        req = bytearray(80)
        fcntl.ioctl(lfd, NOTIF_RECV, req)
        nid, pid, _flags, nr = struct.unpack_from("=QIIi", req)
        self.syscall_nr = nr
        # the calling task (host pid) and its parent, while it waits
        with open("/proc/%d/stat" % pid) as f:
            self.task = (pid, int(f.read().rsplit(")", 1)[1].split()[1]))
        fcntl.ioctl(lfd, NOTIF_SEND, bytearray(struct.pack("=QqiI", nid, 0, -self.errno_ret, 0)))


def test_notify_agent_gets_fd_and_answers(runtime, make_bundle, tmp_path):
    path = str(tmp_path / "agent.sock")
    agent = Agent(path, 28)   # ENOSPC
    agent.start()
    # TSYNC with a listener needs TSYNC_ESRCH (pyoci-init adds it); the
    # kernel takes WAIT_KILLABLE_RECV only with a listener
    sc = _sc([{"names": MKDIR, "action": "SCMP_ACT_NOTIFY"}], listenerPath=path, listenerMetadata="meta1",
             flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"])

    def ch(c):
        c["linux"]["seccomp"] = sc
        c["root"]["readonly"] = False
        c["annotations"] = {"a": "b"}
    b = make_bundle(["sh", "-c", "mkdir /d1 2>&1; echo rc=$?"], ch)
    runtime.cmd("create", "-b", b, "n1", check=True)
    pid = runtime.state("n1")["pid"]
    assert agent.state is None   # nothing is sent before start
    p = runtime.cmd("start", "n1")
    assert p.returncode == 0, p.stderr
    agent.join(30)
    assert agent.error is None, agent.error
    st = agent.state
    assert st["fds"] == ["seccompFd"] and st["metadata"] == "meta1" and st["pid"] == pid
    assert st["state"]["id"] == "n1" and st["state"]["pid"] == pid and st["state"]["annotations"] == {"a": "b"}
    assert st["state"]["bundle"] == b
    assert agent.syscall_nr in (83, 258)   # mkdir, mkdirat on x86_64
    for _ in range(200):
        if runtime.state("n1")["status"] == "stopped":
            break
        import time
        time.sleep(0.02)
    runtime.cmd("delete", "n1", check=True)


@pytest.mark.parametrize("nnp", [True, False])
def test_notify_exec_sends_its_own_listener(runtime, make_bundle, tmp_path, nnp):
    """exec sends the listener of the filter its process loads, with the
    state (its host pid, status running, the init's pid); the agent answers
    the process's notified mkdir. With nobody listening, exec fails."""
    path = str(tmp_path / "agent.sock")
    agent = Agent(path, 28, conns=2)   # the init's listener, then exec's
    agent.start()
    sc = _sc([{"names": MKDIR, "action": "SCMP_ACT_NOTIFY"}], listenerPath=path, listenerMetadata="meta2")

    def ch(c):
        c["linux"]["seccomp"] = sc
        c["process"]["noNewPrivileges"] = nnp
        c["root"]["readonly"] = False
    b = make_bundle(["sleep", "100"], ch)
    runtime.cmd("run", "-d", "-b", b, "n2", check=True)
    init = runtime.state("n2")["pid"]
    pid_file = str(tmp_path / "exec.pid")
    p = runtime.cmd("exec", "--pid-file", pid_file, "n2", "sh", "-c",
                    "mkdir /d1 2>&1; echo rc=$?; test -e /d1 || echo absent")
    assert p.returncode == 0, p.stderr
    assert "No space left on device" in p.stdout and "rc=1" in p.stdout and "absent" in p.stdout, p.stdout
    agent.join(30)
    assert agent.error is None, agent.error
    with open(pid_file) as f:
        pid = int(f.read())
    first, st = agent.states
    assert first["pid"] == init and first["state"]["status"] == "creating"
    assert st["fds"] == ["seccompFd"] and st["metadata"] == "meta2" and st["pid"] == pid != init
    assert st["state"] == {"ociVersion": first["state"]["ociVersion"], "id": "n2", "status": "running",
                           "pid": init, "bundle": b, "annotations": {}}
    assert agent.syscall_nr in (83, 258)   # mkdir, mkdirat on x86_64
    assert pid in agent.task               # the exec'd shell, or the mkdir it forked
    # the agent is gone: exec fails, naming the field, and starts nothing
    p = runtime.cmd("exec", "n2", "sh", "-c", "touch /ran")
    assert p.returncode == 255 and "linux.seccomp.listenerPath" in p.stderr, (p.returncode, p.stderr)
    assert not os.path.exists("/proc/%d/root/ran" % init)
    runtime.cmd("kill", "n2", "KILL", check=True)
    for _ in range(200):
        if runtime.state("n2")["status"] == "stopped":
            break
        import time
        time.sleep(0.02)
    runtime.cmd("delete", "n2", check=True)


RAW_SYSCALL_C = r"""
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
/* rawsys NR [ARG...]: prints the raw result of syscall NR (-errno on failure) */
int main(int argc, char **argv) {
    long a[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 2; i < argc && i < 8; i++) a[i - 2] = strtol(argv[i], NULL, 0);
    long r = syscall(strtol(argv[1], NULL, 0), a[0], a[1], a[2], a[3], a[4], a[5]);
    printf("%ld\n", r < 0 ? -errno : r);
    return 0;
}
"""


def _rawsys(make_bundle, tmp_path, script, seccomp):
    """A bundle whose rootfs has /rawsys (a static C program)."""
    def ch(c):
        c["linux"]["seccomp"] = seccomp
        c["root"]["readonly"] = False
    b = make_bundle(["sh", "-c", script], ch)
    src = tmp_path / "rawsys.c"
    src.write_text(RAW_SYSCALL_C)
    r = subprocess.run(["gcc", "-static", "-O1", "-o", os.path.join(b, "rootfs", "rawsys"), str(src)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("no static C toolchain: %s" % r.stderr[-200:])
    return b


def test_conditions_on_one_argument_are_ored(runtime, make_bundle, tmp_path):
    """Two conditions on the same argument: either matches, as runc has it
    (libseccomp would AND them in one rule, and nothing could match); on
    different arguments they stay AND-ed."""
    sc = _sc([{"names": ["process_vm_writev"], "action": "SCMP_ACT_ERRNO", "errnoRet": 55,
               "args": [{"index": 0, "value": 1337, "op": "SCMP_CMP_EQ"},
                        {"index": 0, "value": 2020, "op": "SCMP_CMP_EQ"}]},
              {"names": ["kcmp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 56,
               "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                        {"index": 1, "value": 1337, "op": "SCMP_CMP_EQ"}]}])
    nr_w, nr_k = 311, 312    # x86_64 process_vm_writev, kcmp
    script = ("for a in 1337 2020 7; do /rawsys %d $a 0 0 0 0 0; done; "
              "/rawsys %d 0 1337 0 0 0; /rawsys %d 0 7 0 0 0" % (nr_w, nr_k, nr_k))
    b = _rawsys(make_bundle, tmp_path, script, sc)
    p = runtime.cmd("run", "-b", b, "sc-or")
    assert p.returncode == 0, p.stderr
    w1, w2, w3, k1, k2 = p.stdout.split()
    assert (w1, w2) == ("-55", "-55") and w3 != "-55"
    assert k1 == "-56" and k2 != "-56"


def test_syscalls_newer_than_the_profile_get_enosys(runtime, make_bundle, tmp_path):
    """runc's -ENOSYS stub: with a deny-by-default profile, a syscall
    numbered above all the profile names gets ENOSYS (glibc falls back from
    clone3 to clone only then), a known one not allowed the default errno."""
    with open(PODMAN_CONFIG) as f:
        sc = json.load(f)["linux"]["seccomp"]
    sc["defaultErrnoRet"] = 1    # EPERM
    sc["syscalls"] = [r for r in sc["syscalls"] if r.get("action") == "SCMP_ACT_ALLOW" and not r.get("args")
                      and not r.get("includes") and not r.get("excludes")]
    names = {n for r in sc["syscalls"] for n in r["names"]}
    assert "kexec_load" not in names
    script = "/rawsys 1000 0xdead; /rawsys 246 0 0 0 0"   # 246: kexec_load on x86_64
    b = _rawsys(make_bundle, tmp_path, script, sc)
    p = runtime.cmd("run", "-b", b, "sc-nosys")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["-38", "-1"], p.stdout
    # the default errno ENOSYS needs no stub, and an allowing default none
    from pyoci.linux import seccomp
    import pyseccomp as S
    assert seccomp._enosys_stub(S, dict(sc, defaultErrnoRet=38), S.ERRNO(38)) == b""
    assert seccomp._enosys_stub(S, dict(sc, defaultAction="SCMP_ACT_ALLOW"), S.ALLOW) == b""


def test_notify_on_write_refused_in_runcs_words(runtime, make_bundle, tmp_path):
    sc = _sc([{"names": ["write"], "action": "SCMP_ACT_NOTIFY"}], listenerPath=str(tmp_path / "a.sock"))
    p = run(runtime, make_bundle, "true", sc)
    assert p.returncode == 1 and "SCMP_ACT_NOTIFY cannot be used for the write syscall" in p.stderr, p.stderr
    assert "linux.seccomp.syscalls[0].names[0]" in p.stderr
    assert runtime.ids() == []


def test_start_container_hook_runs_under_the_filter(runtime, make_bundle, tmp_path):
    """As runc orders it: the startContainer hook is confined by the
    container's seccomp filter (mkdir killed here), so start fails."""
    def ch(c):
        c["linux"]["seccomp"] = _sc([{"names": MKDIR, "action": "SCMP_ACT_KILL"}])
        c["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "mkdir /dev/shm/foo"]}]}
    b = make_bundle(["true"], ch)
    p = runtime.cmd("run", "-b", b, "sc-hook")
    assert p.returncode != 0
    assert "error running hook #0 (startContainer" in p.stderr and "bad system call" in p.stderr, p.stderr
    assert runtime.ids() == []
