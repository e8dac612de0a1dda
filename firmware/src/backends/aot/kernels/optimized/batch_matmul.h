// BATCH_MATMUL, int8 (ours): the matrix products of matmul.h per batch.
#pragma once
#include "kernel_params.h"
#include "matmul.h"

namespace embbert_aot {
namespace kernels {

constexpr int BatchMatMulScratchBytes(int depth) { return matmul::ScratchBytes(depth); }

// x [batch, rows, depth], w [batch, units, depth] -> out [batch, rows, units]
inline void BatchMatMul(const MatMulParams& p, const int8_t* x, const int8_t* w, int batch, int rows, int units,
                        int depth, int8_t* out, void* scratch) {
  for (int b = 0; b < batch; ++b)
    matmul::MatMul(p, x + b * rows * depth, rows, w + b * units * depth, units, depth, nullptr, out + b * rows * units,
                   scratch);
}

// Without adj_y: x [batch, rows, depth], w [batch, depth, units] -> out [batch, rows, units]
inline void BatchMatMulRhsDepthUnits(const MatMulParams& p, const int8_t* x, const int8_t* w, int batch, int rows,
                                     int units, int depth, int8_t* out, void* scratch) {
  for (int b = 0; b < batch; ++b)
    matmul::MatMulRhsDepthUnits(p, x + b * rows * depth, rows, w + b * depth * units, units, depth,
                                out + b * rows * units, scratch);
}

}  // namespace kernels
}  // namespace embbert_aot
