"""The UTS namespace: hostname and domainname."""
from pyoci.errors import PyociError
from pyoci.linux import sys as lsys


def apply(config):
    for key, fn in (("hostname", lsys.sethostname), ("domainname", lsys.setdomainname)):
        name = config.get(key)
        if name:
            try:
                fn(name)
            except OSError as e:
                raise PyociError("set %s %r: %s" % (key, name, e.strerror))
