/* Parser layer, optional C accelerator: the pairs path of EventParser (`data: value` + blank line pairs).

   The pure-Python function _pairs_reference in _parser.py is the reference: this module must return exactly
   what it returns for every input the parser hands it (tests/parser/test_parser_pairs.py and
   fuzz/fuzz_parser.py check it). When the extension is not built (no C compiler) or SSE_TOOLKIT_PURE_PYTHON
   is set, the parser uses the reference.

   pairs(partial, chunk, sep, last_id) -> (events, rest) | None

   Contract (what EventParser passes): partial and chunk are bytes, partial holds no CR or LF (it is the
   start of an unfinished line), sep is one of "\r\r", "\n\n", "\r\n\r\n" (a line end and a blank line),
   last_id is a str. `partial + chunk` is split into `data: value` lines each followed by `sep`; the last
   line may be unfinished, and after the last blank line may come the start of a line that is not a
   `data: ` line. If that is the whole truth (no value and not the rest holds a CR or LF), returns one
   Event("message", value, last_id, None) per value, the values decoded as UTF-8 with U+FFFD for invalid
   bytes, and the bytes after the last complete pair (`rest`); otherwise None.

   Goal: what the reference costs, minus its intermediate objects (the split pieces, the joined copy for the
   line-end test, the map/zip of the event tuples). Two passes: the first finds the pairs and checks the
   shape without allocating; only a chunk that is pairs is decoded, in the second. Time O(len(partial) +
   len(chunk)): each byte is looked at by a bounded number of memchr/memcmp calls per pass (the next CR and
   the next LF are found once each and kept until passed). Memory: the events, and one copy of
   partial + chunk when partial is not empty. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *message_str; /* "message", interned once */
static PyTypeObject *event_type; /* sse_toolkit.parser._event.Event, checked to be built as tuple.__new__ builds */

/* Index of the first `c` in buf[from:n], or n. */
static Py_ssize_t
find_byte(const char *buf, Py_ssize_t from, Py_ssize_t n, char c)
{
    const char *at = memchr(buf + from, c, (size_t)(n - from));
    return at == NULL ? n : at - buf;
}

/* The first pass: the number of pairs in buf[0:n] and where the rest starts, or -1 if it is not pairs. */
static Py_ssize_t
count_pairs(const char *buf, Py_ssize_t n, const char *sep, Py_ssize_t seplen, Py_ssize_t *rest_at)
{
    if (n < 6 || memcmp(buf, "data: ", 6) != 0) {
        return -1;
    }
    Py_ssize_t count = 0;
    Py_ssize_t pos = 6; /* start of the current value */
    Py_ssize_t next_cr = find_byte(buf, 0, n, '\r'), next_lf = find_byte(buf, 0, n, '\n');
    for (;;) {
        if (next_cr < pos) {
            next_cr = find_byte(buf, pos, n, '\r');
        }
        if (next_lf < pos) {
            next_lf = find_byte(buf, pos, n, '\n');
        }
        const Py_ssize_t end = next_cr < next_lf ? next_cr : next_lf; /* where the value's line ends */
        if (end == n) {
            /* An unfinished last line: it is the rest, `data: ` and all, if a pair came before it. */
            *rest_at = pos - 6;
            return count ? count : -1;
        }
        if (n - end < seplen || memcmp(buf + end, sep, (size_t)seplen) != 0) {
            return -1; /* a line end that is not this stream's separator: not (only) pairs */
        }
        count++;
        const Py_ssize_t next = end + seplen;
        if (n - next >= 6 && memcmp(buf + next, "data: ", 6) == 0) {
            pos = next + 6;
            continue;
        }
        /* The start of some other line: the rest, which must hold no line end. */
        if (next_cr < next) {
            next_cr = find_byte(buf, next, n, '\r');
        }
        if (next_lf < next) {
            next_lf = find_byte(buf, next, n, '\n');
        }
        *rest_at = next;
        return next_cr == n && next_lf == n ? count : -1;
    }
}

/* The second pass, over a buffer the first found to be `count` pairs: their events. */
static PyObject *
decode_pairs(const char *buf, Py_ssize_t n, Py_ssize_t count, const char *sep, Py_ssize_t seplen,
             PyObject *last_id)
{
    PyObject *events = PyList_New(count);
    if (events == NULL) {
        return NULL;
    }
    Py_ssize_t pos = 6;
    for (Py_ssize_t i = 0; i < count; i++) {
        /* The values hold no line end: the next byte that starts `sep` ends this one (the first pass saw
           `count` of them, so it is found). */
        const Py_ssize_t end = find_byte(buf, pos, n, sep[0]);
        PyObject *value = PyUnicode_DecodeUTF8(buf + pos, end - pos, "replace");
        if (value == NULL) {
            Py_DECREF(events);
            return NULL;
        }
        PyObject *event = event_type->tp_alloc(event_type, 4);
        if (event == NULL) {
            Py_DECREF(value);
            Py_DECREF(events);
            return NULL;
        }
        /* Filled as tuple.__new__ fills a tuple subclass (tuple_subtype_new). */
        PyTuple_SET_ITEM(event, 0, Py_NewRef(message_str));
        PyTuple_SET_ITEM(event, 1, value);
        PyTuple_SET_ITEM(event, 2, Py_NewRef(last_id));
        PyTuple_SET_ITEM(event, 3, Py_NewRef(Py_None));
        PyList_SET_ITEM(events, i, event);
        pos = end + seplen + 6;
    }
    return events;
}

static PyObject *
pairs(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4) {
        PyErr_Format(PyExc_TypeError, "pairs() takes 4 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *partial = args[0], *chunk = args[1], *sep_obj = args[2], *last_id = args[3];
    if (!PyBytes_CheckExact(partial) || !PyBytes_CheckExact(chunk) || !PyBytes_CheckExact(sep_obj)) {
        PyErr_SetString(PyExc_TypeError, "pairs(): partial, chunk and sep must be bytes");
        return NULL;
    }
    if (!PyUnicode_CheckExact(last_id)) {
        PyErr_SetString(PyExc_TypeError, "pairs(): last_id must be str");
        return NULL;
    }
    const Py_ssize_t seplen = PyBytes_GET_SIZE(sep_obj);
    const char *sep = PyBytes_AS_STRING(sep_obj);
    if (!((seplen == 2 && (memcmp(sep, "\r\r", 2) == 0 || memcmp(sep, "\n\n", 2) == 0)) ||
          (seplen == 4 && memcmp(sep, "\r\n\r\n", 4) == 0))) {
        PyErr_SetString(PyExc_ValueError, "pairs(): sep must be \\r\\r, \\n\\n or \\r\\n\\r\\n");
        return NULL;
    }
    const Py_ssize_t plen = PyBytes_GET_SIZE(partial), clen = PyBytes_GET_SIZE(chunk);
    const char *partial_bytes = PyBytes_AS_STRING(partial);
    if (memchr(partial_bytes, '\r', (size_t)plen) || memchr(partial_bytes, '\n', (size_t)plen)) {
        PyErr_SetString(PyExc_ValueError, "pairs(): partial must hold no line end");
        return NULL;
    }
    if (plen > PY_SSIZE_T_MAX - clen) {
        return PyErr_NoMemory();
    }
    const Py_ssize_t n = plen + clen;
    char *owned = NULL;
    const char *buf = PyBytes_AS_STRING(chunk);
    if (plen) {
        owned = PyMem_Malloc((size_t)n);
        if (owned == NULL) {
            return PyErr_NoMemory();
        }
        memcpy(owned, partial_bytes, (size_t)plen);
        memcpy(owned + plen, buf, (size_t)clen);
        buf = owned;
    }
    PyObject *result = NULL;
    Py_ssize_t rest_at = 0;
    const Py_ssize_t count = count_pairs(buf, n, sep, seplen, &rest_at);
    if (count < 0) {
        result = Py_NewRef(Py_None);
    }
    else {
        PyObject *events = decode_pairs(buf, n, count, sep, seplen, last_id);
        PyObject *rest = events ? PyBytes_FromStringAndSize(buf + rest_at, n - rest_at) : NULL;
        if (rest != NULL) {
            result = PyTuple_Pack(2, events, rest);
        }
        Py_XDECREF(events);
        Py_XDECREF(rest);
    }
    PyMem_Free(owned);
    return result;
}

static PyMethodDef methods[] = {
    {"pairs", (PyCFunction)(void (*)(void))pairs, METH_FASTCALL,
     "pairs(partial, chunk, sep, last_id) -> (events, rest) | None: the pairs path of "
     "EventParser; see _pairs_reference in sse_toolkit/parser/_parser.py."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "sse_toolkit.parser._speedups",
    "Optional C accelerator of the parser's pairs path; _parser.py holds the pure-Python reference.",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (message_str == NULL) {
        message_str = PyUnicode_InternFromString("message");
        if (message_str == NULL) {
            return NULL;
        }
    }
    if (event_type == NULL) {
        PyObject *events = PyImport_ImportModule("sse_toolkit.parser._event");
        PyObject *found = events ? PyObject_GetAttrString(events, "Event") : NULL;
        Py_XDECREF(events);
        if (found == NULL) {
            return NULL;
        }
        /* Built by tp_alloc and filled like a tuple: that is only safe for a direct tuple subclass with no
           instance dict or extra fields, which a NamedTuple is. A struct sequence has a tuple's sizes too,
           but its dealloc frees all its declared fields: it is told apart by its n_sequence_fields. */
        PyTypeObject *type = (PyTypeObject *)found;
        if (!PyType_Check(found) || type->tp_base != &PyTuple_Type ||
            type->tp_basicsize != PyTuple_Type.tp_basicsize || type->tp_itemsize != PyTuple_Type.tp_itemsize ||
            type->tp_dictoffset != 0 || PyObject_HasAttrString(found, "n_sequence_fields")) {
            Py_DECREF(found);
            PyErr_SetString(PyExc_ImportError, "sse_toolkit.parser._event.Event is not a plain tuple subclass");
            return NULL;
        }
        event_type = type; /* kept for the life of the process, as the module is */
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    PyObject *all = Py_BuildValue("(s)", "pairs");
    if (all == NULL || PyModule_AddObject(module, "__all__", all) < 0) { /* steals only on success */
        Py_XDECREF(all);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
