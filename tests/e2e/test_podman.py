"""pyoci under podman 4.3 + conmon (`podman --runtime PATH`): the flows of
../shared/dropin-contract.md section 2, with private storage. podman passes
pyoci no --root (its default root is used for every call) and runs kill and
delete with no PATH and no HOME."""
import json
import os
import re
import shlex
import time

import pytest

import engines
from conftest import PYOCI, REPO, TAG, cgroup_path, freezer_state, unified
from e2e_fixtures import (cgroup_of, mounted_v1, podman, podman_dir, read,  # noqa: F401
                          remove_tag_cgroups, require, settle, wait_for)


def run_d(pm, name, *cmd, opts=()):
    p = pm(*pm.run_args("-d", "--name", name, *opts), *cmd)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def state(pm, name):
    return pm.inspect(name, "{{.State.Status}}")


def pid_of(pm, name):
    return int(pm.inspect(name, "{{.State.Pid}}"))


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except FileNotFoundError:
        return False
    return data[data.rindex(")") + 2] != "Z"


def cg(cid, ctrl, f=""):
    """The file (or, without f, the directory) of podman's container cgroup
    for v1 controller ctrl (cgroup v2: the one cgroup2 directory)."""
    return os.path.join(cgroup_path(ctrl, "/%s/libpod-%s" % (TAG, cid)), f)


def test_run_rm_exit_status_and_stdio(podman):
    p = podman(*podman.run_args("--rm"), "sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 7")
    assert p.returncode == 7, p.stderr
    assert p.stdout == "to-stdout\n"
    assert "to-stderr" in p.stderr
    p = podman(*podman.run_args("--rm"), "/bin/true")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    assert podman("ps", "-aq").stdout.split() == []


def test_run_tty(podman):
    # conmon hands pyoci a console socket; the container's stdio is the pty
    p = podman(*podman.run_args("--rm", "-t"), "sh", "-c",
               "tty; test -t 0 && test -t 1 && test -t 2 && echo all-ttys; exit 3")
    assert p.returncode == 3, p.stderr
    out = p.stdout.replace("\r", "")
    assert re.search(r"^/dev/pts/\d+$", out, re.M) and "all-ttys" in out, out


def test_device_and_privileged(podman):
    # podman puts the host device's whole st_mode in fileMode (S_IFCHR|0666)
    p = podman(*podman.run_args("--rm", "--device", "/dev/null:/dev/foo"), "sh", "-c",
               "stat -c '%F %t:%T %a' /dev/foo; echo x > /dev/foo && echo written")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "character special file 1:3 666\nwritten\n"
    p = podman(*podman.run_args("--rm", "--privileged"), "sh", "-c", "grep CapEff /proc/self/status; test -c /dev/null")
    assert p.returncode == 0, p.stderr
    assert "000001ffffffffff" in p.stdout or "000001fffeffffff" in p.stdout, p.stdout


def test_pid_host_stop_signals_all(podman):
    # no pid namespace: podman stops it with `kill --all <id> 15`
    run_d(podman, "pd7", "sh", "-c", "sleep 300 & sleep 300 & wait", opts=("--pid", "host"))
    pid = pid_of(podman, "pd7")
    procs = cg(podman.inspect("pd7", "{{.Id}}"), "pids", "cgroup.procs")
    assert wait_for(lambda: len(read(procs).split()) == 3)
    pids = [int(x) for x in read(procs).split()]
    assert os.readlink("/proc/%d/ns/pid" % pid) == os.readlink("/proc/self/ns/pid")
    p = podman("stop", "-t", "10", "pd7")
    assert p.returncode == 0, p.stderr
    assert state(podman, "pd7") == "exited"
    assert wait_for(lambda: not any(alive(x) for x in pids))
    assert podman("rm", "pd7").returncode == 0


def test_detached_pidfile_parent_cgroup(podman):
    cid = run_d(podman, "pd1", "sleep", "300")
    assert state(podman, "pd1") == "running"
    pid = pid_of(podman, "pd1")
    # conmon (the subreaper) is the init's parent: no pyoci process in between
    conmon = int(podman.inspect("pd1", "{{.State.ConmonPid}}"))
    assert engines.ppid(pid) == conmon
    assert engines.cmdline(pid) == "sleep"
    # the pid file conmon read after create: the host pid, no newline
    pidfile = podman.inspect("pd1", "{{.PidFile}}")
    assert read(pidfile) == str(pid)
    # the cgroup podman asked for, in every mounted hierarchy
    for ctrls, path in cgroup_of(pid).items():
        if ctrls and mounted_v1(ctrls.split(",")[0].replace("name=", "")):
            assert path == "/%s/libpod-%s" % (TAG, cid), (ctrls, path)
    # pyoci's state under its default root (podman passes no --root)
    assert os.path.isfile(os.path.join("/run/pyoci", cid, "state.json"))
    p = podman("rm", "-f", "-t", "0", "pd1")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: not alive(pid))
    assert not os.path.exists(os.path.join("/run/pyoci", cid))


def test_pause_unpause(podman):
    cid = run_d(podman, "pd2", "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/tick; sleep 0.05; done")
    tick = os.path.join(podman.rootfs, "tmp", "tick")
    pid = pid_of(podman, "pd2")
    tick = "/proc/%d/root/tmp/tick" % pid
    assert wait_for(lambda: os.path.exists(tick) and read(tick).strip())
    p = podman("pause", "pd2")
    assert p.returncode == 0, p.stderr
    assert state(podman, "pd2") == "paused"
    assert freezer_state(cg(cid, "freezer")) == "FROZEN"
    first = read(tick)
    time.sleep(0.3)
    assert read(tick) == first, "the container kept running while paused"
    p = podman("unpause", "pd2")
    assert p.returncode == 0, p.stderr
    assert state(podman, "pd2") == "running"
    assert freezer_state(cg(cid, "freezer")) == "THAWED"
    assert wait_for(lambda: read(tick) != first)
    assert podman("rm", "-f", "-t", "0", "pd2").returncode == 0


def test_kill_stop_restart_rm(podman):
    # USR1 reaches the init's handler (inside), which leaves a mark we read (outside)
    run_d(podman, "pd3", "sh", "-c", "trap 'echo got-usr1 > /tmp/usr1' USR1; touch /tmp/ready-pd3; "
                                     "while :; do sleep 0.1; done")
    pid = pid_of(podman, "pd3")
    assert wait_for(lambda: os.path.exists("/proc/%d/root/tmp/ready-pd3" % pid))   # the handler is set
    p = podman("kill", "-s", "USR1", "pd3")
    assert p.returncode == 0, p.stderr
    mark = "/proc/%d/root/tmp/usr1" % pid
    assert wait_for(lambda: os.path.exists(mark)), "USR1 did not reach the container"
    assert read(mark) == "got-usr1\n"
    assert state(podman, "pd3") == "running"
    # stop: TERM (ignored by this pid 1, it has no handler), then KILL after the timeout
    t0 = time.monotonic()
    p = podman("stop", "-t", "1", "pd3")
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    assert took >= 1.0
    assert state(podman, "pd3") == "exited"
    assert podman.inspect("pd3", "{{.State.ExitCode}}") == "137"
    assert not alive(pid)
    # restart: create + start again, same id and bundle
    p = podman("restart", "pd3")
    assert p.returncode == 0, p.stderr
    assert state(podman, "pd3") == "running"
    pid2 = pid_of(podman, "pd3")
    assert pid2 != pid and alive(pid2)
    # stop of a pid 1 that handles TERM: no KILL needed
    run_d(podman, "pd4", "sh", "-c", "trap 'exit 42' TERM; touch /tmp/ready-pd4; while :; do sleep 0.1; done")
    assert wait_for(lambda: os.path.exists("/proc/%d/root/tmp/ready-pd4" % pid_of(podman, "pd4")))
    p = podman("stop", "-t", "10", "pd4")
    assert p.returncode == 0, p.stderr
    assert podman.inspect("pd4", "{{.State.ExitCode}}") == "42"
    # rm -f of a running container: kill 9 + delete --force
    p = podman("rm", "-f", "-t", "0", "pd3", "pd4")
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: not alive(pid2))
    assert podman("ps", "-aq").stdout.split() == []


def test_preserve_fds_and_inherited_fds(podman, tmp_path):
    f = tmp_path / "data"
    f.write_text("preserved-data\n")
    argv = podman.argv(*podman.run_args("--rm", "--preserve-fds", "1"),
                       "sh", "-c", "cat <&3; ls /proc/$$/fd; exit 0")
    # fd 3 given on purpose, fd 4 leaked (not CLOEXEC): only 3 may reach the container
    p = engines._run(["sh", "-c", 'exec "$@" 3<"$F" 4<"$F"', "sh"] + argv, env=dict(podman.env, F=str(f)))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert lines[0] == "preserved-data"
    assert lines[1:] == ["0", "1", "2", "3"]
    argv = podman.argv(*podman.run_args("--rm"), "sh", "-c", "ls /proc/$$/fd; exit 0")
    p = engines._run(["sh", "-c", 'exec "$@" 3<"$F" 4<"$F"', "sh"] + argv, env=dict(podman.env, F=str(f)))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "1", "2"]


@pytest.mark.parametrize("cmd,code,words", [
    ("/nonexistent", 127, 'exec: "/nonexistent": stat /nonexistent: no such file or directory'),
    ("nosuchcommand", 127, 'exec: "nosuchcommand": executable file not found in $PATH'),
    ("/etc/passwd", 126, 'exec: "/etc/passwd": permission denied'),
])
def test_failing_command_exit_codes(podman, cmd, code, words):
    p = podman(*podman.run_args("--rm"), cmd)
    assert p.returncode == code, p.stderr
    assert "pyoci create failed: unable to start container process: " + words in p.stderr, p.stderr
    # podman parsed the oci-log as one JSON object: no raw log line shown
    assert "level=error" not in p.stderr and '"level"' not in p.stderr, p.stderr
    assert podman("ps", "-aq").stdout.split() == []


def test_rlimit_refused_is_permission_denied(podman):
    # above fs.nr_open: EPERM even with CAP_SYS_RESOURCE; podman maps it to 126
    p = podman(*podman.run_args("--rm", "--ulimit", "nofile=99999999:99999999"), "/bin/true")
    assert p.returncode == 126, p.stderr
    assert "error setting rlimit type 7: operation not permitted" in p.stderr, p.stderr
    assert podman("ps", "-aq").stdout.split() == []


def test_failed_create_leaves_one_json_error_line(podman):
    # podman reads the whole oci-log of a failed create as ONE JSON object
    p = podman(*podman.run_args("--name", "bad"), "/nonexistent")
    assert p.returncode == 127, p.stderr
    cid = podman.inspect("bad", "{{.Id}}")
    logs = [os.path.join(dp, "oci-log") for dp, _, files in os.walk(podman.dir)
            if "oci-log" in files and cid in dp]
    assert len(logs) == 1, logs
    lines = read(logs[0]).splitlines()
    assert len(lines) == 1, lines
    rec = json.loads(lines[0])
    assert rec["level"] == "error"
    assert rec["msg"].startswith("pyoci create failed: unable to start container process: ")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", rec["time"]), rec
    assert podman("rm", "bad").returncode == 0


def test_failing_command_without_json_log(host_guard):
    """Under a name podman does not list in runtime_supports_json, pyoci gets
    no --log: podman shows its stderr line and still maps the exit code."""
    require("podman", "conmon")
    pm = engines.Podman(PYOCI, tmp=podman_dir(), cgroup_parent="/" + TAG,
                        supports_json=False)
    try:
        p = pm(*pm.run_args("--rm"), "/nonexistent")
        assert p.returncode == 127, p.stderr
        assert 'exec: \\"/nonexistent\\": stat /nonexistent: no such file or directory' in p.stderr \
            or 'exec: "/nonexistent": stat /nonexistent: no such file or directory' in p.stderr, p.stderr
        assert pm("ps", "-aq").stdout.split() == []
    finally:
        pm.cleanup()
        alive_ = settle()
        remove_tag_cgroups()
    assert not alive_


def test_exec(podman):
    cid = run_d(podman, "pd5", "sleep", "300")
    pid = pid_of(podman, "pd5")
    p = podman("exec", "pd5", "sh", "-c", "echo exec-out; echo $$ > /tmp/e1; exit 3")
    assert p.returncode == 3, p.stderr
    assert p.stdout == "exec-out\n"
    assert read("/proc/%d/root/tmp/e1" % pid).strip() not in ("", "1")
    # detached exec: in the container's cgroup and namespaces, child of its own conmon
    p = podman("exec", "-d", "pd5", "sleep", "301")
    assert p.returncode == 0, p.stderr
    procs = cg(cid, "memory", "cgroup.procs")
    assert wait_for(lambda: len(read(procs).split()) == 2)
    epid = [int(x) for x in read(procs).split() if int(x) != pid][0]
    assert "conmon" in engines.cmdline(engines.ppid(epid))
    assert os.readlink("/proc/%d/ns/pid" % epid) == os.readlink("/proc/%d/ns/pid" % pid)
    # a failing exec
    p = podman("exec", "pd5", "/nonexistent")
    assert p.returncode == 127, p.stderr
    # with a terminal
    require("script")
    cmd = " ".join(shlex.quote(a) for a in podman.argv("exec", "-t", "pd5", "sh", "-c",
                                                       "tty; test -t 1 && echo is-tty; exit 5"))
    p = engines._run(["script", "-qec", cmd, "/dev/null"], timeout=60, env=podman.env)
    assert p.returncode == 5, (p.stdout, p.stderr)
    out = p.stdout.replace("\r", "")
    assert re.search(r"/dev/pts/\d+", out) and "is-tty" in out, out
    assert podman("rm", "-f", "-t", "0", "pd5").returncode == 0
    assert wait_for(lambda: not alive(epid))


def test_update(podman):
    cid = run_d(podman, "pd6", "sleep", "300")
    p = podman("update", "--memory", "64m", "--cpu-shares", "512", "pd6")
    assert p.returncode == 0, p.stderr
    if unified():   # the runtime-spec's shares -> weight conversion
        assert read(cg(cid, "memory", "memory.max")).strip() == str(64 << 20)
        assert read(cg(cid, "cpu", "cpu.weight")).strip() == str(1 + ((512 - 2) * 9999) // 262142)
    else:
        assert read(cg(cid, "memory", "memory.limit_in_bytes")).strip() == str(64 << 20)
        assert read(cg(cid, "cpu", "cpu.shares")).strip() == "512"
    assert state(podman, "pd6") == "running"
    assert podman("rm", "-f", "-t", "0", "pd6").returncode == 0


def readme_block(lang, needle):
    text = read(os.path.join(REPO, "README.md"))
    for m in re.finditer(r"```%s\n(.*?)```" % lang, text, re.S):
        if needle in m.group(1):
            return m.group(1)
    raise AssertionError("README has no %s block with %r" % (lang, needle))


def test_readme_containers_conf(podman):
    """The README's containers.conf, as written (with pyoci's path), picks
    pyoci without --runtime and gives it the JSON log flags."""
    conf = readme_block("toml", "[engine.runtimes]").replace("/usr/local/bin/pyoci", PYOCI)
    sections, cur = {}, None
    for line in read(podman.env["CONTAINERS_CONF"]).splitlines():
        if line.startswith("["):
            cur = sections.setdefault(line, [])
        elif line and not line.startswith(("cgroup_manager", "runtime_supports_json")):
            cur.append(line)
    # the private storage settings join the README's own [engine] table
    conf = conf.replace("[engine]\n", "[engine]\n" + "\n".join(sections.pop("[engine]")) + "\n", 1)
    conf += "".join("\n%s\n%s\n" % (k, "\n".join(v)) for k, v in sections.items())
    path = os.path.join(podman.dir, "readme-containers.conf")
    with open(path, "w") as f:
        f.write(conf)
    env = dict(podman.env, CONTAINERS_CONF=path)
    argv = podman.argv()
    i = argv.index("--runtime")
    del argv[i:i + 2]
    p = engines._run(argv + ["info", "--format", "{{.Host.OCIRuntime.Name}} {{.Host.OCIRuntime.Path}}"], env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["pyoci", PYOCI]
    p = engines._run(argv + podman.run_args("--rm") + ["sh", "-c", "echo via-conf; exit 4"], env=env)
    assert p.returncode == 4, p.stderr
    assert p.stdout == "via-conf\n"
    p = engines._run(argv + podman.run_args("--rm") + ["/nonexistent"], env=env)
    assert p.returncode == 127, p.stderr
    # the message came through the JSON oci-log (runtime_supports_json), not raw stderr
    assert "pyoci create failed" in p.stderr and "level=error" not in p.stderr, p.stderr


def test_apparmor_default_profile(podman):
    """Where AppArmor is enabled podman gives every container its
    containers-default profile (it loads it itself): the process runs
    confined, exec'd processes too, and what the profile denies is denied
    (mount, with CAP_SYS_ADMIN granted: the capability and seccomp allow it),
    where an unconfined container may."""
    from pyoci.config import features

    if not features.apparmor_enabled():
        pytest.skip("AppArmor is not enabled here")
    probe = "cat /proc/self/attr/current; mkdir -p /m; mount -t tmpfs t /m && echo mounted"
    p = podman(*podman.run_args("--rm", "--cap-add", "SYS_ADMIN"), "sh", "-c", probe, timeout=240)
    assert p.returncode != 0, p.stderr
    label = p.stdout.splitlines()[0]
    assert re.match(r"containers-default-[0-9.]+ \(enforce\)$", label), p.stdout
    assert "mounted" not in p.stdout and "Permission denied" in p.stderr
    p = podman(*podman.run_args("--rm", "--cap-add", "SYS_ADMIN", "--security-opt", "apparmor=unconfined"),
               "sh", "-c", probe)
    assert p.returncode == 0 and p.stdout.splitlines() == ["unconfined", "mounted"], p.stderr
    run_d(podman, "aa1", "sleep", "300")
    p = podman("exec", "aa1", "cat", "/proc/self/attr/current")
    assert p.returncode == 0 and p.stdout.strip() == label, p.stderr
    with open("/proc/%d/attr/current" % pid_of(podman, "aa1")) as f:
        assert f.read().strip() == label
    assert podman("rm", "-f", "-t", "0", "aa1").returncode == 0


def test_selinux_default_labels(podman):
    """Where SELinux is enabled podman labels every container (a container_t
    process label and a container_file_t mount label with a pair of random
    categories, from the policy's lxc_contexts): pyoci runs the process with
    that label (seen inside, on the host and in exec'd processes) and
    labels the container's tmpfs, devpts and mqueue mounts."""
    from pyoci.config import features

    if not features.selinux_enabled():
        pytest.skip("SELinux is not enabled here")
    run_d(podman, "se1", "sleep", "300")
    proc_label, mount_label = podman.inspect("se1", "{{.ProcessLabel}} {{.MountLabel}}").split()
    assert ":container_t:" in proc_label and ":container_file_t:" in mount_label
    assert proc_label.split(":", 4)[4] == mount_label.split(":", 4)[4]   # the same categories
    pid = pid_of(podman, "se1")
    with open("/proc/%d/attr/current" % pid) as f:
        assert f.read().strip("\0\n") == proc_label
    for d in ("/dev", "/dev/shm", "/dev/pts", "/dev/mqueue"):
        label = os.getxattr("/proc/%d/root%s" % (pid, d), "security.selinux")
        assert label.rstrip(b"\0").decode() == mount_label, d
    p = podman("exec", "se1", "cat", "/proc/self/attr/current")
    assert p.returncode == 0 and p.stdout.strip("\0\n") == proc_label, p.stderr
    assert podman("rm", "-f", "-t", "0", "se1").returncode == 0
