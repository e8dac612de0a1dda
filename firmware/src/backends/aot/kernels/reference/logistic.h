// LOGISTIC, int8 (output zero point -128): TFLite-Micro's reference kernel (the oracle).
#pragma once
#include "kernel_params.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/logistic.h"

namespace embbert_aot {
namespace kernels {

// x [size] -> out [size]; out may be x
__attribute__((always_inline)) inline  // as a direct call: constant shapes propagate
void Logistic(const LogisticParams& p, const int8_t* x, int size, int8_t* out) {
  tflite_micro::reference_integer_ops::Logistic(p.input_zero_point, p.input_range_radius, p.input_multiplier,
                                                p.input_left_shift, size, x, out);
}

}  // namespace kernels
}  // namespace embbert_aot
