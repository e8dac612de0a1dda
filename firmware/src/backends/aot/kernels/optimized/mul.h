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

namespace mul {
template <bool kSmall>
inline void Rows(const tflite_micro::ArithmeticParams& p, const QuantizedMultiplier& q, const int8_t* a,
                 const int8_t* b, int outer, int inner, int b_outer, int b_inner, int8_t* out) {
  const int32_t o1 = p.input1_offset, o2 = p.input2_offset, out_offset = p.output_offset;
  for (int o = 0; o < outer; ++o, a += inner, out += inner, b += b_outer) {
    if (b_inner == 0) {  // one factor for the row (a column or a scalar b)
      const int32_t factor = o2 + *b;
      for (int k = 0; k < inner; ++k) {
        const int32_t product = (o1 + a[k]) * factor;
        out[k] = Saturate8(out_offset + (kSmall ? q.ApplySmall(product) : q.Apply(product)));
      }
      continue;
    }
    for (int k = 0; k < inner; ++k) {
      const int32_t product = (o1 + a[k]) * (o2 + b[k]);
      out[k] = Saturate8(out_offset + (kSmall ? q.ApplySmall(product) : q.Apply(product)));
    }
  }
}
}  // namespace mul

// out[o][k] = a[o][k] * b[o * b_outer + k * b_inner] (o < outer, k < inner; b_inner 0 or 1, a stride 0 broadcasts b)
inline void Mul(const tflite_micro::ArithmeticParams& p, const int8_t* a, const int8_t* b, int outer, int inner,
                int b_outer, int b_inner, int8_t* out) {
  const QuantizedMultiplier q(p.output_multiplier, p.output_shift);
  // |product| <= 256 * 256 (offsets are minus int8 zero points): SMMULR when that is small enough
  if ((1 << 16) <= q.SmallLimit())
    mul::Rows<true>(p, q, a, b, outer, inner, b_outer, b_inner, out);
  else
    mul::Rows<false>(p, q, a, b, outer, inner, b_outer, b_inner, out);
}

}  // namespace kernels
}  // namespace embbert_aot
