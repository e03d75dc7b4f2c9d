"""The op families; importing this package attaches every op to Tensor."""
from . import bias_activation, convert, elementwise, index, inplace, linalg, reduce, shape  # noqa: F401
from .activation_more import hardshrink, log_softmax, prelu, relu_, softmax  # noqa: F401
from .bias_activation import bias_act
from .convert import clone
from .elementwise import (abs, add, atan2, ceil, clamp, cos, div, eq, erf, erfc, exp, expm1,
                          floor, floor_divide, ge, gelu, gt, isfinite, isinf, isnan, le,
                          leaky_relu, log, log1p, logical_and, logical_not, logical_or,
                          logical_xor, lt, maximum, minimum, mul, ne, neg, pow, reciprocal, relu,
                          remainder, round, rsqrt, sigmoid, sign, silu, sin, softplus, sqrt,
                          square, sub, tanh, trunc, where)
from .index import (argsort, cat, flip, gather, hstack, index_put, index_select, masked_fill,
                    masked_select, pad, repeat, scatter, scatter_add, sort, stack, topk, tril,
                    triu, vstack)
from .linalg import bmm, dot, linear, matmul, mm, outer
from .reduce import (all, amax, amin, any, argmax, argmin, count_nonzero, cumsum, logsumexp,
                     max, mean, min, norm, prod, std, sum, var)
from .shape import (broadcast_to, chunk, contiguous, expand, flatten, movedim, narrow, permute,
                    reshape, select, split, squeeze, t, transpose, unbind, unflatten, unsqueeze)

