/* The store's page records: what ``tree_store.paged`` computes from an Update (smt_native.h). */
#include "smt_native.h"

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

PyObject *page_name(int depth, const unsigned char *bits) {
    PyObject *name = PyUnicode_New(depth, 127);
    if (name == NULL) return NULL;
    Py_UCS1 *chars = PyUnicode_1BYTE_DATA(name);
    for (int at = 0; at < depth; at++) chars[at] = bit_at(bits, at) ? '1' : '0';
    return name;
}

/* ``damaged(name, record)`` (tree_store.decode_page, which raises naming the page and what is
 * wrong with it); -1. */
static int damaged_error(PyObject *damaged, PyObject *name, PyObject *record) {
    PyObject *ignored = PyObject_CallFunctionObjArgs(damaged, name, record, NULL);
    Py_XDECREF(ignored);
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a damaged state tree page");
    return -1;
}

int record_bitmap(PyObject *record, PyObject *name, PyObject *damaged) {
    const unsigned char *raw = (const unsigned char *)PyBytes_AS_STRING(record);
    Py_ssize_t size = PyBytes_GET_SIZE(record);
    int bitmap = size >= 2 ? (raw[0] << 8 | raw[1]) : 0;
    if (size < 2 || size != 2 + (Py_ssize_t)NODE_SIZE * __builtin_popcount((unsigned)bitmap))
        return damaged_error(damaged, name, record);
    return bitmap;
}

/* The slots of a stored page record about to be rewritten: beyond ``record_bitmap``'s check, a
 * page with no node or a slot past the fifteenth is damaged too (as tree_store.decode_page). */
static int decode_slots(PyObject *record, PyObject *name, PyObject *damaged, const char **slots) {
    int bitmap = record_bitmap(record, name, damaged);
    if (bitmap < 0) return -1;
    if (bitmap == 0 || (bitmap >> PAGE_SLOTS)) return damaged_error(damaged, name, record);
    const char *at = PyBytes_AS_STRING(record) + 2;
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
int pages(Run *run, PyObject *records, PyObject *previous) {
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
            PyObject *key = PyUnicode_Concat(run->key_prefix, name);
            if (key == NULL) goto next;
            old = PyObject_CallOneArg(run->get, key);
            Py_DECREF(key);
            if (old == NULL) goto next;
            if (old != Py_None) {
                if (!PyBytes_Check(old)) {
                    PyErr_SetString(PyExc_TypeError, "a page's record is bytes or None");
                    goto next;
                }
                if (decode_slots(old, name, run->damaged, slots) < 0) goto next;
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
