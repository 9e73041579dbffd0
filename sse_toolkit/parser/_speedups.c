/* Parser layer, optional C accelerator: the pairs path of EventParser (`data: value` + blank line pairs).

   The pure-Python function _pairs_reference in _parser.py is the reference: this module must return exactly
   what it returns for every input (tests/parser/test_speedups.py and fuzz/fuzz_parser.py check it). When the
   extension is not built (no C compiler) or SSE_TOOLKIT_PURE_PYTHON is set, the parser uses the reference.

   pairs(partial, chunk, sep, last_id, event_type) -> (events, rest) | None

   `partial + chunk` is split into `data: value` lines each followed by `sep` (a line end and a blank line:
   "\r\r", "\n\n" or "\r\n\r\n"); the last line may be unfinished, and after the last blank line may come the
   start of a line that is not a `data: ` line. If that is the whole truth (no value and not the rest holds a
   CR or LF), returns one event_type("message", value, last_id, None) per value, the values decoded as UTF-8
   with U+FFFD for invalid bytes, and the bytes after the last complete pair (`rest`); otherwise None.

   Goal: what the reference costs, minus its intermediate objects (the split pieces, the joined copy for the
   line-end test, the map/zip of the event tuples). Time O(len(partial) + len(chunk)): each byte is looked at
   by a bounded number of memchr/memcmp passes (the next CR and the next LF are found once each and kept
   until passed). Memory: the events, and one copy of partial + chunk when partial is not empty. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *message_str; /* "message", interned once */

/* Index of the first `c` in buf[from:n], or n. */
static Py_ssize_t
find_byte(const char *buf, Py_ssize_t from, Py_ssize_t n, char c)
{
    const char *at = memchr(buf + from, c, (size_t)(n - from));
    return at == NULL ? n : at - buf;
}

static PyObject *
pairs(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "pairs() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *partial = args[0], *chunk = args[1], *sep_obj = args[2], *last_id = args[3];
    PyTypeObject *event_type = (PyTypeObject *)args[4];
    if (!PyBytes_CheckExact(partial) || !PyBytes_CheckExact(chunk) || !PyBytes_CheckExact(sep_obj)) {
        PyErr_SetString(PyExc_TypeError, "pairs(): partial, chunk and sep must be bytes");
        return NULL;
    }
    if (!PyUnicode_Check(last_id)) {
        PyErr_SetString(PyExc_TypeError, "pairs(): last_id must be str");
        return NULL;
    }
    if (!PyType_Check(args[4]) || !PyType_IsSubtype(event_type, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "pairs(): event_type must be a tuple subclass");
        return NULL;
    }
    const Py_ssize_t seplen = PyBytes_GET_SIZE(sep_obj);
    const char *sep = PyBytes_AS_STRING(sep_obj);
    if (seplen < 1 || (sep[0] != '\r' && sep[0] != '\n')) {
        PyErr_SetString(PyExc_ValueError, "pairs(): sep must start with a line end");
        return NULL;
    }

    const Py_ssize_t plen = PyBytes_GET_SIZE(partial), clen = PyBytes_GET_SIZE(chunk);
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
        memcpy(owned, PyBytes_AS_STRING(partial), (size_t)plen);
        memcpy(owned + plen, buf, (size_t)clen);
        buf = owned;
    }

    PyObject *events = NULL, *result = NULL;
    if (n < 6 || memcmp(buf, "data: ", 6) != 0) {
        goto not_pairs;
    }
    events = PyList_New(0);
    if (events == NULL) {
        goto error;
    }
    Py_ssize_t pos = 6; /* start of the current value */
    Py_ssize_t next_cr = find_byte(buf, 0, n, '\r'), next_lf = find_byte(buf, 0, n, '\n');
    Py_ssize_t rest_at;
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
            if (PyList_GET_SIZE(events) == 0) {
                goto not_pairs;
            }
            rest_at = pos - 6;
            break;
        }
        if (n - end < seplen || memcmp(buf + end, sep, (size_t)seplen) != 0) {
            goto not_pairs; /* a line end that is not this stream's separator: not (only) pairs */
        }
        PyObject *value = PyUnicode_DecodeUTF8(buf + pos, end - pos, "replace");
        if (value == NULL) {
            goto error;
        }
        PyObject *event = event_type->tp_alloc(event_type, 4);
        if (event == NULL) {
            Py_DECREF(value);
            goto error;
        }
        /* Filled as tuple.__new__ fills a tuple subclass (tuple_subtype_new). */
        PyTuple_SET_ITEM(event, 0, Py_NewRef(message_str));
        PyTuple_SET_ITEM(event, 1, value);
        PyTuple_SET_ITEM(event, 2, Py_NewRef(last_id));
        PyTuple_SET_ITEM(event, 3, Py_NewRef(Py_None));
        int failed = PyList_Append(events, event);
        Py_DECREF(event);
        if (failed) {
            goto error;
        }
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
        if (next_cr != n || next_lf != n) {
            goto not_pairs;
        }
        rest_at = next;
        break;
    }
    PyObject *rest = PyBytes_FromStringAndSize(buf + rest_at, n - rest_at);
    if (rest == NULL) {
        goto error;
    }
    result = PyTuple_New(2);
    if (result == NULL) {
        Py_DECREF(rest);
        goto error;
    }
    PyTuple_SET_ITEM(result, 0, events);
    PyTuple_SET_ITEM(result, 1, rest);
    PyMem_Free(owned);
    return result;

not_pairs:
    Py_XDECREF(events);
    PyMem_Free(owned);
    Py_RETURN_NONE;

error:
    Py_XDECREF(events);
    PyMem_Free(owned);
    return NULL;
}

static PyMethodDef methods[] = {
    {"pairs", (PyCFunction)(void (*)(void))pairs, METH_FASTCALL,
     "pairs(partial, chunk, sep, last_id, event_type) -> (events, rest) | None: the pairs path of "
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
