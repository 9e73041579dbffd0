/* Gemini layer, optional C accelerator: the typed objects' lazy decoders (type check and build).

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
   are not recursive), guarded by Py_EnterRecursiveCall all the same.

   Builder(cls, fields, raw, extra, order, known, tree, fallback): a callable that does what
   the generated Python decoder `lazy_build` of `cls` does (_codegen.register, its reference), and with a
   `tree` spec what `lazy_from_dict` does. `fallback` is that Python decoder: it gets what this one leaves
   to it, so that it raises its errors and takes what no JSON decoder makes: a tree that tree_ok refuses,
   anything but a plain dict, a dict with a key that is not a str (where one is looked up in `known`), an
   abstract `cls`. Given a dict d it makes a `cls` as object.__new__ does and, field by field in the order
   of `fields` (the dataclass's, as the generated code), stores by the field's slot (a member descriptor of
   cls, checked when the Builder is made); `fields` is ((kind, key, slot, child), ...) where kind is
   - 0, a plain field: d[key], or None when the key is absent;
   - 1, an object: None when absent or null, else child(d[key]) (the child's builder);
   - 2, a list of objects: None when absent or null, else nothing: the slot stays unset and the class's
     _LazySlot builds the list from the kept dict on first read;
   - then, when there are lists, d itself in `raw`; else None in `raw`, tuple(d) in `order`, and in
     `extra` None if every key of d is in the frozenset `known`, else a dict of the other keys' items.
   Goal: the same objects as the generated code at the cost of C stores, not a bytecode per field.
   Time O(fields + len(d)). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

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

/* -- Builder ---------------------------------------------------------------------------------------------- */

typedef struct {
    int kind;           /* 0 plain, 1 object (child), 2 list of objects */
    PyObject *key;      /* borrowed from the Builder's `keep` */
    Py_ssize_t offset;  /* of the slot in the object */
    PyObject *child;    /* kind 1: the child's builder (borrowed from `keep`); else NULL */
} Field;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyTypeObject *cls;
    Field *fields; /* in the dataclass's field order */
    Py_ssize_t n_fields, n_lists;
    Py_ssize_t raw, extra, order; /* slot offsets; extra and order only without lists */
    PyObject *known;              /* frozenset, without lists */
    PyObject *tree;               /* spec for tree_ok, or NULL */
    PyObject *fallback;           /* the Python decoder, for what this one leaves to it */
    PyObject *keep;               /* the arguments: they own what the fields borrow */
} Builder;

/* The offset of `slot`, a plain object slot of `cls` (a member descriptor, as __slots__ make them). */
static int
slot_offset(PyTypeObject *cls, PyObject *slot, Py_ssize_t *offset)
{
    if (!Py_IS_TYPE(slot, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "Builder: %R is not a slot", slot);
        return -1;
    }
    PyMemberDef *member = ((PyMemberDescrObject *)slot)->d_member;
    if (member->type != T_OBJECT_EX || (member->flags & READONLY) || !PyType_IsSubtype(cls, PyDescr_TYPE(slot)) ||
        member->offset < (Py_ssize_t)sizeof(PyObject) ||
        member->offset > cls->tp_basicsize - (Py_ssize_t)sizeof(PyObject *)) {
        PyErr_Format(PyExc_TypeError, "Builder: %R is not a writable object slot of %R", slot, cls);
        return -1;
    }
    *offset = member->offset;
    return 0;
}

static inline void
store(PyObject *obj, Py_ssize_t offset, PyObject *value) /* steals value */
{
    PyObject **addr = (PyObject **)((char *)obj + offset);
    PyObject *old = *addr;
    *addr = value;
    Py_XDECREF(old);
}

/* The object for dict d; NULL with *defer set (and no error) for a dict the Python decoder must take. */
static PyObject *
build(Builder *b, PyObject *d, int *defer)
{
    PyObject *obj = b->cls->tp_alloc(b->cls, 0);
    if (obj == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < b->n_fields; i++) {
        Field *f = &b->fields[i];
        PyObject *value = PyDict_GetItemWithError(d, f->key); /* borrowed */
        if (value == NULL && PyErr_Occurred()) {
            goto fail;
        }
        if (value == NULL || value == Py_None) {
            store(obj, f->offset, Py_NewRef(Py_None));
        }
        else if (f->kind == 0) {
            store(obj, f->offset, Py_NewRef(value));
        }
        else if (f->kind == 1) {
            Py_INCREF(value); /* the child may run code that changes d */
            PyObject *made = PyObject_CallOneArg(f->child, value);
            Py_DECREF(value);
            if (made == NULL) {
                goto fail;
            }
            store(obj, f->offset, made);
        }
        /* a list that is there: left unset, built on first read */
    }
    if (b->n_lists) {
        store(obj, b->raw, Py_NewRef(d));
        return obj;
    }
    PyObject *extra = NULL;
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(d, &pos, &key, &value)) {
        /* Only a str key is looked up here: its hash and equality run no Python code, which could change
           d under the borrowed key and value. Other keys (no JSON decoder makes them) go to Python. */
        if (!PyUnicode_CheckExact(key)) {
            Py_XDECREF(extra);
            Py_DECREF(obj);
            *defer = 1;
            return NULL;
        }
        int known = PySet_Contains(b->known, key);
        if (known < 0) {
            Py_XDECREF(extra);
            goto fail;
        }
        if (!known) {
            if (extra == NULL && (extra = PyDict_New()) == NULL) {
                goto fail;
            }
            if (PyDict_SetItem(extra, key, value) < 0) {
                Py_DECREF(extra);
                goto fail;
            }
        }
    }
    PyObject *order = PySequence_Tuple(d);
    if (order == NULL) {
        Py_XDECREF(extra);
        goto fail;
    }
    store(obj, b->extra, extra ? extra : Py_NewRef(Py_None));
    store(obj, b->order, order);
    store(obj, b->raw, Py_NewRef(Py_None));
    return obj;

fail:
    Py_DECREF(obj);
    return NULL;
}

static PyObject *
builder_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Builder *b = (Builder *)self;
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "a Builder takes one dict");
        return NULL;
    }
    if (b->cls == NULL) {
        PyErr_SetString(PyExc_ReferenceError, "this Builder was cleared by the garbage collector");
        return NULL;
    }
    /* Builders call their children's directly, and their fallbacks, with no Python frame between to
       count the depth: this call counts. */
    if (Py_EnterRecursiveCall(" in a Builder")) {
        return NULL;
    }
    PyObject *made = NULL;
    int defer = 0;
    PyObject *d = args[0];
    /* What object.__new__ would refuse, and anything but a plain dict: the Python decoder decides. */
    if (!PyDict_CheckExact(d) || (b->cls->tp_flags & Py_TPFLAGS_IS_ABSTRACT)) {
        defer = 1;
    }
    else if (b->tree != NULL) {
        int ok = check(d, b->tree);
        if (ok < 0) {
            goto done;
        }
        defer = !ok;
    }
    if (!defer) {
        made = build(b, d, &defer);
    }
    if (defer) {
        made = PyObject_CallOneArg(b->fallback, d);
    }
done:
    Py_LeaveRecursiveCall();
    return made;
}

static int
builder_traverse(Builder *b, visitproc visit, void *arg)
{
    Py_VISIT(b->cls);
    Py_VISIT(b->known);
    Py_VISIT(b->tree);
    Py_VISIT(b->fallback);
    Py_VISIT(b->keep);
    return 0;
}

static int
builder_clear(Builder *b)
{
    b->n_fields = b->n_lists = 0; /* the fields borrow from keep */
    Py_CLEAR(b->cls);
    Py_CLEAR(b->known);
    Py_CLEAR(b->tree);
    Py_CLEAR(b->fallback);
    Py_CLEAR(b->keep);
    return 0;
}

static void
builder_dealloc(Builder *b)
{
    PyObject_GC_UnTrack(b);
    builder_clear(b);
    PyMem_Free(b->fields);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

/* Fill the fields from a tuple of (kind, key, slot, child) entries; returns how many are lists, or -1. */
static Py_ssize_t
read_fields(Builder *b, PyObject *entries)
{
    Py_ssize_t lists = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(entries); i++) {
        PyObject *entry = PyTuple_GET_ITEM(entries, i);
        if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 4 ||
            !PyLong_CheckExact(PyTuple_GET_ITEM(entry, 0)) || !PyUnicode_CheckExact(PyTuple_GET_ITEM(entry, 1))) {
            PyErr_SetString(PyExc_TypeError, "Builder: a field is (kind, key, slot, child)");
            return -1;
        }
        Field *f = &b->fields[i];
        long kind = PyLong_AsLong(PyTuple_GET_ITEM(entry, 0));
        if (kind < 0 || kind > 2) {
            PyErr_SetString(PyExc_TypeError, "Builder: a field's kind is 0, 1 or 2");
            return -1;
        }
        f->kind = (int)kind;
        f->key = PyTuple_GET_ITEM(entry, 1);
        if (slot_offset(b->cls, PyTuple_GET_ITEM(entry, 2), &f->offset) < 0) {
            return -1;
        }
        f->child = NULL;
        if (kind == 1) {
            f->child = PyTuple_GET_ITEM(entry, 3);
            if (!PyCallable_Check(f->child)) {
                PyErr_SetString(PyExc_TypeError, "Builder: an object field's child must be callable");
                return -1;
            }
        }
        lists += kind == 2;
    }
    return lists;
}

static PyObject *
builder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"cls", "fields", "raw", "extra", "order", "known", "tree", "fallback", NULL};
    PyObject *cls, *fields, *raw, *extra, *order, *known, *tree, *fallback;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!O!OOOOOO:Builder", names, &PyType_Type, &cls,
                                     &PyTuple_Type, &fields, &raw, &extra, &order, &known, &tree, &fallback)) {
        return NULL;
    }
    if (((PyTypeObject *)cls)->tp_new != PyBaseObject_Type.tp_new || ((PyTypeObject *)cls)->tp_itemsize) {
        PyErr_Format(PyExc_TypeError, "Builder: %R is not made by object.__new__", cls);
        return NULL;
    }
    if (!PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "Builder: fallback must be callable (the Python decoder)");
        return NULL;
    }
    Builder *b = PyObject_GC_New(Builder, type);
    if (b == NULL) {
        return NULL;
    }
    b->vectorcall = builder_vectorcall;
    b->cls = (PyTypeObject *)Py_NewRef(cls);
    b->known = NULL;
    b->tree = tree == Py_None ? NULL : Py_NewRef(tree);
    b->fallback = Py_NewRef(fallback);
    b->keep = PyTuple_Pack(4, fields, raw, extra, order);
    b->n_fields = b->n_lists = 0;
    b->fields = NULL;
    b->raw = b->extra = b->order = 0;
    const Py_ssize_t n_fields = PyTuple_GET_SIZE(fields);
    if (b->keep == NULL) {
        goto fail;
    }
    b->fields = PyMem_Calloc((size_t)(n_fields + 1), sizeof(Field));
    if (b->fields == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    const Py_ssize_t n_lists = read_fields(b, fields);
    if (n_lists < 0 || slot_offset(b->cls, raw, &b->raw) < 0) {
        goto fail;
    }
    if (n_lists == 0) {
        if (!PyFrozenSet_CheckExact(known)) {
            PyErr_SetString(PyExc_TypeError, "Builder: known must be a frozenset");
            goto fail;
        }
        if (slot_offset(b->cls, extra, &b->extra) < 0 || slot_offset(b->cls, order, &b->order) < 0) {
            goto fail;
        }
        b->known = Py_NewRef(known);
    }
    b->n_fields = n_fields;
    b->n_lists = n_lists;
    PyObject_GC_Track(b);
    return (PyObject *)b;

fail:
    PyObject_GC_Track(b);
    Py_DECREF(b);
    return NULL;
}

static PyTypeObject BuilderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sse_toolkit.gemini._speedups.Builder",
    .tp_basicsize = sizeof(Builder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Builder(cls, fields, raw, extra, order, known, tree, fallback): a typed "
              "object's lazy decoder in C; see sse_toolkit/gemini/_codegen.py.",
    .tp_new = builder_new,
    .tp_dealloc = (destructor)builder_dealloc,
    .tp_traverse = (traverseproc)builder_traverse,
    .tp_clear = (inquiry)builder_clear,
    .tp_vectorcall_offset = offsetof(Builder, vectorcall),
    .tp_call = PyVectorcall_Call,
};

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
    if (PyType_Ready(&BuilderType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObject(module, "Builder", Py_NewRef(&BuilderType)) < 0) {
        Py_DECREF(&BuilderType);
        Py_DECREF(module);
        return NULL;
    }
    PyObject *all = Py_BuildValue("(ss)", "Builder", "tree_ok");
    if (all == NULL || PyModule_AddObject(module, "__all__", all) < 0) { /* steals only on success */
        Py_XDECREF(all);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
