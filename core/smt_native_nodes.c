/* Hashing, positions, what a run places and vacates, and reading nodes (smt_native.h). */
#include "smt_native.h"

/* SHA-256 through OpenSSL's low-level calls: its one-shot SHA256() looks the algorithm up by
 * name at every call in OpenSSL 3, which costs more than hashing 65 bytes. */
void sha256(const unsigned char *data, size_t size, unsigned char *out) {
    SHA256_CTX context;
    SHA256_Init(&context);
    SHA256_Update(&context, data, size);
    SHA256_Final(out, &context);
}




/* The position as Python's ``(depth, prefix)``. */
PyObject *position_object(Pos pos) {
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


int corrupt_error(Run *run, PyObject *node, const char *reason) {
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
    int bitmap = record_bitmap(record, name, run->damaged);
    if (bitmap < 0) goto end;
    const unsigned char *page = (const unsigned char *)PyBytes_AS_STRING(record);
    int before = __builtin_popcount((unsigned)bitmap & ((1u << slot) - 1));
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
PyObject *read_node(Run *run, PyObject *node, Pos pos) {
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
void position_bits(Pos pos, unsigned char *bits) {
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

void entries_free(Entries *entries) {
    for (Py_ssize_t i = 0; i < entries->size; i++) Py_DECREF(entries->items[i].node);
    PyMem_Free(entries->items);
    entries->items = NULL;
    entries->size = entries->capacity = 0;
}

int vacate(Run *run, Pos pos, PyObject *raw) { return entries_add(run, &run->previous, pos, raw); }

int place(Run *run, Pos pos, PyObject *encoding) { return entries_add(run, &run->placed, pos, encoding); }

static int compare_entries(const void *a, const void *b) {
    const Entry *x = a, *y = b;
    if (x->depth != y->depth) return x->depth < y->depth ? -1 : 1;
    int bits = memcmp(x->bits, y->bits, HASH_SIZE);
    if (bits) return bits;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* Sort by position, and keep the last assignment to each position (a dict's ``d[k] = v``). */
void settle(Entries *entries) {
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

PyObject *entries_dict(Entries *entries) {
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
