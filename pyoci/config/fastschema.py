"""jsonschema's draft-04 verdicts on pyoci's schema, without jsonschema.

Walks pyoci/config/schema/_compiled.json (the schema flattened ahead of time
by pyoci.config.schema.compile). Kept small on purpose: it is imported by
every `pyoci create`, and costs ~0.1 ms to load plus well under 1 ms to
check podman's config. tests/unit/test_fastschema.py proves that its
verdicts are jsonschema's on every fixture and on thousands of mutations.

check(kind, doc) -> [(path, reason)], empty when the document is valid.
Draft-4 rules kept: an integer is an int but not a bool (1.0 is not an
integer); pattern is re.search on strings only; minimum/maximum test numbers
only, required/properties objects only, items/minItems arrays only.
"""

from pyoci import fastos as os
from pyoci.jsonio import loads as _loads

_prog = None
_JT = {dict: "object", list: "array", str: "string", int: "integer", float: "number",
       bool: "boolean", type(None): "null"}
_ART = {"object": "an object", "array": "an array", "string": "a string", "integer": "an integer",
        "number": "a number", "boolean": "a boolean", "null": "null"}
_DIGITS = frozenset("0123456789")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALPHA = _UPPER | frozenset("abcdefghijklmnopqrstuvwxyz_")
_ALNUM = _ALPHA | _DIGITS


def _load():
    global _prog
    with open(os.path.join(os.path.dirname(__file__), "schema", "_compiled.json"), "rb") as f:
        _prog = _loads(f.read())
    return _prog


def show(v):
    """A value as it reads in JSON, cut to 60 characters."""
    import json

    s = json.dumps(v, ensure_ascii=False, sort_keys=True)
    return s if len(s) <= 60 else s[:57] + "..."


def _ident(k):
    return bool(k) and k[0] in _ALPHA and all(c in _ALNUM for c in k)


def join(p, k):
    """The path of member k (a key or an index) of the value at path p."""
    if type(k) is int:
        return "%s[%d]" % (p, k)
    if _ident(k):
        return p + "." + k if p else k
    if k.isprintable():  # the common case (sysctl, annotation keys): JSON quoting without json
        return '%s["%s"]' % (p, k.replace("\\", "\\\\").replace('"', '\\"'))
    import json

    return "%s[%s]" % (p, json.dumps(k, ensure_ascii=False))


# The schema's patterns in plain Python, so that create never imports re
# (~5 ms here). Each is exactly re.search(pattern, s), including `$`
# matching before a final newline; tests/unit/test_fastschema.py checks them
# against re on many strings. A pattern not listed here goes to re.
def _chomp(s):
    return s[:-1] if s.endswith("\n") else s


def _all_in(s, chars):
    return all(c in chars for c in s)


def _rlimit(s):
    t = _chomp(s)
    return t.startswith("RLIMIT_") and len(t) > 7 and _all_in(t[7:], _UPPER)


def _pagesize(s):
    t = _chomp(s)
    return len(t) >= 3 and t[0] in "123456789" and t[-1] == "B" and t[-2] in "KMG" and _all_in(t[1:-2], _DIGITS)


def _cap(s):
    t = _chomp(s)
    return t.startswith("CAP_") and len(t) > 4 and _all_in(t[4:], _CAP_CHARS)


_CPU_CHARS = _DIGITS | frozenset(", -")
_CAP_CHARS = _UPPER | frozenset("_")
PATTERNS = {
    "^RLIMIT_[A-Z]+$": _rlimit,
    ".{1,}": lambda s: s.strip("\n") != "",
    "^[1-9][0-9]*[KMG]B$": _pagesize,
    "^MB:[^\\n]*$": lambda s: s.startswith("MB:") and s.find("\n", 3) in (-1, len(s) - 1),
    "^[0-9, -]*$": lambda s: _all_in(_chomp(s), _CPU_CHARS),
    "^[cbup]$": lambda s: _chomp(s) in ("c", "b", "u", "p"),
    "^CAP_[A-Z_]+$": _cap,
}


def _search(pat, s):
    f = PATTERNS.get(pat)
    if f is not None:
        return f(s)
    import re

    return re.search(pat, s) is not None


def check(kind, doc):
    prog = _prog or _load()
    e = []
    _node(prog["nodes"], prog["nodes"][prog["roots"][kind]], doc, "", e)
    return e


def _bad_type(v, t):
    return "%s is not %s" % (show(v), _ART[t])


def _node(nodes, n, v, p, e):
    jt = _JT.get(type(v))
    t = n.get("t")
    if t is not None and t != jt and not (t == "number" and jt == "integer"):
        e.append((p, _bad_type(v, t)))
        return
    if "a" in n:
        for sub in n["a"]:
            _node(nodes, nodes[sub], v, p, e)
    if "e" in n and v not in n["e"]:
        e.append((p, "%s is not one of %s" % (show(v), ", ".join(n["e"]))))
    if jt == "string":
        if "x" in n and not _search(n["x"], v):
            e.append((p, "%s does not match %s" % (show(v), n["x"])))
    elif jt == "integer" or jt == "number":
        lo, hi = n.get("lo"), n.get("hi")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            if n.get("l") and lo is not None and hi is not None:
                e.append((p, "%s is out of range for %s (%s..%s)" % (show(v), n["l"], lo, hi)))
            elif lo is not None and v < lo:
                e.append((p, "%s is less than the minimum %s" % (show(v), lo)))
            else:
                e.append((p, "%s is greater than the maximum %s" % (show(v), hi)))
    elif jt == "array":
        if "n" in n and len(v) < n["n"]:
            e.append((p, "must have at least %d item%s" % (n["n"], "" if n["n"] == 1 else "s")))
        if "i" in n:
            sub = nodes[n["i"]]
            if "s" in sub:  # items are only type-tested: no call per item
                st = sub["t"]
                for i, x in enumerate(v):
                    xt = _JT.get(type(x))
                    if xt != st and not (st == "number" and xt == "integer"):
                        e.append((join(p, i), _bad_type(x, st)))
            else:
                for i, x in enumerate(v):
                    _node(nodes, sub, x, join(p, i), e)
        elif "it" in n:
            for i, sub in enumerate(n["it"][:len(v)]):
                _node(nodes, nodes[sub], v[i], join(p, i), e)
    elif jt == "object":
        if "r" in n:
            for name in n["r"]:
                if name not in v:
                    e.append((join(p, name), "required property is missing"))
        props = n.get("p")
        if props:
            for name, x in v.items():
                sub = props.get(name)
                if sub is not None:
                    _node(nodes, nodes[sub], x, join(p, name), e)
        if "pp" in n or "ap" in n:
            pats = n.get("pp", ())
            ap = n.get("ap", True)
            for k, x in v.items():
                matched = False
                for pat, sub in pats:
                    if _search(pat, k):
                        matched = True
                        _node(nodes, nodes[sub], x, join(p, k), e)
                if ap is not True and not matched and not (props and k in props):
                    if ap is False:
                        e.append((join(p, k), "additional property is not allowed"))
                    else:
                        _node(nodes, nodes[ap], x, join(p, k), e)
