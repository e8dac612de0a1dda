// SOFTMAX, int8 -> int8: TFLite-Micro's reference kernel (the oracle).
#pragma once
#include <string.h>

#include "tensorflow/lite/kernels/internal/reference/softmax.h"

namespace embbert_aot {
namespace kernels {

// x [rows, depth] -> out [rows, depth]; out may be x. Each row is the first
// depth keys of a row of depth + padded keys whose last padded keys are -128
// (padded keys of the full graph, convert/exact_mask.py): out holds the first
// depth probabilities of that full row. With padded > 0 TFLite-Micro's kernel
// runs on the full row, rebuilt in scratch (depth + padded bytes).
__attribute__((always_inline)) inline  // as a direct call: constant shapes propagate
void Softmax(const tflite_micro::SoftmaxParams& p, const int8_t* x, int rows, int depth, int padded, int8_t* out,
             int8_t* scratch) {
  if (padded == 0) {
    const int32_t dims[] = {rows, depth};
    const tflite_micro::RuntimeShape shape(2, dims);
    tflite_micro::reference_ops::Softmax<int8_t, int8_t>(p, shape, x, shape, out);
    return;
  }
  const int32_t dims[] = {1, depth + padded};
  const tflite_micro::RuntimeShape shape(2, dims);
  for (int i = 0; i < rows; ++i, x += depth, out += depth) {
    memcpy(scratch, x, depth);
    memset(scratch + depth, -128, padded);
    tflite_micro::reference_ops::Softmax<int8_t, int8_t>(p, shape, scratch, shape, scratch);
    memcpy(out, scratch, depth);
  }
}

}  // namespace kernels
}  // namespace embbert_aot
