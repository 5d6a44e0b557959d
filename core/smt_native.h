/*
 * The compiled state tree's shared types and functions (core/_smt_native.c is the module;
 * smt_native_nodes.c: hashing, positions, what a run places and vacates, reading nodes;
 * smt_native_descent.c: the descent of ``smt_tree._Run``; smt_native_pages.c: the store's
 * page records). Everything here is internal to the extension (compiled with hidden
 * visibility): only PyInit__smt_native is exported.
 */
#ifndef TRACO_SMT_NATIVE_H
#define TRACO_SMT_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/sha.h>
#include <string.h>

#define DEPTH 256
#define HASH_SIZE 32
#define NODE_SIZE 65
#define LEAF_TAG 0x00
#define INNER_TAG 0x01

typedef struct {
    const unsigned char *path; /* 32 bytes, inside an object the run keeps alive */
    PyObject *hash;            /* borrowed: from the caller's list or the run's stored raw */
    PyObject *encoding;        /* borrowed, as hash */
    int is_new;
} Leaf;

/* What a subtree became (``_Subtree``): its hash; whether it is a leaf (-1: unknown, it was
 * not touched); the encoding of a leaf its parent must place, or NULL. References owned. */
typedef struct {
    PyObject *hash;
    int is_leaf;
    PyObject *encoding;
} Subtree;

/* Where a node is kept, without making the Python int until it is needed: the first
 * ``depth`` bits of ``rep``, the last of them replaced by ``last`` when it is 0 or 1. */
typedef struct {
    int depth;
    const unsigned char *rep;
    int last;
} Pos;

/* A position made self-contained (its first ``depth`` bits, the rest zero) and what it holds:
 * a node placed there, or the node it held before (the undo). ``seq`` keeps the order of
 * assignments, so that the last one to a position wins, as in a Python dict. */
typedef struct {
    int depth;
    unsigned char bits[HASH_SIZE];
    PyObject *node; /* owned */
    Py_ssize_t seq;
} Entry;

typedef struct {
    Entry *items;
    Py_ssize_t size;
    Py_ssize_t capacity;
} Entries;

typedef struct {
    PyObject *known;
    PyObject *read;
    PyObject *corrupt;
    PyObject *empty;
    const unsigned char **paths;
    Py_ssize_t n_paths;
    Leaf *leaves;
    Py_ssize_t n_leaves;
    PyObject *new_nodes;
    PyObject *stale; /* NULL: not wanted */
    Entries placed;
    Entries previous;
    Py_ssize_t seq;
    /* apply_paged only (NULL otherwise): a node not in ``known`` is read from its page here,
     * ``get(key_prefix + page name)``, instead of through ``read``. */
    PyObject *get;
    PyObject *key_prefix;
    PyObject *damaged;
    PyObject *missing;
} Run;

#define PAGE_LEVELS 4
#define PAGE_SLOTS 15

static inline int bit_at(const unsigned char *path, int depth) {
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1;
}

void sha256(const unsigned char *data, size_t size, unsigned char *out);
PyObject *position_object(Pos pos);
int corrupt_error(Run *run, PyObject *node, const char *reason);
PyObject *read_node(Run *run, PyObject *node, Pos pos);
void position_bits(Pos pos, unsigned char *bits);
void entries_free(Entries *entries);
int vacate(Run *run, Pos pos, PyObject *raw);
int place(Run *run, Pos pos, PyObject *encoding);
void settle(Entries *entries);
PyObject *entries_dict(Entries *entries);
int update(Run *run, PyObject *node, int depth, Py_ssize_t lo, Py_ssize_t hi, Subtree *out);
PyObject *page_name(int depth, const unsigned char *bits);
int pages(Run *run, PyObject *records, PyObject *previous);
/* A page record's bitmap, its length checked against it as ``_Pages.record`` does; -1 with
 * ``damaged``'s error set otherwise. */
int record_bitmap(PyObject *record, PyObject *name, PyObject *damaged);

static inline void subtree_clear(Subtree *s) {
    Py_CLEAR(s->hash);
    Py_CLEAR(s->encoding);
}

static inline int is_empty(Run *run, PyObject *hash) {
    return PyBytes_GET_SIZE(hash) == HASH_SIZE &&
           memcmp(PyBytes_AS_STRING(hash), PyBytes_AS_STRING(run->empty), HASH_SIZE) == 0;
}

static inline int same_hash(PyObject *a, PyObject *b) {
    return a == b || (PyBytes_GET_SIZE(a) == PyBytes_GET_SIZE(b) &&
                      memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), PyBytes_GET_SIZE(a)) == 0);
}

static inline Pos child_pos(Pos parent, int side) {
    Pos child = {parent.depth + 1, parent.rep, side};
    return child;
}

#endif
