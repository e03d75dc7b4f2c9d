// The host side of the CUDA runtime, as far as lab code calls it, for the emulator
// (cuda_emu.h): device memory is host memory, copies are memcpy, launches are synchronous.
#pragma once
#include <cstdlib>
#include <cstring>

enum cudaError_t {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
};
enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4,
};

// new device memory holds garbage on a GPU: here 0xFF bytes (NaN floats), so that reading
// a cell nobody wrote shows in the results
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
    if (!p) return cudaErrorInvalidValue;
    *p = std::malloc(bytes ? bytes : 1);
    if (!*p) return cudaErrorMemoryAllocation;
    std::memset(*p, 0xFF, bytes);
    return cudaSuccess;
}
template <class T> cudaError_t cudaMalloc(T** p, size_t bytes) {
    return cudaMalloc(reinterpret_cast<void**>(p), bytes);
}
inline cudaError_t cudaFree(void* p) { std::free(p); return cudaSuccess; }
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
    if (bytes && (!dst || !src)) return cudaErrorInvalidValue;
    if (bytes) std::memmove(dst, src, bytes);
    return cudaSuccess;
}
inline cudaError_t cudaMemset(void* p, int value, size_t bytes) {
    if (bytes && !p) return cudaErrorInvalidValue;
    if (bytes) std::memset(p, value, bytes);
    return cudaSuccess;
}
// launches run to completion and report errors by throwing, so nothing is ever pending
inline cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaPeekAtLastError() { return cudaSuccess; }
inline const char* cudaGetErrorString(cudaError_t e) {
    switch (e) {
        case cudaSuccess: return "no error";
        case cudaErrorInvalidValue: return "invalid argument";
        case cudaErrorMemoryAllocation: return "out of memory";
    }
    return "unknown error";
}
