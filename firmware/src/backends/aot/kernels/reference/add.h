// ADD, int8: TFLite-Micro's reference arithmetic (the oracle): AddFunc, the
// function its Add and BroadcastAdd6DSlow apply to each pair of elements.
#pragma once
#include "tensorflow/lite/kernels/internal/reference/integer_ops/add.h"

namespace embbert_aot {
namespace kernels {

// out[o][k] = a[o][k] + b[o * b_outer + k * b_inner] (o < outer, k < inner; b_inner 0 or 1, a stride 0 broadcasts b)
inline void Add(const tflite_micro::ArithmeticParams& p, const int8_t* a, const int8_t* b, int outer, int inner,
                int b_outer, int b_inner, int8_t* out) {
  for (int o = 0; o < outer; ++o)
    for (int k = 0; k < inner; ++k)
      out[o * inner + k] = tflite_micro::reference_integer_ops::AddFunc(a[o * inner + k], b[o * b_outer + k * b_inner], p);
}

}  // namespace kernels
}  // namespace embbert_aot
