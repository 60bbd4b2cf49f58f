"""Syscall and architecture names that libseccomp knows.

Asking libseccomp costs ~15 ms (pyseccomp's import finds the library with
ctypes.util, which runs ldconfig), too much for every `create` with a
seccomp profile. So syscalls.json beside this file lists the names that
libseccomp (the version it records) resolves; a name in it is accepted at
no cost, and only a name outside it makes us ask the host's libseccomp, via
pyseccomp, imported then and only then. libseccomp never drops names.

    python -m pyoci.config.seccompnames   # rewrite syscalls.json from this host's libseccomp
"""
import os
import sys

TABLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "syscalls.json")

# SCMP_ARCH_* names every libseccomp since 2.5 knows (spelled as libseccomp's
# arch names); the others of the schema (loongarch64, m68k, sh, sheb) came later
BASE_ARCHS = {"x86", "x86_64", "x32", "arm", "aarch64", "mips", "mips64", "mips64n32", "mipsel",
              "mipsel64", "mipsel64n32", "ppc", "ppc64", "ppc64le", "s390", "s390x", "parisc",
              "parisc64", "riscv64"}

_known = None
_lib = False


def _table():
    global _known
    if _known is None:
        from pyoci.jsonio import loads

        with open(TABLE, "rb") as f:
            _known = frozenset(loads(f.read())["names"])
    return _known


def libseccomp():
    """The libseccomp handle of pyseccomp, or None when it cannot be loaded."""
    global _lib
    if _lib is False:
        try:
            import pyseccomp

            _lib = pyseccomp._libseccomp
        except Exception:  # ImportError, or RuntimeError when libseccomp is missing
            _lib = None
    return _lib


def syscall_known(name):
    if name in _table():
        return True
    lib = libseccomp()
    if lib is None:
        return False
    import ctypes

    f = lib.seccomp_syscall_resolve_name
    f.argtypes, f.restype = (ctypes.c_char_p,), ctypes.c_int
    return f(name.encode()) != -1  # __NR_SCMP_ERROR


def arch_known(scmp_arch):
    """scmp_arch: SCMP_ARCH_X86_64 and so on."""
    name = scmp_arch[len("SCMP_ARCH_"):].lower() if scmp_arch.startswith("SCMP_ARCH_") else ""
    if name in BASE_ARCHS:
        return True
    lib = libseccomp()
    if lib is None or not name:
        return False
    import ctypes

    f = lib.seccomp_arch_resolve_name
    f.argtypes, f.restype = (ctypes.c_char_p,), ctypes.c_uint32
    return f(name.encode()) != 0


def version():
    lib = libseccomp()
    if lib is None:
        return None
    import ctypes

    class V(ctypes.Structure):
        _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]

    f = lib.seccomp_version
    f.restype = ctypes.POINTER(V)
    v = f().contents
    return "%d.%d.%d" % (v.major, v.minor, v.micro)


def _generate():
    """Every name libseccomp resolves from a number on any of its arches."""
    import ctypes

    import pyseccomp

    lib = pyseccomp._libseccomp
    f = lib.seccomp_syscall_resolve_num_arch
    f.argtypes, f.restype = (ctypes.c_uint32, ctypes.c_int), ctypes.c_void_p
    names = set()
    archs = [getattr(pyseccomp.Arch, a) for a in dir(pyseccomp.Arch) if a.isupper() and a != "NATIVE"]
    for arch in archs:
        # real numbers (mips uses 4000-6999), and libseccomp's negative
        # pseudo-numbers for calls an arch lacks
        for n in list(range(-12000, 0)) + list(range(0, 7000)):
            r = f(arch, n)
            if r:
                names.add(ctypes.string_at(r).decode())
                pyseccomp._libc.free(r)
    return {"libseccomp": version(), "names": sorted(names)}


if __name__ == "__main__":
    import json

    data = _generate()
    with open(TABLE, "w") as out:
        json.dump(data, out, indent=0)
        out.write("\n")
    print("wrote %s: %d names from libseccomp %s" % (TABLE, len(data["names"]), data["libseccomp"]))
    sys.exit(0)
