"""Checks of config.json before create touches the host.

validate(config, bundle) returns every problem found, as ConfigError
(JSON path + reason); create stops at the first.
"""
import os
import re

from pyoci.errors import ConfigError

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


def validate(config, bundle=None):
    problems = []
    v = config.get("ociVersion")
    if not isinstance(v, str):
        problems.append(ConfigError("ociVersion", "required string is missing"))
    else:
        m = _VERSION.match(v)
        if not m:
            problems.append(ConfigError("ociVersion", "%r is not a semantic version" % v))
        elif m.group(1) != "1":
            problems.append(ConfigError("ociVersion", "%r: unsupported major version (pyoci supports 1.x)" % v))
    root = config.get("root")
    if not isinstance(root, dict) or not isinstance(root.get("path"), str) or not root.get("path"):
        problems.append(ConfigError("root.path", "required string is missing"))
    proc = config.get("process")
    if proc is not None:
        if not isinstance(proc, dict):
            problems.append(ConfigError("process", "must be an object"))
        else:
            args = proc.get("args")
            if not isinstance(args, list) or not args or not all(isinstance(a, str) for a in args):
                problems.append(ConfigError("process.args", "must be a non-empty array of strings"))
            if not isinstance(proc.get("cwd"), str) or not os.path.isabs(proc.get("cwd", "")):
                problems.append(ConfigError("process.cwd", "must be an absolute path"))
    return problems
