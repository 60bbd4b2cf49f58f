"""linux.sysctl, written through a verified procfs inside the container."""
from pyoci.errors import PyociError
from pyoci.linux import procfs


def apply(sysctls):
    for key, value in (sysctls or {}).items():
        if "/" in key or ".." in key.split("."):
            raise PyociError("linux.sysctl: invalid key %r" % key)
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            procfs.write(path, str(value))
        except OSError as e:
            raise PyociError("linux.sysctl[%r]: write %s: %s" % (key, path, e.strerror))
        except PyociError as e:
            raise PyociError("linux.sysctl[%r]: %s" % (key, e))
