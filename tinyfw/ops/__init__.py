"""The op families; importing this package attaches every op to Tensor."""
from . import add_norm, bias_activation, convert, elementwise, index, inplace, linalg, reduce, shape  # noqa: F401
from . import bitwise  # noqa: F401  (issue 16: integer ops; after elementwise, for the operators)
from .bitwise import (bitwise_and, bitwise_left_shift, bitwise_not, bitwise_or,
                      bitwise_right_shift, bitwise_xor, gcd, gcd_, hash_tensor, lcm, lcm_)
from . import predicates  # noqa: F401
from .predicates import (allclose, equal, get_device, is_complex, is_distributed,
                         is_floating_point, is_inference, is_neg, is_nonzero, is_same_size,
                         is_signed, isclose, isneginf, isposinf, isreal, nan_to_num,
                         nan_to_num_, resolve_neg)
from . import histogram as _histogram  # noqa: F401
from .histogram import bincount, histc, histogram
from .sampling import multinomial
from . import order, scan, setops, stats  # noqa: F401  (issue 16: reductions, order statistics)
from .scan import cummax, cummin, cumprod, logcumsumexp
from .order import kthvalue, median, mode, msort, nanmedian, nanquantile, quantile
from .setops import argwhere, nonzero, nonzero_static, unique, unique_consecutive
from .stats import aminmax, corrcoef, cov, diff, dist, nanmean, nansum, renorm, trace
from .activation_more import hardshrink, log_softmax, prelu, relu_, softmax  # noqa: F401
from .add_norm import gelu_add_layer_norm
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
from . import linalg_more  # noqa: F401  (issue 16: torch.* linear algebra, einsum)
from .einsum import einsum
from .linalg_more import (addbmm, addmm, addmv, addmv_, addr, baddbmm, cholesky,
                          cholesky_inverse, cholesky_solve, cross, det, geqrf, ger, inner,
                          inverse, logdet, lu, lu_solve, matrix_exp, matrix_power, mv, orgqr,
                          ormqr, pinverse, qr, slogdet, svd, triangular_solve, vdot)
from .reduce import (all, amax, amin, any, argmax, argmin, count_nonzero, cumsum, logsumexp,
                     max, mean, min, norm, prod, std, sum, var)
from .shape import (broadcast_to, chunk, contiguous, expand, flatten, movedim, narrow, permute,
                    reshape, select, split, squeeze, t, transpose, unbind, unflatten, unsqueeze)

# issue 16, elementwise math: the ops, their Tensor methods and in-place variants
from . import elementwise_methods  # noqa: E402,F401
from .elementwise_compose import *  # noqa: E402,F401,F403
from .elementwise_math import *  # noqa: E402,F401,F403
from .elementwise_methods import *  # noqa: E402,F401,F403
from .elementwise_special import *  # noqa: E402,F401,F403
from . import index_reduce, index_scatter, shape_more, shape_views  # noqa: F401,E402  (issue 16)
from .index_reduce import (index_add, index_copy, index_fill, index_put_, index_reduce,  # noqa: E402
                           masked_scatter, put, scatter_reduce, take, take_along_dim)
from .index_scatter import (as_strided_scatter, diagonal_scatter, select_scatter,  # noqa: E402
                            slice_scatter)
from .shape_more import (detach, detach_, diag, diag_embed, diagflat, dsplit, fill_,  # noqa: E402
                         fliplr, flipud, hsplit, kron, narrow_copy, repeat_interleave,
                         resize_as_, roll, rot90, split_with_sizes, tensor_split, tile, vsplit,
                         zero_)
from .shape_views import (adjoint, as_strided, as_strided_, diagonal, moveaxis, ravel,  # noqa: E402
                          slice_inverse, swapaxes, swapdims)
