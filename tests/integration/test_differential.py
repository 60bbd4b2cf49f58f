"""Differential config test: a few hundred seeded random mutations of a
valid config (a key deleted, a type changed, odd strings and numbers, an
unknown key), each created with pyoci and with Debian's runc (installed by
.ci/setup). pyoci must accept exactly what runc accepts, except the cases of
STRICTER, where pyoci refuses on purpose (each with its reason). Nothing may
be left behind by either: state, cgroups, mounts, processes.

Mutations that could reach the host (the rootfs path, the mount namespace,
joined namespaces, the cgroup path) are not made: the test is about the
verdict on a config, and both runtimes run as root."""
import copy
import json
import os
import random
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import BUSYBOX, PYOCI, bundle_maker
from pyoci.linux.cgroups import layout

RUNC = "/usr/sbin/runc"
SEED = int(os.environ.get("PYOCI_DIFF_SEED", "1303"))
COUNT = int(os.environ.get("PYOCI_DIFF_COUNT", "300"))

# Where pyoci refuses what runc 1.1.5 takes, on purpose: (pattern on the
# mutation's description, reason). A description is "OP PATH = VALUE".
STRICTER = [
    (r"^string linux\.(maskedPaths|readonlyPaths)\[\d+\] = ",
     "runtime-spec: masked and read-only paths MUST be absolute paths in the container; runc takes a "
     "relative one and masks nothing, which hides a mistake in a security setting"),
    (r"^retype .* = null$",
     "a null where the schema wants a typed value: runc's Go decoding turns it into the zero value "
     "(process.user.uid null runs the process as root, options null drops them); pyoci refuses it as the "
     "schema does"),
    (r"^(string|delete) linux\.devices\[\d+\]\.path( = |$)",
     "runtime-spec: a device's path is REQUIRED and is its full path in the container"),
    (r"^delete linux\.devices\[\d+\]\.(major|minor)$",
     "runtime-spec: major and minor are REQUIRED for c, b and u devices (runc would make device 0:0)"),
    (r"^delete linux\.resources\.devices\[\d+\]\.allow$",
     "runtime-spec: allow is REQUIRED in a device cgroup rule (runc takes a missing one as deny)"),
    (r"^(delete ociVersion|string ociVersion = .*)$",
     "runtime-spec: ociVersion is REQUIRED and is a SemVer version; pyoci checks its major version (runc "
     "1.1 ignores the field)"),
    (r"^delete linux\.seccomp\.syscalls\[\d+\]\.names(\[\d+\])?$",
     "runtime-spec: names is REQUIRED in a seccomp rule (runc ignores a rule without names)"),
    (r"^number linux\.devices\[\d+\]\.(major|minor) = ",
     "a major above 4095 or a minor above 2^20-1 is no Linux device number: mknod would cut it to another "
     "device's number (runc makes that other device)"),
    (r"^string process\.capabilities\.\w+\[\d+\] = ",
     "an unknown capability name is an error, as runtime-spec has it and runtime-tools checks; runc 1.1 "
     "warns and drops it (a typo would silently change the set); capabilities this kernel lacks only "
     "warn, as in runc"),
]

RETYPE = [None, True, False, 0, -1, 7, "x", [], {}, 1.5, ["x"], {"k": "v"}]
ODD_STRINGS = ["", " ", "../../..", "a" * 300, "\u00e9\u4e2d", "with\nnewline", "/", "0", "-1", "true",
               "RLIMIT_FOO", "CAP_FOO", "SCMP_ACT_FOO", "rwx", "c", "/dev/../etc", "relative/path"]
ODD_NUMBERS = [-1, 0, 1, 2 ** 31, 2 ** 32, 2 ** 63 - 1, 2 ** 63, 2 ** 64, -2 ** 63 - 1, 1.5, 1e20, -2 ** 31]
# never mutated: where a mutation could act on the host rather than on a verdict
FIXED = re.compile(r"^(root\.path|linux\.cgroupsPath|linux\.namespaces(\[\d+\](\.type)?)?|process\.args.*)$")


def base_config(rootfs, cgpath):
    cfg = bundle_maker.default_config(["sleep", "1000"])
    cfg["root"]["path"] = rootfs
    lin = cfg["linux"]
    lin["cgroupsPath"] = cgpath
    lin["resources"].update({"memory": {"limit": 64 << 20}, "pids": {"limit": 100}, "cpu": {"shares": 512}})
    lin["resources"]["devices"].append({"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"})
    lin["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 438,
                       "uid": 0, "gid": 0}]
    lin["sysctl"] = {"net.ipv4.ip_forward": "1"}
    lin["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                      "syscalls": [{"names": ["kexec_load"], "action": "SCMP_ACT_ERRNO"}]}
    cfg["process"]["user"]["additionalGids"] = [5]
    cfg["process"]["capabilities"]["inheritable"] = ["CAP_KILL"]
    cfg["process"]["oomScoreAdj"] = 100
    cfg["hostname"] = "difftest"
    cfg["annotations"] = {"org.example": "x"}
    return cfg


def _paths(node, prefix=""):
    """[(path, parent, key)] of every value below node."""
    out = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        p = ("%s.%s" % (prefix, k) if prefix else k) if isinstance(node, dict) else "%s[%d]" % (prefix, k)
        out.append((p, node, k))
        out += _paths(v, p)
    return out


def mutate(base, rng):
    """(description, config) of one random mutation."""
    while True:
        cfg = copy.deepcopy(base)
        paths = [t for t in _paths(cfg) if not FIXED.match(t[0])]
        op = rng.choice(["delete", "retype", "string", "number", "unknown"])
        if op == "delete":
            p, parent, k = rng.choice(paths)
            del parent[k]
            desc = "delete %s" % p
        elif op == "retype":
            p, parent, k = rng.choice(paths)
            v = rng.choice([x for x in RETYPE if type(x) is not type(parent[k])])
            parent[k] = v
            desc = "retype %s = %s" % (p, json.dumps(v))
        elif op == "string":
            cands = [t for t in paths if isinstance(t[1][t[2]], str)]
            p, parent, k = rng.choice(cands)
            v = rng.choice(ODD_STRINGS)
            parent[k] = v
            desc = "string %s = %s" % (p, json.dumps(v))
        elif op == "number":
            cands = [t for t in paths if type(t[1][t[2]]) in (int, float)]
            p, parent, k = rng.choice(cands)
            v = rng.choice(ODD_NUMBERS)
            parent[k] = v
            desc = "number %s = %s" % (p, json.dumps(v))
        else:
            objs = [("", cfg)] + [(t[0], t[1][t[2]]) for t in paths if isinstance(t[1][t[2]], dict)]
            p, obj = rng.choice(objs)
            k = rng.choice(["zzUnknown", "Hostname", "x-y", "ociversion"])
            obj[k] = rng.choice(RETYPE)
            desc = "unknown %s%s%s = %s" % (p, "." if p else "", k, json.dumps(obj[k]))
        if _safe(cfg, base):
            return desc, cfg


def _safe(cfg, base):
    """Nothing of the mutated config may act on the host."""
    if not isinstance(cfg.get("root"), dict) or cfg["root"].get("path") != base["root"]["path"]:
        return False
    lin = cfg.get("linux")
    if not isinstance(lin, dict) or lin.get("cgroupsPath") != base["linux"]["cgroupsPath"]:
        return False
    ns = lin.get("namespaces")
    if not isinstance(ns, list) or ns != base["linux"]["namespaces"]:
        return False
    return "hooks" not in cfg


def _create(runtime, root, bundle, cid):
    """(accepted?, the end of stderr). stderr goes to a file: a created
    container's init holds the runtime's stdio until it is deleted."""
    err = os.path.join(bundle, "stderr")
    with open(err, "w") as f:
        p = subprocess.run([runtime, "--root", root, "create", "--bundle", bundle, cid], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=f, timeout=60)
    with open(err) as f:
        text = f.read()
    ok = p.returncode == 0
    if ok:
        d = subprocess.run([runtime, "--root", root, "delete", "--force", cid], capture_output=True, text=True,
                           timeout=60)
        assert d.returncode == 0, "%s delete %s: %s" % (runtime, cid, d.stderr)
    return ok, text.strip()[-300:]


@pytest.fixture
def cgroup_parents():
    """A parent cgroup per runtime in every hierarchy, made here (so that no
    runtime makes or removes it while others run) with cpuset's cpus/mems."""
    made = []
    names = {rt: "/pyoci-difftest-%d-%s" % (os.getpid(), rt) for rt in ("runc", "pyoci")}
    for h in layout():
        for name in names.values():
            d = os.path.join(h.mountpoint, name.lstrip("/"))
            os.mkdir(d)
            made.append(d)
            if h.version == 1 and "cpuset" in h.controllers:
                for f in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(h.mountpoint, f)) as src, open(os.path.join(d, f), "w") as dst:
                        dst.write(src.read().strip())
    yield names
    left = []
    for d in reversed(made):
        for top, dirs, _ in os.walk(d, topdown=False):
            for x in dirs:
                sub = os.path.join(top, x)
                if names["pyoci"] in sub:
                    left.append(sub)
                # runc 1.1's delete -f returns before a busy v1 cgroup can go
                # (seen under load): its leftovers are removed, not counted
                deadline = time.monotonic() + 10
                while True:
                    try:
                        os.rmdir(sub)
                        break
                    except OSError:
                        assert time.monotonic() < deadline, "%s stays busy" % sub
                        time.sleep(0.05)
        os.rmdir(d)
    assert not left, "pyoci left cgroups behind: %r" % left


@pytest.mark.skipif(not os.path.exists(RUNC), reason="Debian's runc is not installed (.ci/setup installs it)")
def test_pyoci_accepts_what_runc_accepts(runtime, tmp_path, cgroup_parents):
    t0 = time.monotonic()
    rootfs = bundle_maker.make_rootfs(str(tmp_path / "rootfs"), BUSYBOX)
    roots = {"runc": str(tmp_path / "runc-root"), "pyoci": runtime.root}
    rng = random.Random(SEED)
    cases = []
    for n in range(COUNT):
        base = {rt: base_config(rootfs, "%s/c%d" % (cgroup_parents[rt], n)) for rt in ("runc", "pyoci")}
        desc, cfg = mutate(base["pyoci"], rng)
        cases.append((n, desc, cfg))

    def one(case):
        n, desc, cfg = case
        out = {}
        for rt, binary in (("runc", RUNC), ("pyoci", PYOCI)):
            b = tmp_path / ("b%d-%s" % (n, rt))
            b.mkdir()
            c = copy.deepcopy(cfg)
            c["linux"]["cgroupsPath"] = "%s/c%d" % (cgroup_parents[rt], n)
            (b / "config.json").write_text(json.dumps(c))
            out[rt] = _create(binary, roots[rt], str(b), "d%d" % n)
        return n, desc, out

    try:
        with ThreadPoolExecutor(max_workers=4) as ex:
            results = list(ex.map(one, cases))
    finally:
        # whatever happened, no container of either runtime outlives the test
        for rt, binary in (("runc", RUNC), ("pyoci", PYOCI)):
            p = subprocess.run([binary, "--root", roots[rt], "list", "-q"], capture_output=True, text=True)
            for cid in p.stdout.split():
                subprocess.run([binary, "--root", roots[rt], "delete", "--force", cid], capture_output=True)
    differ, allowed = [], []
    for n, desc, out in results:
        if out["runc"][0] == out["pyoci"][0]:
            continue
        why = [r for pat, r in STRICTER if re.search(pat, desc)] if out["runc"][0] else []
        (allowed if why else differ).append("#%d %s: runc %s, pyoci %s (runc: %s | pyoci: %s)" % (
            n, desc, "accepts" if out["runc"][0] else "refuses", "accepts" if out["pyoci"][0] else "refuses",
            out["runc"][1], out["pyoci"][1]))
    for rt, root in roots.items():
        left = [x for x in os.listdir(root) if not x.startswith("@")] if os.path.isdir(root) else []
        assert not left, "%s left containers: %r" % (rt, left)
    accepted = sum(1 for _, _, out in results if out["runc"][0])
    print("\n%d mutations (seed %d) in %.0f s: runc accepted %d; %d allowed differences:\n%s" % (
        COUNT, SEED, time.monotonic() - t0, accepted, len(allowed), "\n".join(allowed)))
    assert not differ, "%d verdicts differ from runc's:\n%s" % (len(differ), "\n".join(differ))
