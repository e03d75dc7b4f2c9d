// Devices, streams, events, copies and errors: thin wrappers over the CUDA runtime that
// turn every failure into a CudaError naming what failed.
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "common.cuh"

namespace tfc {

const char* dtype_name(int dt) {
    static const char* names[kNumDTypes] = {"bool", "int8", "int32", "int64",
                                            "float16", "bfloat16", "float32", "float64"};
    return dt >= 0 && dt < kNumDTypes ? names[dt] : "unknown";
}

static void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
        cudaGetLastError();  // clear a non-sticky error so the next call starts clean
        throw CudaError(std::string(what) + ": " + cudaGetErrorName(e) + " (" +
                        cudaGetErrorString(e) + ")");
    }
}

void check_launch(const char* kernel) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        throw CudaError(std::string("CUDA kernel ") + kernel + " failed to launch: " +
                        cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ")");
#ifdef TINYFW_CUDA_SYNC_CHECK
    // debugging builds: wait after every launch, so an error names the kernel that made it
    e = cudaDeviceSynchronize();
    if (e != cudaSuccess)
        throw CudaError(std::string("CUDA kernel ") + kernel + " failed: " + cudaGetErrorName(e) +
                        " (" + cudaGetErrorString(e) + ")");
#endif
}

int grid_for(int64_t n, int threads) {
    static int sms = [] {
        int dev = 0, count = 0;
        cudaGetDevice(&dev);
        if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
            count = 80;
        return count;
    }();
    int64_t blocks = (n + threads - 1) / threads;
    int64_t cap = static_cast<int64_t>(sms) * (2048 / threads) * 4;  // 4 waves of full SMs
    return static_cast<int>(blocks < cap ? blocks : cap);
}

int device_count(std::string* why) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (why) *why = std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
        return 0;
    }
    if (n == 0 && why) *why = "no CUDA device";
    return n;
}

int current_device() {
    int d = 0;
    check(cudaGetDevice(&d), "cudaGetDevice");
    return d;
}

void set_device(int index) { check(cudaSetDevice(index), "cudaSetDevice"); }

void device_synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize (a queued kernel failed)"); }

std::string device_name(int index) {
    cudaDeviceProp p;
    check(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties");
    return p.name;
}

void device_properties(int index, int64_t* total_mem, int* sm_count, int* major, int* minor,
                       int64_t* l2_bytes, int* mem_bus_bits, int* mem_clock_khz) {
    cudaDeviceProp p;
    check(cudaGetDeviceProperties(&p, index), "cudaGetDeviceProperties");
    *total_mem = static_cast<int64_t>(p.totalGlobalMem);
    *sm_count = p.multiProcessorCount;
    *major = p.major;
    *minor = p.minor;
    *l2_bytes = p.l2CacheSize;
    // CUDA 13 dropped memoryClockRate/memoryBusWidth from cudaDeviceProp: ask the attributes
    if (cudaDeviceGetAttribute(mem_bus_bits, cudaDevAttrGlobalMemoryBusWidth, index) != cudaSuccess)
        *mem_bus_bits = 0;
    if (cudaDeviceGetAttribute(mem_clock_khz, cudaDevAttrMemoryClockRate, index) != cudaSuccess)
        *mem_clock_khz = 0;
    cudaGetLastError();
}

// the current stream of each device, per thread (nullptr: the default stream)
static thread_local std::vector<void*> tl_streams;

void* current_stream() {
    int d = current_device();
    return d < static_cast<int>(tl_streams.size()) ? tl_streams[d] : nullptr;
}

void set_current_stream(void* s) {
    int d = current_device();
    if (d >= static_cast<int>(tl_streams.size())) tl_streams.resize(d + 1, nullptr);
    tl_streams[d] = s;
}

void* stream_create(int priority) {
    cudaStream_t s;
    // non-blocking: user streams do not serialise with the default stream
    check(cudaStreamCreateWithPriority(&s, cudaStreamNonBlocking, priority), "cudaStreamCreate");
    return s;
}
void stream_destroy(void* s) { cudaStreamDestroy(as_stream(s)); }
void stream_synchronize(void* s) { check(cudaStreamSynchronize(as_stream(s)), "cudaStreamSynchronize (a queued kernel failed)"); }
bool stream_query(void* s) {
    cudaError_t e = cudaStreamQuery(as_stream(s));
    if (e == cudaErrorNotReady) return false;
    check(e, "cudaStreamQuery");
    return true;
}

void* event_create(bool timing) {
    cudaEvent_t e;
    check(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreate");
    return e;
}
void event_destroy(void* e) { cudaEventDestroy(static_cast<cudaEvent_t>(e)); }
void event_record(void* e, void* s) { check(cudaEventRecord(static_cast<cudaEvent_t>(e), as_stream(s)), "cudaEventRecord"); }
void event_synchronize(void* e) { check(cudaEventSynchronize(static_cast<cudaEvent_t>(e)), "cudaEventSynchronize"); }
bool event_query(void* e) {
    cudaError_t r = cudaEventQuery(static_cast<cudaEvent_t>(e));
    if (r == cudaErrorNotReady) return false;
    check(r, "cudaEventQuery");
    return true;
}
void stream_wait_event(void* s, void* e) {
    check(cudaStreamWaitEvent(as_stream(s), static_cast<cudaEvent_t>(e), 0), "cudaStreamWaitEvent");
}
float event_elapsed_ms(void* a, void* b) {
    float ms = 0;
    check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(a), static_cast<cudaEvent_t>(b)),
          "cudaEventElapsedTime (were both events recorded with timing, and has the end one completed?)");
    return ms;
}

void memcpy_h2d(void* dst, const void* src, size_t n, void* s, bool sync) {
    if (!n) return;
    check(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, as_stream(s)), "host-to-device copy");
    if (sync) check(cudaStreamSynchronize(as_stream(s)), "host-to-device copy");
}
void memcpy_d2h(void* dst, const void* src, size_t n, void* s) {
    if (!n) return;
    check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, as_stream(s)), "device-to-host copy");
    check(cudaStreamSynchronize(as_stream(s)), "device-to-host copy (a queued kernel failed)");
}
void memcpy_d2d(void* dst, const void* src, size_t n, void* s) {
    if (!n) return;
    check(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, as_stream(s)), "device-to-device copy");
}

}  // namespace tfc
