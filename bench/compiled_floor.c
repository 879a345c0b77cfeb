/* A compiled stand-in recorder, to measure what the chain floor (traced <= 1.5x untraced) leaves
 * for a tracer written in C. Built and run by `python bench/tracer.py --compiled` (not part of
 * gradtrace). Per Function call it records what issue 3 asks a Trace to hold: a call id from a
 * counter, the op's class, its input and output variable ids (known by identity, checked through a
 * weak reference), the output's value (0-d arrays as numpy scalars, others copied), a leaf's value,
 * the generation and whether the output links back to its creator. Per backward step: the call it
 * belongs to (found through the op's first output), the gradients received and returned, and each
 * input's .grad after the engine stored it (read at the next step). It builds no Trace, names no
 * variable, keeps no Function state and handles one engine shape (gradtrace's): the least a
 * compiled recorder would do. */
#define PY_SSIZE_T_CLEAN
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <Python.h>
#include <numpy/arrayobject.h>
#include <stddef.h>

typedef struct {
    PyObject_HEAD
    PyObject *original;
    int is_step;
    vectorcallfunc vectorcall;
} Hook;

static PyObject *known;     /* address -> (weakref, vid, creator call id or None) */
static PyObject *calls;     /* list of (class, input ids, output ids, generation, leaf values, linked) */
static PyObject *variables; /* list of (vid, value, creator) */
static PyObject *steps;     /* list of [call id, grads in, grads out, accumulated] */
static PyObject *pending_inputs, *pending_step;
static long next_call = 1, next_var = 1;
static PyObject *s_inputs, *s_outputs, *s_data, *s_generation, *s_creator, *s_grad, *empty;

/* The recorder's containers refer to nothing that refers back to them: they can never be part
 * of a reference cycle, so the collector need not scan them (it would, at every collection). */
static PyObject *untracked(PyObject *container)
{
    if (container != NULL && PyObject_GC_IsTracked(container))
        PyObject_GC_UnTrack(container);
    return container;
}

static PyObject *snap(PyObject *value)
{
    if (value == Py_None) { Py_INCREF(value); return value; }
    if (!PyArray_Check(value)) {
        PyObject *data = PyObject_GetAttr(value, s_data);  /* a Variable: its array */
        if (data == NULL) { PyErr_Clear(); Py_INCREF(value); return value; }
        PyObject *taken = PyArray_Check(data) ? snap(data) : (Py_INCREF(data), data);
        Py_DECREF(data);
        return taken;
    }
    PyArrayObject *array = (PyArrayObject *)value;
    if (PyArray_NDIM(array) == 0)
        return PyArray_Scalar(PyArray_DATA(array), PyArray_DESCR(array), value);
    return PyArray_NewCopy(array, NPY_CORDER);
}

/* The (weakref, vid, creator) entry of a known live object, or NULL (borrowed). */
static PyObject *lookup(PyObject *obj, PyObject **key_out)
{
    PyObject *key = PyLong_FromVoidPtr(obj);
    PyObject *entry = PyDict_GetItemWithError(known, key);
    *key_out = key;
    if (entry != NULL && PyWeakref_GET_OBJECT(PyTuple_GET_ITEM(entry, 0)) == obj)
        return entry;
    return NULL;
}

static long add_variable(PyObject *obj, PyObject *key, PyObject *creator, PyObject **value_out)
{
    long vid = next_var++;
    PyObject *ref = PyWeakref_NewRef(obj, NULL);
    PyObject *id = PyLong_FromLong(vid);
    PyObject *entry = untracked(PyTuple_Pack(3, ref, id, creator));
    PyDict_SetItem(known, key, entry);
    PyObject *data = PyObject_GetAttr(obj, s_data);
    PyObject *value = snap(data);
    PyObject *record = untracked(PyTuple_Pack(3, id, value, creator));
    PyList_Append(variables, record);
    *value_out = value;
    Py_DECREF(record); Py_DECREF(data); Py_DECREF(entry); Py_DECREF(id); Py_DECREF(ref);
    return vid;
}

static void record_call(PyObject *fn, PyObject *result)
{
    long call_id = next_call++;
    PyObject *call = PyLong_FromLong(call_id);
    PyObject *inputs = PyObject_GetAttr(fn, s_inputs);
    Py_ssize_t n = PyList_GET_SIZE(inputs);
    PyObject *in_ids = PyTuple_New(n), *leaf_values = PyTuple_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *x = PyList_GET_ITEM(inputs, i), *key, *value;
        PyObject *entry = lookup(x, &key);
        if (entry != NULL) {
            PyObject *id = PyTuple_GET_ITEM(entry, 1);
            Py_INCREF(id);
            PyTuple_SET_ITEM(in_ids, i, id);
            if (PyTuple_GET_ITEM(entry, 2) == Py_None) {
                PyObject *data = PyObject_GetAttr(x, s_data);
                value = snap(data);
                Py_DECREF(data);
            } else {
                value = Py_None; Py_INCREF(value);
            }
        } else {
            PyTuple_SET_ITEM(in_ids, i, PyLong_FromLong(add_variable(x, key, Py_None, &value)));
        }
        PyTuple_SET_ITEM(leaf_values, i, value);
        Py_DECREF(key);
    }
    PyObject *key, *value;
    lookup(result, &key);
    PyObject *out_ids = PyTuple_New(1);
    PyTuple_SET_ITEM(out_ids, 0, PyLong_FromLong(add_variable(result, key, call, &value)));
    Py_DECREF(value);
    Py_DECREF(key);
    PyObject *creator = PyObject_GetAttr(result, s_creator);
    PyObject *generation = PyObject_GetAttr(fn, s_generation);
    untracked(in_ids);
    untracked(out_ids);
    untracked(leaf_values);
    PyObject *record = untracked(PyTuple_Pack(6, (PyObject *)Py_TYPE(fn), in_ids, out_ids, generation,
                                              leaf_values, creator == fn ? Py_True : Py_False));
    PyList_Append(calls, record);
    Py_DECREF(record); Py_DECREF(generation); Py_DECREF(creator); Py_DECREF(out_ids);
    Py_DECREF(leaf_values); Py_DECREF(in_ids); Py_DECREF(inputs); Py_DECREF(call);
}

static void resolve_pending(void)
{
    if (pending_step == NULL)
        return;
    Py_ssize_t n = PyList_GET_SIZE(pending_inputs);
    PyObject *accumulated = PyTuple_New(n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *grad = PyObject_GetAttr(PyList_GET_ITEM(pending_inputs, i), s_grad);
        PyTuple_SET_ITEM(accumulated, i, snap(grad));
        Py_DECREF(grad);
    }
    PyList_SetItem(pending_step, 3, untracked(accumulated));
    Py_CLEAR(pending_step);
    Py_CLEAR(pending_inputs);
}

static PyObject *call_of(PyObject *fn)
{
    PyObject *outputs = PyObject_GetAttr(fn, s_outputs), *key;
    PyObject *output = PyWeakref_GET_OBJECT(PyList_GET_ITEM(outputs, 0));
    PyObject *entry = lookup(output, &key);
    PyObject *call = entry != NULL ? PyTuple_GET_ITEM(entry, 2) : Py_None;
    Py_INCREF(call);
    Py_DECREF(key);
    Py_DECREF(outputs);
    return call;
}

static PyObject *hook_call(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Hook *hook = (Hook *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (!hook->is_step) {
        PyObject *result = PyObject_Vectorcall(hook->original, args, nargs, kwnames);
        if (result != NULL)
            record_call(args[0], result);
        return result;
    }
    resolve_pending();
    PyObject *call = call_of(args[0]);
    PyObject *grads_in = PyTuple_New(nargs - 1);
    for (Py_ssize_t i = 1; i < nargs; i++)
        PyTuple_SET_ITEM(grads_in, i - 1, snap(args[i]));
    PyObject *result = PyObject_Vectorcall(hook->original, args, nargs, kwnames);
    if (result == NULL) {
        Py_DECREF(grads_in); Py_DECREF(call);
        return NULL;
    }
    PyObject *grads_out;
    if (PyTuple_Check(result)) {
        Py_ssize_t m = PyTuple_GET_SIZE(result);
        grads_out = PyTuple_New(m);
        for (Py_ssize_t i = 0; i < m; i++)
            PyTuple_SET_ITEM(grads_out, i, snap(PyTuple_GET_ITEM(result, i)));
    } else {
        grads_out = PyTuple_New(1);
        PyTuple_SET_ITEM(grads_out, 0, snap(result));
    }
    untracked(grads_in);
    untracked(grads_out);
    PyObject *step = untracked(PyList_New(4));
    PyList_SET_ITEM(step, 0, call);
    PyList_SET_ITEM(step, 1, grads_in);
    PyList_SET_ITEM(step, 2, grads_out);
    Py_INCREF(Py_None);
    PyList_SET_ITEM(step, 3, Py_None);
    PyList_Append(steps, step);
    pending_step = step;
    pending_inputs = PyObject_GetAttr(args[0], s_inputs);
    return result;
}

static PyObject *hook_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) { Py_INCREF(self); return self; }
    return PyMethod_New(self, obj);
}

static void hook_dealloc(PyObject *self)
{
    Py_XDECREF(((Hook *)self)->original);
    Py_TYPE(self)->tp_free(self);
}

static PyTypeObject HookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "compiled_floor.Hook",
    .tp_basicsize = sizeof(Hook),
    .tp_dealloc = hook_dealloc,
    .tp_vectorcall_offset = offsetof(Hook, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = hook_get,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
};

static PyObject *make_hook(PyObject *module, PyObject *args)
{
    PyObject *original;
    int is_step;
    if (!PyArg_ParseTuple(args, "Op", &original, &is_step))
        return NULL;
    Hook *hook = PyObject_New(Hook, &HookType);
    Py_INCREF(original);
    hook->original = original;
    hook->is_step = is_step;
    hook->vectorcall = hook_call;
    return (PyObject *)hook;
}

/* Drop everything recorded; returns (calls, variables, steps) recorded since the last reset. */
static PyObject *reset(PyObject *module, PyObject *unused)
{
    resolve_pending();
    PyObject *result = Py_BuildValue("(nnn)", PyList_GET_SIZE(calls), PyList_GET_SIZE(variables),
                                     PyList_GET_SIZE(steps));
    PyDict_Clear(known);
    PyList_SetSlice(calls, 0, PyList_GET_SIZE(calls), NULL);
    PyList_SetSlice(variables, 0, PyList_GET_SIZE(variables), NULL);
    PyList_SetSlice(steps, 0, PyList_GET_SIZE(steps), NULL);
    next_call = next_var = 1;
    return result;
}

/* What was recorded so far: (calls, variables, steps), for checking the stand-in itself. */
static PyObject *recorded(PyObject *module, PyObject *unused)
{
    resolve_pending();
    return PyTuple_Pack(3, calls, variables, steps);
}

static PyMethodDef methods[] = {
    {"recorded", recorded, METH_NOARGS, "(calls, variables, steps) recorded so far"},
    {"hook", make_hook, METH_VARARGS, "hook(original, is_step): a recording wrapper"},
    {"reset", reset, METH_NOARGS, "forget all; return the counts recorded"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "compiled_floor", NULL, -1, methods};

PyMODINIT_FUNC PyInit_compiled_floor(void)
{
    import_array();
    if (PyType_Ready(&HookType) < 0)
        return NULL;
    known = PyDict_New();
    calls = PyList_New(0);
    variables = PyList_New(0);
    steps = PyList_New(0);
    empty = PyTuple_New(0);
    s_inputs = PyUnicode_InternFromString("inputs");
    s_outputs = PyUnicode_InternFromString("outputs");
    s_data = PyUnicode_InternFromString("data");
    s_generation = PyUnicode_InternFromString("generation");
    s_creator = PyUnicode_InternFromString("creator");
    s_grad = PyUnicode_InternFromString("grad");
    return PyModule_Create(&module_def);
}
