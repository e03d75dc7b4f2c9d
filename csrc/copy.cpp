// Copy kernels: contiguous and copy_ (same-dtype copies).  A copy only moves bytes, so it
// dispatches on the item size, not the dtype.  Where the source is transposed relative
// to the destination the copy goes through cache tiles (numpy walks one side with a large
// stride, missing the cache on every element); other layouts use the strided loops of core.h.
// Cross-dtype copy_ and cast are left to numpy (ref): measured no faster here.
#include "core.h"
#include "transpose4x4.h"

namespace tf {
namespace {

// tile side: 4-byte items go through SSE 4 x 4 blocks, for which 16 measured faster than 32
template <class W> constexpr int64_t kTile = sizeof(W) == 4 ? 16 : 32;

template <class W>
void copy_tiled(char* dst, const int64_t* ds, const char* src, const int64_t* ss, int64_t n0, int64_t n1) {
    // dst[i*ds0 + j*ds1] = src[i*ss0 + j*ss1]; ds/ss in bytes
    constexpr int64_t T = kTile<W>;
    const int64_t t0 = (n0 + T - 1) / T, t1 = (n1 + T - 1) / T;
    const bool blocks4 = sizeof(W) == 4 && ds[1] == 4 && ss[0] == 4;
    parallel_for(t0 * t1, 16, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
            int64_t i0 = (t / t1) * T, j0 = (t % t1) * T;
            int64_t i1 = std::min(n0, i0 + T), j1 = std::min(n1, j0 + T);
            if (blocks4 && i1 - i0 == T && j1 - j0 == T) {
                bool done = true;
                for (int64_t i = i0; i < i1 && done; i += 4)
                    for (int64_t j = j0; j < j1 && done; j += 4)
                        done = transpose4x4(dst + i * ds[0] + j * 4, ds[0], src + i * 4 + j * ss[1], ss[1]);
                if (done) continue;
            }
            for (int64_t i = i0; i < i1; ++i)
                for (int64_t j = j0; j < j1; ++j)
                    *reinterpret_cast<W*>(dst + i * ds[0] + j * ds[1]) = *reinterpret_cast<const W*>(src + i * ss[0] + j * ss[1]);
        }
    });
}

template <class W> void copy_loop(Loop<2>& L) {
    const int nd = L.ndim;
    const int64_t w = sizeof(W);
    // transposed: the source is contiguous along the outer of the last two dims
    if (nd >= 2 && L.bstrides[0][nd - 1] == w && std::abs(L.bstrides[1][nd - 2]) == w &&
        L.shape[nd - 1] >= kTile<W> && L.shape[nd - 2] >= kTile<W>) {
        int64_t outer = 1;
        for (int d = 0; d < nd - 2; ++d) outer *= L.shape[d];
        for (int64_t o = 0; o < outer; ++o) {
            int64_t r = o, od = 0, os = 0;
            for (int d = nd - 3; d >= 0; --d) {
                od += (r % L.shape[d]) * L.bstrides[0][d];
                os += (r % L.shape[d]) * L.bstrides[1][d];
                r /= L.shape[d];
            }
            const int64_t ds[2] = {L.bstrides[0][nd - 2], L.bstrides[0][nd - 1]};
            const int64_t ss[2] = {L.bstrides[1][nd - 2], L.bstrides[1][nd - 1]};
            copy_tiled<W>(L.base[0] + od, ds, L.base[1] + os, ss, L.shape[nd - 2], L.shape[nd - 1]);
        }
        return;
    }
    run_loop(L, [](int64_t n, char** p, const int64_t* s) {
        if (s[0] == int64_t(sizeof(W)) && s[1] == int64_t(sizeof(W))) {
            std::memcpy(p[0], p[1], size_t(n) * sizeof(W));
        } else if (s[0] == int64_t(sizeof(W)) && s[1] == 0) {
            W* __restrict o = reinterpret_cast<W*>(p[0]);
            const W v = *reinterpret_cast<const W*>(p[1]);
            for (int64_t i = 0; i < n; ++i) o[i] = v;
        } else {
            for (int64_t i = 0; i < n; ++i)
                *reinterpret_cast<W*>(p[0] + i * s[0]) = *reinterpret_cast<const W*>(p[1] + i * s[1]);
        }
    });
}

void copy_view(const View& dst, const View& src, const int64_t* sst) {
    char* data[2] = {dst.data, src.data};
    const int64_t* st[2] = {dst.strides, sst};
    const int64_t isz = dst.itemsize();
    const int64_t iszs[2] = {isz, isz};
    auto L = make_loop<2>(dst.shape, dst.ndim, data, st, iszs);
    if (L.numel == 0) return;
    switch (isz) {
        case 1: copy_loop<uint8_t>(L); break;
        case 2: copy_loop<uint16_t>(L); break;
        case 4: copy_loop<uint32_t>(L); break;
        default: copy_loop<uint64_t>(L); break;
    }
}

py::array contiguous(const py::array& xa) {
    View x = view_of(xa, "contiguous");
    py::array out = empty(x.dtype, x.shape, x.ndim);
    if (x.ndim == 0) {  // a 0-d array stays 0-d (the spec, ref.contiguous)
        std::memcpy(out.mutable_data(), x.data, size_t(dtype_size(x.dtype)));
        return out;
    }
    View o = view_of(out, "contiguous");
    {
        py::gil_scoped_release nogil;
        copy_view(o, x, x.strides);
    }
    return out;
}

py::object copy_(const py::array& dsta, const py::array& srca) {
    View d = writeable_view_of(dsta, "copy_"), s = view_of(srca, "copy_");
    if (d.dtype != s.dtype) return call_ref("copy_", dsta, srca);  // casting copy: numpy's rules
    if (s.ndim > d.ndim) fail("copy_", "source of shape " + s.shape_str() + " does not broadcast to " + d.shape_str());
    for (int i = 0; i < s.ndim; ++i) {
        int64_t ds = d.shape[d.ndim - s.ndim + i];
        if (s.shape[i] != ds && s.shape[i] != 1)
            fail("copy_", "source of shape " + s.shape_str() + " does not broadcast to " + d.shape_str());
    }
    // numpy copies through a temporary when the two overlap; so do we
    const char *dlo = d.data, *dhi = d.data, *slo = s.data, *shi = s.data;
    for (int i = 0; i < d.ndim; ++i) {
        if (d.shape[i] == 0) return py::none();
        int64_t ext = (d.shape[i] - 1) * d.strides[i] * d.itemsize();
        (ext < 0 ? dlo : dhi) += ext;
    }
    for (int i = 0; i < s.ndim; ++i) {
        int64_t ext = (s.shape[i] - 1) * s.strides[i] * s.itemsize();
        (ext < 0 ? slo : shi) += ext;
    }
    if (dlo <= shi + s.itemsize() && slo <= dhi + d.itemsize()) return call_ref("copy_", dsta, srca);
    int64_t sst[kMaxDims];
    broadcast_strides(s, d.shape, d.ndim, sst);
    {
        py::gil_scoped_release nogil;
        copy_view(d, s, sst);
    }
    return py::none();
}

}  // namespace
}  // namespace tf

void register_copy(pybind11::module_& m) {
    namespace py = pybind11;
    m.def("contiguous", &tf::contiguous, py::arg("x"), "A row-major copy of x (C++ kernel, tiled transposes).");
    m.def("copy_", &tf::copy_, py::arg("dst"), py::arg("src"),
          "In place: dst[...] = src, broadcasting src (C++ kernel for equal dtypes).");
}
