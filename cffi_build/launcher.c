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
#include <marshal.h>

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

#ifdef PYOCI_BUNDLE
/* The bundle (setup.py): every module of the package compiled, sorted by
 * name, and the modules every command needs, in the order a normal import
 * completes them. pyoci/_boot.py says how they are used. */
struct bundle_entry {
    const char *name, *rel;
    int pkg;
    const unsigned char *code;
    Py_ssize_t size;
};
#include "bundle.h"

static const char RUN_BUNDLE[] = "import _pyoci_bundle\n_pyoci_bundle.run()\n";
static char site[PATH_MAX];

static const struct bundle_entry *bundle_find(const char *name)
{
    size_t lo = 0, hi = sizeof BUNDLE / sizeof BUNDLE[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(name, BUNDLE[mid].name);
        if (c == 0)
            return &BUNDLE[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* get(name) -> (is_package, path under site, code as a read-only memoryview) or None */
static PyObject *bundle_get(PyObject *self, PyObject *name)
{
    const char *n = PyUnicode_AsUTF8(name);
    if (!n)
        return NULL;
    const struct bundle_entry *e = bundle_find(n);
    if (!e)
        Py_RETURN_NONE;
    return Py_BuildValue("(isN)", e->pkg, e->rel,
                         PyMemoryView_FromMemory((char *)e->code, e->size, PyBUF_READ));
}

/* run(): pyoci/_boot.py from the bundle */
static PyObject *bundle_run(PyObject *self, PyObject *unused)
{
    const struct bundle_entry *e = bundle_find("pyoci._boot");
    if (!e)
        return PyErr_Format(PyExc_ImportError, "pyoci._boot is not in the bundle");
    PyObject *code = PyMarshal_ReadObjectFromString((const char *)e->code, e->size);
    if (!code)
        return NULL;
    PyObject *g = PyDict_New(), *r = NULL;
    if (g && PyDict_SetItemString(g, "__name__", PyUnicode_FromString("pyoci._boot")) == 0 &&
        PyDict_SetItemString(g, "__builtins__", PyEval_GetBuiltins()) == 0)
        r = PyEval_EvalCode(code, g, g);
    Py_DECREF(code);
    Py_XDECREF(g);
    return r;
}

static PyMethodDef bundle_methods[] = {
    {"get", bundle_get, METH_O, NULL},
    {"run", bundle_run, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef bundle_def = {PyModuleDef_HEAD_INIT, "_pyoci_bundle", NULL, -1, bundle_methods};

static PyObject *init_bundle(void)
{
    PyObject *m = PyModule_Create(&bundle_def);
    size_t n = sizeof EAGER / sizeof EAGER[0];
    PyObject *eager = m ? PyTuple_New((Py_ssize_t)n) : NULL;
    if (!eager)
        return NULL;
    for (size_t i = 0; i < n; i++)
        PyTuple_SET_ITEM(eager, (Py_ssize_t)i, PyUnicode_FromString(EAGER[i]));
    PyObject *groups = PyDict_New();
    if (!groups)
        return NULL;
    for (size_t i = 0; GROUPS[i];) {
        const char *cmd = GROUPS[i++];
        size_t first = i;
        while (GROUPS[i])
            i++;
        PyObject *mods = PyTuple_New((Py_ssize_t)(i - first));
        if (!mods)
            return NULL;
        for (size_t j = first; j < i; j++)
            PyTuple_SET_ITEM(mods, (Py_ssize_t)(j - first), PyUnicode_FromString(GROUPS[j]));
        if (PyDict_SetItemString(groups, cmd, mods) < 0)
            return NULL;
        Py_DECREF(mods);
        i++;
    }
    if (PyModule_AddObject(m, "groups", groups) < 0 ||
        PyModule_AddObject(m, "eager", eager) < 0 ||
        PyModule_AddObject(m, "site", PyUnicode_DecodeFSDefault(site)) < 0)
        return NULL;
    return m;
}
#endif

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

#ifndef PYOCI_BUNDLE
static char site[PATH_MAX];
#endif

int main(int argc, char **argv)
{
    char exe[PATH_MAX], python[PATH_MAX], buf[PATH_MAX];
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
    const char *run = RUN;
#ifdef PYOCI_BUNDLE
    if (fast) {
        if (PyImport_AppendInittab("_pyoci_bundle", init_bundle) < 0)
            return 1;
        run = RUN_BUNDLE;
    }
#endif
    st = PyConfig_SetBytesString(&config, &config.run_command, run);
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
