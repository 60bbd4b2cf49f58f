"""fastschema (what `create` runs) gives jsonschema's verdicts on pyoci's
schema: on every fixture, upstream test document, drop-in config, and on
thousands of mutations of them; and the create path never imports jsonschema."""
import copy
import json
import os
import random
import subprocess
import sys

import pytest

from pyoci.config import fastschema
from pyoci.config.schema import jsonschema_validator
from _fixtures import DROPIN, FIXTURES, KINDS, REPO, UPSTREAM, index, load, upstream_docs

V = {k: jsonschema_validator(k) for k in KINDS}


def corpus():
    docs = [(rel.split("/")[0], load(os.path.join(FIXTURES, rel))) for rel in sorted(index())]
    if os.path.isdir(UPSTREAM):
        for kind, path, _ in upstream_docs():
            try:
                docs.append((kind, load(path)))
            except ValueError:
                pass
    if os.path.isdir(DROPIN):
        for name in sorted(os.listdir(DROPIN)):
            if name.endswith(".json"):
                docs.append(("config", load(os.path.join(DROPIN, name))))
    from pyoci.config.spec import default_spec
    docs += [("config", default_spec()), ("config", default_spec(rootless=True))]
    return docs


def agree(kind, doc):
    fast = fastschema.check(kind, doc)
    slow = list(V[kind].iter_errors(doc))
    assert (not fast) == (not slow), "fastschema %s, jsonschema %s on %s" % (
        fast, [e.message for e in slow], json.dumps(doc)[:300])
    return not fast


def test_corpus():
    for kind, doc in corpus():
        agree(kind, doc)


ODD_VALUES = [None, True, False, 0, -1, 1.0, 1.5, 2 ** 32, 2 ** 64, -2 ** 63 - 1, "", "x", "RLIMIT_X",
              "SCMP_ACT_ALLOW", "c", [], [1], ["a"], {}, {"a": 1}, {"": 1}, "\n", "2MB", "MB:x\n"]


def _nodes(doc, path=()):
    yield path, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _nodes(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _nodes(v, path + (i,))


def _mutants(doc, rng, n):
    nodes = list(_nodes(doc))
    for _ in range(n):
        d = copy.deepcopy(doc)
        path, _ = rng.choice(nodes)
        if not path:
            continue
        parent = d
        for k in path[:-1]:
            parent = parent[k]
        if isinstance(parent, dict) and rng.random() < 0.3:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(ODD_VALUES))
        yield d


def test_mutations():
    rng = random.Random(1234)
    valid = invalid = 0
    for kind, doc in corpus():
        for m in _mutants(doc, rng, 25):
            if agree(kind, m):
                valid += 1
            else:
                invalid += 1
    # the mutations must exercise both verdicts
    assert valid > 100 and invalid > 500, (valid, invalid)


def test_create_path_does_not_import_jsonschema():
    code = ("import json, sys\n"
            "from pyoci.config.validate import validate\n"
            "d = json.load(open(%r))\n"
            "validate(d)\n"
            "print('jsonschema' in sys.modules, 'referencing' in sys.modules)\n"
            % os.path.join(FIXTURES, "config", "valid-linux-full.json"))
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


def test_patterns_are_re_search():
    """fastschema's plain-Python patterns say what re.search says."""
    import itertools
    import re

    rng = random.Random(7)
    for pat, fn in fastschema.PATTERNS.items():
        alphabet = sorted(set(pat) - set("^$[]*+{}\\") | set("\n0aB-_ ,") | {"RLIMIT_", "CAP_", "MB:"})
        samples = {"", "\n", "\n\n"}
        for n in range(1, 4):
            samples.update("".join(t) for t in itertools.product(alphabet, repeat=n))
        for _ in range(3000):
            samples.add("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8))))
        for x in samples:
            assert fn(x) == bool(re.search(pat, x)), (pat, x)


def test_create_path_imports_neither_re_nor_json():
    """`import re` costs ~5 ms: validating a valid config must not need it
    (nor json, which imports re), whatever the caller imported before."""
    code = ("import sys\n"
            "import pyoci.config, pyoci.jsonio\n"
            "doc = pyoci.jsonio.loads(open(%r, 'rb').read())\n"
            "for m in [m for m in sys.modules if m in ('re', 'json') or m.startswith(('re.', 'json.'))]:\n"
            "    sys.modules[m] = None\n"
            "from pyoci.config.validate import validate\n"
            "assert validate(doc) == [], validate(doc)\n"
            "print('ok')\n")
    for name in ("valid-linux-full.json", "valid-process-full.json", "valid-base.json"):
        r = subprocess.run([sys.executable, "-c", code % os.path.join(FIXTURES, "config", name)], cwd=REPO,
                           capture_output=True, text=True)
        assert r.stdout == "ok\n", r.stderr


def test_per_call_cost():
    """Generous bound (the measured figure is ~0.3 ms for podman's config):
    it catches an accidental slow path, not noise."""
    import time

    from pyoci.config.validate import validate

    path = os.path.join(DROPIN, "dropin-config-podman.json")
    doc = load(path) if os.path.exists(path) else load(os.path.join(FIXTURES, "config", "valid-linux-full.json"))
    validate(doc)
    best = min(_timed(validate, doc, time) for _ in range(5))
    # (an emulated machine, such as the TCG guest of .ci/guest, says how much slower it is)
    assert best < 0.003 * float(os.environ.get("PYOCI_TEST_SLOWDOWN", "1")), "validate took %.2f ms" % (best * 1e3)


def _timed(f, doc, time):
    t = time.perf_counter()
    f(doc)
    return time.perf_counter() - t
