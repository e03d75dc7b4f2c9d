// What a lab's .cu file includes: the CUDA runtime under nvcc, the emulator (cuda_emu.h)
// under a host C++ compiler, and one launch form that compiles with both:
//
//     LAUNCH(kernel, grid, block, args...)    // kernel<<<grid, block>>>(args...)
//
// (no dynamic shared memory or streams: the labs need neither, and the emulator has none).
#pragma once
#ifdef __CUDACC__
#include <cuda_runtime.h>
#define LAUNCH(kernel, grid, block, ...) kernel<<<(grid), (block)>>>(__VA_ARGS__)
#define TINYFW_CUDA_EMU 0
#else
#include "cuda_emu.h"
// (GNU's `, ##__VA_ARGS__` drops the comma when a kernel takes no arguments)
#define LAUNCH(kernel, grid, block, ...) \
    ::emu::launch(#kernel, kernel, (grid), (block), ##__VA_ARGS__)
#define TINYFW_CUDA_EMU 1
#endif
