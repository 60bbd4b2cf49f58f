"""cffi builder for pyoci._shim, the system-call wrappers (see shim.h).

Used by setup.py through ``cffi_modules``; the init executable is built by
setup.py from init.c next to this file.
"""
import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))

ffibuilder = FFI()
with open(os.path.join(HERE, "shim.h")) as f:
    ffibuilder.cdef("".join(l for l in f if not l.startswith("#")))

ffibuilder.set_source(
    "pyoci._shim",
    '#include "shim.h"',
    sources=[os.path.relpath(os.path.join(HERE, "shim.c"))],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
