// FULLY_CONNECTED, int8 (ours): the matrix product of matmul.h.
#pragma once
#include "kernel_params.h"
#include "matmul.h"

namespace embbert_aot {
namespace kernels {

constexpr int FullyConnectedScratchBytes(int depth) { return matmul::ScratchBytes(depth); }

// out may be x itself (the arena plan writes over a dying input: codegen.py
// fully_connected_in_place) when each row of out is as long as a row of x and
// depth is a multiple of 4: matmul.h reads each block of rows only into scratch,
// before it writes that block's outputs over the same bytes.
constexpr bool FullyConnectedInPlace(int units, int depth) { return units == depth && depth % 4 == 0; }

// x [rows, depth], w [units, depth], bias [units] or nullptr -> out [rows, units]
inline void FullyConnected(const MatMulParams& p, const int8_t* x, int rows, const int8_t* w, int units, int depth,
                           const int32_t* bias, int8_t* out, void* scratch) {
  matmul::MatMul(p, x, rows, w, units, depth, bias, out, scratch);
}

}  // namespace kernels
}  // namespace embbert_aot
