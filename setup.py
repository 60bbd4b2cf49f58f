"""Build glue: the cffi extension pyoci._shim and the static pyoci-init.

`pip install .` compiles both. pyoci-init is linked statically because it is
executed after pivot_root, inside the container's filesystem, where the
host's dynamic loader does not exist.
"""
import os
import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_ext import build_ext
from distutils.command.build_scripts import build_scripts  # setuptools provides it (after its import)

INIT_SRC = os.path.join("cffi_build", "init.c")
LAUNCHER_SRC = os.path.join("cffi_build", "launcher.c")


class build_ext_with_init(build_ext):
    def run(self):
        super().run()
        self.build_init()

    def build_init(self):
        from distutils.ccompiler import new_compiler
        from distutils.sysconfig import customize_compiler

        cc = new_compiler()
        customize_compiler(cc)
        objs = cc.compile([INIT_SRC], output_dir=self.build_temp,
                          extra_postargs=["-Os", "-Wall", "-fno-stack-protector"])
        base = "." if self.inplace else self.build_lib
        out_dir = os.path.join(base, "pyoci", "_libexec")
        os.makedirs(out_dir, exist_ok=True)
        cc.link_executable(objs, "pyoci-init", output_dir=out_dir,
                           extra_postargs=["-static", "-s"])

    def get_outputs(self):
        base = "." if self.inplace else self.build_lib
        return super().get_outputs() + [os.path.join(base, "pyoci", "_libexec", "pyoci-init")]


class build_scripts_with_launcher(build_scripts):
    """The `pyoci` command is cffi_build/launcher.c, the interpreter embedded
    and configured as `python -I -S`. It is linked with libpython's static
    archive where there is one, as Debian links its python3 (no relocations
    of a shared libpython at each start; a position-dependent archive needs
    -no-pie), else with the shared library. Where neither links, the plain
    script pyoci/_bin/pyoci stays the command, with site's start-up cost.

    It carries the package's modules compiled (bundle.h, see pyoci/_boot.py):
    all of them, and the list of those it runs at start-up, in the order in
    which importing BOOT_ENTRIES completes them (found by importing them
    from the build directory in a `python -I -S`)."""

    # what state, start and kill import (test_launcher.py lists them);
    # delete adds the cgroups package, from the bundle when it needs it
    BOOT_ENTRIES = ["pyoci.cli", "pyoci.cli.lifecycle", "pyoci.runtime", "pyoci.runtime.container",
                    "pyoci.runtime.status", "pyoci.runtime.state", "pyoci.runtime.fault", "pyoci.linux.signals",
                    "pyoci.linux.freezer"]
    # what a command imports besides, run as those are once the command is
    # known: create's (and run's) runtime side; what the container's set-up
    # imports after the fork stays out (it would be the runtime's work)
    BOOT_GROUPS = {
        "create": ["pyoci.runtime.create", "pyoci.config.validate", "pyoci.config.fastschema",
                   "pyoci.linux.cgroups", "pyoci.linux.cgroups.v1", "pyoci.linux.cgroups.v2",
                   "pyoci.linux.cgroups.resources", "pyoci.linux.namespaces", "pyoci.linux.process",
                   "pyoci.linux.capabilities", "pyoci.linux.executable", "pyoci.linux.sys",
                   "pyoci.runtime.child", "pyoci.runtime.foreground", "pyoci.runtime.sync"],
    }
    BOOT_GROUPS["run"] = BOOT_GROUPS["create"]

    def run(self):
        super().run()
        out = os.path.join(self.build_dir, "pyoci")
        try:
            self.build_launcher(out)
        except Exception as e:   # keep the script
            self.warn("pyoci launcher not built (%s): the command is the plain script" % e)

    def build_launcher(self, out):
        from distutils.ccompiler import new_compiler
        from distutils.sysconfig import customize_compiler

        cv = sysconfig.get_config_var
        cc = new_compiler()
        customize_compiler(cc)
        scheme = sysconfig.get_paths()
        rel = os.path.relpath(scheme["platlib"], scheme["scripts"])
        build = self.get_finalized_command("build")
        tmp = os.path.join(build.build_temp, "launcher")
        os.makedirs(tmp, exist_ok=True)
        macros = [("PYOCI_SITE_REL", '"%s"' % rel)]
        try:
            self.write_bundle(os.path.join(tmp, "bundle.h"), build.build_lib)
            macros.append(("PYOCI_BUNDLE", "1"))
        except Exception as e:
            self.warn("pyoci launcher without its bundle (%s): modules are imported from their files" % e)
        objs = cc.compile([LAUNCHER_SRC], output_dir=tmp, include_dirs=[sysconfig.get_paths()["include"], tmp],
                          macros=macros, extra_postargs=["-O2", "-Wall"])
        libs = ((cv("LIBS") or "") + " " + (cv("SYSLIBS") or "")).split()
        static = os.path.join(cv("LIBPL") or "", cv("LIBRARY") or "")
        attempts = []
        if os.path.isfile(static):
            export = (cv("LINKFORSHARED") or "-Xlinker -export-dynamic").split()
            modlibs = (cv("MODLIBS") or "").split()
            attempts += [[static] + export + libs + modlibs, ["-no-pie", static] + export + libs + modlibs]
        libdir = cv("LIBDIR")
        ver = "%d.%d%s" % (sys.version_info[0], sys.version_info[1], getattr(sys, "abiflags", ""))
        attempts.append(["-L" + libdir, "-Wl,-rpath," + libdir, "-lpython" + ver] + libs)
        err = None
        for extra in attempts:
            try:
                cc.link_executable(objs, "pyoci", output_dir=tmp, extra_postargs=extra + ["-s"])
                break
            except Exception as e:
                err = e
        else:
            raise err
        self.copy_file(os.path.join(tmp, "pyoci"), out)
        os.chmod(out, 0o755)

    def write_bundle(self, path, build_lib):
        import ast
        import marshal
        import subprocess

        entries = []
        for dirpath, dirnames, files in os.walk("pyoci"):
            dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", "_bin"))
            for f in sorted(files):
                if not f.endswith(".py"):
                    continue
                rel = os.path.join(dirpath, f)
                name = rel[:-3].replace(os.sep, ".")
                pkg = name.endswith(".__init__")
                if pkg:
                    name = name[:-len(".__init__")]
                with open(rel, "rb") as src:
                    code = compile(_without_docstrings(ast.parse(src.read(), rel)), rel, "exec",
                                   dont_inherit=True)
                entries.append((name, rel, pkg, marshal.dumps(code)))
        entries.sort()
        known = {e[0] for e in entries}

        def order(entries, after=()):
            done = subprocess.run(
                [sys.executable, "-I", "-S", "-c", BOOT_ORDER, build_lib, " ".join(after)] + entries,
                check=True, capture_output=True, text=True).stdout.split()
            return [n for n in done if n in known]

        eager = order(self.BOOT_ENTRIES)
        groups = {cmd: order(mods, self.BOOT_ENTRIES) for cmd, mods in self.BOOT_GROUPS.items()}
        with open(path, "w") as out:
            out.write("/* generated by setup.py from pyoci/: do not edit */\n")
            for i, (name, rel, pkg, data) in enumerate(entries):
                out.write("static const unsigned char M%d[%d] = {" % (i, len(data)))
                for j in range(0, len(data), 32):
                    out.write("\n" + ",".join(str(b) for b in data[j:j + 32]) + ",")
                out.write("\n};\n")
            out.write("static const struct bundle_entry BUNDLE[] = {\n")
            for i, (name, rel, pkg, data) in enumerate(entries):
                out.write('    {"%s", "%s", %d, M%d, %d},\n' % (name, rel, pkg, i, len(data)))
            out.write("};\nstatic const char *const EAGER[] = {\n")
            out.write("".join('    "%s",\n' % n for n in eager))
            out.write("};\n")
            # GROUPS: "command", "module", ..., NULL, ..., NULL (an empty command ends it)
            out.write("static const char *const GROUPS[] = {\n")
            for cmd, mods in sorted(groups.items()):
                out.write("".join('    "%s",\n' % n for n in [cmd] + mods) + "    NULL,\n")
            out.write('    NULL,\n};\n')


def _without_docstrings(tree):
    """The module without its docstrings (what `python -OO` drops, asserts
    kept): a third less to unmarshal at each start; nothing in pyoci reads
    __doc__, and line numbers stay."""
    import ast

    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                doc = body[0]
                node.body = body[1:] or [ast.Pass(lineno=doc.lineno, col_offset=doc.col_offset,
                                                  end_lineno=doc.end_lineno, end_col_offset=doc.end_col_offset)]
    return tree


# Prints the pyoci modules in the order in which importing argv[3:] from
# the directory argv[1] completes them (each after what it imports at
# module level), after importing the space-separated argv[2].
BOOT_ORDER = """
import sys
import _frozen_importlib_external as ext
sys.path.insert(0, sys.argv[1])
for name in sys.argv[2].split():
    __import__(name)
done = []
run = ext._LoaderBasics.exec_module
def exec_module(self, module):
    run(self, module)
    done.append(module.__name__)
ext._LoaderBasics.exec_module = exec_module
for name in sys.argv[3:]:
    __import__(name)
print(" ".join(n for n in done if n == "pyoci" or n.startswith("pyoci.")))
"""


setup(
    cffi_modules=["cffi_build/build_shim.py:ffibuilder"],
    cmdclass={"build_ext": build_ext_with_init, "build_scripts": build_scripts_with_launcher},
)
