"""Start-up of the installed `pyoci` command (cffi_build/launcher.c).

The launcher carries every module of this package compiled: the bundle,
made by setup.py from the same sources as the installed files, as CPython
freezes the modules of its own start-up (os, codecs, io, ...). The
launcher runs this module first, from the bundle, when it runs without
`site` (see launcher.c). It

  - executes the modules that every command needs (the bundle's `eager`
    list, in the order in which a normal import completes them) straight
    into sys.modules, and those the command adds (`groups`: create's and
    run's): the import system's own work (finders, specs, locks, .pyc
    checks) is a good part of what an import costs;
  - puts first on sys.meta_path a finder that gives the package's other
    modules from the bundle (no directory scans, no .pyc reads);
  - runs pyoci.cli.main() with the cyclic garbage collector off (a command
    lives milliseconds and makes no cycles that matter; the collections
    that imports and class creation trigger are ~8% of `pyoci state`); the
    commands that wait for long (run and exec in the foreground, events)
    turn it back on;
  - ends the process as Py_Finalize would for what matters to a command
    (atexit handlers, stdout and stderr flushed), without tearing the
    interpreter down: freeing every module and object one by one, with a
    last collection, is a fifth of `pyoci state`.

The installed .py files stay what tracebacks and tools read (`__file__`
names them); as with CPython's frozen modules, an edit of one takes effect
in the command at its next build (`pip install`).
"""
import gc
import sys
from marshal import loads

import _pyoci_bundle as _bundle
from _frozen_importlib import ModuleSpec

SITE = _bundle.site


class BundleLoader:
    """Finder and loader of the bundled modules (importlib's protocol)."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        entry = _bundle.get(name)
        return None if entry is None else _spec(name, entry)

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        exec(loads(_bundle.get(module.__spec__.name)[2]), module.__dict__)

    @staticmethod
    def is_package(name):
        return bool(_bundle.get(name)[0])

    @staticmethod
    def get_source(name):
        with open(SITE + "/" + _bundle.get(name)[1], encoding="utf-8") as f:
            return f.read()


def _spec(name, entry):
    is_pkg, rel = entry[0], entry[1]
    spec = ModuleSpec(name, BundleLoader, origin=SITE + "/" + rel, is_package=is_pkg)
    spec.has_location = True
    if is_pkg:
        spec.submodule_search_locations = [SITE + "/" + rel.rpartition("/")[0]]
    return spec


def _preload(names):
    """Run the modules of `names` (each after those it imports at module
    level) into sys.modules, with the attributes an import gives them."""
    made = []
    for name in names:
        entry = _bundle.get(name)
        spec = _spec(name, entry)
        m = type(sys)(name)
        m.__spec__, m.__loader__, m.__file__ = spec, BundleLoader, spec.origin
        if entry[0]:
            m.__package__, m.__path__ = name, spec.submodule_search_locations
        else:
            m.__package__ = name.rpartition(".")[0]
        made.append((m, entry[2]))
        sys.modules[name] = m
    done = 0
    try:
        for m, code in made:
            exec(loads(code), m.__dict__)
            done += 1
            parent, _, child = m.__name__.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, m)
    except Exception:
        # a module that does not run this way: the rest come through the
        # finder (and its error, if it has one, with a plain traceback)
        for m, _ in made[done:]:
            sys.modules.pop(m.__name__, None)


def _finish(code):
    import atexit
    from posix import _exit

    atexit._run_exitfuncs()
    if not isinstance(code, int):
        code = 1
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            code = code or 120   # as CPython when stdout cannot be flushed
    _exit(code & 0xff)


def _command():
    """The command argv names (after the global flags), or None."""
    from pyoci.cli import GLOBAL_FLAGS
    from pyoci.cli.args import parse

    try:
        rest = parse(sys.argv[1:], GLOBAL_FLAGS)[1]
    except Exception:
        return None   # main says what is wrong
    return rest[0] if rest else None


gc.disable()
sys.meta_path.insert(0, BundleLoader)
_preload(_bundle.eager)
_group = _bundle.groups.get(_command())
if _group:
    _preload(_group)

from pyoci.cli import main  # noqa: E402

_finish(main())
