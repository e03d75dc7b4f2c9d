"""Lab 5's title and tasks (id, what it asks, points), read by tinyfw.labs."""
TITLE = "A CUDA kernel: reduction and tiled GEMM"
TASKS = [
    ("5.1", "sum of n floats: grid-stride loads, a shared-memory tree per block, atomicAdd of the block totals", 4),
    ("5.2", "the same reduction finishing in one warp with __shfl_down_sync", 2),
    ("5.3", "naive GEMM: one thread per output, coalesced, any M, N, K", 2),
    ("5.4", "tiled GEMM with shared-memory tiles and bounds on every edge; on a GPU faster than the naive one", 4),
]
