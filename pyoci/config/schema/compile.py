"""Compile pyoci's JSON Schema into the table pyoci.config.fastschema runs.

    python -m pyoci.config.schema.compile          # rewrite _compiled.json
    python -m pyoci.config.schema.compile --check  # exit 1 when it is stale

`pyoci create` validates every config.json; jsonschema costs ~150 ms to
import and the schema files take more to load and resolve. So the schema is
flattened here, ahead of time, into one table of nodes with every $ref
resolved and only the keywords that decide a verdict kept; fastschema.py
walks it. The compiler knows the keywords this schema uses and refuses any
other, so a schema edit that needs a new keyword fails here, loudly.

A node is a JSON object with (all optional):
  t   type name                      e   enum (strings)
  x   pattern (re.search)            lo, hi  minimum, maximum   l  label (def name)
  n   minItems                       i   items node   it  list of tuple item nodes
  r   required names                 p   {property: node}
  pp  [[pattern, node], ...]         ap  additionalProperties node, or false
  a   nodes that also apply (allOf, a single-branch anyOf)
  s   1 when the node is only a type test (a fast path for arrays of strings)
Nodes refer to one another by index in the table.
"""
import json
import os
import sys

from pyoci.config.schema import ENTRY, HERE, load_folder

OUT = os.path.join(HERE, "_compiled.json")

IGNORED = {"description", "title", "$schema", "definitions", "id"}
TYPES = {"object", "array", "string", "integer", "number", "boolean", "null"}


class Compiler:
    def __init__(self, docs):
        self.docs = docs
        self.nodes = []
        self.by_ref = {}

    def resolve(self, file, ref):
        f, _, frag = ref.partition("#")
        f = f or file
        node = self.docs[f]
        for part in [p for p in frag.split("/") if p]:
            node = node[part]
        return f, frag, node

    def ref(self, file, ref):
        f, frag, target = self.resolve(file, ref)
        key = (f, frag)
        if key not in self.by_ref:
            self.by_ref[key] = None  # a cycle would show up as None
            self.by_ref[key] = self.compile(target, f, frag.rsplit("/", 1)[-1] or None)
        idx = self.by_ref[key]
        if idx is None:
            raise SystemExit("recursive $ref %s is not supported" % ref)
        return idx

    def compile(self, s, file, label=None):
        if "$ref" in s:  # draft 4: keywords beside $ref are ignored
            return self.ref(file, s["$ref"])
        out = {}
        for k, val in s.items():
            if k in IGNORED:
                continue
            if k == "type":
                if val not in TYPES:
                    raise SystemExit("type %r not supported (%s)" % (val, file))
                out["t"] = val
            elif k == "enum":
                if not all(isinstance(x, str) for x in val):
                    raise SystemExit("only string enums are supported (%s)" % file)
                out["e"] = val
            elif k == "pattern":
                out["x"] = val
            elif k == "minimum":
                out["lo"] = val
            elif k == "maximum":
                out["hi"] = val
            elif k == "minItems":
                out["n"] = val
            elif k == "required":
                out["r"] = val
            elif k == "properties":
                out["p"] = {name: self.compile(sub, file) for name, sub in val.items()}
            elif k == "patternProperties":
                out["pp"] = [[pat, self.compile(sub, file)] for pat, sub in val.items()]
            elif k == "additionalProperties":
                if val is not True:
                    out["ap"] = False if val is False else self.compile(val, file)
            elif k == "items":
                if isinstance(val, list):
                    out["it"] = [self.compile(sub, file) for sub in val]
                else:
                    out["i"] = self.compile(val, file)
            elif k == "allOf":
                out.setdefault("a", []).extend(self.compile(sub, file) for sub in val)
            elif k == "anyOf":
                if len(val) != 1:
                    raise SystemExit("anyOf with several branches is not supported (%s)" % file)
                out.setdefault("a", []).append(self.compile(val[0], file))
            else:
                raise SystemExit("schema keyword %r not supported by the compiler (%s)" % (k, file))
        if ("lo" in out or "hi" in out) and label:
            out["l"] = label
        if list(out) == ["t"]:
            out["s"] = 1
        # identical nodes share one entry
        key = json.dumps(out, sort_keys=True)
        for i, n in enumerate(self.nodes):
            if json.dumps(n, sort_keys=True) == key:
                return i
        self.nodes.append(out)
        return len(self.nodes) - 1


def generate(folder=HERE):
    c = Compiler(load_folder(folder))
    roots = {kind: c.ref(f, f) for kind, f in ENTRY.items()}
    return json.dumps({"generated_by": "python -m pyoci.config.schema.compile (do not edit)",
                       "roots": roots, "nodes": c.nodes}, separators=(",", ":"), sort_keys=True) + "\n"


def main(argv):
    data = generate()
    if "--check" in argv:
        with open(OUT) as f:
            if f.read() != data:
                print("%s is stale: run python -m pyoci.config.schema.compile" % OUT)
                return 1
        return 0
    with open(OUT, "w") as f:
        f.write(data)
    print("wrote %s (%d bytes)" % (OUT, len(data)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
