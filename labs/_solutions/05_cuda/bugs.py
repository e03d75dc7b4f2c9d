"""Planted bugs: each is one edit of the solution that the grader must catch in its task
(tests/test_labs.py applies each and grades).  (task, file, old text, new text, what)."""
BUGS = [
    ("5.1", "kernels.cu",
     "        if (tid < stride) s[tid] += s[tid + stride];\n        __syncthreads();\n    }\n    if (tid == 0) atomicAdd(out, s[0]);",
     "        if (tid < stride) {\n            s[tid] += s[tid + stride];\n            __syncthreads();\n        }\n    }\n    if (tid == 0) atomicAdd(out, s[0]);",
     "divergent barrier: __syncthreads() inside if (tid < stride)"),
    ("5.1", "kernels.cu",
     "i < n; i += blockDim.x * gridDim.x) v += x[i];\n    s[tid] = v;\n    __syncthreads();\n    // halve",
     "i < n; i += blockDim.x) v += x[i];\n    s[tid] = v;\n    __syncthreads();\n    // halve",
     "grid-stride loop steps by one block: blocks sum overlapping ranges"),
    ("5.2", "kernels.cu", "for (int offset = 16; offset > 0;", "for (int offset = 8; offset > 0;",
     "the shuffles start at offset 8: lanes 16-31 are never added"),
    ("5.3", "kernels.cu", "    if (row < M && col < N) {\n        float acc",
     "    if (row < N && col < M) {\n        float acc", "the bounds check swaps M and N"),
    ("5.4", "kernels.cu", "        __syncthreads();  // the tiles are complete before anyone reads them\n",
     "", "no __syncthreads() between loading the tiles and reading them"),
    ("5.4", "kernels.cu", "for (int k0 = 0; k0 < K; k0 += TILE)", "for (int k0 = 0; k0 + TILE <= K; k0 += TILE)",
     "the partial tile at the end of K is skipped"),
    ("5.4", "kernels.cu", "As[ty][tx] = row < M && ka < K ?", "As[ty][tx] = row < M ?",
     "no bounds check on K's tail when loading A's tile"),
]
