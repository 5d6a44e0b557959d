/*
 * The state tree's apply, compiled: the same computation as ``_Run`` in core/smt_tree.py.
 *
 * Why: a changed key costs its path through the tree — four to five inner nodes, each a
 * descent step, a SHA-256 and the bookkeeping of where nodes are placed and what they
 * replace. In Python that is about 20-40 us per key, most of it interpreter overhead around
 * a 0.1 us hash (decision 0008). Here the descent, the bit tests and the hashing run in C;
 * what the caller keeps (new nodes, stale nodes, placed and previous positions) is built as
 * the same Python objects the Python code builds.
 *
 * The Python ``_Run`` stays the reference: ``StateTree`` uses this module only when it was
 * built and TRACO_NATIVE is not 0, and a property test checks that both give the same
 * ``Update`` (root, placed, vacated, previous, new nodes, stale) on random trees and changes.
 *
 * This file is the module: its functions and the run they share. The descent is in
 * smt_native_descent.c, hashing, positions and node reads in smt_native_nodes.c, the store's
 * pages in smt_native_pages.c (smt_native.h has the types).
 *
 * Interface: apply(root, paths, leaves, known, read, corrupt) -> (root, new, stale, placed,
 * previous), and apply_paged (below), which returns pages instead of positions
 *   root     32-byte hash of the tree before
 *   paths    list of every changed key's 32-byte path, sorted
 *   leaves   list of (path, leaf hash, leaf encoding) for the changes that set a value, sorted
 *   known    dict of node hash -> node checked before (looked up first, never re-hashed)
 *   read     callable(node_hash, (depth, prefix)) -> 65-byte node, checked (may raise)
 *   corrupt  the CorruptNode exception class, called as corrupt(node_hash, reason)
 * Positions are (depth, prefix) tuples, prefix the path's first ``depth`` bits as an int.
 */
#include "smt_native.h"

static int path_of(PyObject *item, const unsigned char **path) {
    if (!PyBytes_Check(item) || PyBytes_GET_SIZE(item) != HASH_SIZE) {
        PyErr_SetString(PyExc_TypeError, "paths are 32-byte bytes");
        return -1;
    }
    *path = (const unsigned char *)PyBytes_AS_STRING(item);
    return 0;
}

static void run_free(Run *run) {
    Py_CLEAR(run->new_nodes);
    Py_CLEAR(run->stale);
    Py_CLEAR(run->empty);
    entries_free(&run->placed);
    entries_free(&run->previous);
    PyMem_Free(run->paths);
    PyMem_Free(run->leaves);
    run->paths = NULL;
    run->leaves = NULL;
}

/* Check the arguments, descend from ``root``, and leave in ``run`` what was made and where
 * (with the root's own placement when the whole tree collapsed to one leaf). */
static int run_tree(Run *run, PyObject *root, PyObject *paths, PyObject *leaves, PyObject **new_root, int want_stale) {
    Subtree top = {NULL, -1, NULL};
    *new_root = NULL;
    if (PyBytes_GET_SIZE(root) != HASH_SIZE) {
        PyErr_SetString(PyExc_ValueError, "root is a 32-byte hash");
        return -1;
    }
    run->n_paths = PyList_GET_SIZE(paths);
    run->n_leaves = PyList_GET_SIZE(leaves);
    run->empty = PyBytes_FromStringAndSize(NULL, HASH_SIZE);
    if (run->empty == NULL) return -1;
    memset(PyBytes_AS_STRING(run->empty), 0, HASH_SIZE);
    run->paths = PyMem_Malloc(sizeof(*run->paths) * (size_t)(run->n_paths + 1));
    run->leaves = PyMem_Malloc(sizeof(Leaf) * (size_t)(run->n_leaves + 1));
    if (run->paths == NULL || run->leaves == NULL) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < run->n_paths; i++) {
        if (path_of(PyList_GET_ITEM(paths, i), &run->paths[i]) < 0) return -1;
        if (i > 0 && memcmp(run->paths[i - 1], run->paths[i], HASH_SIZE) >= 0) {
            PyErr_SetString(PyExc_ValueError, "paths are sorted and distinct");
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < run->n_leaves; i++) {
        PyObject *item = PyList_GET_ITEM(leaves, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3 ||
            !PyBytes_Check(PyTuple_GET_ITEM(item, 1)) || PyBytes_GET_SIZE(PyTuple_GET_ITEM(item, 1)) != HASH_SIZE ||
            !PyBytes_Check(PyTuple_GET_ITEM(item, 2))) {
            PyErr_SetString(PyExc_TypeError, "leaves are (path, 32-byte hash, encoding) tuples of bytes");
            return -1;
        }
        if (path_of(PyTuple_GET_ITEM(item, 0), &run->leaves[i].path) < 0) return -1;
        if (i > 0 && memcmp(run->leaves[i - 1].path, run->leaves[i].path, HASH_SIZE) >= 0) {
            PyErr_SetString(PyExc_ValueError, "leaves are sorted and distinct");
            return -1;
        }
        run->leaves[i].hash = PyTuple_GET_ITEM(item, 1);
        run->leaves[i].encoding = PyTuple_GET_ITEM(item, 2);
        run->leaves[i].is_new = 1;
    }
    run->new_nodes = PyDict_New();
    if (run->new_nodes == NULL) return -1;
    if (want_stale && (run->stale = PyList_New(0)) == NULL) return -1;
    if (update(run, root, 0, 0, run->n_paths, &top) < 0) return -1;
    if (top.encoding != NULL && !same_hash(top.hash, root)) { /* the whole tree is one leaf now */
        static const unsigned char nowhere[HASH_SIZE] = {0};
        Pos at_root = {0, nowhere, -1};
        if (place(run, at_root, top.encoding) < 0) { subtree_clear(&top); return -1; }
    }
    Py_CLEAR(top.encoding);
    *new_root = top.hash;
    return 0;
}

static PyObject *apply(PyObject *module, PyObject *args) {
    PyObject *root, *paths, *leaves;
    Run run;
    memset(&run, 0, sizeof(run));
    if (!PyArg_ParseTuple(args, "SO!O!O!OO", &root, &PyList_Type, &paths, &PyList_Type, &leaves, &PyDict_Type,
                          &run.known, &run.read, &run.corrupt))
        return NULL;
    PyObject *new_root = NULL, *placed = NULL, *previous = NULL, *result = NULL;
    if (run_tree(&run, root, paths, leaves, &new_root, 1) < 0) goto end;
    settle(&run.placed);
    settle(&run.previous);
    placed = entries_dict(&run.placed);
    previous = placed ? entries_dict(&run.previous) : NULL;
    if (previous != NULL)
        result = Py_BuildValue("OOOOO", new_root, run.new_nodes, run.stale, placed, previous);
end:
    Py_XDECREF(new_root);
    Py_XDECREF(placed);
    Py_XDECREF(previous);
    run_free(&run);
    return result;
}

static PyObject *apply_paged(PyObject *module, PyObject *args) {
    PyObject *root, *paths, *leaves;
    Run run;
    memset(&run, 0, sizeof(run));
    if (!PyArg_ParseTuple(args, "SO!O!O!OOOUOO", &root, &PyList_Type, &paths, &PyList_Type, &leaves, &PyDict_Type,
                          &run.known, &run.read, &run.corrupt, &run.get, &run.key_prefix, &run.damaged,
                          &run.missing))
        return NULL;
    PyObject *new_root = NULL, *records = NULL, *previous = NULL, *result = NULL;
    if (run_tree(&run, root, paths, leaves, &new_root, 0) < 0) goto end;
    settle(&run.placed);
    settle(&run.previous);
    records = PyDict_New();
    previous = PyDict_New();
    if (records == NULL || previous == NULL) goto end;
    if (pages(&run, records, previous) < 0) goto end;
    result = Py_BuildValue("OOOO", new_root, run.new_nodes, records, previous);
end:
    Py_XDECREF(new_root);
    Py_XDECREF(records);
    Py_XDECREF(previous);
    run_free(&run);
    return result;
}

/* One change on its way in: its path, and the value (NULL: a delete), borrowed from the dict. */
typedef struct {
    unsigned char path[HASH_SIZE];
    PyObject *value;
} Change;

static int compare_changes(const void *a, const void *b) {
    return memcmp(((const Change *)a)->path, ((const Change *)b)->path, HASH_SIZE);
}

/* ``smt_tree._entries`` and the sort, compiled: (paths, leaves) sorted by path, a leaf being
 * (path, SHA-256(encoding), encoding) with encoding = 0x00 || path || SHA-256(value). */
static PyObject *entries(PyObject *module, PyObject *changes) {
    if (!PyDict_Check(changes)) {
        PyErr_SetString(PyExc_TypeError, "changes is a dict");
        return NULL;
    }
    Py_ssize_t count = PyDict_GET_SIZE(changes), at = 0, position = 0;
    Change *items = PyMem_Malloc(sizeof(Change) * (size_t)(count + 1));
    if (items == NULL) return PyErr_NoMemory();
    PyObject *key, *value, *paths = NULL, *leaves = NULL, *result = NULL;
    while (PyDict_Next(changes, &position, &key, &value)) {
        if (!PyUnicode_Check(key)) {
            PyErr_Format(PyExc_TypeError, "state keys are str, not %s", Py_TYPE(key)->tp_name);
            goto end;
        }
        if (value != Py_None && !PyBytes_Check(value)) {
            PyErr_Format(PyExc_TypeError, "state values are bytes or None, not %s", Py_TYPE(value)->tp_name);
            goto end;
        }
        Py_ssize_t size;
        const char *utf8 = PyUnicode_AsUTF8AndSize(key, &size);
        if (utf8 == NULL) goto end;
        sha256((const unsigned char *)utf8, (size_t)size, items[at].path);
        items[at++].value = value;
    }
    qsort(items, (size_t)at, sizeof(Change), compare_changes);
    paths = PyList_New(at);
    leaves = PyList_New(0);
    if (paths == NULL || leaves == NULL) goto end;
    for (Py_ssize_t i = 0; i < at; i++) {
        PyObject *path = PyBytes_FromStringAndSize((const char *)items[i].path, HASH_SIZE);
        if (path == NULL) goto end;
        PyList_SET_ITEM(paths, i, path);
        if (items[i].value == Py_None) continue;
        PyObject *encoding = PyBytes_FromStringAndSize(NULL, 1 + 2 * HASH_SIZE);
        PyObject *digest = PyBytes_FromStringAndSize(NULL, HASH_SIZE);
        if (encoding == NULL || digest == NULL) {
            Py_XDECREF(encoding);
            Py_XDECREF(digest);
            goto end;
        }
        unsigned char *bytes = (unsigned char *)PyBytes_AS_STRING(encoding);
        bytes[0] = LEAF_TAG;
        memcpy(bytes + 1, items[i].path, HASH_SIZE);
        sha256((const unsigned char *)PyBytes_AS_STRING(items[i].value), (size_t)PyBytes_GET_SIZE(items[i].value),
               bytes + 1 + HASH_SIZE);
        sha256(bytes, 1 + 2 * HASH_SIZE, (unsigned char *)PyBytes_AS_STRING(digest));
        PyObject *leaf = PyTuple_Pack(3, path, digest, encoding);
        Py_DECREF(encoding);
        Py_DECREF(digest);
        if (leaf == NULL) goto end;
        int failed = PyList_Append(leaves, leaf);
        Py_DECREF(leaf);
        if (failed) goto end;
    }
    result = PyTuple_Pack(2, paths, leaves);
end:
    Py_XDECREF(paths);
    Py_XDECREF(leaves);
    PyMem_Free(items);
    return result;
}

static PyObject *position(PyObject *module, PyObject *args) {
    int depth, last;
    PyObject *path;
    if (!PyArg_ParseTuple(args, "iSi", &depth, &path, &last)) return NULL;
    if (depth < 0 || depth > DEPTH || PyBytes_GET_SIZE(path) != HASH_SIZE || last < -1 || last > 1) {
        PyErr_SetString(PyExc_ValueError, "depth 0..256, a 32-byte path, last -1, 0 or 1");
        return NULL;
    }
    Pos pos = {depth, (const unsigned char *)PyBytes_AS_STRING(path), depth == 0 ? -1 : last};
    unsigned char bits[HASH_SIZE];
    position_bits(pos, bits); /* through the stored form, as every placed position goes */
    Pos stored = {depth, bits, -1};
    return position_object(stored);
}

static PyMethodDef methods[] = {
    {"apply", apply, METH_VARARGS,
     "apply(root, paths, leaves, known, read, corrupt) -> (root, new, stale, placed, previous): smt_tree._Run."},
    {"apply_paged", apply_paged, METH_VARARGS,
     "apply_paged(root, paths, leaves, known, read, corrupt, get, key_prefix, damaged, missing) -> (root, new, "
     "records, previous): the run, and the pages it changes as tree_store.paged gives them (a page's record is "
     "get(key_prefix + its name); nodes not in known are read from their pages and added to it)."},
    {"entries", entries, METH_O,
     "entries(changes) -> (paths, leaves): each change's path, and (path, leaf hash, leaf encoding) for "
     "those that set a value, sorted by path (smt_tree._entries)."},
    {"position", position, METH_VARARGS,
     "(depth, prefix) of the first depth bits of path, the last replaced by last (0 or 1; -1 keeps it)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_smt_native",
                                    "The state tree's apply, compiled (see core/smt_tree.py).", -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__smt_native(void) { return PyModule_Create(&module); }
