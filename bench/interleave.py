#!/usr/bin/env python3
"""Lifecycle latency of several runtimes, interleaved call by call.

    python3 bench/interleave.py --bundle /tmp/bt --sleep-bundle /tmp/bs -n 20 \\
        pyoci=.venv/bin/pyoci runc=runc crun=crun [--api] [--floor .venv/bin/python]

`../shared/bench/lifecycle.py` measures one runtime at a time; on a shared
machine the load drifts between those runs. Here every iteration runs each
runtime in turn (the order rotates), so all of them see the same load:

    create (sleep bundle) -> start -> state -> kill KILL -> state until
    stopped -> delete, then run (/bin/true bundle)

wall: perf_counter around the command; cpu: user+sys of the command and the
children it waited for (wait4), as ../shared/bench/ocibench.py measures.

--floor PYTHON adds the interpreter's floor (`PYTHON -I -S -c pass`) and its
`-c pass` with site, same run. --api adds pyoci's Python API from this
process (pyoci.api, same installed package as PYTHON's): cpu is this
process's getrusage delta (self + reaped children).

Prints one markdown table (medians, ms) and a JSON line.
"""
import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PHASES = ("create", "start", "state", "kill", "delete", "run")


def _call(argv):
    with open(os.devnull, "rb") as dn, tempfile.TemporaryFile() as out:
        t0 = time.perf_counter()
        p = subprocess.Popen(argv, stdin=dn, stdout=out, stderr=out)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode(errors="replace")
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(argv), p.returncode, text.strip()))
    return wall, ru.ru_utime + ru.ru_stime, text


class CLI:
    def __init__(self, name, cmd, root):
        self.name, self.argv0, self.root = name, shlex.split(cmd), root

    def __call__(self, *args):
        return _call(self.argv0 + ["--root", self.root] + list(args))

    def state(self, cid):
        wall, cpu, out = self("state", cid)
        return wall, cpu, json.loads(out)["status"]

    def cleanup(self, cid):
        try:
            self("delete", "--force", cid)
        except RuntimeError:
            pass


def _rusage():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


class API:
    """The same phases through pyoci.api in this process."""

    def __init__(self, name, root):
        from pyoci import api

        self.name, self.api = name, api
        self.rt = api.Runtime(root=root)

    def _timed(self, fn, *a, **kw):
        c0, t0 = _rusage(), time.perf_counter()
        r = fn(*a, **kw)
        return time.perf_counter() - t0, _rusage() - c0, r

    def __call__(self, verb, *args):
        rt = self.rt
        if verb == "create":
            bundle, cid = args[1], args[2]
            return self._timed(rt.create, cid, bundle)[:2] + ("",)
        if verb == "start":
            return self._timed(rt.start, args[0])[:2] + ("",)
        if verb == "kill":
            return self._timed(rt.kill, args[0], int(args[1]) if args[1].isdigit() else 9)[:2] + ("",)
        if verb == "delete":
            return self._timed(rt.delete, args[-1], force=args[0] == "--force")[:2] + ("",)
        if verb == "run":
            bundle, cid = args[1], args[2]
            return self._timed(rt.run, cid, bundle)[:2] + ("",)
        raise ValueError(verb)

    def state(self, cid):
        wall, cpu, st = self._timed(self.rt.state, cid)
        return wall, cpu, st.status

    def cleanup(self, cid):
        try:
            self.rt.delete(cid, force=True)
        except Exception:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runtimes", nargs="+", help="NAME=COMMAND")
    ap.add_argument("--bundle", required=True, help="bundle whose process exits at once (/bin/true)")
    ap.add_argument("--sleep-bundle", required=True, help="bundle whose process sleeps")
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--floor", help="python interpreter: also time `-I -S -c pass` and `-c pass`")
    ap.add_argument("--api", action="store_true", help="also pyoci.api from this process")
    ap.add_argument("--json-out")
    a = ap.parse_args()
    bundle, sleep_bundle = os.path.abspath(a.bundle), os.path.abspath(a.sleep_bundle)
    roots = []
    rts = []
    for spec in a.runtimes:
        name, _, cmd = spec.partition("=")
        root = tempfile.mkdtemp(prefix="il-%s-" % name)
        roots.append(root)
        rts.append(CLI(name, cmd, root))
    if a.api:
        root = tempfile.mkdtemp(prefix="il-api-")
        roots.append(root)
        rts.append(API("pyoci-api", root))
    res = {rt.name: {p: ([], []) for p in PHASES} for rt in rts}
    floor = {"python -I -S -c pass": ([], []), "python -c pass": ([], [])} if a.floor else {}
    live = []
    try:
        for i in range(a.warmup + a.n):
            counted = i >= a.warmup
            order = rts[i % len(rts):] + rts[:i % len(rts)]
            for rt in order:
                r = res[rt.name]
                cid = "il%d-%d" % (os.getpid(), i)
                live.append((rt, cid))
                m = [("create", rt("create", "--bundle", sleep_bundle, cid)),
                     ("start", rt("start", cid))]
                w, c, st = rt.state(cid)
                m.append(("state", (w, c)))
                m.append(("kill", rt("kill", cid, "9")))
                while st != "stopped":
                    w, c, st = rt.state(cid)
                    m.append(("state", (w, c)))
                m.append(("delete", rt("delete", cid)))
                live.pop()
                rcid = cid + "r"
                live.append((rt, rcid))
                m.append(("run", rt("run", "--bundle", bundle, rcid)))
                live.pop()
                if counted:
                    for phase, v in m:
                        r[phase][0].append(v[0])
                        r[phase][1].append(v[1])
            if a.floor:
                for label, argv in (("python -I -S -c pass", [a.floor, "-I", "-S", "-c", "pass"]),
                                    ("python -c pass", [a.floor, "-c", "pass"])):
                    w, c, _ = _call(argv)
                    if counted:
                        floor[label][0].append(w)
                        floor[label][1].append(c)
    finally:
        for rt, cid in live:
            rt.cleanup(cid)
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)

    def med(xs):
        return round(statistics.median(xs) * 1000, 2) if xs else None

    out = {"n": a.n, "load": os.getloadavg(), "wall_ms": {}, "cpu_ms": {}}
    names = [rt.name for rt in rts]
    print("n=%d, load %.2f %.2f %.2f; medians, ms (wall / CPU user+sys)" % ((a.n,) + os.getloadavg()))
    print("| phase | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for p in PHASES:
        cells = []
        for nm in names:
            w, c = med(res[nm][p][0]), med(res[nm][p][1])
            out["wall_ms"].setdefault(nm, {})[p] = w
            out["cpu_ms"].setdefault(nm, {})[p] = c
            cells.append("%.1f / %.1f" % (w, c))
        print("| %s | %s |" % (p, " | ".join(cells)))
    for label, (w, c) in floor.items():
        print("| %s | %.1f / %.1f |" % (label, med(w), med(c)))
        out["wall_ms"][label] = med(w)
        out["cpu_ms"][label] = med(c)
    line = json.dumps(out, sort_keys=True)
    if a.json_out:
        with open(a.json_out, "w") as f:
            f.write(line + "\n")
    print(line)


if __name__ == "__main__":
    sys.exit(main())
