// LOGISTIC, int8 (ours): each output depends on its input byte alone, so the
// reference kernel is run once on the 256 possible inputs (exact by
// construction) and every element is a table lookup. Below 256 elements the
// reference kernel runs on them directly.
#pragma once
#include "kernel_params.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/logistic.h"

namespace embbert_aot {
namespace kernels {

// x [size] -> out [size]; out may be x
inline void Logistic(const LogisticParams& p, const int8_t* x, int size, int8_t* out) {
  if (size <= 256) {
    tflite_micro::reference_integer_ops::Logistic(p.input_zero_point, p.input_range_radius, p.input_multiplier,
                                                  p.input_left_shift, size, x, out);
    return;
  }
  int8_t all[256], table[256];
  for (int v = 0; v < 256; ++v) all[v] = static_cast<int8_t>(v - 128);
  tflite_micro::reference_integer_ops::Logistic(p.input_zero_point, p.input_range_radius, p.input_multiplier,
                                                p.input_left_shift, 256, all, table);
  for (int i = 0; i < size; ++i) out[i] = table[x[i] + 128];
}

}  // namespace kernels
}  // namespace embbert_aot
