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
    script pyoci/_bin/pyoci stays the command, with site's start-up cost."""

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
        tmp = os.path.join(self.get_finalized_command("build").build_temp, "launcher")
        os.makedirs(tmp, exist_ok=True)
        objs = cc.compile([LAUNCHER_SRC], output_dir=tmp, include_dirs=[sysconfig.get_paths()["include"]],
                          macros=[("PYOCI_SITE_REL", '"%s"' % rel)], extra_postargs=["-O2", "-Wall"])
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


setup(
    cffi_modules=["cffi_build/build_shim.py:ffibuilder"],
    cmdclass={"build_ext": build_ext_with_init, "build_scripts": build_scripts_with_launcher},
)
