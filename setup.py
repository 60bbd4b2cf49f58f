"""Build glue: the cffi extension pyoci._shim and the static pyoci-init.

`pip install .` compiles both. pyoci-init is linked statically because it is
executed after pivot_root, inside the container's filesystem, where the
host's dynamic loader does not exist.
"""
import os

from setuptools import setup
from setuptools.command.build_ext import build_ext

INIT_SRC = os.path.join("cffi_build", "init.c")


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


setup(
    cffi_modules=["cffi_build/build_shim.py:ffibuilder"],
    cmdclass={"build_ext": build_ext_with_init},
)
