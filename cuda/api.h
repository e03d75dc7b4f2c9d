// The host-side interface of the CUDA kernels: plain C++ with no CUDA header, so the
// pybind11 binding (module.cpp) compiles with g++ while the .cu files compile with nvcc.
//
// A tensor reaches a kernel as a TensorArg: a typed base pointer (already offset to the
// view's first element), a dtype code, a shape and strides in ELEMENTS (0 for broadcast
// dims, negative for flipped views).  Streams travel as opaque void* (a cudaStream_t).
#pragma once
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace tfc {

// dtype codes; the order is the Python side's too (tinyfw/backend/cuda_array.py)
enum DType : int { Bool = 0, I8 = 1, I32 = 2, I64 = 3, F16 = 4, BF16 = 5, F32 = 6, F64 = 7 };
constexpr int kNumDTypes = 8;
constexpr int kMaxDims = 12;

inline int dtype_size(int dt) {
    static const int sizes[kNumDTypes] = {1, 1, 4, 8, 2, 2, 4, 8};
    return sizes[dt];
}
const char* dtype_name(int dt);

struct TensorArg {
    void* data = nullptr;
    int dtype = F32;
    int ndim = 0;
    int64_t shape[kMaxDims] = {};
    int64_t stride[kMaxDims] = {};  // elements
    int64_t numel() const {
        int64_t n = 1;
        for (int i = 0; i < ndim; ++i) n *= shape[i];
        return n;
    }
};

// A CUDA failure, raised as tinyfw._cuda.CudaError (a RuntimeError) naming what failed.
struct CudaError : std::runtime_error {
    using std::runtime_error::runtime_error;
};
// A request the kernels do not support (dtype, size): raised as NotImplementedError.
struct Unsupported : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct OutOfMemory : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---- runtime (runtime.cu)
// device count; when 0, `why` says why (the driver's message, e.g. no driver)
int device_count(std::string* why);
int current_device();
void set_device(int index);
void device_synchronize();
std::string device_name(int index);
void device_properties(int index, int64_t* total_mem, int* sm_count, int* major, int* minor,
                       int64_t* l2_bytes, int* mem_bus_bits, int* mem_clock_khz);

void* current_stream();             // of the current device, this thread
void set_current_stream(void* s);   // nullptr: the default stream
void* stream_create(int priority);
void stream_destroy(void* s);
void stream_synchronize(void* s);
bool stream_query(void* s);
void* event_create(bool timing);
void event_destroy(void* e);
void event_record(void* e, void* stream);
void event_synchronize(void* e);
bool event_query(void* e);
void stream_wait_event(void* stream, void* e);
float event_elapsed_ms(void* start, void* end);

void memcpy_h2d(void* dst, const void* src, size_t n, void* stream, bool sync);
void memcpy_d2h(void* dst, const void* src, size_t n, void* stream);  // waits
void memcpy_d2d(void* dst, const void* src, size_t n, void* stream);
// the message of a failed launch naming `kernel`; throws CudaError
void check_launch(const char* kernel);

// ---- the caching allocator (allocator.cu)
struct Block;
Block* dev_malloc(int device, size_t bytes, void* stream);
void dev_free(Block* b);
void* block_ptr(const Block* b);
size_t block_size(const Block* b);
void block_record_stream(Block* b, void* stream);  // used on another stream: wait before reuse
struct AllocStats {
    int64_t allocated = 0, max_allocated = 0, reserved = 0, max_reserved = 0;
    int64_t n_alloc = 0, n_cuda_malloc = 0, n_split = 0, n_free_blocks = 0, n_ooms = 0;
};
AllocStats alloc_stats(int device);
void reset_peak(int device);
void empty_cache(int device);
// the segments and their blocks, one line each: "segment <ptr> <size> <stream>\n  block ..."
std::string alloc_snapshot(int device);

// pinned host memory, cached: a freed block is reused only once the copies that read it
// (recorded with pinned_record) finished
void* pinned_malloc(size_t bytes);
void pinned_free(void* p);
void pinned_record(void* p, void* stream);
int64_t pinned_reserved();

// ---- kernels (the other .cu files); every launch takes the stream it runs on
// elementwise: op codes in ops.h
void launch_unary(int op, const TensorArg& out, const TensorArg& in, double a0, double a1, void* s);
void launch_binary(int op, const TensorArg& out, const TensorArg& a, const TensorArg& b, void* s);
void launch_where(const TensorArg& out, const TensorArg& cond, const TensorArg& a,
                  const TensorArg& b, void* s);
// out = in converted by tinyfw's cast rules, any dtypes, strided, broadcasting in
void launch_copy(const TensorArg& out, const TensorArg& in, void* s);
void launch_fill(const TensorArg& out, double value, int64_t ivalue, bool is_int, void* s);
// out = x where (col - row) <= k (tril) / >= k (triu) over the last two dims, else 0
void launch_tri(const TensorArg& out, const TensorArg& in, int64_t k, bool upper, void* s);
// reductions: `in` viewed as [kept dims..., reduced dims...]; out has the kept dims
void launch_reduce(int op, const TensorArg& out, const TensorArg& in, int n_kept, void* s);
void launch_arg_reduce(bool is_max, const TensorArg& out, const TensorArg& in, void* s);
// scans and sorts along the last dim of `in` (the caller moves `dim` last)
void launch_cumsum(const TensorArg& out, const TensorArg& in, void* s);
void launch_sort(const TensorArg& values, const TensorArg& indices, const TensorArg& in,
                 bool descending, void* s);
// gather/scatter along dim: every arg has index's shape (x's strides as given)
void launch_gather(const TensorArg& out, const TensorArg& x, const TensorArg& index, int dim,
                   int64_t dim_size, int64_t dim_stride, void* s);
void launch_scatter(const TensorArg& out, const TensorArg& index, const TensorArg& src, int dim,
                    int64_t dim_size, int64_t dim_stride, bool add, void* s);
// index range check: writes min and max of an int64 tensor into host[0], host[1] (waits)
void index_min_max(const TensorArg& index, int64_t* host, void* s);
// Philox4x32-10: uniform [0, 1) float32 draws from (seed, offset) for out's elements in
// row-major order; dropout keeps x where u >= p (mask bool, y scaled by 1 / (1 - p))
void launch_uniform(const TensorArg& out, uint64_t seed, uint64_t offset, void* s);
void launch_normal(const TensorArg& out, uint64_t seed, uint64_t offset, void* s);
void launch_dropout(const TensorArg& y, const TensorArg& mask, const TensorArg& x, double p,
                    uint64_t seed, void* s);

}  // namespace tfc
