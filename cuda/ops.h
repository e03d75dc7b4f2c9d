// Op codes of the elementwise and reduction launchers; the binding exports the names
// (tinyfw._cuda.UNARY / BINARY / REDUCE dicts) so Python never hard-codes a number.
#pragma once

namespace tfc {

// X(name) lists: the enum and the exported name table come from one list
#define TFC_UNARY_OPS(X)                                                                    \
    X(neg) X(abs) X(exp) X(log) X(log1p) X(expm1) X(sqrt) X(rsqrt) X(reciprocal) X(sin)  \
    X(cos) X(tanh) X(sigmoid) X(relu) X(silu) X(erf) X(erfc) X(sign) X(floor) X(ceil)    \
    X(round) X(logical_not) X(isnan) X(isinf) X(gelu) X(gelu_tanh) X(leaky_relu)         \
    X(softplus) X(clamp)

#define TFC_BINARY_OPS(X)                                                                   \
    X(add) X(sub) X(mul) X(div) X(pow) X(maximum) X(minimum) X(atan2) X(floor_divide)      \
    X(remainder) X(eq) X(ne) X(lt) X(le) X(gt) X(ge) X(logical_and) X(logical_or)         \
    X(logical_xor) X(tanh_backward) X(sigmoid_backward) X(silu_backward)                  \
    X(gelu_backward) X(gelu_tanh_backward)

#define TFC_REDUCE_OPS(X) X(sum) X(prod) X(amax) X(amin) X(any) X(all)

#define TFC_ENUM(n) op_##n,
enum UnaryOp : int { TFC_UNARY_OPS(TFC_ENUM) kNumUnary };
enum BinaryOp : int { TFC_BINARY_OPS(TFC_ENUM) kNumBinary };
enum ReduceOp : int { TFC_REDUCE_OPS(TFC_ENUM) kNumReduce };
#undef TFC_ENUM

}  // namespace tfc
