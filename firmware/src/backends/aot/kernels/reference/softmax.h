// SOFTMAX, int8 -> int8: TFLite-Micro's reference kernel (the oracle).
#pragma once
#include "tensorflow/lite/kernels/internal/reference/softmax.h"

namespace embbert_aot {
namespace kernels {

// x [rows, depth] -> out [rows, depth]; out may be x
__attribute__((always_inline)) inline  // as a direct call: constant shapes propagate
void Softmax(const tflite_micro::SoftmaxParams& p, const int8_t* x, int rows, int depth, int8_t* out) {
  const int32_t dims[] = {rows, depth};
  const tflite_micro::RuntimeShape shape(2, dims);
  tflite_micro::reference_ops::Softmax<int8_t, int8_t>(p, shape, x, shape, out);
}

}  // namespace kernels
}  // namespace embbert_aot
