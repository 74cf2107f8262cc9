#include "result_object.hpp"

#include <structmember.h>

#include <cmath>
#include <stdexcept>

#include "ratelimiter/algorithm/all.hpp"

namespace ratelimiter::binding {
namespace {

struct ResultObject {
    PyObject_HEAD
    PyObject* key;       // str
    PyObject* metadata;  // dict, or nullptr until first read; never handed out (see get_metadata)
    long long limit;
    long long remaining;
    double window;
    double reset_after;
    double retry_after;
    double meta[kMaxMetadata];
    char allowed;
    char insufficient_capacity;
    char fallback;  // the backend's on_error policy answered (allow/deny), not the store
    char cached;    // the Redis rejection cache answered, not Redis (metadata["cached"])
    unsigned char algorithm;
};

// Each algorithm's metadata fields (Algo::kMetadata), indexed by AlgorithmId.
struct MetadataFields {
    const MetaField* fields;
    std::size_t size;
};
constexpr auto kMetadataFields = algorithm_table([](auto tag) {
    using Algo = typename decltype(tag)::type;
    return MetadataFields{Algo::kMetadata.data(), Algo::kMetadata.size()};
});

PyObject* metadata_value(MetaKind kind, double value) {
    switch (kind) {
        case MetaKind::count: return PyLong_FromLongLong(static_cast<long long>(value));
        case MetaKind::layer:
            return PyUnicode_FromString(value == 0.0 ? "sliding_window" : "token_bucket");
        case MetaKind::number: break;
    }
    return PyFloat_FromDouble(value);
}

PyTypeObject* g_public_type = nullptr;  // ratelimiter.RateLimitResult once registered
PyTypeObject* g_base_type = nullptr;  // RateLimitResultBase (a heap type)

PyObject* build_metadata(ResultObject* self) {
    PyObject* dict = PyDict_New();
    if (dict == nullptr) return nullptr;
    if (self->algorithm >= kAlgorithmCount) return dict;  // constructed from Python
    const MetadataFields meta = kMetadataFields[self->algorithm];
    for (std::size_t i = 0; i < meta.size; ++i) {
        PyObject* value = metadata_value(meta.fields[i].kind, self->meta[i]);
        if (value == nullptr || PyDict_SetItemString(dict, meta.fields[i].name, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(dict);
            return nullptr;
        }
        Py_DECREF(value);
    }
    if (self->insufficient_capacity && PyDict_SetItemString(dict, "insufficient_capacity", Py_True) < 0) {
        Py_DECREF(dict);
        return nullptr;
    }
    if (self->cached && PyDict_SetItemString(dict, "cached", Py_True) < 0) {
        Py_DECREF(dict);
        return nullptr;
    }
    if (self->fallback) {
        PyObject* policy = PyUnicode_FromString(self->allowed ? "allow" : "deny");
        if (policy == nullptr || PyDict_SetItemString(dict, "on_error", policy) < 0) {
            Py_XDECREF(policy);
            Py_DECREF(dict);
            return nullptr;
        }
        Py_DECREF(policy);
    }
    return dict;
}

// A result is immutable (API.md) and `metadata` is documented as a dict (callers json.dumps
// it), so each read returns a copy of the dict built on first read: mutating what one read
// returned never changes the result, its equality, hash or pickle.
PyObject* get_metadata(PyObject* obj, void*) {
    auto* self = reinterpret_cast<ResultObject*>(obj);
    if (self->metadata == nullptr) {
        self->metadata = build_metadata(self);
        if (self->metadata == nullptr) return nullptr;
    }
    return PyDict_Copy(self->metadata);
}

PyObject* get_allowed(PyObject* obj, void*) {
    return PyBool_FromLong(reinterpret_cast<ResultObject*>(obj)->allowed);
}

void result_dealloc(PyObject* obj) {
    auto* self = reinterpret_cast<ResultObject*>(obj);
    Py_XDECREF(self->key);
    Py_XDECREF(self->metadata);
    PyTypeObject* type = Py_TYPE(obj);
    type->tp_free(obj);
    Py_DECREF(type);  // heap types: every instance holds a reference to its type
}

// RateLimitResult(allowed, key, limit, remaining, reset_after, retry_after, metadata=None)
PyObject* result_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
    static const char* keywords[] = {"allowed", "key", "limit", "remaining", "reset_after",
                                     "retry_after", "metadata", "window", nullptr};
    int allowed = 0;
    PyObject* key = nullptr;
    long long limit = 0;
    long long remaining = 0;
    double reset_after = 0.0;
    double retry_after = 0.0;
    PyObject* metadata = Py_None;
    double window = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "pULLdd|O$d", const_cast<char**>(keywords),
                                     &allowed, &key, &limit, &remaining, &reset_after,
                                     &retry_after, &metadata, &window)) {
        return nullptr;
    }
    if (metadata != Py_None && !PyDict_Check(metadata)) {
        PyErr_SetString(PyExc_TypeError, "metadata must be a dict or None");
        return nullptr;
    }
    PyObject* obj = type->tp_alloc(type, 0);
    if (obj == nullptr) return nullptr;
    auto* self = reinterpret_cast<ResultObject*>(obj);
    Py_INCREF(key);
    self->key = key;
    self->metadata = metadata == Py_None ? PyDict_New() : PyDict_Copy(metadata);
    if (self->metadata == nullptr) {
        Py_DECREF(obj);
        return nullptr;
    }
    self->limit = limit;
    self->window = window;
    self->remaining = remaining;
    self->reset_after = reset_after;
    self->retry_after = retry_after;
    self->allowed = static_cast<char>(allowed != 0);
    self->algorithm = 0xFF;
    return obj;
}

PyMemberDef result_members[] = {
    {"key", T_OBJECT_EX, offsetof(ResultObject, key), READONLY, "The key, without prefix."},
    {"limit", T_LONGLONG, offsetof(ResultObject, limit), READONLY, "The limit applied."},
    {"remaining", T_LONGLONG, offsetof(ResultObject, remaining), READONLY,
     "Requests of cost 1 still admitted now (>= 0)."},
    {"window", T_DOUBLE, offsetof(ResultObject, window), READONLY,
     "The window (seconds) of the limit applied; 0 when unknown."},
    {"reset_after", T_DOUBLE, offsetof(ResultObject, reset_after), READONLY,
     "Seconds until the quota is fully restored."},
    {"retry_after", T_DOUBLE, offsetof(ResultObject, retry_after), READONLY,
     "0 when allowed; else seconds after which the same request is admitted (inf: never)."},
    {nullptr, 0, 0, 0, nullptr},
};

PyGetSetDef result_getset[] = {
    {"allowed", get_allowed, nullptr, "Whether the request was admitted.", nullptr},
    {"metadata", get_metadata, nullptr, "Algorithm-specific values (a new dict on each read: the result is immutable).",
     nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// Whether `type` (a subclass of the base) is the base's layout unchanged: no instance dict,
// no weakref list, no slots, and no finalizer.
bool adds_nothing(PyTypeObject* type) {
    return type->tp_basicsize == g_base_type->tp_basicsize && type->tp_itemsize == 0 &&
           type->tp_dictoffset == 0 && type->tp_weaklistoffset == 0 &&
           type->tp_finalize == nullptr && type->tp_del == nullptr &&
           (type->tp_flags & Py_TPFLAGS_HEAPTYPE) != 0;
}

PyObject* set_public_type(PyObject*, PyObject* cls) {
    if (!PyType_Check(cls) || !PyType_IsSubtype(reinterpret_cast<PyTypeObject*>(cls), g_base_type)) {
        PyErr_SetString(PyExc_TypeError, "expected a subclass of RateLimitResultBase");
        return nullptr;
    }
    auto* type = reinterpret_cast<PyTypeObject*>(cls);
    if (adds_nothing(type)) {
        // Every class statement makes a GC type, so each result would be tracked by the
        // cyclic collector (a larger allocation, link/unlink, and collections triggered by
        // result churn) and freed through the generic subclass deallocator. A subclass that
        // adds no storage, no __del__ and no weakrefs can hold no cycle: its instances are
        // plain C objects like the base's, so they are allocated and freed as such. Safe only
        // while no instance exists: result.py registers the class right after creating it.
        type->tp_flags &= ~Py_TPFLAGS_HAVE_GC;
        type->tp_traverse = nullptr;
        type->tp_clear = nullptr;
        type->tp_free = PyObject_Free;
        type->tp_dealloc = result_dealloc;
    }
    Py_INCREF(cls);
    Py_XDECREF(reinterpret_cast<PyObject*>(g_public_type));
    g_public_type = type;
    Py_RETURN_NONE;
}

PyMethodDef module_methods[] = {
    {"_set_result_class", set_public_type, METH_O,
     "Registers the public RateLimitResult class that limiters instantiate."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

void register_result_type(PyObject* module) {
    static PyType_Slot slots[] = {
        {Py_tp_doc, const_cast<char*>("Outcome of one rate-limit decision (C fields).")},
        {Py_tp_new, reinterpret_cast<void*>(result_new)},
        {Py_tp_dealloc, reinterpret_cast<void*>(result_dealloc)},
        {Py_tp_members, result_members},
        {Py_tp_getset, result_getset},
        {0, nullptr},
    };
    static PyType_Spec spec = {"ratelimiter._core.RateLimitResultBase",
                               static_cast<int>(sizeof(ResultObject)), 0,
                               Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE, slots};
    PyObject* type = PyType_FromSpec(&spec);
    if (type == nullptr) throw std::runtime_error("cannot create RateLimitResultBase");
    g_base_type = reinterpret_cast<PyTypeObject*>(type);
    Py_INCREF(type);  // one reference kept by g_base_type, one given to the module
    if (PyModule_AddObject(module, "RateLimitResultBase", type) < 0) {
        throw std::runtime_error("cannot add RateLimitResultBase");
    }
    if (PyModule_AddFunctions(module, module_methods) < 0) {
        throw std::runtime_error("cannot add _set_result_class");
    }
}

PyObject* make_result(PyObject* key, std::int64_t limit, double window, const Decision& decision,
                      AlgorithmId algorithm) {
    return make_result_as(g_public_type != nullptr ? g_public_type : g_base_type, key, limit,
                          window, decision, algorithm);
}

PyObject* make_result_as(PyTypeObject* type, PyObject* key, std::int64_t limit, double window,
                         const Decision& decision, AlgorithmId algorithm) {
    PyObject* obj;
    if (type->tp_alloc == PyType_GenericAlloc && !PyType_IS_GC(type) &&
        type->tp_basicsize == static_cast<Py_ssize_t>(sizeof(ResultObject))) {
        // What PyType_GenericAlloc does for a non-GC type, less zeroing memory that every
        // field below overwrites (the registered classes: see set_public_type).
        obj = static_cast<PyObject*>(PyObject_Malloc(sizeof(ResultObject)));
        if (obj == nullptr) return PyErr_NoMemory();
        PyObject_Init(obj, type);  // also takes the reference a heap type's instance holds
    } else {
        obj = type->tp_alloc(type, 0);
        if (obj == nullptr) return nullptr;
    }
    auto* self = reinterpret_cast<ResultObject*>(obj);
    Py_INCREF(key);
    self->key = key;
    self->metadata = nullptr;
    self->limit = limit;
    self->window = window;
    self->remaining = decision.remaining;
    self->reset_after = decision.reset_after;
    self->retry_after = decision.retry_after;
    for (std::size_t i = 0; i < kMaxMetadata; ++i) self->meta[i] = decision.meta[i];
    self->allowed = static_cast<char>(decision.allowed);
    self->insufficient_capacity = static_cast<char>(decision.insufficient_capacity);
    self->fallback = static_cast<char>(decision.fallback);
    self->cached = static_cast<char>(decision.cached);
    self->algorithm = static_cast<unsigned char>(algorithm);
    return obj;
}

}  // namespace ratelimiter::binding
