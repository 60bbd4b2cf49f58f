"""Reading a bundle's config.json."""
import os

from pyoci import jsonio as json
from pyoci.errors import PyociError


def load_bundle(bundle):
    """Return (absolute bundle path, config dict); one clear error otherwise."""
    bundle = os.path.abspath(bundle or ".")
    if not os.path.isdir(bundle):
        raise PyociError("bundle %s: %s" % (bundle, "not a directory" if os.path.exists(bundle)
                                            else "no such file or directory"))
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise PyociError("%s: no such file or directory (a bundle needs a config.json)" % path)
    except OSError as e:
        raise PyociError("%s: %s" % (path, e.strerror))
    try:
        config = json.loads(data)
    except ValueError as e:
        raise PyociError("%s: invalid JSON: %s" % (path, e))
    if not isinstance(config, dict):
        raise PyociError("%s: the document must be a JSON object" % path)
    return bundle, config
