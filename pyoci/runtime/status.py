"""The container's status and what each status allows: the lifecycle's
state machine (runc's libcontainer/state_linux.go and the commands' checks,
youki's container/state.rs).

The status is derived, never stored: from the init process (alive, by pid
and start time, so a recycled pid is not taken for it), the exec fifo and
the freezer.

    creating  a create holds the directory's lock and has not written
              state.json yet (`list` shows it; for the rest it does not
              exist yet, as with runc)
    created   the init waits for start (exec.fifo exists)
    running   start released it
    paused    its cgroup is frozen
    stopped   the init is gone
    broken    the directory exists but state.json is missing or corrupt
              (a create or delete killed half-way): pyoci's own status,
              shown by `list`; only `delete --force` acts on it

Transitions: create -> created -start-> running -pause-> paused -resume->
running; created -pause-> paused -resume-> created; the init's exit ->
stopped; delete (created, stopped; any with --force) -> gone.

ALLOWED says which operation each status allows; refuse() words the
refusal as runc does (engines match some of these phrases).
"""
from pyoci.errors import ContainerBroken, ContainerNotExist, InvalidStatus

CREATING, CREATED, RUNNING, PAUSED, STOPPED, BROKEN = (
    "creating", "created", "running", "paused", "stopped", "broken")
OCI_STATUSES = (CREATED, RUNNING, PAUSED, STOPPED)

# operation -> the statuses that allow it
ALLOWED = {
    "start": {CREATED},
    "kill": {CREATED, RUNNING, PAUSED},
    "kill-all": {CREATED, RUNNING, PAUSED, STOPPED},   # what is left in the cgroup (runc 1.1)
    "delete": {CREATED, STOPPED},                      # created: its init is killed (runc)
    "delete-force": {CREATING, CREATED, RUNNING, PAUSED, STOPPED, BROKEN},
    "pause": {CREATED, RUNNING},
    "resume": {PAUSED},
    "update": {CREATED, RUNNING, PAUSED},
    "exec": {CREATED, RUNNING},
    "exec-paused": {CREATED, RUNNING, PAUSED},         # exec --ignore-paused
    "events": {CREATED, RUNNING, PAUSED},
    "ps": {CREATED, RUNNING, PAUSED, STOPPED},
    "state": {CREATED, RUNNING, PAUSED, STOPPED},
}


def _refusal(op, status, cid):
    if op == "start":
        if status == STOPPED:
            return "cannot start a container that has stopped"
        if status == RUNNING:
            return "cannot start an already running container"
        return "cannot start a container in the %s state" % status
    if op == "delete":
        return "cannot delete container %s that is not stopped: %s" % (cid, status)
    if op == "resume":
        return "container not paused"
    if op in ("exec", "exec-paused"):
        if status == PAUSED:
            return "cannot exec in a paused container (use --ignore-paused to override)"
        return "cannot exec in a %s container" % status
    if op == "events":
        return "container with id %s is not running" % cid
    return "container not running"   # kill, pause, update (runc's ErrNotRunning)


def allowed(op, status):
    return status in ALLOWED[op]


def check(op, status, cid, reason=None):
    """Raise the typed refusal of `op` in `status`; return if allowed."""
    if status in ALLOWED[op]:
        return
    if status == CREATING:
        raise ContainerNotExist(cid)   # not yet, as with runc
    if status == BROKEN:
        raise ContainerBroken(cid, reason or "unusable state")
    raise InvalidStatus(op, status, _refusal(op, status, cid))


# -- the init process ----------------------------------------------------------
def proc_stat(pid):
    """(state letter, start time in ticks) of a process, or None if gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0].decode(), int(fields[19])


def alive(pid, start_time):
    """The process pid exists, is not a zombie, and is the one that started
    at start_time (not a later process that got its number)."""
    st = proc_stat(pid) if pid > 0 else None
    return bool(st) and st[0] not in ("Z", "X") and st[1] == start_time


def derive(state, fifo_exists, frozen):
    """The status of a container whose state document is `state`;
    fifo_exists() and frozen() are asked only when needed."""
    if not alive(state.pid, state.start_time):
        return STOPPED
    if state.cgroup and frozen():
        return PAUSED
    if fifo_exists():
        return CREATED
    return RUNNING
