"""pyoci's own JSON Schema (draft-04) of runtime-spec 1.3.0: config, state, features.

The JSON files here are the reference. `pyoci create` never loads them: it
runs pyoci.config.fastschema over _compiled.json, the schema flattened ahead
of time by `python -m pyoci.config.schema.compile` (jsonschema costs ~150 ms
to import). The tests prove that fastschema and jsonschema give the same
verdicts, and that this schema agrees with upstream's on every test document.

jsonschema_validator() is for tests and tooling; it imports jsonschema.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# document kind -> entry file, in this folder and in upstream's schema folder
ENTRY = {"config": "config.json", "state": "state.json", "features": "features.json"}
UPSTREAM_ENTRY = {"config": "config-schema.json", "state": "state-schema.json",
                  "features": "features-schema.json"}


# Where pyoci's schema deliberately accepts what upstream's refuses, each
# with its reason. The fixtures that show a difference name its key here
# (index.json: "upstream": KEY); tests/unit/test_schema_agreement.py checks
# that upstream's schema refuses exactly those documents and pyoci's accepts
# them, and that every key here is shown by a fixture.
UPSTREAM_DIFFERENCES = {
    "linux.rootfsPropagation": (
        "the recursive values rprivate, rshared, rslave and runbindable are accepted as well: runc "
        "takes them (libcontainer/specconv maps all eight), and engines send them (containerd's CRI "
        "plugin: rshared for Bidirectional and rslave for HostToContainer mount propagation); the "
        "spec's enum lists only private, shared, slave and unbindable"),
}


def load_folder(folder=HERE):
    """{file name: parsed schema} for every .json file of a schema folder."""
    out = {}
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json") and not name.startswith("_"):
            with open(os.path.join(folder, name)) as f:
                out[name] = json.load(f)
    return out


def jsonschema_validator(kind, folder=None):
    """A jsonschema Draft4Validator for `kind` (config, state or features),
    over pyoci's schema, or over the schema folder given (upstream's layout
    when it has config-schema.json). Relative $refs are file names."""
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    folder = folder or HERE
    docs = load_folder(folder)
    entry = (UPSTREAM_ENTRY if "config-schema.json" in docs else ENTRY)[kind]
    registry = Registry().with_resources(
        (name, Resource.from_contents(doc, default_specification=DRAFT4)) for name, doc in docs.items())
    # the root only points at the entry file, so that every relative $ref
    # resolves against the file that holds it
    return jsonschema.Draft4Validator({"$ref": entry}, registry=registry)
