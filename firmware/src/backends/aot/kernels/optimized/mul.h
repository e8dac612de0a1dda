// MUL, int8 (ours): TFLite-Micro's MulElementwise with the requantization
// inlined (QuantizedMultiplier, aot_ops.h) and the clamp as one
// saturation, over broadcast strides.
#pragma once
#include <stdint.h>

#include "aot_ops.h"
#include "dsp.h"
#include "tensorflow/lite/kernels/internal/types.h"

namespace embbert_aot {
namespace kernels {

// out[o][k] = a[o][k] * b[o * b_outer + k * b_inner] (o < outer, k < inner; a stride 0 broadcasts b)
inline void Mul(const tflite_micro::ArithmeticParams& p, const int8_t* a, const int8_t* b, int outer, int inner,
                int b_outer, int b_inner, int8_t* out) {
  const QuantizedMultiplier q(p.output_multiplier, p.output_shift);
  for (int o = 0; o < outer; ++o, a += inner, out += inner, b += b_outer) {
    const int8_t* bk = b;
    for (int k = 0; k < inner; ++k, bk += b_inner) {
      const int32_t product = (p.input1_offset + a[k]) * (p.input2_offset + *bk);
      out[k] = Saturate8(p.output_offset + q.Apply(product));
    }
  }
}

}  // namespace kernels
}  // namespace embbert_aot
