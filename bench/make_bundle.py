#!/usr/bin/env python3
"""Make an OCI bundle with a busybox-static rootfs (needs pyoci installed).

    python3 bench/make_bundle.py --out DIR [--busybox /bin/busybox] [--] [ARGS...]

The config is the one `pyoci spec` writes (runc's defaults: namespaces pid,
network, ipc, uts, mount, as runc 1.1.5; the default mounts, masked and read-only
paths and capabilities), with terminal false so it runs without a console
socket.
Used by the demo (.ci/demo), the tests and the benchmarks.
"""
import argparse
import json
import os
import shutil

APPLETS = ("sh", "ls", "cat", "echo", "id", "hostname", "sleep", "true", "false", "ps", "mount",
           "grep", "ip", "ifconfig", "stat", "wc", "head", "touch", "mkdir", "env", "pwd", "readlink",
           "test", "uname", "kill", "dd", "tr")


def default_config(args):
    """`pyoci spec`'s default config, with terminal false and these args."""
    from pyoci.config.spec import default_spec

    cfg = default_spec()
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = list(args)
    return cfg


def make_rootfs(rootfs, busybox="/bin/busybox"):
    """A busybox-static root filesystem in the directory rootfs."""
    bindir = os.path.join(rootfs, "bin")
    os.makedirs(bindir, exist_ok=True)
    for d in ("proc", "sys", "dev", "etc", "tmp", "root"):
        os.makedirs(os.path.join(rootfs, d), exist_ok=True)
    shutil.copy2(busybox, os.path.join(bindir, "busybox"))
    for a in APPLETS:
        p = os.path.join(bindir, a)
        if not os.path.lexists(p):
            os.symlink("busybox", p)
    with open(os.path.join(rootfs, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(rootfs, "etc", "group"), "w") as f:
        f.write("root:x:0:\ntty:x:5:\nnogroup:x:65534:\n")
    return rootfs


def make(out, args=("sh",), busybox="/bin/busybox", config_changes=None):
    make_rootfs(os.path.join(out, "rootfs"), busybox)
    cfg = default_config(args)
    if config_changes:
        config_changes(cfg)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("args", nargs="*", default=["sh"])
    a = ap.parse_args()
    make(a.out, a.args or ["sh"], a.busybox)
    print(a.out)


if __name__ == "__main__":
    main()
