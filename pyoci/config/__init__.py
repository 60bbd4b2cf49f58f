"""Reading a bundle's config.json."""

from pyoci import fastos as os
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
    config = spec_keys(config)
    _device_file_modes(config)
    return bundle, config


def spec_keys(config):
    """config with every key the spec knows spelled as the spec spells it:
    runc reads config.json with Go's encoding/json, which matches a key to a
    field case-insensitively when no key matches exactly ("CPU", "Cpus",
    "ociversion"), the later of two keys for one field winning. pyoci reads
    the same document the same way, or the two would make different
    containers from it (runc's own suite writes linux.resources.CPU).
    Keys of maps (annotations, sysctl, unified) are data, left as they are."""
    from pyoci.config import fastschema

    prog = fastschema._prog or fastschema._load()
    nodes = prog["nodes"]
    lowers = {}

    def walk(n, v):
        for sub in n.get("a") or ():
            v = walk(nodes[sub], v)
        if isinstance(v, dict):
            if "p" in n:
                props = n["p"]
                low = lowers.get(id(props))
                if low is None:
                    low = lowers[id(props)] = {k.lower(): k for k in props}
                if any(k not in props and k.lower() in low for k in v):
                    out = {}
                    for k, x in v.items():
                        out[k if k in props else low.get(k.lower(), k)] = x
                    v = out
                for k, x in v.items():
                    if k in props:
                        v[k] = walk(nodes[props[k]], x)
            elif "ap" in n:
                for k, x in v.items():
                    v[k] = walk(nodes[n["ap"]], x)
        elif isinstance(v, list) and "i" in n and not nodes[n["i"]].get("s"):
            for i, x in enumerate(v):
                v[i] = walk(nodes[n["i"]], x)
        return v

    return walk(nodes[prog["roots"]["config"]], config)


# The file type bits (S_IFMT) of each device type. podman puts a device's
# whole st_mode in linux.devices[].fileMode (8630 = 0o20666 for /dev/null,
# with --device or --privileged); runc and crun keep only the permission
# bits, so pyoci drops type bits that match the device's type.
_TYPE_BITS = {"c": 0o020000, "u": 0o020000, "b": 0o060000, "p": 0o010000}


def _device_file_modes(config):
    lin = config.get("linux")
    devices = lin.get("devices") if isinstance(lin, dict) else None
    if not isinstance(devices, list):
        return
    for d in devices:
        if isinstance(d, dict):
            mode, bits = d.get("fileMode"), _TYPE_BITS.get(d.get("type"))
            if bits and type(mode) is int and mode & 0o170000 == bits:
                d["fileMode"] = mode & 0o7777
