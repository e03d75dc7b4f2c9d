// The CPU caching allocator behind the C++ kernels' outputs (core.h `empty`).
//
// A large array freed by Python goes back to glibc, which returns big blocks to the OS
// (mmap'd above M_MMAP_THRESHOLD); the next step's array of the same size then page-faults
// on every 4 KiB page it touches.  The pool keeps such blocks instead: requests of at
// least kMinBytes are rounded up to a size class (4 classes per power of two, so at most
// 25% is wasted), served from that class's free list when it has a block, and the block
// returns to the list when the last numpy array viewing it dies (the array's base is a
// capsule whose destructor gives the block back).  Cached bytes are capped; `empty_cache`
// frees them.  The statistics are those a CUDA caching allocator reports.
//
// Small requests bypass the pool: malloc's own bins already serve them without faults.
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "core.h"

namespace tf {
namespace {

constexpr size_t kMinBytes = size_t(1) << 16;  // 64 KiB
constexpr size_t kAlign = 64;

struct Pool {
    std::mutex mu;
    std::map<size_t, std::vector<void*>> free_blocks;  // size class -> cached blocks
    bool enabled = true;
    size_t cap = size_t(2) << 30;  // cached bytes kept at most
    size_t cached = 0, allocated = 0, peak = 0;
    int64_t hits = 0, misses = 0;
};

Pool& pool() {
    static Pool* p = new Pool();  // never destroyed: capsules may outlive static teardown
    return *p;
}

size_t size_class(size_t n) {
    // the next of 4 evenly spaced sizes per power of two at or above n
    size_t top = size_t(1) << (63 - __builtin_clzll(n - 1));  // largest power of two < n
    size_t step = top / 4;
    return (n + step - 1) / step * step;
}

struct Block {
    void* ptr;
    size_t bytes;
};

void give_back(void* raw) {
    auto* b = static_cast<Block*>(raw);
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    p.allocated -= b->bytes;
    if (p.enabled && p.cached + b->bytes <= p.cap) {
        p.free_blocks[b->bytes].push_back(b->ptr);
        p.cached += b->bytes;
    } else {
        std::free(b->ptr);
    }
    delete b;
}

void release_cached(Pool& p) {
    for (auto& kv : p.free_blocks)
        for (void* ptr : kv.second) std::free(ptr);
    p.free_blocks.clear();
    p.cached = 0;
}

}  // namespace

py::object pooled_buffer(size_t nbytes, void** data) {
    Pool& p = pool();
    if (!p.enabled || nbytes < kMinBytes) return py::none();
    const size_t bytes = size_class(nbytes);
    void* ptr = nullptr;
    {
        std::lock_guard<std::mutex> lock(p.mu);
        auto it = p.free_blocks.find(bytes);
        if (it != p.free_blocks.end() && !it->second.empty()) {
            ptr = it->second.back();
            it->second.pop_back();
            p.cached -= bytes;
            ++p.hits;
        } else {
            ++p.misses;
        }
        p.allocated += bytes;
        p.peak = std::max(p.peak, p.allocated);
    }
    if (ptr == nullptr) {
        ptr = std::aligned_alloc(kAlign, bytes);
        if (ptr == nullptr) {
            std::lock_guard<std::mutex> lock(p.mu);
            p.allocated -= bytes;
            throw std::bad_alloc();
        }
    }
    *data = ptr;
    return py::capsule(new Block{ptr, bytes}, "tinyfw.pool.block", &give_back);
}

py::dict pool_stats() {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    py::dict d;
    d["enabled"] = p.enabled;
    d["allocated"] = p.allocated;
    d["max_allocated"] = p.peak;
    d["reserved"] = p.allocated + p.cached;
    d["cached"] = p.cached;
    d["cap"] = p.cap;
    d["hits"] = p.hits;
    d["misses"] = p.misses;
    return d;
}

void pool_configure(py::object enabled, py::object cap) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    // switching off stops serving and caching; the blocks already cached stay until
    // empty_cache(), so a benchmark can switch back and forth without a cold start
    if (!enabled.is_none()) p.enabled = enabled.cast<bool>();
    if (!cap.is_none()) {
        p.cap = cap.cast<size_t>();
        if (p.cached > p.cap) release_cached(p);
    }
}

void pool_empty_cache() {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    release_cached(p);
}

void pool_reset_peak() {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    p.peak = p.allocated;
}

py::array pool_empty(py::sequence shape, py::dtype dtype) {
    const DType dt = dtype_from_numpy(dtype, "empty");
    std::vector<int64_t> sh;
    for (auto s : shape) {
        const int64_t n = s.cast<int64_t>();
        if (n < 0) fail("empty", "negative dimension in shape " + std::string(py::str(shape)));
        sh.push_back(n);
    }
    return empty(dt, sh);
}

}  // namespace tf

void register_pool(pybind11::module_& m) {
    namespace py = pybind11;
    m.def("pool_stats", &tf::pool_stats, "The CPU caching allocator's counters (bytes, hits).");
    m.def("pool_configure", &tf::pool_configure, py::arg("enabled") = py::none(),
          py::arg("cap") = py::none(),
          "Turn the caching allocator on/off (off keeps what is cached until "
          "pool_empty_cache) and set its cap on cached bytes.");
    m.def("pool_empty_cache", &tf::pool_empty_cache, "Free every cached block.");
    m.def("pool_reset_peak", &tf::pool_reset_peak, "Restart the peak from the live bytes.");
    m.def("empty", &tf::pool_empty, py::arg("shape"), py::arg("dtype"),
          "A new row-major array, from the caching allocator when large (values unspecified).");
}
