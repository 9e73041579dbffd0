/* Gemini layer, optional C accelerator: the JSON type check of a whole response tree.

   tree_ok(d, spec) -> bool

   `spec` describes where objects and arrays of objects belong under a dict: a tuple of (key, is_list,
   child_spec) entries, built by _codegen.register from the classes' nested fields. For a dict `d` as orjson
   makes them (str keys), returns True when every such key that `d` holds (and is not null) has the right
   JSON type all the way down: a dict where an object belongs, a list of dicts where an array of objects
   belongs; False as soon as one does not. False only means "run the generated Python checks", which name
   the key and the type in their TypeError, so this function has to agree with them on yes or no
   (tests/gemini/test_gemini_speedups.py compares them), never to explain. Anything but a dict gets False.
   Each key is looked up once (the Python checks look twice, `in` then `[]`): the same answer unless a key
   of `d` compares differently from one call to the next, which no JSON decoder's dict has.

   Goal: the checks' cost without the interpreter's per-key bytecode. Time O(size of the checked tree):
   each spec entry is one dict lookup per object it applies to. Stack depth: the spec's depth (the types
   are not recursive), guarded by Py_EnterRecursiveCall all the same. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

/* 1: fits, 0: does not, -1: a Python error (a spec of the wrong shape, or a key's __eq__ raised). */
static int
check(PyObject *d, PyObject *spec)
{
    if (!PyTuple_CheckExact(spec)) {
        PyErr_SetString(PyExc_TypeError, "tree_ok(): a spec is a tuple of (key, is_list, child_spec)");
        return -1;
    }
    if (Py_EnterRecursiveCall(" in tree_ok()")) {
        return -1;
    }
    int result = 1;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(spec) && result == 1; i++) {
        PyObject *entry = PyTuple_GET_ITEM(spec, i);
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3) {
            PyErr_SetString(PyExc_TypeError, "tree_ok(): a spec entry is (key, is_list, child_spec)");
            result = -1;
            break;
        }
        PyObject *value = PyDict_GetItemWithError(d, PyTuple_GET_ITEM(entry, 0)); /* borrowed */
        if (value == NULL) {
            if (PyErr_Occurred()) {
                result = -1;
            }
            continue;
        }
        if (value == Py_None) {
            continue;
        }
        PyObject *child = PyTuple_GET_ITEM(entry, 2);
        Py_INCREF(value); /* a key's __eq__ may run code that changes d */
        if (PyTuple_GET_ITEM(entry, 1) == Py_True) {
            if (!PyList_CheckExact(value)) {
                result = 0;
            }
            /* The size is read again each turn: nothing here changes the list, but a key's __eq__ might. */
            for (Py_ssize_t j = 0; result == 1 && j < PyList_GET_SIZE(value); j++) {
                PyObject *item = PyList_GET_ITEM(value, j);
                if (!PyDict_CheckExact(item)) {
                    result = 0;
                    break;
                }
                Py_INCREF(item);
                result = check(item, child);
                Py_DECREF(item);
            }
        }
        else if (!PyDict_CheckExact(value)) {
            result = 0;
        }
        else {
            result = check(value, child);
        }
        Py_DECREF(value);
    }
    Py_LeaveRecursiveCall();
    return result;
}

static PyObject *
tree_ok(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "tree_ok() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyDict_CheckExact(args[0])) {
        Py_RETURN_FALSE;
    }
    int result = check(args[0], args[1]);
    if (result < 0) {
        return NULL;
    }
    return PyBool_FromLong(result);
}

static PyMethodDef methods[] = {
    {"tree_ok", (PyCFunction)(void (*)(void))tree_ok, METH_FASTCALL,
     "tree_ok(d, spec) -> bool: whether every object and array of objects under d has its JSON type "
     "(see sse_toolkit/gemini/_codegen.py)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "sse_toolkit.gemini._speedups",
    "Optional C accelerator of the typed objects' type check; _codegen.py generates the Python reference.",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    PyObject *all = Py_BuildValue("(s)", "tree_ok");
    if (all == NULL || PyModule_AddObject(module, "__all__", all) < 0) { /* steals only on success */
        Py_XDECREF(all);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
