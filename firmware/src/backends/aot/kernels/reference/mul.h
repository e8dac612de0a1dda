// MUL, int8: TFLite-Micro's reference arithmetic (the oracle): MulElementwise,
// which its Mul runs over the elements and BroadcastMul6DSlow computes per pair.
#pragma once
#include "tensorflow/lite/kernels/internal/reference/integer_ops/mul.h"

namespace embbert_aot {
namespace kernels {

// out[o][k] = a[o][k] * b[o * b_outer + k * b_inner] (o < outer, k < inner; b_inner 0 or 1, a stride 0 broadcasts b)
inline void Mul(const tflite_micro::ArithmeticParams& p, const int8_t* a, const int8_t* b, int outer, int inner,
                int b_outer, int b_inner, int8_t* out) {
  for (int o = 0; o < outer; ++o)
    for (int k = 0; k < inner; ++k)
      tflite_micro::reference_integer_ops::MulElementwise(1, p, a + o * inner + k, b + o * b_outer + k * b_inner,
                                                          out + o * inner + k);
}

}  // namespace kernels
}  // namespace embbert_aot
