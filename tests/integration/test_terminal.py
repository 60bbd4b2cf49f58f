"""process.terminal: the pty through a real --console-socket (the protocol
containerd's shim and conmon use), consoleSize, /dev/console, `run` in the
foreground relaying the terminal, and runc's rules for when a terminal can
be had at all."""
import os
import pty
import select
import socket
import stat
import subprocess
import termios
import time

from conftest import PYOCI


def tty_bundle(make_bundle, script, size=None, changes=None):
    def ch(c):
        c["process"]["terminal"] = True
        if size:
            c["process"]["consoleSize"] = {"height": size[0], "width": size[1]}
        if changes:
            changes(c)
    return make_bundle(["sh", "-c", script], ch)


def read_until_eof(fd, timeout=10):
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if not r:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:   # EIO: the slave side is gone
            break
        if not data:
            break
        out += data
    return out.decode(errors="replace").replace("\r\n", "\n")


def listen(tmp_path):
    path = str(tmp_path / "console.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return s, path


def test_console_socket_protocol_size_and_dev_console(runtime, make_bundle, tmp_path):
    b = tty_bundle(make_bundle, "read line; echo got:$line; tty; stty size; "
                   "stat -c '%F %t:%T' /dev/console; test -t 0 && echo stdin-is-tty; exit 7",
                   size=(30, 100))
    srv, path = listen(tmp_path)
    with srv:
        p = runtime.cmd("create", "--console-socket", path, "-b", b, "t1")
        assert p.returncode == 0, p.stderr
        assert p.stdout == "" and p.stderr == ""   # create prints nothing
        conn, _ = srv.accept()
        with conn:
            name, fds, _, _ = socket.recv_fds(conn, 4096, 4)
            assert len(fds) == 1 and name   # exactly one fd, a non-empty name
            # the runtime did not wait for an answer: the socket is closed
            assert conn.recv(1) == b""
    master = fds[0]
    try:
        st = os.fstat(master)
        assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 5   # a ptmx master
        pid = runtime.state("t1")["pid"]
        runtime.cmd("start", "t1", check=True)
        os.write(master, b"hello\n")
        out = read_until_eof(master)
    finally:
        os.close(master)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7
    lines = out.split("\n")
    assert "got:hello" in lines
    assert "/dev/pts/0" in lines
    assert "30 100" in lines
    assert "character special file 88:0" in lines   # /dev/console is the pty slave (136:0)
    assert "stdin-is-tty" in lines
    runtime.cmd("delete", "t1", check=True)


def test_run_foreground_relays_the_terminal(runtime, make_bundle):
    """`pyoci run` with terminal true and no --console-socket makes the pty
    itself and relays it, as runc does: our terminal goes raw while the
    container runs, its size is copied, and it is restored at the end."""
    b = tty_bundle(make_bundle, "stty size; read x; echo got:$x; exit 5")
    m, s = pty.openpty()
    try:
        termios.tcsetwinsize(s, (40, 120))
        before = termios.tcgetattr(s)
        # typed ahead, before pyoci relays the terminal: it must not be lost
        os.write(m, b"hello\n")
        p = subprocess.Popen([PYOCI, "--root", runtime.root, "run", "-b", b, "t2"],
                             stdin=s, stdout=s, stderr=s, start_new_session=True)
        out = read_until_eof_or_exit(m, p)
        assert p.wait(timeout=30) == 5, out
        assert "40 120" in out
        assert "got:hello" in out
        assert termios.tcgetattr(s) == before
    finally:
        os.close(m)
        os.close(s)
    assert runtime.ids() == []


def read_until_eof_or_exit(fd, proc, timeout=30):
    out = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
        elif proc.poll() is not None:
            break
    return out.decode(errors="replace").replace("\r\n", "\n")


def test_run_foreground_terminal_with_plain_stdio(runtime, make_bundle):
    """Without a terminal on our side the relay still copies both ways."""
    b = tty_bundle(make_bundle, "read x; echo got:$x; test -t 1 && echo out-is-tty")
    p = runtime.cmd("run", "-b", b, "t3", input="abc\n")
    assert p.returncode == 0, p.stderr
    assert "got:abc" in p.stdout and "out-is-tty" in p.stdout


def test_terminal_without_console_socket_is_refused(runtime, make_bundle):
    b = tty_bundle(make_bundle, "true")
    for argv in (("create", "-b", b, "t4"), ("run", "-d", "-b", b, "t4")):
        p = runtime.cmd(*argv)
        assert p.returncode == 1
        assert "cannot allocate tty if pyoci will detach without setting console socket" in p.stderr
        assert "process.terminal" in p.stderr
    assert runtime.ids() == []


def test_console_socket_without_terminal_is_refused(runtime, make_bundle, tmp_path):
    b = make_bundle(["true"])
    srv, path = listen(tmp_path)
    with srv:
        p = runtime.cmd("create", "--console-socket", path, "-b", b, "t5")
    assert p.returncode == 1
    assert "cannot use console socket if pyoci will not detach or allocate tty" in p.stderr
    assert runtime.ids() == []


def test_console_socket_nobody_listens(runtime, make_bundle, tmp_path):
    b = tty_bundle(make_bundle, "true")
    p = runtime.cmd("create", "--console-socket", str(tmp_path / "nobody.sock"), "-b", b, "t6")
    assert p.returncode == 1
    assert "--console-socket" in p.stderr and "No such file or directory" in p.stderr
    assert runtime.ids() == []


def test_dev_console_symlink_is_not_followed(runtime, make_bundle, tmp_path):
    """CVE-2025-52565 class: an image whose /dev/console is a symlink to a
    procfs file. A runtime that mounts the pty onto the path "/dev/console"
    follows the link and mounts over /proc/sys/kernel/core_pattern in the
    container (hiding or replacing what masking protects). pyoci opens the
    target with O_NOFOLLOW and refuses it."""
    def no_dev_tmpfs(c):
        c["mounts"] = [m for m in c["mounts"] if m["destination"] != "/dev"]
        c["linux"]["maskedPaths"] = []   # masking needs the /dev/null of a /dev tmpfs
    b = tty_bundle(make_bundle, "cat /proc/sys/kernel/core_pattern", changes=no_dev_tmpfs)
    dev = os.path.join(b, "rootfs", "dev")
    os.mkdir(os.path.join(dev, "pts"))
    os.symlink("pts/ptmx", os.path.join(dev, "ptmx"))
    os.symlink("../proc/sys/kernel/core_pattern", os.path.join(dev, "console"))
    srv, path = listen(tmp_path)
    with srv:
        p = runtime.cmd("create", "--console-socket", path, "-b", b, "t7")
    assert p.returncode == 1, p.stderr
    assert "/dev/console" in p.stderr and "symlink" in p.stderr
    assert runtime.ids() == []
