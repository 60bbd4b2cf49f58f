"""Exceptions that end a command with one clear message."""


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
        super().__init__("container does not exist")


class ContainerNotRunning(PyociError):
    def __init__(self):
        super().__init__("container not running")
