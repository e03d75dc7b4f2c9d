// The `matmul` primitive: numpy's matmul semantics (1-D promotion, broadcast batch dims,
// integer products that wrap around) on top of the GEMM in gemm.cpp.
#include "gemm.h"
#include "gemm_half.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "nn_common.h"

namespace tinyfw {
TINYFW_ISA_BEGIN  // one copy per ISA level (isa.h)
namespace {

// Integer matmul, as numpy's: wraps around on overflow.  Accumulating in uint64 and
// truncating gives exactly the mod-2^w result without signed-overflow UB.
template <typename T>
void int_gemm(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
              int64_t rsb, int64_t csb, T* c) {
    std::vector<uint64_t> row(n);
    for (int64_t i = 0; i < m; ++i) {
        std::fill(row.begin(), row.end(), 0);
        for (int64_t p = 0; p < k; ++p) {
            const uint64_t av = (uint64_t)(int64_t)a[i * rsa + p * csa];
            const T* bp = b + p * rsb;
            for (int64_t j = 0; j < n; ++j) row[j] += av * (uint64_t)(int64_t)bp[j * csb];
        }
        for (int64_t j = 0; j < n; ++j) c[i * n + j] = (T)row[j];
    }
}

// The batched product over broadcast batch dims: out[batch] = a[batch] @ b[batch].
template <typename T, typename F>
void batched(const View& va, const View& vb, const std::vector<int64_t>& bshape, T* out,
             int64_t m, int64_t n, int64_t k, F&& one) {
    const int64_t nd = (int64_t)bshape.size();
    int64_t nb = 1;
    for (auto s : bshape) nb *= s;
    // batch strides of a and b aligned to the broadcast shape (0 where broadcast)
    std::vector<int64_t> sa(nd, 0), sb(nd, 0);
    for (int64_t d = 0; d < nd; ++d) {
        const int64_t da = d - (nd - (va.ndim() - 2)), db = d - (nd - (vb.ndim() - 2));
        if (da >= 0 && va.shape[da] != 1) sa[d] = va.strides[da];
        if (db >= 0 && vb.shape[db] != 1) sb[d] = vb.strides[db];
    }
    auto offsets = [&](int64_t idx, int64_t& oa, int64_t& ob) {
        oa = ob = 0;
        for (int64_t d = nd - 1; d >= 0; --d) {
            const int64_t i = idx % bshape[d];
            idx /= bshape[d];
            oa += i * sa[d];
            ob += i * sb[d];
        }
    };
    const T* pa = va.ptr<T>();
    const T* pb = vb.ptr<T>();
    // A batch of products each too small to use every thread well (below ~1 MFLOP per
    // thread) runs one product per thread instead: no fork per product, no split tiles.
    const double work = 2.0 * (double)m * (double)n * (double)k;
    if (nb > 1 && work < 1e6 * omp_get_max_threads()) {
        // many small products: one thread per matrix
#pragma omp parallel for schedule(dynamic, 1) if (nb * m * n * k > 100000)
        for (int64_t i = 0; i < nb; ++i) {
            int64_t oa, ob;
            offsets(i, oa, ob);
            one(pa + oa, pb + ob, out + i * m * n, 1);
        }
    } else {
        for (int64_t i = 0; i < nb; ++i) {
            int64_t oa, ob;
            offsets(i, oa, ob);
            one(pa + oa, pb + ob, out + i * m * n, 0);
        }
    }
}

template <typename T>
void run_matmul(const View& va, const View& vb, const std::vector<int64_t>& bshape, T* out) {
    const int64_t m = va.shape[va.ndim() - 2], k = va.shape[va.ndim() - 1];
    const int64_t n = vb.shape[vb.ndim() - 1];
    const int64_t rsa = va.strides[va.ndim() - 2], csa = va.strides[va.ndim() - 1];
    const int64_t rsb = vb.strides[vb.ndim() - 2], csb = vb.strides[vb.ndim() - 1];
    batched<T>(va, vb, bshape, out, m, n, k, [&](const T* a, const T* b, T* c, int nt) {
        if constexpr (std::is_same_v<T, tf::half> || std::is_same_v<T, tf::bhalf>)
            gemm_half<T>(m, n, k, a, rsa, csa, b, rsb, csb, c, n, 1, nt);
        else if constexpr (std::is_floating_point_v<T>)
            gemm<T>(m, n, k, a, rsa, csa, b, rsb, csb, c, n, 1, false, nt);
        else
            int_gemm<T>(m, n, k, a, rsa, csa, b, rsb, csb, c);
    });
}

py::object matmul(py::object a_obj, py::object b_obj) {
    py::array a = as_array(a_obj, "matmul", "a"), b = as_array(b_obj, "matmul", "b");
    if (!a.dtype().is(b.dtype()) && !a.dtype().equal(b.dtype()))
        throw py::type_error("matmul: dtypes " + dtype_name(a.dtype()) + " and " +
                             dtype_name(b.dtype()) + " differ");
    const Kind kd = kind_of(a.dtype());
    if (a.ndim() < 2 || b.ndim() < 2 || kd == Kind::Other) {
        // vectors and exotic dtypes (bool, complex) are left to the reference
        return py::module_::import("tinyfw.backend.ref").attr("matmul")(a, b);
    }
    if (a.shape(a.ndim() - 1) != b.shape(b.ndim() - 2))
        throw py::value_error("matmul: " + shape_str(a) + " @ " + shape_str(b) +
                              ": inner dimensions differ");
    const View va = view_of(a, "matmul"), vb = view_of(b, "matmul");
    // broadcast batch shape
    const int64_t nda = va.ndim() - 2, ndb = vb.ndim() - 2, nd = std::max(nda, ndb);
    std::vector<int64_t> bshape(nd);
    for (int64_t d = 0; d < nd; ++d) {
        const int64_t da = d - (nd - nda), db = d - (nd - ndb);
        const int64_t sa = da >= 0 ? va.shape[da] : 1, sb = db >= 0 ? vb.shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1)
            throw py::value_error("matmul: batch dims of " + shape_str(a) + " and " +
                                  shape_str(b) + " do not broadcast");
        bshape[d] = sa == 1 ? sb : sa;
    }
    std::vector<int64_t> oshape = bshape;
    oshape.push_back(va.shape[nda]);
    oshape.push_back(vb.shape[ndb + 1]);
    py::array out = empty_array(a.dtype(), oshape);
    char* po = static_cast<char*>(out.mutable_data());
    const char code = a.dtype().kind();
    const auto item = a.itemsize();
    {
        py::gil_scoped_release nogil;
        if (kd == Kind::Half && code == 'f') run_matmul(va, vb, bshape, (tf::half*)po);
        else if (kd == Kind::Half) run_matmul(va, vb, bshape, (tf::bhalf*)po);
        else if (code == 'f' && item == 4) run_matmul(va, vb, bshape, (float*)po);
        else if (code == 'f' && item == 8) run_matmul(va, vb, bshape, (double*)po);
        else if (item == 1) run_matmul(va, vb, bshape, (int8_t*)po);
        else if (item == 2) run_matmul(va, vb, bshape, (int16_t*)po);
        else if (item == 4) run_matmul(va, vb, bshape, (int32_t*)po);
        else run_matmul(va, vb, bshape, (int64_t*)po);
    }
    return out;
}

}  // namespace

void register_gemm(py::module_& m) {
    m.def("matmul", &tinyfw::matmul, py::arg("a"), py::arg("b"),
          "Batched matrix product with broadcast batch dims (a: ...xmxk, b: ...xkxn); "
          "half inputs are accumulated in float32 (gemm_half.h) and rounded once.");
}

TINYFW_ISA_END
}  // namespace tinyfw
