#!/usr/bin/env python3
"""exec latency: `RUNTIME exec ID /bin/true` into a running busybox container.

    python3 bench/exec_latency.py [-n 30] RUNTIME [RUNTIME...]

Each runtime gets its own running container (sleep) and state root; the
calls are interleaved round by round (3 warm-up rounds), so that load on
the machine weighs on every runtime alike. Prints the median, min and max
wall time of each. Needs root and pyoci installed (for the bundle's config).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import make_bundle


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--busybox", default="/bin/busybox")
    ap.add_argument("runtimes", nargs="+")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="exec-bench-")
    try:
        bundle = make_bundle.make(os.path.join(tmp, "bundle"), ["sleep", "3600"], a.busybox)
        rts = [(rt, os.path.join(tmp, "root%d" % i), "exec-bench-%d" % i) for i, rt in enumerate(a.runtimes)]
        times = {rt: [] for rt, _, _ in rts}
        started = []
        try:
            for rt, root, cid in rts:
                subprocess.run([rt, "--root", root, "run", "-d", "--bundle", bundle, cid], check=True,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                started.append((rt, root, cid))
            for i in range(a.n + 3):
                for rt, root, cid in rts:
                    t0 = time.perf_counter()
                    subprocess.run([rt, "--root", root, "exec", cid, "/bin/true"], check=True)
                    if i >= 3:
                        times[rt].append((time.perf_counter() - t0) * 1000)
        finally:
            for rt, root, cid in started:
                subprocess.run([rt, "--root", root, "delete", "--force", cid])
        for rt, ts in times.items():
            print("%-40s exec /bin/true: median %.1f ms  min %.1f  max %.1f  (n=%d)"
                  % (rt, statistics.median(ts), min(ts), max(ts), len(ts)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
