"""exec: run a process in a running container (runc's flags)."""
from pyoci.cli.args import Flag, UsageError, check_args, format_help, int_flag, parse

UNSET = "unset"

EXEC_FLAGS = [
    Flag("--process|-p", value=True, help="path to a process.json (runtime-spec process)"),
    Flag("--console-socket", value=True, help="unix socket to send the pty master to"),
    Flag("--pidfd-socket", value=True, help="unix socket to send a pidfd of the process to"),
    Flag("--cwd", value=True, help="working directory in the container"),
    Flag("--env|-e", value=True, multi=True, help="set an environment variable (KEY=VALUE)"),
    Flag("--tty|-t", help="allocate a pseudo-terminal (needs --console-socket)"),
    Flag("--user|-u", value=True, help="UID[:GID] to run as"),
    Flag("--additional-gids|-g", value=True, multi=True, help="additional group id"),
    Flag("--process-label", value=True, help="SELinux label of the process"),
    Flag("--apparmor", value=True, help="AppArmor profile of the process"),
    Flag("--no-new-privs", default=UNSET, help="set no_new_privs for the process"),
    Flag("--cap|-c", value=True, multi=True, help="add a capability (bounding, effective, permitted)"),
    Flag("--preserve-fds", value=True, default="0", help="pass N extra fds (3..N+2) to the process"),
    Flag("--detach|-d", help="return once the process started"),
    Flag("--pid-file", value=True, help="write the process's host pid here"),
    Flag("--cgroup", value=True, multi=True, help="run in an existing sub-cgroup: [CONTROLLER:]PATH"),
    Flag("--ignore-paused", help="allow exec in a paused container"),
    Flag("--help|-h", help="show help"),
]


def cmd_exec(rt, args):
    opts, pos = parse(args, EXEC_FLAGS, stop_at_positional=True)
    if opts["help"]:
        import sys

        sys.stdout.write(format_help("exec [options] ID [COMMAND [ARG...]]  ||  exec -p process.json ID",
                                     "Run a process in a running container; without --detach wait for it, "
                                     "relay signals and exit with its status.", EXEC_FLAGS))
        return 0
    check_args("exec", pos, 1, "min")
    if not opts["process"] and len(pos) < 2:
        raise UsageError('"exec" requires a command (or --process FILE)')
    from pyoci.runtime.exec import ExecOptions

    nnp = opts["no_new_privs"]
    eo = ExecOptions(process=opts["process"], console_socket=opts["console_socket"],
                     pidfd_socket=opts["pidfd_socket"], cwd=opts["cwd"], env=opts["env"],
                     tty=opts["tty"], user=opts["user"], additional_gids=opts["additional_gids"],
                     process_label=opts["process_label"], apparmor=opts["apparmor"],
                     no_new_privs=None if nnp == UNSET else nnp, caps=opts["cap"],
                     preserve_fds=int_flag(opts, "preserve_fds", "--preserve-fds"),
                     detach=opts["detach"], pid_file=opts["pid_file"], cgroups=opts["cgroup"],
                     ignore_paused=opts["ignore_paused"], args=pos[1:])
    return rt.exec(pos[0], eo)
