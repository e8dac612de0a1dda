// BATCH_MATMUL, int8: TFLite-Micro's reference kernel (the oracle).
#pragma once
#include "reference_params.h"
#include "tensorflow/lite/kernels/internal/reference/batch_matmul.h"

namespace embbert_aot {
namespace kernels {

constexpr int BatchMatMulScratchBytes(int /*depth*/) { return 0; }

// x [batch, rows, depth], w [batch, units, depth] -> out [batch, rows, units]
__attribute__((always_inline)) inline  // as a direct call: constant shapes propagate
void BatchMatMul(const MatMulParams& p, const int8_t* x, const int8_t* w, int batch, int rows, int units,
                 int depth, int8_t* out, void* /*scratch*/) {
  const tflite_micro::FullyConnectedParams q = ReferenceParams(p);
  // batch_matmul.cc EvalInt8: the RHS first, the LHS seen as <batch, depth, rows> (SwapRowColumnDims)
  const int32_t dw[] = {batch, units, depth}, dx[] = {batch, depth, rows}, dout[] = {batch, rows, units};
  tflite_micro::reference_ops::BatchMatMul<int8_t, int32_t>(q, tflite_micro::RuntimeShape(3, dw), w,
                                                            tflite_micro::RuntimeShape(3, dx), x,
                                                            tflite_micro::RuntimeShape(3, dout), out);
}

// Without adj_y: x [batch, rows, depth], w [batch, depth, units] -> out [batch, rows, units].
// batch_matmul.cc's way: each batch's RHS transposed into scratch (units * depth bytes), then the kernel.
inline void BatchMatMulRhsDepthUnits(const MatMulParams& p, const int8_t* x, const int8_t* w, int batch, int rows,
                                     int units, int depth, int8_t* out, void* scratch) {
  int8_t* wt = static_cast<int8_t*>(scratch);
  for (int b = 0; b < batch; ++b) {
    const int8_t* wb = w + b * depth * units;
    for (int u = 0; u < units; ++u)
      for (int k = 0; k < depth; ++k) wt[u * depth + k] = wb[k * units + u];
    BatchMatMul(p, x + b * rows * depth, wt, 1, rows, units, depth, out + b * rows * units, nullptr);
  }
}

}  // namespace kernels
}  // namespace embbert_aot
