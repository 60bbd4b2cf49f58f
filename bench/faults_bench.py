#!/usr/bin/env python3
"""Crash-safety probes for pyoci and runc, the same for both: SIGKILL the
runtime's whole process group at moments spread over a command (create,
start, exec -d, delete --force), or damage the container's state file,
then `delete --force` the container and look at the host (processes left,
mounts, cgroups, the state directory).

    sudo .venv/bin/python bench/faults_bench.py [--runc /usr/sbin/runc] [--n 30]

The moments are delays after the command started, spread over 1.2 times
its median duration on this machine (so where they fall depends on the
load; tests/integration/test_faults.py hits pyoci's named fault points
deterministically instead). Prints one table; --json FILE keeps each probe.
"""
import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "tests"), os.path.join(HERE, "..", "tests", "integration"), HERE]

import conftest  # noqa: E402
import faultlib  # noqa: E402
import make_bundle  # noqa: E402

CID = "fault"


def runtimes(args):
    pyoci = os.path.join(os.path.dirname(sys.executable), "pyoci")
    return {"pyoci": pyoci, "runc": args.runc}


def bundle(base):
    def change(c):
        c["linux"]["cgroupsPath"] = "/%s/faults-parent/%s" % (conftest.TAG, CID)
        c["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}
    return make_bundle.make(os.path.join(base, "bundle"), ["sleep", "100"], "/bin/busybox", change)


def make_parents():
    """The container's parent cgroup exists beforehand in every hierarchy,
    as an engine's does (containerd's /<namespace>, podman's
    /libpod_parent): runc never removes the parents it made, so counting
    them would say nothing about crash safety."""
    from pyoci.linux import cgroups

    for h in cgroups.layout():
        d = h.mountpoint
        for part in (conftest.TAG, "faults-parent"):
            parent, d = d, os.path.join(d, part)
            os.makedirs(d, exist_ok=True)
            for f in ("cpuset.cpus", "cpuset.mems"):
                if os.path.exists(os.path.join(d, f)):
                    with open(os.path.join(parent, f)) as src, open(os.path.join(d, f), "w") as dst:
                        dst.write(src.read())


def timed(argv, n=5, setup=None, teardown=None):
    out = []
    for _ in range(n):
        if setup:
            setup()
        t0 = time.monotonic()
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       check=True)
        out.append(time.monotonic() - t0)
        if teardown:
            teardown()
    return statistics.median(out)


def sweep(name, rt, root, b, base, host, n, results):
    R = [rt, "--root", root]
    log = os.path.join(base, "probe.log")

    def create():
        subprocess.run(R + ["create", "-b", b, CID], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run_d():
        create()
        subprocess.run(R + ["start", CID], check=True)

    def delete():
        faultlib.run_reaping(R + ["delete", "--force", CID])

    commands = [
        ("create", None, ["create", "-b", b, CID], n),
        ("start", create, ["start", CID], max(5, n // 3)),
        ("exec -d", run_d, ["exec", "-d", CID, "sleep", "50"], max(5, n // 3)),
        ("delete --force", run_d, ["delete", "--force", CID], max(5, n // 3)),
    ]
    for what, setup, cmd, count in commands:
        t = timed(R + cmd, setup=setup, teardown=delete)
        left = host.problems()
        if left:
            print("%s %s: normal runs (create, delete --force) left: %s" % (name, what, "; ".join(left)))
        for i in range(count):
            delay = 1.2 * t * i / max(1, count - 1)
            if setup:
                setup()
            faultlib.kill_after(R + cmd, delay, log)
            code, err = faultlib.run_reaping(R + ["delete", "--force", CID])
            left = host.problems()
            if code != 0:
                left.insert(0, "delete --force exited %d" % code)
            results.append({"runtime": name, "probe": what, "delay_ms": round(delay * 1000, 1),
                            "clean": not left, "left": left})
    for damage in ("truncated", "garbage", "empty", "missing"):
        run_d()
        path = os.path.join(root, CID, "state.json")
        data = open(path, "rb").read()
        if damage == "truncated":
            open(path, "wb").write(data[:len(data) // 2])
        elif damage == "garbage":
            open(path, "wb").write(os.urandom(300))
        elif damage == "empty":
            open(path, "wb").close()
        else:
            os.unlink(path)
        code, err = faultlib.run_reaping(R + ["delete", "--force", CID])
        left = host.problems()
        if code != 0:
            left.insert(0, "delete --force exited %d" % code)
        results.append({"runtime": name, "probe": "state file " + damage, "clean": not left, "left": left})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runc", default="/usr/sbin/runc")
    ap.add_argument("--n", type=int, default=30, help="moments of create (a third of it for the others)")
    ap.add_argument("--json", help="write every probe here (JSON lines)")
    ap.add_argument("--only", choices=("pyoci", "runc"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)   # a subreaper, as an engine's shim
    base = tempfile.mkdtemp(prefix="pyoci-faults-")
    results = []
    try:
        b = bundle(base)
        make_parents()
        for name, rt in runtimes(args).items():
            if args.only and name != args.only:
                continue
            root = os.path.join(base, "root-" + name)
            os.makedirs(root)
            host = faultlib.Host(root, base)
            sweep(name, rt, root, b, base, host, args.n, results)
    finally:
        for d in ("/sys/fs/cgroup/" + h for h in os.listdir("/sys/fs/cgroup")):
            p = os.path.join(d, conftest.TAG)
            for dirpath, _, _ in sorted(os.walk(p), reverse=True):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
        shutil.rmtree(base, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")
    rows = {}
    for r in results:
        k = (r["probe"], r["runtime"])
        n, clean, kinds = rows.get(k, (0, 0, set()))
        rows[k] = (n + 1, clean + r["clean"], kinds | {x.split()[0] for x in r["left"]})
    print("%-22s %-6s %8s %12s  %s" % ("probe", "", "faults", "hosts clean", "left behind"))
    for (probe, name), (n, clean, kinds) in sorted(rows.items()):
        print("%-22s %-6s %8d %12d  %s" % (probe, name, n, clean, ", ".join(sorted(kinds)) or "-"))


if __name__ == "__main__":
    main()
