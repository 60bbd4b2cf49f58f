"""Exceptions that end a command with one clear message.

The lifecycle's refusals are typed (a caller of pyoci.runtime can tell
them apart without matching text) and worded as runc words them: engines
match some of these phrases by substring (`does not exist`,
`container not running`, `already exists`).
"""


class PyociError(Exception):
    """An error shown to the user as is (one line), exit status 1."""

    exit_code = 1


class ConfigError(PyociError):
    """A problem in config.json, with the JSON path of the field."""

    def __init__(self, path, message):
        self.path = path
        self.reason = message
        super().__init__("config.json: %s: %s" % (path, message) if path else "config.json: %s" % message)


class ContainerNotExist(PyociError):
    def __init__(self, cid=None):
        self.id = cid
        super().__init__("container does not exist")


class ContainerExists(PyociError):
    def __init__(self, cid=None):
        self.id = cid
        super().__init__("container with given ID already exists")


class ContainerNotRunning(PyociError):
    def __init__(self, message="container not running"):
        super().__init__(message)


class InvalidStatus(PyociError):
    """An operation the container's status does not allow (the state
    machine's refusal, pyoci.runtime.status)."""

    def __init__(self, operation, status, message):
        self.operation = operation
        self.status = status
        super().__init__(message)


class ContainerBroken(PyociError):
    """The state directory exists but its state document cannot be used
    (truncated, garbage, missing: a create or delete killed half-way);
    `delete --force` removes what is left."""

    def __init__(self, cid, reason):
        self.id = cid
        self.reason = reason
        super().__init__("container %s is broken (%s); delete --force removes what is left of it" % (cid, reason))


class ProtocolError(PyociError):
    """A message between the runtime and its children that the receiver
    did not expect (a bug, or a child that died half-way)."""

    def __init__(self, where, got, expected):
        self.where, self.got, self.expected = where, got, expected
        super().__init__("%s: unexpected message %s (expected %s)" % (where, got, expected))


class Interrupted(BaseException):
    """A terminating signal (SIGTERM, SIGINT, SIGHUP) arrived while the
    runtime built or changed a container: unwinds like KeyboardInterrupt,
    so the clean-up paths run; the command then exits 128+N."""

    def __init__(self, signum):
        self.signum = signum
        super().__init__("interrupted by signal %d" % signum)
