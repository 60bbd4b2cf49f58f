"""The layers import downward only:

    cli  ->  runtime  ->  config  ->  linux  ->  errors, jsonio, fileio, pyoci, _shim

cli parses and prints; runtime holds the lifecycle and every operation;
config validates once; linux has one module per kernel mechanism. Every
import of every module counts, function-level ones (the lazy imports that
keep start-up cheap) and importlib.import_module("...") with a literal
name too: a cycle hidden in a function is still a cycle."""
import ast
import os

import pytest

import pyoci

PKG = os.path.dirname(pyoci.__file__)
LAYERS = [("pyoci.cli", 4, "cli"), ("pyoci.__main__", 4, "cli"), ("pyoci._boot", 4, "cli"),
          ("pyoci.runtime", 3, "runtime"),
          ("pyoci.config", 2, "config"), ("pyoci.linux", 1, "linux")]


def layer(mod):
    for prefix, n, name in LAYERS:
        if mod == prefix or mod.startswith(prefix + "."):
            return n, name
    return 0, "base"


def modules():
    for dirpath, dirnames, filenames in os.walk(PKG):
        dirnames[:] = [d for d in dirnames if not d.startswith("__")]
        for f in filenames:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                name = "pyoci." + os.path.relpath(path, PKG)[:-3].replace("/", ".")
                if name.endswith(".__init__"):
                    name = name[:-len(".__init__")]
                yield name, path


def imports(name, path):
    """(imported module, line) for every import in the file."""
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    is_pkg = path.endswith("__init__.py")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")
                if not is_pkg:
                    parts = parts[:-1]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for a in node.names:
                # `from pyoci.linux import sys`: the module pyoci.linux.sys
                yield (base + "." + a.name if base in ("pyoci", "pyoci.cli", "pyoci.runtime", "pyoci.config",
                                                       "pyoci.linux", "pyoci.linux.cgroups") else base), node.lineno
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            yield node.args[0].value, node.lineno


def upward_imports():
    out = []
    for name, path in modules():
        own, own_name = layer(name)
        for mod, line in imports(name, path):
            if not mod.startswith("pyoci"):
                continue
            n, layer_name = layer(mod)
            if n > own:
                out.append("%s:%d (%s) imports %s (%s)" % (os.path.relpath(path, PKG), line, own_name, mod,
                                                            layer_name))
    return out


def test_imports_go_downward_only():
    assert upward_imports() == []


def test_the_check_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    """The checker itself: an upward import inside a function, a relative
    one and an import_module literal are all found."""
    pkg = tmp_path / "pyoci"
    (pkg / "linux").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "linux" / "__init__.py").write_text("")
    (pkg / "linux" / "m.py").write_text(
        "def f():\n    from pyoci.runtime import state\n"
        "def g():\n    from ..cli import args\n"
        "def h():\n    import importlib\n    importlib.import_module('pyoci.config.spec')\n")
    monkeypatch.setattr(__import__(__name__), "PKG", str(pkg))
    found = upward_imports()
    assert [f.split(" imports ")[1] for f in found] == ["pyoci.runtime.state (runtime)", "pyoci.cli.args (cli)",
                                                        "pyoci.config.spec (config)"], found


@pytest.mark.parametrize("mod", ["pyoci.runtime", "pyoci.runtime.container", "pyoci.runtime.state"])
def test_a_query_imports_no_set_up_module(mod):
    """state, kill, delete stay cheap: loading a container pulls in neither
    the create path nor a heavy library."""
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, %r); import %s; bad = [m for m in sys.modules if m in ("
            "'json', 'enum', 're', 'signal', 'subprocess', 'pyoci.runtime.create', 'pyoci.runtime.child', "
            "'pyoci.runtime.exec', 'pyoci.config.validate')]; print(bad)" % (os.path.dirname(PKG), mod))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", (out.stdout, out.stderr)
