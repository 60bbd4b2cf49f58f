"""The installed `pyoci` command (cffi_build/launcher.c): the interpreter
embedded and run as `python -I -S`, found through its own real path. It
must work as engines call it: with an empty environment (podman's kill and
delete), from any cwd, through a symlink named `runc` first in PATH
(containerd), and after `pip install .` into a fresh venv."""
import json
import os
import subprocess
import sys
import tempfile

import pytest

from conftest import PYOCI, REPO


def _env_i(argv, **kw):
    """argv with an empty environment; output through files (a created
    container's init keeps its stdio open)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(["env", "-i"] + argv, stdout=out, stderr=err, text=True, timeout=120, **kw)
        out.seek(0)
        err.seek(0)
        p.stdout, p.stderr = out.read(), err.read()
    return p


def test_command_is_the_embedded_interpreter():
    with open(PYOCI, "rb") as f:
        assert f.read(4) == b"\x7fELF", "the launcher was not built: the command is the plain script"


def test_empty_environment_from_root_through_a_symlink_named_runc(runtime, make_bundle, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    runc = bindir / "runc"
    runc.symlink_to(PYOCI)
    b = make_bundle(["sleep", "30"])
    p = _env_i([str(runc), "--version"], cwd="/")
    assert p.returncode == 0 and p.stdout.startswith("pyoci version "), p.stderr
    # the whole lifecycle through the symlink, as containerd's shim runs `runc`
    for args in (["create", "--bundle", b, "l1"], ["start", "l1"]):
        p = _env_i([str(runc), "--root", runtime.root] + args, cwd="/")
        assert p.returncode == 0, p.stderr
    p = _env_i([str(runc), "--root", runtime.root, "state", "l1"], cwd="/")
    assert json.loads(p.stdout)["status"] == "running"
    # found by name through PATH, the way the shim finds it
    p = _env_i(["PATH=%s:/usr/bin:/bin" % bindir, "runc", "--root", runtime.root, "kill", "l1", "KILL"], cwd="/")
    assert p.returncode == 0, p.stderr
    p = _env_i([str(runc), "--root", runtime.root, "delete", "--force", "l1"], cwd="/")
    assert p.returncode == 0, p.stderr
    assert runtime.ids() == []


def test_isolated_from_environment_and_cwd(tmp_path):
    """No PYTHON* variable, no module in the cwd and no site hook reaches
    the runtime's interpreter."""
    evil = tmp_path / "evil"
    (evil / "pyoci").mkdir(parents=True)
    marker = tmp_path / "marker"
    hook = "open(%r, 'w').close()\n" % str(marker)
    (evil / "pyoci" / "__init__.py").write_text(hook)
    (evil / "sitecustomize.py").write_text(hook)
    (evil / "usercustomize.py").write_text(hook)
    env = {"PYTHONPATH": str(evil), "PYTHONHOME": "/nonexistent", "PYTHONSTARTUP": str(evil / "sitecustomize.py"),
           "PYTHONINSPECT": "1", "PYTHONUSERBASE": str(evil), "PATH": "/usr/bin:/bin"}
    p = subprocess.run([PYOCI, "--version"], env=env, cwd=str(evil), capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("pyoci version "), p.stderr
    assert not marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="runs a container as root")
def test_pip_install_into_a_fresh_venv(tmp_path, host_guard, make_bundle):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    p = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", REPO],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    exe = venv / "bin" / "pyoci"
    with open(exe, "rb") as f:
        assert f.read(4) == b"\x7fELF"
    # a .pth file runs only if site does: the launcher skips site when the
    # package and its dependencies sit in one directory
    site = next((venv / "lib").glob("python3*/site-packages"))
    marker = tmp_path / "site-ran"
    (site / "zz-marker.pth").write_text("import os; open(%r, 'w').close()\n" % str(marker))
    link = tmp_path / "runc"
    link.symlink_to(exe)
    b = make_bundle(["sh", "-c", "echo hello from $(hostname)"])
    root = str(tmp_path / "state")
    p = _env_i([str(link), "--root", root, "run", "--bundle", b, "v1"], cwd="/")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello from pyoci\n"
    assert not marker.exists(), "site ran"
    assert os.listdir(root) == []
    # the modules come from the launcher's bundle (compiled at install from
    # the same sources), not from the installed files
    lifecycle = site / "pyoci" / "cli" / "lifecycle.py"
    lifecycle.write_text("raise SystemExit('imported from the file')\n")
    p = _env_i([str(exe), "--root", root, "state", "v1"], cwd="/")
    assert p.returncode == 1 and "container does not exist" in p.stderr, p.stderr
    # a dependency elsewhere (here: missing): site runs, as for `python -I`
    subprocess.run(["rm", "-rf", str(site / "pyroute2")], check=True)
    p = _env_i([str(exe), "--version"], cwd="/")
    assert p.returncode == 0 and p.stdout.startswith("pyoci version "), p.stderr
    assert marker.exists()


# What the commands engines call most may import: the interpreter's floor
# (`python -I -S`) has none of these; `os` alone costs ~1.3 ms of CPU here.
HEAVY = {"os", "importlib", "warnings", "re", "enum", "collections", "_collections_abc", "json", "functools",
         "typing", "select", "signal", "subprocess", "socket"}

HARNESS = """
import sys
sys.path.append(sys.argv[1])
sys.argv = ["pyoci"] + sys.argv[2:]
from pyoci.cli import main
try:
    code = main()
finally:
    sys.stderr.write("\\nMODULES " + " ".join(sorted(sys.modules)) + "\\n")
raise SystemExit(code)
"""


def test_frequent_commands_import_no_heavy_module(runtime, make_bundle, tmp_path):
    """state, start, kill and delete run as the launcher runs them (python
    -I -S, the package's directory on sys.path) and load none of HEAVY."""
    import pyoci

    site = os.path.dirname(os.path.dirname(pyoci.__file__))
    harness = tmp_path / "harness.py"
    harness.write_text(HARNESS)
    b = make_bundle(["sleep", "30"])
    runtime.cmd("create", "--bundle", b, "h1", check=True)

    def modules(*args):
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([sys.executable, "-I", "-S", str(harness), site, "--root", runtime.root] + list(args),
                               stdout=out, stderr=err, text=True, timeout=60)
            err.seek(0)
            text = err.read()
        assert p.returncode == 0, text
        return set(text.rsplit("MODULES ", 1)[1].split())

    for args in (["state", "h1"], ["start", "h1"], ["state", "h1"], ["kill", "h1", "KILL"]):
        assert modules(*args) & HEAVY == set(), args
    while runtime.state("h1")["status"] != "stopped":
        pass
    for args in (["state", "h1"], ["delete", "h1"]):
        assert modules(*args) & HEAVY == set(), args
    assert runtime.ids() == []
