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
 * Interface: apply(root, paths, leaves, known, read, corrupt) -> (root, new, stale, placed,
 * previous), and apply_paged (below), which returns pages instead of positions
 *   root     32-byte hash of the tree before
 *   paths    list of every changed key's 32-byte path, sorted
 *   leaves   list of (path, leaf hash, leaf encoding) for the changes that set a value, sorted
 *   known    dict of node hash -> node checked before (looked up first, never re-hashed)
 *   read     callable(node_hash, (depth, prefix)) -> 65-byte node, checked (may raise)
 *   corrupt  the CorruptNode exception class, called as corrupt(node_hash, reason)
 *   climbing the encoding of a leaf the whole tree collapsed to, or None
 * Positions are (depth, prefix) tuples, prefix the path's first ``depth`` bits as an int.
 */
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

static void position_bits(Pos pos, unsigned char *bits);
static PyObject *page_name(int depth, const unsigned char *bits);
static int decode_slots(PyObject *record, PyObject *name, PyObject *damaged, const char **slots);

/* SHA-256 through OpenSSL's low-level calls: its one-shot SHA256() looks the algorithm up by
 * name at every call in OpenSSL 3, which costs more than hashing 65 bytes. */
static void sha256(const unsigned char *data, size_t size, unsigned char *out) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, data, size);
    SHA256_Final(out, &context);
}

static inline int bit_at(const unsigned char *path, int depth) {
    return (path[depth >> 3] >> (7 - (depth & 7))) & 1;
}

static void subtree_clear(Subtree *s) {
    Py_CLEAR(s->hash);
    Py_CLEAR(s->encoding);
}

static int is_empty(Run *run, PyObject *hash) {
    return PyBytes_GET_SIZE(hash) == HASH_SIZE &&
           memcmp(PyBytes_AS_STRING(hash), PyBytes_AS_STRING(run->empty), HASH_SIZE) == 0;
}

static int same_hash(PyObject *a, PyObject *b) {
    return a == b || (PyBytes_GET_SIZE(a) == PyBytes_GET_SIZE(b) &&
                      memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), PyBytes_GET_SIZE(a)) == 0);
}

/* The position as Python's ``(depth, prefix)``. */
static PyObject *position_object(Pos pos) {
    PyObject *prefix;
    if (pos.depth == 0) {
        prefix = PyLong_FromLong(0);
    } else if (pos.depth <= 64) {
        unsigned long long value = 0;
        int bytes = (pos.depth + 7) / 8;
        for (int i = 0; i < bytes; i++) value = (value << 8) | pos.rep[i];
        value >>= (8 * bytes - pos.depth);
        if (pos.last >= 0) value = (value & ~1ULL) | (unsigned long long)pos.last;
        prefix = PyLong_FromUnsignedLongLong(value);
    } else {
        /* Deeper than 64 bits: two keys whose paths share 64 bits. Rare, so through Python
         * ints: the whole path, shifted, its last bit set. */
        PyObject *whole = _PyLong_FromByteArray(pos.rep, HASH_SIZE, 0, 0);
        if (whole == NULL) return NULL;
        PyObject *shift = PyLong_FromLong(DEPTH - pos.depth);
        if (shift == NULL) { Py_DECREF(whole); return NULL; }
        prefix = PyNumber_Rshift(whole, shift);
        Py_DECREF(whole);
        Py_DECREF(shift);
        if (prefix != NULL && pos.last >= 0) {
            PyObject *one = PyLong_FromLong(1);
            PyObject *bit = PyLong_FromLong(pos.last);
            PyObject *cleared = NULL, *halved = NULL;
            if (one && bit) halved = PyNumber_Rshift(prefix, one);
            if (halved) cleared = PyNumber_Lshift(halved, one);
            Py_XDECREF(halved);
            Py_DECREF(prefix);
            prefix = cleared ? PyNumber_Or(cleared, bit) : NULL;
            Py_XDECREF(cleared);
            Py_XDECREF(one);
            Py_XDECREF(bit);
        }
    }
    if (prefix == NULL) return NULL;
    PyObject *depth = PyLong_FromLong(pos.depth);
    if (depth == NULL) { Py_DECREF(prefix); return NULL; }
    PyObject *result = PyTuple_Pack(2, depth, prefix);
    Py_DECREF(depth);
    Py_DECREF(prefix);
    return result;
}

static Pos child_pos(Pos parent, int side) {
    Pos child = {parent.depth + 1, parent.rep, side};
    return child;
}

static int corrupt_error(Run *run, PyObject *node, const char *reason) {
    PyObject *exc = PyObject_CallFunction(run->corrupt, "Os", node, reason);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return -1;
}

static PyObject *raise_missing(Run *run, PyObject *node) {
    PyObject *exc = PyObject_CallOneArg(run->missing, node);
    if (exc != NULL) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

/* The node ``node`` kept at ``pos``, from its page (``StateTree.read`` over ``tree_store``'s
 * pages, compiled): missing, damaged or not hashing to ``node`` is the same error. Checked
 * nodes are added to ``known``. A new reference. */
static PyObject *fetch_from_page(Run *run, PyObject *node, Pos pos) {
    unsigned char bits[HASH_SIZE], page_bits[HASH_SIZE];
    position_bits(pos, bits);
    int below = pos.depth % PAGE_LEVELS, page_depth = pos.depth - below, low = 0;
    Pos top = {page_depth, bits, -1};
    position_bits(top, page_bits);
    for (int at = page_depth; at < pos.depth; at++) low = (low << 1) | bit_at(bits, at);
    int slot = (1 << below) - 1 + low;
    PyObject *name = page_name(page_depth, page_bits), *key = NULL, *record = NULL, *raw = NULL;
    if (name == NULL) return NULL;
    key = PyUnicode_Concat(run->key_prefix, name);
    if (key == NULL) goto end;
    record = PyObject_CallOneArg(run->get, key);
    if (record == NULL) goto end;
    if (record == Py_None) {
        raise_missing(run, node);
        goto end;
    }
    if (!PyBytes_Check(record)) {
        PyErr_SetString(PyExc_TypeError, "a page's record is bytes or None");
        goto end;
    }
    /* as _Pages.record and .at: a record whose length its bitmap does not explain is damaged;
     * a slot its bitmap does not have is a missing node */
    const unsigned char *page = (const unsigned char *)PyBytes_AS_STRING(record);
    Py_ssize_t size = PyBytes_GET_SIZE(record);
    int bitmap = size >= 2 ? (page[0] << 8 | page[1]) : 0;
    int count = 0, before = 0;
    for (int at = 0; at < 16; at++) {
        count += (bitmap >> at) & 1;
        if (at < slot) before += (bitmap >> at) & 1;
    }
    if (size < 2 || size != 2 + (Py_ssize_t)NODE_SIZE * count) {
        PyObject *ignored = PyObject_CallFunctionObjArgs(run->damaged, name, record, NULL);
        Py_XDECREF(ignored);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a damaged state tree page");
        goto end;
    }
    if (!((bitmap >> slot) & 1)) {
        raise_missing(run, node);
        goto end;
    }
    raw = PyBytes_FromStringAndSize((const char *)page + 2 + (Py_ssize_t)NODE_SIZE * before, NODE_SIZE);
    if (raw == NULL) goto end;
    unsigned char digest[HASH_SIZE];
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(raw);
    if (bytes[0] > INNER_TAG) {
        char reason[64];
        snprintf(reason, sizeof(reason), "%d bytes starting %02x, not a 65-byte node", NODE_SIZE, bytes[0]);
        corrupt_error(run, node, reason);
        Py_CLEAR(raw);
        goto end;
    }
    sha256(bytes, NODE_SIZE, digest);
    if (memcmp(digest, PyBytes_AS_STRING(node), HASH_SIZE) != 0) {
        corrupt_error(run, node, "its bytes hash to another value");
        Py_CLEAR(raw);
        goto end;
    }
    if (PyDict_SetItem(run->known, node, raw) < 0) Py_CLEAR(raw);
end:
    Py_DECREF(name);
    Py_XDECREF(key);
    Py_XDECREF(record);
    return raw;
}

/* ``known.get(node) or read(node, position)``: a new reference to a 65-byte node. */
static PyObject *read_node(Run *run, PyObject *node, Pos pos) {
    PyObject *raw = PyDict_GetItemWithError(run->known, node);
    if (raw != NULL) {
        Py_INCREF(raw);
    } else if (run->get != NULL) {
        if (PyErr_Occurred()) return NULL;
        raw = fetch_from_page(run, node, pos);
        if (raw == NULL) return NULL;
    } else {
        if (PyErr_Occurred()) return NULL;
        PyObject *position = position_object(pos);
        if (position == NULL) return NULL;
        raw = PyObject_CallFunctionObjArgs(run->read, node, position, NULL);
        Py_DECREF(position);
        if (raw == NULL) return NULL;
    }
    if (!PyBytes_Check(raw) || PyBytes_GET_SIZE(raw) != NODE_SIZE) {
        Py_DECREF(raw);
        corrupt_error(run, node, "not a 65-byte node");
        return NULL;
    }
    return raw;
}

/* The first ``depth`` bits of a position, the rest zero. */
static void position_bits(Pos pos, unsigned char *bits) {
    int whole = pos.depth / 8, rest = pos.depth % 8;
    memset(bits, 0, HASH_SIZE);
    memcpy(bits, pos.rep, (size_t)whole);
    if (rest) bits[whole] = pos.rep[whole] & (unsigned char)(0xFF << (8 - rest));
    if (pos.last >= 0 && pos.depth > 0) {
        int at = pos.depth - 1;
        unsigned char mask = (unsigned char)(1 << (7 - (at & 7)));
        bits[at >> 3] = (unsigned char)(pos.last ? (bits[at >> 3] | mask) : (bits[at >> 3] & ~mask));
    }
}

static int entries_add(Run *run, Entries *entries, Pos pos, PyObject *node) {
    if (entries->size == entries->capacity) {
        Py_ssize_t capacity = entries->capacity ? 2 * entries->capacity : 64;
        Entry *items = PyMem_Realloc(entries->items, sizeof(Entry) * (size_t)capacity);
        if (items == NULL) { PyErr_NoMemory(); return -1; }
        entries->items = items;
        entries->capacity = capacity;
    }
    Entry *entry = &entries->items[entries->size++];
    entry->depth = pos.depth;
    position_bits(pos, entry->bits);
    Py_INCREF(node);
    entry->node = node;
    entry->seq = run->seq++;
    return 0;
}

static void entries_free(Entries *entries) {
    for (Py_ssize_t i = 0; i < entries->size; i++) Py_DECREF(entries->items[i].node);
    PyMem_Free(entries->items);
    entries->items = NULL;
    entries->size = entries->capacity = 0;
}

static int vacate(Run *run, Pos pos, PyObject *raw) { return entries_add(run, &run->previous, pos, raw); }

static int place(Run *run, Pos pos, PyObject *encoding) { return entries_add(run, &run->placed, pos, encoding); }

/* Make and place the inner node over ``left`` and ``right``, and place the children that are
 * leaves to be placed anew. Returns a new reference to its hash. */
static PyObject *inner(Run *run, Subtree *left, Subtree *right, Pos pos) {
    PyObject *encoding = PyBytes_FromStringAndSize(NULL, NODE_SIZE);
    if (encoding == NULL) return NULL;
    unsigned char *buffer = (unsigned char *)PyBytes_AS_STRING(encoding);
    buffer[0] = INNER_TAG;
    memcpy(buffer + 1, PyBytes_AS_STRING(left->hash), HASH_SIZE);
    memcpy(buffer + 1 + HASH_SIZE, PyBytes_AS_STRING(right->hash), HASH_SIZE);
    PyObject *digest = PyBytes_FromStringAndSize(NULL, HASH_SIZE);
    if (digest == NULL) { Py_DECREF(encoding); return NULL; }
    sha256(buffer, NODE_SIZE, (unsigned char *)PyBytes_AS_STRING(digest));
    if (PyDict_SetItem(run->new_nodes, digest, encoding) < 0 || place(run, pos, encoding) < 0 ||
        (left->encoding != NULL && place(run, child_pos(pos, 0), left->encoding) < 0) ||
        (right->encoding != NULL && place(run, child_pos(pos, 1), right->encoding) < 0)) {
        Py_DECREF(encoding);
        Py_DECREF(digest);
        return NULL;
    }
    Py_DECREF(encoding);
    return digest;
}

/* The first index in [lo, hi) of a path whose bit ``depth`` is 1 (the paths share the bits
 * before it and are sorted, so zeros come first). */
static Py_ssize_t split_paths(const unsigned char **paths, int depth, Py_ssize_t lo, Py_ssize_t hi) {
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (bit_at(paths[mid], depth)) hi = mid; else lo = mid + 1;
    }
    return lo;
}

static Py_ssize_t split_leaves(const Leaf *leaves, int depth, Py_ssize_t lo, Py_ssize_t hi) {
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (bit_at(leaves[mid].path, depth)) hi = mid; else lo = mid + 1;
    }
    return lo;
}

/* bisect_left over sorted 32-byte paths. */
static Py_ssize_t bisect_paths(const unsigned char **paths, const unsigned char *path, Py_ssize_t lo, Py_ssize_t hi) {
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (memcmp(paths[mid], path, HASH_SIZE) < 0) lo = mid + 1; else hi = mid;
    }
    return lo;
}

static Py_ssize_t bisect_leaves(const Leaf *leaves, const unsigned char *path, Py_ssize_t lo, Py_ssize_t hi) {
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (memcmp(leaves[mid].path, path, HASH_SIZE) < 0) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* The subtree at ``depth`` that holds exactly ``leaves[lo:hi]``. */
static int build(Run *run, const Leaf *leaves, int depth, Py_ssize_t lo, Py_ssize_t hi, Subtree *out) {
    out->hash = NULL;
    out->encoding = NULL;
    if (lo == hi) {
        Py_INCREF(run->empty);
        out->hash = run->empty;
        out->is_leaf = 0;
        return 0;
    }
    if (hi - lo == 1) {
        const Leaf *leaf = &leaves[lo];
        if (leaf->is_new && PyDict_SetItem(run->new_nodes, leaf->hash, leaf->encoding) < 0) return -1;
        Py_INCREF(leaf->hash);
        Py_INCREF(leaf->encoding);
        out->hash = leaf->hash;
        out->is_leaf = 1;
        out->encoding = leaf->encoding;
        return 0;
    }
    if (depth == DEPTH) {
        PyErr_SetString(PyExc_ValueError, "two distinct keys with one SHA-256 path");
        return -1;
    }
    Py_ssize_t mid = split_leaves(leaves, depth, lo, hi);
    Subtree left, right;
    if (build(run, leaves, depth + 1, lo, mid, &left) < 0) return -1;
    if (build(run, leaves, depth + 1, mid, hi, &right) < 0) { subtree_clear(&left); return -1; }
    Pos pos = {depth, leaves[lo].path, -1};
    out->hash = inner(run, &left, &right, pos);
    out->is_leaf = 0;
    subtree_clear(&left);
    subtree_clear(&right);
    return out->hash == NULL ? -1 : 0;
}

/* The encoding of ``child`` if it is a leaf (a new reference in *encoding), else NULL there.
 * A leaf that was not to be placed anew sits at ``pos`` now; it is about to climb, so that
 * is vacated. */
static int leaf_of(Run *run, Subtree *child, Pos pos, PyObject **encoding) {
    *encoding = NULL;
    if (child->encoding != NULL || child->is_leaf == 0) {
        Py_XINCREF(child->encoding);
        *encoding = child->encoding;
        return 0;
    }
    PyObject *raw = read_node(run, child->hash, pos); /* as StateTree.read: remembered first */
    if (raw == NULL) return -1;
    if (PyBytes_AS_STRING(raw)[0] != LEAF_TAG) {
        Py_DECREF(raw);
        return 0;
    }
    if (vacate(run, pos, raw) < 0) { Py_DECREF(raw); return -1; }
    *encoding = raw;
    return 0;
}

/* The parent of two new children, collapsed as the rules say. Consumes left and right. */
static int join(Run *run, Subtree *left, Subtree *right, Pos pos, Subtree *out) {
    out->hash = NULL;
    out->encoding = NULL;
    out->is_leaf = 0;
    Subtree *only = NULL;
    int side = 0;
    if (is_empty(run, left->hash)) {
        if (is_empty(run, right->hash)) {
            Py_INCREF(run->empty);
            out->hash = run->empty;
            goto done;
        }
        only = right;
        side = 1;
    } else if (is_empty(run, right->hash)) {
        only = left;
        side = 0;
    }
    if (only != NULL) {
        PyObject *climbing;
        if (leaf_of(run, only, child_pos(pos, side), &climbing) < 0) goto fail;
        if (climbing != NULL) {
            Py_INCREF(only->hash);
            out->hash = only->hash;
            out->is_leaf = 1;
            out->encoding = climbing;
            goto done;
        }
    }
    out->hash = inner(run, left, right, pos);
    if (out->hash == NULL) goto fail;
done:
    subtree_clear(left);
    subtree_clear(right);
    return 0;
fail:
    subtree_clear(left);
    subtree_clear(right);
    subtree_clear(out);
    return -1;
}

/* The leaves among changes lo:hi: the range [*first, *last) of run->leaves. */
static void new_leaves(Run *run, Py_ssize_t lo, Py_ssize_t hi, Py_ssize_t *first, Py_ssize_t *last) {
    *first = bisect_leaves(run->leaves, run->paths[lo], 0, run->n_leaves);
    Py_ssize_t end = *first;
    /* the leaves up to and including paths[hi - 1] */
    Py_ssize_t top = run->n_leaves;
    while (end < top) {
        Py_ssize_t mid = end + (top - end) / 2;
        if (memcmp(run->leaves[mid].path, run->paths[hi - 1], HASH_SIZE) <= 0) end = mid + 1; else top = mid;
    }
    *last = end;
}

/* Changes lo:hi arrive at a stored leaf: rebuild the subtree from both. */
static int merge_leaf(Run *run, PyObject *node, PyObject *raw, int depth, Py_ssize_t lo, Py_ssize_t hi, Pos pos, Subtree *out) {
    const unsigned char *path = (const unsigned char *)PyBytes_AS_STRING(raw) + 1;
    Py_ssize_t first, last;
    new_leaves(run, lo, hi, &first, &last);
    Py_ssize_t count = last - first;
    Leaf *leaves = PyMem_Malloc(sizeof(Leaf) * (size_t)(count + 1));
    if (leaves == NULL) { PyErr_NoMemory(); return -1; }
    memcpy(leaves, run->leaves + first, sizeof(Leaf) * (size_t)count);
    Leaf stored = {path, node, raw, 0};
    Py_ssize_t at = bisect_paths(run->paths, path, lo, hi);
    if (at < hi && memcmp(run->paths[at], path, HASH_SIZE) == 0) { /* the leaf's own key changes */
        Py_ssize_t spot = bisect_leaves(leaves, path, 0, count);
        if (spot < count && memcmp(leaves[spot].path, path, HASH_SIZE) == 0 && same_hash(leaves[spot].hash, node)) {
            leaves[spot] = stored; /* set to the value it had */
        } else if (run->stale != NULL && PyList_Append(run->stale, node) < 0) {
            PyMem_Free(leaves);
            return -1;
        }
    } else {
        Py_ssize_t spot = bisect_leaves(leaves, path, 0, count);
        memmove(leaves + spot + 1, leaves + spot, sizeof(Leaf) * (size_t)(count - spot));
        leaves[spot] = stored;
        count++;
    }
    int status = build(run, leaves, depth, 0, count, out);
    PyMem_Free(leaves);
    if (status < 0) return -1;
    if (!same_hash(out->hash, node) && vacate(run, pos, raw) < 0) { /* went, or moves down */
        subtree_clear(out);
        return -1;
    }
    return 0;
}

/* What the subtree ``node`` at ``depth`` becomes after changes lo:hi. */
static int update(Run *run, PyObject *node, int depth, Py_ssize_t lo, Py_ssize_t hi, Subtree *out) {
    out->hash = NULL;
    out->encoding = NULL;
    out->is_leaf = -1;
    if (lo == hi) {
        Py_INCREF(node);
        out->hash = node;
        return 0;
    }
    if (is_empty(run, node)) {
        Py_ssize_t first, last;
        new_leaves(run, lo, hi, &first, &last);
        return build(run, run->leaves, depth, first, last, out);
    }
    Pos pos = {depth, run->paths[lo], -1};
    PyObject *raw = read_node(run, node, pos);
    if (raw == NULL) return -1;
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(raw);
    if (bytes[0] != INNER_TAG) {
        int status = merge_leaf(run, node, raw, depth, lo, hi, pos, out);
        Py_DECREF(raw);
        return status;
    }
    if (depth == DEPTH) {
        Py_DECREF(raw);
        return corrupt_error(run, node, "an inner node below depth 256");
    }
    PyObject *left = PyBytes_FromStringAndSize((const char *)bytes + 1, HASH_SIZE);
    PyObject *right = PyBytes_FromStringAndSize((const char *)bytes + 1 + HASH_SIZE, HASH_SIZE);
    Subtree new_left = {NULL, -1, NULL}, new_right = {NULL, -1, NULL};
    if (left == NULL || right == NULL) goto fail;
    Py_ssize_t mid = split_paths(run->paths, depth, lo, hi);
    if (update(run, left, depth + 1, lo, mid, &new_left) < 0) goto fail;
    if (update(run, right, depth + 1, mid, hi, &new_right) < 0) goto fail;
    int left_same = same_hash(new_left.hash, left), right_same = same_hash(new_right.hash, right);
    if (left_same && right_same) {
        subtree_clear(&new_left);
        subtree_clear(&new_right);
        Py_INCREF(node);
        out->hash = node;
        out->is_leaf = 0;
        goto done;
    }
    if ((run->stale != NULL && PyList_Append(run->stale, node) < 0) || vacate(run, pos, raw) < 0) goto fail;
    /* a child whose hash did not change did not move: nothing to place for it */
    if (left_same) Py_CLEAR(new_left.encoding);
    if (right_same) Py_CLEAR(new_right.encoding);
    if (join(run, &new_left, &new_right, pos, out) < 0) goto fail;
done:
    Py_DECREF(left);
    Py_DECREF(right);
    Py_DECREF(raw);
    return 0;
fail:
    subtree_clear(&new_left);
    subtree_clear(&new_right);
    Py_XDECREF(left);
    Py_XDECREF(right);
    Py_DECREF(raw);
    return -1;
}

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

static int compare_entries(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->depth != y->depth) return x->depth < y->depth ? -1 : 1;
    int bits = memcmp(x->bits, y->bits, HASH_SIZE);
    if (bits) return bits;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* Sort by position, and keep the last assignment to each position (a dict's ``d[k] = v``). */
static void settle(Entries *entries) {
    if (entries->size == 0) return;
    qsort(entries->items, (size_t)entries->size, sizeof(Entry), compare_entries);
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < entries->size; i++) {
        Entry *entry = &entries->items[i];
        if (i + 1 < entries->size && entry->depth == entries->items[i + 1].depth &&
            memcmp(entry->bits, entries->items[i + 1].bits, HASH_SIZE) == 0) {
            Py_DECREF(entry->node); /* a later assignment to the same position wins */
            continue;
        }
        entries->items[kept++] = *entry;
    }
    entries->size = kept;
}

static PyObject *entries_dict(Entries *entries) {
    PyObject *dict = PyDict_New();
    if (dict == NULL) return NULL;
    for (Py_ssize_t i = 0; i < entries->size; i++) {
        Entry *entry = &entries->items[i];
        Pos pos = {entry->depth, entry->bits, -1};
        PyObject *position = position_object(pos);
        if (position == NULL || PyDict_SetItem(dict, position, entry->node) < 0) {
            Py_XDECREF(position);
            Py_DECREF(dict);
            return NULL;
        }
        Py_DECREF(position);
    }
    return dict;
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

/* --- pages: four levels of the tree to a stored record (core/tree_store.py) ------------- */

/* One node placed (``node``) or cleared (NULL) in a page. */
typedef struct {
    int page_depth;
    unsigned char page_bits[HASH_SIZE];
    int slot;
    PyObject *node; /* borrowed from the run's entries */
} PageOp;

static int compare_ops(const void *a, const void *b) {
    const PageOp *x = a, *y = b;
    if (x->page_depth != y->page_depth) return x->page_depth < y->page_depth ? -1 : 1;
    return memcmp(x->page_bits, y->page_bits, HASH_SIZE);
}

static void page_of_entry(const Entry *entry, PageOp *op) {
    int below = entry->depth % PAGE_LEVELS;
    op->page_depth = entry->depth - below;
    Pos top = {op->page_depth, entry->bits, -1};
    position_bits(top, op->page_bits);
    int low = 0; /* the entry's bits below the page's top, as an int */
    for (int at = op->page_depth; at < entry->depth; at++) low = (low << 1) | bit_at(entry->bits, at);
    op->slot = (1 << below) - 1 + low;
}

static int same_position(int depth, const unsigned char *bits, const Entry *entry) {
    return entry->depth == depth && memcmp(entry->bits, bits, HASH_SIZE) == 0;
}

/* Whether ``entries`` (settled) has the position (depth, bits). */
static int entries_have(const Entries *entries, int depth, const unsigned char *bits) {
    Py_ssize_t lo = 0, hi = entries->size;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        const Entry *entry = &entries->items[mid];
        int order = entry->depth != depth ? (entry->depth < depth ? -1 : 1) : memcmp(entry->bits, bits, HASH_SIZE);
        if (order < 0) lo = mid + 1; else hi = mid;
    }
    return lo < entries->size && same_position(depth, bits, &entries->items[lo]);
}

static PyObject *page_name(int depth, const unsigned char *bits) {
    PyObject *name = PyUnicode_New(depth, 127);
    if (name == NULL) return NULL;
    Py_UCS1 *chars = PyUnicode_1BYTE_DATA(name);
    for (int at = 0; at < depth; at++) chars[at] = bit_at(bits, at) ? '1' : '0';
    return name;
}

/* The slots of a stored page record; a record whose bitmap and length disagree is handed to
 * ``damaged`` (tree_store.decode_page), which raises naming the page. */
static int decode_slots(PyObject *record, PyObject *name, PyObject *damaged, const char **slots) {
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(record);
    Py_ssize_t size = PyBytes_GET_SIZE(record);
    int bitmap = size >= 2 ? (raw[0] << 8 | raw[1]) : 0;
    int count = 0;
    for (int slot = 0; slot < PAGE_SLOTS; slot++) count += (bitmap >> slot) & 1;
    if (size < 2 || bitmap == 0 || (bitmap >> PAGE_SLOTS) || size != 2 + (Py_ssize_t)NODE_SIZE * count) {
        PyObject *ignored = PyObject_CallFunctionObjArgs(damaged, name, record, NULL);
        Py_XDECREF(ignored);
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a damaged state tree page");
        return -1;
    }
    const char *at = (const char *)raw + 2;
    for (int slot = 0; slot < PAGE_SLOTS; slot++) {
        if ((bitmap >> slot) & 1) {
            slots[slot] = at;
            at += NODE_SIZE;
        } else {
            slots[slot] = NULL;
        }
    }
    return 0;
}

static PyObject *encode_slots(const char **slots) {
    int bitmap = 0, count = 0;
    for (int slot = 0; slot < PAGE_SLOTS; slot++) {
        if (slots[slot] != NULL) {
            bitmap |= 1 << slot;
            count++;
        }
    }
    if (count == 0) Py_RETURN_NONE;
    PyObject *record = PyBytes_FromStringAndSize(NULL, 2 + (Py_ssize_t)NODE_SIZE * count);
    if (record == NULL) return NULL;
    char *out = PyBytes_AS_STRING(record);
    out[0] = (char)(bitmap >> 8);
    out[1] = (char)(bitmap & 0xFF);
    out += 2;
    for (int slot = 0; slot < PAGE_SLOTS; slot++) {
        if (slots[slot] != NULL) {
            memcpy(out, slots[slot], NODE_SIZE);
            out += NODE_SIZE;
        }
    }
    return record;
}

/* The pages the run changed, as (records, previous) dicts by page name, pages in position
 * order: what tree_store.paged computes from an Update. */
static int pages(Run *run, PyObject *get, PyObject *key_prefix, PyObject *damaged, PyObject *records,
                 PyObject *previous) {
    Py_ssize_t n_ops = 0, capacity = run->placed.size + run->previous.size;
    PageOp *ops = PyMem_Malloc(sizeof(PageOp) * (size_t)(capacity + 1));
    if (ops == NULL) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < run->placed.size; i++) {
        page_of_entry(&run->placed.items[i], &ops[n_ops]);
        ops[n_ops++].node = run->placed.items[i].node;
    }
    /* vacated: positions that held a node before and have nothing placed now */
    for (Py_ssize_t i = 0; i < run->previous.size; i++) {
        const Entry *entry = &run->previous.items[i];
        if (entries_have(&run->placed, entry->depth, entry->bits)) continue;
        page_of_entry(entry, &ops[n_ops]);
        ops[n_ops++].node = NULL;
    }
    qsort(ops, (size_t)n_ops, sizeof(PageOp), compare_ops);
    int status = 0;
    for (Py_ssize_t first = 0; first < n_ops && status == 0;) {
        Py_ssize_t last = first + 1;
        while (last < n_ops && compare_ops(&ops[first], &ops[last]) == 0) last++;
        const char *slots[PAGE_SLOTS] = {NULL};
        PyObject *name = page_name(ops[first].page_depth, ops[first].page_bits);
        PyObject *old = NULL, *record = NULL;
        status = -1;
        if (name == NULL) goto next;
        /* a page held something exactly when the old tree had a node at its top */
        if (entries_have(&run->previous, ops[first].page_depth, ops[first].page_bits)) {
            PyObject *key = PyUnicode_Concat(key_prefix, name);
            if (key == NULL) goto next;
            old = PyObject_CallOneArg(get, key);
            Py_DECREF(key);
            if (old == NULL) goto next;
            if (old != Py_None) {
                if (!PyBytes_Check(old)) {
                    PyErr_SetString(PyExc_TypeError, "a page's record is bytes or None");
                    goto next;
                }
                if (decode_slots(old, name, damaged, slots) < 0) goto next;
            }
        } else {
            Py_INCREF(Py_None);
            old = Py_None;
        }
        for (Py_ssize_t i = first; i < last; i++) {
            if (ops[i].node != NULL && PyBytes_GET_SIZE(ops[i].node) != NODE_SIZE) {
                PyErr_SetString(PyExc_ValueError, "a node is 65 bytes");
                goto next;
            }
            slots[ops[i].slot] = ops[i].node == NULL ? NULL : PyBytes_AS_STRING(ops[i].node);
        }
        record = encode_slots(slots);
        if (record == NULL || PyDict_SetItem(records, name, record) < 0 || PyDict_SetItem(previous, name, old) < 0)
            goto next;
        status = 0;
    next:
        Py_XDECREF(name);
        Py_XDECREF(old);
        Py_XDECREF(record);
        first = last;
    }
    PyMem_Free(ops);
    return status;
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
    if (pages(&run, run.get, run.key_prefix, run.damaged, records, previous) < 0) goto end;
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
