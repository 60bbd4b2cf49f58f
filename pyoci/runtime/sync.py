"""Messages between the runtime and its children during create: one JSON
object per line over a pipe (close-on-exec, so a successful exec of
pyoci-init shows up as end-of-file)."""
import os

from pyoci import jsonio as json


class Channel:
    def __init__(self):
        self.rfd, self.wfd = os.pipe()
        self.buf = b""

    def send(self, obj):
        os.write(self.wfd, json.dumps(obj).encode() + b"\n")

    def recv(self):
        """The next message, or None at end-of-file."""
        while b"\n" not in self.buf:
            chunk = os.read(self.rfd, 65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return json.loads(line)

    def close_read(self):
        if self.rfd >= 0:
            os.close(self.rfd)
            self.rfd = -1

    def close_write(self):
        if self.wfd >= 0:
            os.close(self.wfd)
            self.wfd = -1

    def close(self):
        self.close_read()
        self.close_write()


def kill_and_reap(pid):
    """SIGKILL a child of ours and reap it; quietly done if it is gone."""
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
