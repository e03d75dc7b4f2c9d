// Half-precision inputs of the row kernels (softmax, layer_norm): a block of rows (or of
// a column chunk) converted into a per-thread float32 buffer, the float32 kernel run on
// it, the result rounded back once.  No float32 copy of a whole tensor is made, and the
// values are those of the former full float32 copy bit for bit (same kernel, same inputs).
#pragma once

#include <cstdint>
#include <vector>

#include "core.h"
#include "nn_common.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace half_stage {

inline void to_f32(const tf::half* s, int64_t n, float* d) { tf::half_to_float_n(s, d, n); }
inline void to_f32(const tf::bhalf* s, int64_t n, float* d) { tf::bhalf_to_float_n(s, d, n); }
inline void from_f32(const float* s, int64_t n, tf::half* d) { tf::float_to_half_n(s, d, n); }
inline void from_f32(const float* s, int64_t n, tf::bhalf* d) { tf::float_to_bhalf_n(s, d, n); }

/// A float32 buffer of at least n elements, slot `which` (0-2) of the calling thread's.
inline float* buffer(int which, int64_t n) {
    thread_local std::vector<float> bufs[3];
    std::vector<float>& b = bufs[which];
    if (int64_t(b.size()) < n) b.resize(size_t(n));
    return b.data();
}

/// 0 for float16, 1 for bfloat16, -1 for other dtypes (call it with the GIL held).
inline int half_index(const py::array& a) {
    if (kind_of(a.dtype()) != Kind::Half) return -1;
    return a.dtype().kind() == 'f' ? 0 : 1;
}

/// f(tf::half{}) or f(tf::bhalf{}) for a half_index of 0 or 1.
template <class F> void with_half(int index, F&& f) {
    if (index == 0) f(tf::half{});
    else f(tf::bhalf{});
}

}  // namespace half_stage
TINYFW_ISA_END
}  // namespace tinyfw
