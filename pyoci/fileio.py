"""Small file helpers every layer may use (the bottom layer, with errors
and jsonio)."""
from pyoci import fastos as os


def write_atomic(path, data, mode=0o644):
    """Write data to path through a temporary file and rename(2): a reader
    sees the old content or the new, never a part."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
