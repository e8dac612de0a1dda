// ADD, int8 (ours): TFLite-Micro's AddFunc with each input's rescaling looked
// up. The rescaled input, MultiplyByQuantizedMultiplier of (x + offset) <<
// left_shift, depends on the input byte alone: two tables of 256 int32, filled
// once per call with the reference's own arithmetic; the sum's requantization
// is computed per element as the reference does (QuantizedMultiplier, aot_ops.h).
// Up to 512 elements the reference's AddFunc runs per element instead.
#pragma once
#include <stdint.h>

#include "aot_ops.h"
#include "dsp.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/add.h"

namespace embbert_aot {
namespace kernels {

// out[o][k] = a[o][k] + b[o * b_outer + k * b_inner] (o < outer, k < inner; a stride 0 broadcasts b)
inline void Add(const tflite_micro::ArithmeticParams& p, const int8_t* a, const int8_t* b, int outer, int inner,
                int b_outer, int b_inner, int8_t* out) {
  if (outer * inner <= 512) {
    for (int o = 0; o < outer; ++o)
      for (int k = 0; k < inner; ++k)
        out[o * inner + k] = tflite_micro::reference_integer_ops::AddFunc(a[o * inner + k], b[o * b_outer + k * b_inner], p);
    return;
  }
  int32_t scaled1[256], scaled2[256];
  for (int v = -128; v < 128; ++v) {
    scaled1[v + 128] = tflite_micro::MultiplyByQuantizedMultiplierSmallerThanOneExp(
        (p.input1_offset + v) * (1 << p.left_shift), p.input1_multiplier, p.input1_shift);
    scaled2[v + 128] = tflite_micro::MultiplyByQuantizedMultiplierSmallerThanOneExp(
        (p.input2_offset + v) * (1 << p.left_shift), p.input2_multiplier, p.input2_shift);
  }
  const int32_t* t1 = scaled1 + 128;
  const int32_t* t2 = scaled2 + 128;
  const QuantizedMultiplier q(p.output_multiplier, p.output_shift);
  for (int o = 0; o < outer; ++o, a += inner, out += inner, b += b_outer) {
    const int8_t* bk = b;
    for (int k = 0; k < inner; ++k, bk += b_inner) {
      const int32_t sum = t1[a[k]] + t2[*bk];
      out[k] = Saturate8(q.Apply(sum) + p.output_offset);
    }
  }
}

}  // namespace kernels
}  // namespace embbert_aot
