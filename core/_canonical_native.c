/*
 * The canonical encoder's type guard, compiled: ``fast_types(value, max_depth)`` is
 * ``canonical._fast_types((value,), 0)`` — whether every node of a parsed JSON value has an
 * exact type that orjson encodes exactly as RFC 8785 does (dict, list, str, int, bool, None;
 * no float, no subclass, no other type), nested less than ``max_depth`` deep.
 *
 * Why: every state write, event and receipt is canonicalised, and the guard's walk in Python
 * cost as much as orjson's encoding itself (decision 0008). The Python function stays the
 * reference; a property test checks that both give the same verdict.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static int fast_types_at(PyObject *item, int depth, int max_depth) {
    PyTypeObject *type = Py_TYPE(item);
    if (type == &PyUnicode_Type || type == &PyLong_Type || type == &PyBool_Type || item == Py_None) return 1;
    if (depth >= max_depth) return 0;
    if (type == &PyDict_Type) {
        Py_ssize_t position = 0;
        PyObject *key, *value;
        while (PyDict_Next(item, &position, &key, &value)) {
            if (!fast_types_at(value, depth + 1, max_depth)) return 0;
        }
        return 1;
    }
    if (type == &PyList_Type) {
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(item); i++) {
            if (!fast_types_at(PyList_GET_ITEM(item, i), depth + 1, max_depth)) return 0;
        }
        return 1;
    }
    return 0;
}

static PyObject *fast_types(PyObject *module, PyObject *args) {
    PyObject *value;
    int max_depth;
    if (!PyArg_ParseTuple(args, "Oi", &value, &max_depth)) return NULL;
    if (max_depth < 0 || max_depth > 1000) {
        PyErr_SetString(PyExc_ValueError, "max_depth is 0..1000");
        return NULL;
    }
    return PyBool_FromLong(fast_types_at(value, 0, max_depth));
}

static PyMethodDef methods[] = {
    {"fast_types", fast_types, METH_VARARGS,
     "fast_types(value, max_depth) -> bool: canonical._fast_types((value,), 0), compiled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_canonical_native",
                                    "The canonical encoder's type guard, compiled (see core/canonical.py).", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__canonical_native(void) { return PyModule_Create(&module); }
