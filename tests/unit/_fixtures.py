"""Shared helpers of the config-validation tests: where the fixtures and
upstream's schema are, and how to load them."""
import json
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "oci-spec-fixtures")
UPSTREAM = os.path.join(os.path.dirname(REPO), "shared", "runtime-spec-schema")
DROPIN = os.path.join(os.path.dirname(REPO), "shared", "dropin")
KINDS = ("config", "state", "features")


def index():
    with open(os.path.join(FIXTURES, "index.json")) as f:
        return json.load(f)


def load(path):
    with open(path) as f:
        return json.load(f)


def need_upstream():
    if not os.path.isfile(os.path.join(UPSTREAM, "config-schema.json")):
        pytest.skip("upstream runtime-spec schema not found at %s (it is ../shared beside the repo "
                    "on developer machines and in CI)" % UPSTREAM)


def upstream_docs():
    """[(kind, path, expected verdict or None when the file is not JSON)]"""
    out = []
    test = os.path.join(UPSTREAM, "test")
    for kind in KINDS:
        for verdict in ("good", "bad"):
            d = os.path.join(test, kind, verdict)
            for name in sorted(os.listdir(d)) if os.path.isdir(d) else ():
                out.append((kind, os.path.join(d, name), verdict == "good"))
    return out
