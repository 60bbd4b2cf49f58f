/* The `pyoci` command: CPython embedded, configured as `python -I -S`.
 *
 * A `#!python` script cannot carry interpreter options through pip (pip
 * rewrites the line to the bare interpreter path), and a wrapper that
 * executes the interpreter costs a second execve (~0.6 ms here, more than
 * all of `pyoci state`'s own work). So the command is the interpreter's own
 * main() with another configuration, linked the way setup.py finds best
 * (libpython's static archive when there is one, else the shared library):
 *
 *   - isolated (-I): no PYTHON* variables, no user site, nothing of the
 *     caller's cwd on sys.path; works the same with an empty environment;
 *   - no site (-S) when the directory holding the pyoci package holds its
 *     dependencies too (a venv, a prefix install): that directory is
 *     appended to sys.path and nothing else is read (.pth files, site's
 *     directory scans); otherwise site runs as usual (an editable install,
 *     dependencies from the distribution), isolated still;
 *   - found through the real path of this executable (/proc/self/exe), so
 *     a symlink to it from anywhere (`runc`) works; sys.executable is the
 *     interpreter next to it when there is one (a venv's), so sys.prefix is
 *     that of a `python -I -S` started there.
 *
 * Then it runs pyoci.cli.main() with sys.argv as given.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The install scheme's path from the scripts directory to the package
 * directory (setup.py passes it, from the building interpreter's sysconfig). */
#ifndef PYOCI_SITE_REL
#define PYOCI_SITE_REL "../lib/python" Py_STRINGIFY(PY_MAJOR_VERSION) "." Py_STRINGIFY(PY_MINOR_VERSION) "/site-packages"
#endif

static const char *const SITE_RELS[] = {
    PYOCI_SITE_REL,
    "../lib/python" Py_STRINGIFY(PY_MAJOR_VERSION) "." Py_STRINGIFY(PY_MINOR_VERSION) "/site-packages",
    "..",   /* pip install --target DIR: scripts in DIR/bin */
};

/* What pyoci imports from its own directory: found there, sys.path needs
 * nothing else. */
static const char *const NEEDED[] = {
    "pyoci/__init__.py", "cffi/__init__.py", "pyseccomp.py", "pyroute2/__init__.py",
};

static const char RUN[] = "from pyoci.cli import main\nraise SystemExit(main())\n";

static int self_contained(const char *dir)
{
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof NEEDED / sizeof NEEDED[0]; i++) {
        if (snprintf(p, sizeof p, "%s/%s", dir, NEEDED[i]) >= (int)sizeof p || access(p, F_OK) != 0)
            return 0;
    }
    return 1;
}

static void fail(PyConfig *config, PyStatus st)
{
    PyConfig_Clear(config);
    Py_ExitStatusException(st);
}

int main(int argc, char **argv)
{
    char exe[PATH_MAX], site[PATH_MAX], python[PATH_MAX], buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0)
        exe[n] = 0;
    else if (!realpath(argv[0], exe)) {   /* no /proc: argv[0] as given */
        fprintf(stderr, "pyoci: cannot find its own executable (no /proc/self/exe, argv[0] %s)\n", argv[0]);
        return 1;
    }
    char *slash = strrchr(exe, '/');
    if (!slash)
        return 1;
    size_t bindir_len = (size_t)(slash - exe);

    int fast = 0;
    for (size_t i = 0; i < sizeof SITE_RELS / sizeof SITE_RELS[0] && !fast; i++) {
        if (snprintf(buf, sizeof buf, "%.*s/%s", (int)bindir_len, exe, SITE_RELS[i]) >= (int)sizeof buf)
            continue;
        fast = realpath(buf, site) && self_contained(site);
    }

    PyStatus st;
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.isolated = 1;
    config.parse_argv = 0;
    config.site_import = !fast;
    snprintf(python, sizeof python, "%.*s/python3", (int)bindir_len, exe);
    st = PyConfig_SetBytesString(&config, &config.executable, access(python, X_OK) == 0 ? python : exe);
    if (PyStatus_Exception(st))
        fail(&config, st);
    st = PyConfig_SetBytesArgv(&config, argc, argv);
    if (PyStatus_Exception(st))
        fail(&config, st);
    st = PyConfig_SetBytesString(&config, &config.run_command, RUN);
    if (PyStatus_Exception(st))
        fail(&config, st);
    st = Py_InitializeFromConfig(&config);
    if (PyStatus_Exception(st))
        fail(&config, st);
    PyConfig_Clear(&config);
    if (fast) {
        PyObject *path = PySys_GetObject("path");   /* borrowed */
        PyObject *dir = PyUnicode_DecodeFSDefault(site);
        if (!path || !dir || PyList_Append(path, dir) < 0) {
            PyErr_Print();
            return 1;
        }
        Py_DECREF(dir);
    }
    return Py_RunMain();
}
