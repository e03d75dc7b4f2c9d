// tinyfw._cuda: the pybind11 binding of the CUDA kernels.  Compiled by g++ and free of
// CUDA headers (api.h declares the host functions the .cu files define).
//
// `Array` is the cuda device's array: a reference to a block of the caching allocator
// (shared by every view of it), a byte offset, a shape, byte strides and a dtype code.
// It has the attributes every device array has (docs/devices.md); views, kernels and
// transfers are functions of this module, called by tinyfw/backend/cuda.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <vector>

#include "api.h"
#include "ops.h"

namespace py = pybind11;
using namespace tfc;

namespace {

struct Storage {
    Block* block;
    int device;
    Storage(Block* b, int d) : block(b), device(d) {}
    ~Storage() { dev_free(block); }
    char* ptr() const { return static_cast<char*>(block_ptr(block)); }
};

// Python objects the attributes return: numpy dtypes by code, Device objects by index,
// and the backend module (set by tinyfw/backend/cuda.py with register())
struct Registry {
    std::vector<py::object> dtypes, devices;
    py::object backend = py::none();
};
Registry& reg() {
    static auto* r = new Registry();  // never destroyed: arrays may die after the module
    return *r;
}

struct Array {
    std::shared_ptr<Storage> storage;
    int64_t offset = 0;  // bytes
    std::vector<int64_t> shape, strides;  // strides in bytes
    int dtype = F32;
    bool writeable = true;

    int64_t numel() const {
        int64_t n = 1;
        for (auto s : shape) n *= s;
        return n;
    }
    int device() const { return storage->device; }
    char* data() const { return storage->ptr() + offset; }
    TensorArg arg() const {
        if (shape.size() > static_cast<size_t>(kMaxDims))
            throw Unsupported("cuda arrays have at most " + std::to_string(kMaxDims) + " dims");
        TensorArg t;
        t.data = data();
        t.dtype = dtype;
        t.ndim = static_cast<int>(shape.size());
        const int64_t item = dtype_size(dtype);
        for (int i = 0; i < t.ndim; ++i) {
            t.shape[i] = shape[i];
            t.stride[i] = strides[i] / item;
        }
        return t;
    }
    bool contiguous() const {
        if (numel() == 0) return true;  // as numpy: an empty array is contiguous
        int64_t expect = dtype_size(dtype);
        for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
            if (shape[i] != 1 && strides[i] != expect) return false;
            expect *= shape[i];
        }
        return true;
    }
};

std::vector<int64_t> row_major(const std::vector<int64_t>& shape, int item) {
    std::vector<int64_t> st(shape.size());
    int64_t s = item;
    for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
        st[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
    return st;
}

void check_dtype(int dt) {
    if (dt < 0 || dt >= kNumDTypes) throw py::value_error("cuda: unknown dtype code " + std::to_string(dt));
}

Array empty(const std::vector<int64_t>& shape, int dtype, int device) {
    check_dtype(dtype);
    int64_t n = 1;
    for (auto s : shape) {
        if (s < 0) throw py::value_error("cuda.empty: negative dimension");
        n *= s;
    }
    set_device(device);
    Array a;
    a.storage = std::make_shared<Storage>(dev_malloc(device, static_cast<size_t>(n) * dtype_size(dtype),
                                                     current_stream()), device);
    a.shape = shape;
    a.strides = row_major(shape, dtype_size(dtype));
    a.dtype = dtype;
    return a;
}

Array as_strided(const Array& a, std::vector<int64_t> shape, std::vector<int64_t> strides,
                 int64_t offset, bool writeable) {
    if (shape.size() != strides.size()) throw py::value_error("as_strided: shape and strides differ in length");
    Array v;
    v.storage = a.storage;
    v.offset = offset;
    v.shape = std::move(shape);
    v.strides = std::move(strides);
    v.dtype = a.dtype;
    v.writeable = a.writeable && writeable;
    return v;
}

// host -> device: a row-major numpy array (pinned or pageable) into a new device array
Array from_host(py::array host, int dtype, int device, bool pinned) {
    if (!(host.flags() & py::array::c_style)) throw py::value_error("from_host: the host array must be row-major");
    std::vector<int64_t> shape(host.shape(), host.shape() + host.ndim());
    Array a = empty(shape, dtype, device);
    size_t n = static_cast<size_t>(a.numel()) * dtype_size(dtype);
    void* s = current_stream();
    if (n) {
        // from pageable memory the copy returns once the data is staged; from pinned memory it
        // is asynchronous and the block is kept until the copy finished (pinned_record)
        memcpy_h2d(a.data(), host.data(), n, s, false);
        if (pinned) pinned_record(const_cast<void*>(host.data()), s);
    }
    return a;
}

void to_host(const Array& a, py::array host) {
    if (!a.contiguous()) throw py::value_error("to_host: the device array must be contiguous");
    size_t n = static_cast<size_t>(a.numel()) * dtype_size(a.dtype);
    set_device(a.device());
    void* s = current_stream();
    char* src = a.data();
    void* dst = host.mutable_data();
    py::gil_scoped_release nogil;
    memcpy_d2h(dst, src, n, s);
}

py::array pinned_empty(size_t nbytes) {
    void* p = pinned_malloc(nbytes);
    py::capsule owner(p, [](void* q) { pinned_free(q); });
    return py::array(py::dtype("uint8"), {static_cast<py::ssize_t>(nbytes)}, {1}, p, owner);
}

void* stream_of(uintptr_t s) { return reinterpret_cast<void*>(s); }

}  // namespace

PYBIND11_MODULE(_cuda, m) {
    m.doc() = "tinyfw's CUDA kernels, device memory, streams and events (see docs/cuda.md)";
    static py::exception<CudaError> cuda_error(m, "CudaError", PyExc_RuntimeError);
    static py::exception<OutOfMemory> oom(m, "OutOfMemoryError", PyExc_RuntimeError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const CudaError& e) {  // PyErr_SetString: works with pybind11 before 2.12 too
            PyErr_SetString(cuda_error.ptr(), e.what());
        } catch (const OutOfMemory& e) {
            PyErr_SetString(oom.ptr(), e.what());
        } catch (const Unsupported& e) {
            PyErr_SetString(PyExc_NotImplementedError, e.what());
        }
    });

    m.attr("MAX_DIMS") = kMaxDims;
    py::dict unary, binary, reduce;
#define TFC_NAME(n) d[#n] = static_cast<int>(op_##n);
    {
        auto& d = unary;
        TFC_UNARY_OPS(TFC_NAME)
    }
    {
        auto& d = binary;
        TFC_BINARY_OPS(TFC_NAME)
    }
    {
        auto& d = reduce;
        TFC_REDUCE_OPS(TFC_NAME)
    }
#undef TFC_NAME
    m.attr("UNARY") = unary;
    m.attr("BINARY") = binary;
    m.attr("REDUCE") = reduce;

    m.def("register", [](std::vector<py::object> dtypes, std::vector<py::object> devices, py::object backend) {
        reg().dtypes = std::move(dtypes);
        reg().devices = std::move(devices);
        reg().backend = std::move(backend);
    }, "Set the Python objects Array attributes return (tinyfw/backend/cuda.py calls it).");

    py::class_<Storage, std::shared_ptr<Storage>>(m, "Storage", "A block of device memory; its views share it.")
        .def_property_readonly("ptr", [](const Storage& s) { return reinterpret_cast<uintptr_t>(s.ptr()); })
        .def_property_readonly("nbytes", [](const Storage& s) { return block_size(s.block); })
        .def("__eq__", [](const Storage& a, const Storage& b) { return a.block == b.block; })
        .def("__hash__", [](const Storage& s) { return std::hash<const void*>()(s.block); });

    py::class_<Array>(m, "Array", "An array of a cuda device (see docs/devices.md, docs/cuda.md).")
        .def_property_readonly("shape", [](const Array& a) {
            py::tuple t(a.shape.size());
            for (size_t i = 0; i < a.shape.size(); ++i) t[i] = a.shape[i];
            return t;
        })
        .def_property_readonly("strides", [](const Array& a) {
            py::tuple t(a.strides.size());
            for (size_t i = 0; i < a.strides.size(); ++i) t[i] = a.strides[i];
            return t;
        })
        .def_property_readonly("dtype", [](const Array& a) { return reg().dtypes.at(a.dtype); })
        .def_property_readonly("dtype_code", [](const Array& a) { return a.dtype; })
        .def_property_readonly("ndim", [](const Array& a) { return a.shape.size(); })
        .def_property_readonly("size", &Array::numel)
        .def_property_readonly("itemsize", [](const Array& a) { return dtype_size(a.dtype); })
        .def_property_readonly("offset", [](const Array& a) { return a.offset; })
        .def_property_readonly("writeable", [](const Array& a) { return a.writeable; })
        .def_property_readonly("contiguous", &Array::contiguous)
        .def_property_readonly("storage", [](const Array& a) { return a.storage; })
        .def_property_readonly("data_ptr", [](const Array& a) { return reinterpret_cast<uintptr_t>(a.data()); })
        .def_property_readonly("device_index", &Array::device)
        .def_property_readonly("device", [](const Array& a) { return reg().devices.at(a.device()); })
        .def_property_readonly("backend", [](const Array&) { return reg().backend; })
        .def("__array__", [](const Array&, py::args, py::kwargs) -> py::object {
            throw py::type_error("a cuda array reached numpy directly; use .cpu() (tinyfw.backend.cuda.to_host)");
        })
        .def("__repr__", [](const Array& a) {
            std::string s = "cuda.Array(shape=(";
            for (size_t i = 0; i < a.shape.size(); ++i) s += std::to_string(a.shape[i]) + (a.shape.size() == 1 ? "," : i + 1 < a.shape.size() ? ", " : "");
            return s + "), dtype=" + dtype_name(a.dtype) + ", device=cuda:" + std::to_string(a.device()) + ")";
        });

    // ---- devices, streams, events
    m.def("device_count", []() { return device_count(nullptr); });
    m.def("unavailable_reason", []() {
        std::string why;
        return device_count(&why) ? std::string() : why;
    }, "Why no CUDA device can be used ('' when one can): the driver's message.");
    m.def("current_device", &current_device);
    m.def("set_device", &set_device);
    m.def("synchronize", []() { py::gil_scoped_release nogil; device_synchronize(); });
    m.def("device_name", &device_name);
    m.def("device_properties", [](int i) {
        int64_t mem, l2;
        int sms, major, minor, bus, clock;
        device_properties(i, &mem, &sms, &major, &minor, &l2, &bus, &clock);
        py::dict d;
        d["name"] = device_name(i);
        d["total_memory"] = mem;
        d["multi_processor_count"] = sms;
        d["major"] = major;
        d["minor"] = minor;
        d["l2_cache_size"] = l2;
        d["memory_bus_width"] = bus;
        d["memory_clock_khz"] = clock;
        return d;
    });
    m.def("current_stream", []() { return reinterpret_cast<uintptr_t>(current_stream()); });
    m.def("set_current_stream", [](uintptr_t s) { set_current_stream(stream_of(s)); });
    m.def("stream_create", [](int prio) { return reinterpret_cast<uintptr_t>(stream_create(prio)); });
    m.def("stream_destroy", [](uintptr_t s) { stream_destroy(stream_of(s)); });
    m.def("stream_synchronize", [](uintptr_t s) { py::gil_scoped_release nogil; stream_synchronize(stream_of(s)); });
    m.def("stream_query", [](uintptr_t s) { return stream_query(stream_of(s)); });
    m.def("event_create", [](bool timing) { return reinterpret_cast<uintptr_t>(event_create(timing)); });
    m.def("event_destroy", [](uintptr_t e) { event_destroy(stream_of(e)); });
    m.def("event_record", [](uintptr_t e, uintptr_t s) { event_record(stream_of(e), stream_of(s)); });
    m.def("event_synchronize", [](uintptr_t e) { py::gil_scoped_release nogil; event_synchronize(stream_of(e)); });
    m.def("event_query", [](uintptr_t e) { return event_query(stream_of(e)); });
    m.def("stream_wait_event", [](uintptr_t s, uintptr_t e) { stream_wait_event(stream_of(s), stream_of(e)); });
    m.def("event_elapsed_ms", [](uintptr_t a, uintptr_t b) { return event_elapsed_ms(stream_of(a), stream_of(b)); });

    // ---- memory
    m.def("empty", &empty);
    m.def("as_strided", &as_strided, py::arg("a"), py::arg("shape"), py::arg("strides"), py::arg("offset"),
          py::arg("writeable") = true);
    m.def("from_host", &from_host);
    m.def("to_host", &to_host);
    m.def("copy_bytes", [](const Array& dst, const Array& src, size_t n) {
        memcpy_d2d(dst.data(), src.data(), n, current_stream());
    });
    m.def("record_stream", [](const Array& a, uintptr_t s) { block_record_stream(a.storage->block, stream_of(s)); });
    m.def("memory_stats", [](int device) {
        AllocStats s = alloc_stats(device);
        py::dict d;
        d["allocated"] = s.allocated;
        d["max_allocated"] = s.max_allocated;
        d["reserved"] = s.reserved;
        d["max_reserved"] = s.max_reserved;
        d["allocations"] = s.n_alloc;
        d["cuda_mallocs"] = s.n_cuda_malloc;
        d["splits"] = s.n_split;
        d["free_blocks"] = s.n_free_blocks;
        d["ooms"] = s.n_ooms;
        d["pinned_reserved"] = pinned_reserved();
        return d;
    });
    m.def("reset_peak", &reset_peak);
    m.def("empty_cache", [](int d) { py::gil_scoped_release nogil; empty_cache(d); });
    m.def("snapshot", &alloc_snapshot);
    m.def("pinned_empty", &pinned_empty, "A uint8 host array of page-locked memory (cached).");

    // ---- kernels: operands are Arrays of out's shape (broadcast ones expanded by the caller)
    auto s = []() { return current_stream(); };
    m.def("unary", [s](int op, const Array& out, const Array& in, double a0, double a1) {
        launch_unary(op, out.arg(), in.arg(), a0, a1, s());
    });
    m.def("binary", [s](int op, const Array& out, const Array& a, const Array& b) {
        launch_binary(op, out.arg(), a.arg(), b.arg(), s());
    });
    m.def("where", [s](const Array& out, const Array& c, const Array& a, const Array& b) {
        launch_where(out.arg(), c.arg(), a.arg(), b.arg(), s());
    });
    m.def("copy", [s](const Array& out, const Array& in) { launch_copy(out.arg(), in.arg(), s()); });
    m.def("fill", [s](const Array& out, double v, int64_t iv, bool is_int) { launch_fill(out.arg(), v, iv, is_int, s()); });
    m.def("tri", [s](const Array& out, const Array& in, int64_t k, bool upper) { launch_tri(out.arg(), in.arg(), k, upper, s()); });
    m.def("reduce", [s](int op, const Array& out, const Array& in, int n_kept) {
        launch_reduce(op, out.arg(), in.arg(), n_kept, s());
    });
    m.def("arg_reduce", [s](bool is_max, const Array& out, const Array& in) { launch_arg_reduce(is_max, out.arg(), in.arg(), s()); });
    m.def("cumsum", [s](const Array& out, const Array& in) { launch_cumsum(out.arg(), in.arg(), s()); });
    m.def("sort", [s](const Array& v, const Array& i, const Array& in, bool desc) { launch_sort(v.arg(), i.arg(), in.arg(), desc, s()); });
    m.def("gather", [s](const Array& out, const Array& x, const Array& index, int dim, int64_t size, int64_t stride) {
        launch_gather(out.arg(), x.arg(), index.arg(), dim, size, stride, s());
    });
    m.def("scatter", [s](const Array& out, const Array& index, const Array& src, int dim, int64_t size, int64_t stride, bool add) {
        launch_scatter(out.arg(), index.arg(), src.arg(), dim, size, stride, add, s());
    });
    m.def("index_min_max", [s](const Array& index) {
        int64_t mm[2] = {0, 0};
        TensorArg t = index.arg();
        void* st = s();
        {
            py::gil_scoped_release nogil;
            index_min_max(t, mm, st);
        }
        return py::make_tuple(mm[0], mm[1]);
    });
    m.def("uniform", [s](const Array& out, uint64_t seed, uint64_t offset) { launch_uniform(out.arg(), seed, offset, s()); });
    m.def("normal", [s](const Array& out, uint64_t seed, uint64_t offset) { launch_normal(out.arg(), seed, offset, s()); });
    m.def("dropout", [s](const Array& y, const Array& mask, const Array& x, double p, uint64_t seed) {
        launch_dropout(y.arg(), mask.arg(), x.arg(), p, seed, s());
    });
}
