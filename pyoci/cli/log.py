"""runc-compatible logging: `--log FILE`, `--log-format text|json`, `--debug`.

JSON lines are logrus-shaped, `{"level": ..., "msg": ..., "time": RFC 3339}`,
appended one per message (containerd takes the last error line, podman reads
a failing call's file as one object). Without --log, lines go to stderr.
"""
import sys
import time

from pyoci import fastos as os
from pyoci import jsonio as json

LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _quote(s):
    return json.dumps(s)


class Logger:
    def __init__(self, path=None, fmt="text", debug=False):
        if fmt not in ("text", "json"):
            from pyoci.cli.args import UsageError

            raise UsageError("invalid log format %r: must be text or json" % fmt)
        self.path = path
        self.fmt = fmt
        self.level = 0 if debug else 2
        self.fd = -1
        if path:
            # Opened at start-up, as runc does: a bad path fails at once, the
            # engine finds the file even when nothing is logged, and the
            # container's set-up processes keep writing to it after
            # pivot_root (where the path no longer resolves).
            try:
                self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as e:
                from pyoci.cli.args import UsageError

                self.path = None
                raise UsageError("failed to open log file %s: %s" % (path, e.strerror))

    def _line(self, level, msg):
        if self.fmt == "json":
            return json.dumps({"level": level, "msg": msg, "time": _now()}) + "\n"
        return "time=%s level=%s msg=%s\n" % (_quote(_now()), level, _quote(msg))

    def log(self, level, msg):
        if LEVELS[level] < self.level:
            return
        line = self._line(level, msg)
        if self.fd >= 0:
            try:
                os.write(self.fd, line.encode())
                return
            except OSError:
                pass
        try:
            sys.stderr.write(line)
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def debug(self, msg):
        self.log("debug", msg)

    def info(self, msg):
        self.log("info", msg)

    def warning(self, msg):
        self.log("warning", msg)

    def error(self, msg):
        """An error ends the command: to the log file and, plainly, to stderr."""
        self.log("error", msg)
        if self.fd >= 0:
            try:
                sys.stderr.write(msg + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass


# The logger of the running command; replaced by the CLI after parsing flags.
current = Logger()
