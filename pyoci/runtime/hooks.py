"""Lifecycle hooks (runtime-spec 1.3.0, config.md "POSIX-platform Hooks").

Where each kind runs (the callers):

  prestart, createRuntime  `create`, in the runtime (the parent), once the
                           container's mounts are prepared and before
                           pivot_root: C2 waits for them (create.py, child.py)
  createContainer          `create`, in C2: the container's namespaces, before
                           pivot_root, so the path resolves on the host
  startContainer           `start`, before the fifo is released, in a process
                           that joined the container (namespaces, cgroup,
                           root): the path resolves in the container (exec.py)
  poststart                `start`, in the runtime, once the user's program
                           was executed
  poststop                 `delete` (and `run`), in the runtime, once the
                           container was destroyed

Each hook gets the container's state JSON on stdin, its own args and env
(with no `env` at all, the runtime's environment, as runc's hooks do), a
new session, and no fd of the
runtime's but 0-2. Its stdout and stderr go to a memfd that the runtime
reads after it exited: a hook writes nothing into the container's stdio
(create's stdio is the container's) and cannot hang the runtime by keeping a
pipe open. A hook that exits non-zero, is killed, or outlives its timeout
(its process group is then killed) fails; failure semantics are the
callers': an error for every kind but poststop, which only warns.
"""
import os
import select

from pyoci import jsonio as json
from pyoci.errors import PyociError

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
OUTPUT_SHOWN = 4096


def state_doc(cid, status, pid, bundle, annotations=None):
    """The runtime-spec state a hook reads on stdin."""
    from pyoci import SPEC_VERSION

    st = {"ociVersion": SPEC_VERSION, "id": cid, "status": status, "pid": pid, "bundle": bundle}
    if annotations:
        st["annotations"] = annotations
    return st


def run(kind, hooks, state, spawn=None, warn=None, debug=None, cwd=None, env=None):
    """Run the hooks of one kind in order, each with `state` on stdin.
    The first failure raises PyociError and stops the rest; with `warn`
    (poststop) a failure is logged there and the next hook runs. A hook of
    the host runs in `cwd`, by default the bundle (runc runs in the bundle;
    createContainer hooks get the rootfs). A hook without `env` gets `env`
    (["K=V"]), by default the runtime's environment: as with runc, whose
    runtime hooks inherit its environment and whose createContainer and
    startContainer hooks, run by its init, the container process's."""
    if not hooks:
        return
    data = json.dumps(state).encode()
    if spawn is None:
        spawn = _in_dir(cwd or state.get("bundle"))
    for i, hook in enumerate(hooks):
        try:
            out = run_one(hook, data, spawn, env)
        except PyociError as e:
            # "error running hook #N": runc's words, which scripts match
            msg = "error running hook #%d (%s, %s): %s" % (i, kind, hook.get("path"), e)
            if warn is None:
                raise PyociError(msg)
            warn(msg)
            continue
        if out and debug is not None:
            debug("%s hook #%d (%s) output: %s" % (kind, i, hook.get("path"), _show(out)))


def _show(out):
    text = out[:OUTPUT_SHOWN].decode("utf-8", "replace").strip()
    return text + (" [...]" if len(out) > OUTPUT_SHOWN else "")


def _in_dir(cwd):
    """spawn_host, run from cwd (the runtime's own cwd is put back after)."""
    if not cwd:
        return spawn_host

    def spawn(*a):
        back = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            try:
                os.chdir(cwd)
            except OSError:
                pass   # as it was before: the runtime's cwd
            return spawn_host(*a)
        finally:
            os.fchdir(back)
            os.close(back)
    return spawn


def _env(entries, default=None):
    if entries is None:
        if default is None:
            return dict(os.environ)
        entries = default
    env = {}
    for e in entries or ():
        k, eq, v = e.partition("=")
        if eq and k:
            env[k] = v
    return env


def spawn_host(path, args, env, stdin_fd, out_fd):
    """A hook in the runtime's namespaces: a child of ours, in a session of
    its own, with stdin/stdout/stderr and nothing else."""
    actions = [(os.POSIX_SPAWN_DUP2, stdin_fd, 0), (os.POSIX_SPAWN_DUP2, out_fd, 1),
               (os.POSIX_SPAWN_DUP2, out_fd, 2)]
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in (stdin_fd, out_fd):
            try:
                if os.get_inheritable(fd):
                    actions.append((os.POSIX_SPAWN_CLOSE, fd))
            except OSError:
                pass
    try:
        return os.posix_spawn(path, args, env, file_actions=actions, setsid=True)
    except OSError as e:
        raise PyociError("%s: %s" % (path, os.strerror(e.errno).lower()))


def run_one(hook, data, spawn=None, default_env=None):
    """Run one hook; returns its output. Raises PyociError on failure."""
    path = hook.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise PyociError("path %r is not absolute" % (path,))
    args = list(hook.get("args") or ()) or [path]
    timeout = hook.get("timeout")
    out = os.memfd_create("pyoci-hook-output")
    stdin_r = stdin_w = -1
    try:
        if len(data) < 65536:      # fits a pipe's buffer: written before the hook runs
            stdin_r, stdin_w = os.pipe()
            os.write(stdin_w, data)
            os.close(stdin_w)
            stdin_w = -1
        else:
            stdin_r = os.memfd_create("pyoci-hook-state")
            os.write(stdin_r, data)
            os.lseek(stdin_r, 0, os.SEEK_SET)
        pid = (spawn or spawn_host)(path, args, _env(hook.get("env"), default_env), stdin_r, out)
        os.close(stdin_r)
        stdin_r = -1
        pidfd = os.pidfd_open(pid)
        try:
            p = select.poll()
            p.register(pidfd, select.POLLIN)
            ready = p.poll(None if timeout is None else timeout * 1000)
        except BaseException:
            _kill_hook(pid)   # the operation was interrupted: no hook outlives it
            raise
        finally:
            os.close(pidfd)
        if not ready:
            _kill_hook(pid)
            raise PyociError("timed out after %d s (killed)" % timeout)
        _, status = os.waitpid(pid, 0)
        os.lseek(out, 0, os.SEEK_SET)
        output = b""
        while True:
            chunk = os.read(out, 65536)
            if not chunk:
                break
            output += chunk
        if os.WIFSIGNALED(status):
            import signal

            sig = os.WTERMSIG(status)
            name = (signal.strsignal(sig) or "").lower()
            raise PyociError("killed by signal %d (%s)%s" % (sig, name, _tail(output)))
        code = os.WEXITSTATUS(status)
        if code != 0:
            raise PyociError("exit status %d%s" % (code, _tail(output)))
        return output
    finally:
        for fd in (stdin_r, stdin_w, out):
            if fd >= 0:
                os.close(fd)


def _kill_hook(pid):
    """SIGKILL the hook's process group (its session) and reap it."""
    for target in (lambda: os.killpg(pid, 9), lambda: os.kill(pid, 9)):
        try:
            target()
        except OSError:
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _tail(output):
    return ", output: %s" % _show(output) if output.strip() else ""
