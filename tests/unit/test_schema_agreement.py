"""pyoci's schema agrees with upstream's (runtime-spec 1.3.0) on every
document of oci-spec-fixtures/ and of upstream's own test/ folder, and each
fixture gets the verdict its name announces."""
import json
import os
import subprocess
import sys

import pytest

from pyoci.config.schema import UPSTREAM_DIFFERENCES, jsonschema_validator
from _fixtures import FIXTURES, KINDS, REPO, UPSTREAM, index, load, need_upstream, upstream_docs

_validators = {}


def verdict(kind, doc, folder=None):
    key = (kind, folder)
    if key not in _validators:
        _validators[key] = jsonschema_validator(kind, folder)
    return _validators[key].is_valid(doc)


INDEX = index()


def test_fixture_layout():
    on_disk = set()
    for kind in KINDS:
        for name in os.listdir(os.path.join(FIXTURES, kind)):
            on_disk.add("%s/%s" % (kind, name))
    assert on_disk == set(INDEX), "index.json and the fixture files differ"
    for rel, item in INDEX.items():
        prefix = os.path.basename(rel).split("-", 1)[0]
        assert prefix in ("valid", "invalid", "reject"), rel
        assert item["schema"] == (prefix != "invalid"), rel
        if rel.startswith("config/"):
            assert "pyoci" in item, rel
            assert (item["pyoci"] == []) == (prefix == "valid"), rel
    configs = [r for r in INDEX if r.startswith("config/")]
    assert len(configs) >= 80
    assert any(r.startswith("state/") for r in INDEX) and any(r.startswith("features/") for r in INDEX)


@pytest.mark.parametrize("rel", sorted(INDEX))
def test_fixture_verdict_ours(rel):
    kind = rel.split("/")[0]
    assert verdict(kind, load(os.path.join(FIXTURES, rel))) == INDEX[rel]["schema"]


@pytest.mark.parametrize("rel", sorted(INDEX))
def test_fixture_verdict_upstream_agrees(rel):
    need_upstream()
    kind = rel.split("/")[0]
    doc = load(os.path.join(FIXTURES, rel))
    differs = INDEX[rel].get("upstream")
    if differs:
        # a deliberate, documented difference: upstream refuses, pyoci accepts
        assert differs in UPSTREAM_DIFFERENCES, rel
        assert not verdict(kind, doc, UPSTREAM) and verdict(kind, doc), \
            "%s: marked as a deliberate difference (%s), but the schemas agree" % (rel, differs)
        return
    assert verdict(kind, doc, UPSTREAM) == verdict(kind, doc), "pyoci's schema and upstream's disagree"


def test_every_deliberate_difference_is_shown_and_explained():
    shown = {item["upstream"] for item in INDEX.values() if "upstream" in item}
    assert shown == set(UPSTREAM_DIFFERENCES)
    for key, why in UPSTREAM_DIFFERENCES.items():
        assert len(why) > 40, key
    # the schema file says so where the difference is
    with open(os.path.join(REPO, "pyoci", "config", "schema", "linux.json")) as f:
        assert "DELIBERATE DIFFERENCE" in f.read()


def test_upstream_test_documents():
    need_upstream()
    docs = upstream_docs()
    assert docs, "no upstream test documents"
    for kind, path, good in docs:
        try:
            doc = load(path)
        except ValueError:
            assert not good, "%s: a good document that is not JSON" % path
            continue
        up = verdict(kind, doc, UPSTREAM)
        ours = verdict(kind, doc)
        assert up == good, "%s: upstream's own verdict is not its folder's" % path
        assert ours == up, "%s: pyoci says %s, upstream %s" % (path, ours, up)


def test_compiled_table_is_fresh():
    r = subprocess.run([sys.executable, "-m", "pyoci.config.schema.compile", "--check"], cwd=REPO,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_schema_is_our_own_files():
    ours = set(os.listdir(os.path.join(REPO, "pyoci", "config", "schema")))
    assert {"config.json", "linux.json", "defs.json", "state.json", "features.json"} <= ours
    if os.path.isdir(UPSTREAM):
        for name in ours & set(os.listdir(UPSTREAM)):
            with open(os.path.join(REPO, "pyoci", "config", "schema", name)) as a, \
                    open(os.path.join(UPSTREAM, name)) as b:
                assert json.load(a) != json.load(b), "%s is upstream's file" % name
