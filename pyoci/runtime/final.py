"""The final exec path, shared by a container's init (create) and the
processes `pyoci exec` starts: from a runtime-spec `process` object to the
Plan that pyoci-init applies right before execve.

Runs inside the container (after pivot_root or chroot): cwd, rlimits, HOME,
the program's path along the container's PATH, the terminal; then the plan
records user, groups, capabilities, no_new_privileges, seccomp and umask.
Whatever the caller adds (exec fifo, LSM label fd) goes on the returned
Plan; the caller closes the fds and executes pyoci-init.
"""
import fcntl

from pyoci import fastos as os
from pyoci.errors import PyociError
from pyoci.linux import capabilities, lsm, process
from pyoci.runtime.plan import Plan

# Everything used here is imported above: callers import this module before
# they pivot_root or chroot away from the host's Python library.


def move_above(fd, low):
    """Duplicate fd to a number >= low (inheritable) and close the old one."""
    if fd >= low:
        os.set_inheritable(fd, True)
        return fd
    new = fcntl.fcntl(fd, fcntl.F_DUPFD, low)
    os.close(fd)
    return new


def close_all_but(keep_below, keep):
    """Close every fd >= keep_below but those in `keep` (None ignored), with
    close_range(2): no /proc needed (exec's C1 sees a procfs of another pid
    namespace once it chrooted into the container)."""
    lo = keep_below
    for fd in sorted(fd for fd in keep if fd is not None and fd >= keep_below):
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1
    os.closerange(lo, 0x7FFFFFFF)


def process_plan(proc, keep, console=None, seccomp=None, warn=None, create_cwd=True, bind_console=True,
                 settings=None, setgroups=True, session=True):
    """The Plan for `proc` (a runtime-spec process object). `keep` is the
    first fd pyoci-init closes (3 + preserved fds): fds the plan refers to
    are moved above it and listed in plan.fds for the caller to keep open.
    `settings` (pyoci.linux.process.Settings) are applied last, in Python;
    setgroups=False: a user namespace that denies setgroups(2). session=False:
    the terminal becomes stdio only; pyoci-init makes it the controlling
    terminal of the process it forks (exec)."""
    env = list(proc.get("env") or ())
    user = proc.get("user") or {}
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    if process.env_get(env, "HOME") is None:
        env.append("HOME=" + process.home_of(uid))
    cwd = proc.get("cwd") or "/"
    if create_cwd:
        process.enter_cwd(cwd)
    else:
        try:
            os.chdir(cwd)
        except OSError as e:
            raise PyociError("chdir to cwd (%r) set in config.json failed: %s"
                             % (cwd, os.strerror(e.errno).lower()))
        process.check_cwd_inside(cwd)
    process.set_rlimits(process.rlimits(proc))
    args = proc["args"]
    exe = process.lookup(args[0], env, os.getcwd())

    if proc.get("terminal"):
        from pyoci.linux import terminal

        terminal.setup(console, proc.get("consoleSize"), bind_console=bind_console, session=session,
                       owner=(proc.get("user") or {}).get("uid", 0))

    if settings is not None:
        settings.apply()
    plan = Plan()
    plan.program(exe, args, env)
    plan.user(uid, gid)
    groups = list(user.get("additionalGids") or ())
    if setgroups:
        plan.groups(groups)
    elif groups:
        raise PyociError("process.user.additionalGids: setgroups(2) is denied in this user namespace "
                         "(a rootless mapping of one gid): no additional groups can be set")
    sets = capabilities.from_config(proc.get("capabilities"), warn=warn)
    if sets is not None:
        plan.caps(sets, capabilities.last_cap())
    if proc.get("noNewPrivileges"):
        plan.no_new_privileges()
    if seccomp is not None:
        plan.seccomp(*seccomp)
    plan.umask(user.get("umask", 0o022))
    _lsm_label(plan, settings, keep)
    plan.keep_fds(keep)
    return plan


def _lsm_label(plan, settings, keep):
    """The LSM exec label: pyoci-init opens the task's attr file beneath a
    directory fd opened here on a procfs no mount can redirect
    (pyoci.linux.lsm) and writes it, so it takes effect at the final execve.
    Which labels this host applies was decided in the parent
    (settings.labels); at most one LSM that takes exec labels is active."""
    if settings is None or not settings.labels:
        return
    label = settings.labels[0]
    try:
        d = lsm.attr_dir()
        try:
            name = lsm.attr_name(d, label)
        except BaseException:
            os.close(d)
            raise
    except OSError as e:
        raise PyociError("%s: open the task's attr directory: %s" % (label.field, e.strerror or e))
    d = move_above(d, keep)
    plan.exec_label(d, name, label.payload, label.describe())
    plan.fds.append(d)
