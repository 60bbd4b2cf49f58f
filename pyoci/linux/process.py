"""The container process's own settings that Python applies before it
becomes pyoci-init: rlimits, the program's path, HOME, cwd."""
import os
import stat

from pyoci.errors import ConfigError, PyociError

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4,
    "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9,
    "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}
RLIM_INFINITY = 0xFFFFFFFFFFFFFFFF

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def rlimits(process):
    """Validated [(resource number, soft, hard)] from process.rlimits."""
    out = []
    for i, r in enumerate(process.get("rlimits") or ()):
        t = r.get("type")
        if t not in RLIMITS:
            raise ConfigError("process.rlimits[%d].type" % i, "unknown rlimit type %r" % (t,))
        soft, hard = r.get("soft"), r.get("hard")
        for k, v in (("soft", soft), ("hard", hard)):
            if not isinstance(v, int) or v < 0 or v > RLIM_INFINITY:
                raise ConfigError("process.rlimits[%d].%s" % (i, k), "must be an unsigned 64-bit integer")
        out.append((RLIMITS[t], soft, hard))
    return out


def set_rlimits(limits):
    import resource

    for res, soft, hard in limits:
        conv = lambda v: resource.RLIM_INFINITY if v == RLIM_INFINITY else v  # noqa: E731
        try:
            resource.setrlimit(res, (conv(soft), conv(hard)))
        except (OSError, ValueError) as e:
            why = "operation not permitted" if getattr(e, "errno", None) == 1 or isinstance(e, ValueError) \
                else (e.strerror or str(e)).lower()
            raise PyociError("error setting rlimits for ready process: error setting rlimit type %d: %s"
                             % (res, why))


def env_get(env, key):
    for e in env:
        k, eq, v = e.partition("=")
        if k == key and eq:
            return v
    return None


def lookup(arg0, env, cwd="/"):
    """The path of the program to run, found as runc finds it: a name with a
    slash as is, anything else along the container's PATH. Runs after
    pivot_root, so it sees the container's filesystem."""
    if "/" in arg0:
        path = arg0 if arg0.startswith("/") else os.path.join(cwd, arg0)
        try:
            st = os.stat(path)
        except OSError as e:
            raise PyociError('exec: "%s": stat %s: %s' % (arg0, arg0, os.strerror(e.errno).lower()))
        if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
            raise PyociError('exec: "%s": permission denied' % arg0)
        return path
    search = env_get(env, "PATH")
    if search is None:
        search = DEFAULT_PATH
    for d in search.split(":"):
        p = os.path.join(d or ".", arg0)
        try:
            st = os.stat(p)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return p
    raise PyociError('exec: "%s": executable file not found in $PATH' % arg0)


def home_of(uid):
    """HOME for a uid from the container's /etc/passwd; "/" if absent."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 6 and parts[2] == str(uid):
                    return parts[5] or "/"
    except OSError:
        pass
    return "/"


def enter_cwd(cwd):
    """chdir to process.cwd inside the container, creating it if missing."""
    try:
        os.makedirs(cwd, 0o755, exist_ok=True)
        os.chdir(cwd)
    except OSError as e:
        raise PyociError("process.cwd %s: %s" % (cwd, e.strerror))
    if not os.getcwd().startswith("/"):
        raise PyociError("process.cwd %s: outside the container's root" % cwd)
