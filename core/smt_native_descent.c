/* The descent of ``smt_tree._Run``, compiled: update, merge_leaf, build, join (smt_native.h). */
#include "smt_native.h"

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
int update(Run *run, PyObject *node, int depth, Py_ssize_t lo, Py_ssize_t hi, Subtree *out) {
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
