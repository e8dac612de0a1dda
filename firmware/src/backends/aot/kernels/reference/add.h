// ADD, int8: TFLite-Micro's reference kernels (the oracle): Add when b has a's
// shape, else BroadcastAdd6DSlow, as add.cc chooses. Inlined into the
// generated code, as a direct call would be.
#pragma once
#include "tensorflow/lite/kernels/internal/reference/integer_ops/add.h"

namespace embbert_aot {
namespace kernels {

// out[o][k] = a[o][k] + b[o * b_outer + k * b_inner] (o < outer, k < inner; b_inner 0 or 1, a stride 0 broadcasts b)
__attribute__((always_inline)) inline void Add(const tflite_micro::ArithmeticParams& p, const int8_t* a,
                                               const int8_t* b, int outer, int inner, int b_outer, int b_inner,
                                               int8_t* out) {
  const int32_t dims[] = {outer, inner}, bdims[] = {b_outer ? outer : 1, b_inner ? inner : 1};
  const tflite_micro::RuntimeShape shape(2, dims), bshape(2, bdims);
  if (b_outer && b_inner)
    tflite_micro::reference_integer_ops::Add(p, shape, a, shape, b, shape, out);
  else
    tflite_micro::reference_integer_ops::BroadcastAdd6DSlow(p, shape, a, bshape, b, shape, out);
}

}  // namespace kernels
}  // namespace embbert_aot
