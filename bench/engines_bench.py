#!/usr/bin/env python3
"""Engine flows with pyoci vs runc, same run: wall time of
`ctr run --rm IMAGE ID /bin/true` (private containerd, --runc-binary) and
`podman run --rm --rootfs DIR /bin/true` (private storage, --runtime), n
times each, the runtimes interleaved call by call. Needs root, containerd,
podman and the runtimes. Prints medians (ms) and leaves nothing behind.

    python3 bench/engines_bench.py [-n 20] [--runtime PATH ...]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import engines  # noqa: E402
import make_oci_image  # noqa: E402

NAME = "pyoci-bench-%d" % os.getpid()


def timed(f):
    t0 = time.perf_counter()
    p = f()
    dt = (time.perf_counter() - t0) * 1000
    if p.returncode != 0:
        raise SystemExit("failed (%d): %s %s" % (p.returncode, p.args, p.stderr))
    return dt


def remove_cgroups(name):
    for ctrl in os.listdir("/sys/fs/cgroup"):
        top = os.path.join("/sys/fs/cgroup", ctrl, name)
        if os.path.isdir(top):
            for dirpath, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--runtime", action="append",
                    help="runtime binary (default: this venv's pyoci, and runc)")
    a = ap.parse_args()
    pyoci = os.path.join(os.path.dirname(sys.executable), "pyoci")
    runtimes = a.runtime or [pyoci, "/usr/sbin/runc"]
    times = {(eng, rt): [] for eng in ("ctr", "podman") for rt in runtimes}
    tmp = tempfile.mkdtemp(prefix=NAME + "-")
    ctrd = engines.Containerd(namespace=NAME, tmp=os.path.join(tmp, "ctrd"))
    os.makedirs(ctrd.dir)
    pm = engines.Podman(runtimes[0], tmp=os.path.join(tmp, "pm"), cgroup_parent="/" + NAME)
    try:
        img = os.path.join(tmp, "image.tar")
        make_oci_image.make(img)
        ctrd.start()
        ctrd.import_image(img)
        for i in range(-2, a.n):            # two warm-up rounds
            for rt in runtimes:
                cid = "b%d" % (i + 2)
                dt = timed(lambda: ctrd.ctr("run", "--rm", "--runc-binary", rt, engines.IMAGE, cid, "/bin/true"))
                if i >= 0:
                    times[("ctr", rt)].append(dt)
                pm.runtime = rt
                dt = timed(lambda: pm(*pm.run_args("--rm"), "/bin/true"))
                if i >= 0:
                    times[("podman", rt)].append(dt)
    finally:
        ctrd.stop()
        pm.cleanup()
        remove_cgroups(NAME)
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    print("n=%d, wall ms: median / mean (min-max)" % a.n)
    print("| flow | " + " | ".join(os.path.basename(r) for r in runtimes) + " |")
    print("|---|" + "---|" * len(runtimes))
    for eng, flow in (("ctr", "ctr run --rm /bin/true"), ("podman", "podman run --rm /bin/true")):
        cells = []
        for rt in runtimes:
            v = times[(eng, rt)]
            cells.append("%.0f / %.0f (%.0f-%.0f)" % (statistics.median(v), statistics.mean(v), min(v), max(v)))
        print("| %s | %s |" % (flow, " | ".join(cells)))


if __name__ == "__main__":
    main()
