// FULLY_CONNECTED, int8 (ours): the matrix product of matmul.h.
#pragma once
#include "kernel_params.h"
#include "matmul.h"

namespace embbert_aot {
namespace kernels {

constexpr int FullyConnectedScratchBytes(int depth) { return matmul::ScratchBytes(depth); }

// x [rows, depth], w [units, depth], bias [units] or nullptr -> out [rows, units]
inline void FullyConnected(const MatMulParams& p, const int8_t* x, int rows, const int8_t* w, int units, int depth,
                           const int32_t* bias, int8_t* out, void* scratch) {
  matmul::MatMul(p, x, rows, w, units, depth, bias, out, scratch);
}

}  // namespace kernels
}  // namespace embbert_aot
