// MEAN / SUM over the last axis, int8 (ours): the rows summed directly
// (TFLite-Micro's ReduceSumImpl walks every index through a generic
// multi-axis iterator), then TFLite-Micro's own arithmetic: Mean's truncating
// division, or QuantizedMeanOrSum's multiplier with 1 / count folded in (as
// reduce.h computes it at run time) and its requantization.
#pragma once
#include <stdint.h>

#include "aot_ops.h"
#include "dsp.h"
#include "kernel_params.h"

namespace embbert_aot {
namespace kernels {

// x [outer, inner] -> out [outer]; scratch unused
inline void ReduceLastAxis(const ReduceParams& p, const int8_t* x, int outer, int inner, int8_t* out,
                           int32_t* /*scratch*/) {
  int32_t multiplier = p.output_multiplier;
  int shift = p.output_shift;
  if (p.quantized && !p.compute_sum) {  // QuantizedMeanOrSum: fold 1 / inner into the multiplier
    int s = 63 - __builtin_clzll(static_cast<uint64_t>(inner));
    s = s < 32 ? s : 32;
    s = s < 31 + shift ? s : 31 + shift;
    multiplier = static_cast<int32_t>((static_cast<int64_t>(multiplier) << s) / inner);
    shift -= s;
  }
  const QuantizedMultiplier q(multiplier, shift);
  for (int o = 0; o < outer; ++o, x += inner) {
    int32_t sum = 0;
    for (int k = 0; k < inner; ++k) sum += x[k];
    if (!p.quantized)
      out[o] = static_cast<int8_t>(sum / inner);
    else
      out[o] = Saturate8(q.Apply(sum - p.input_zero_point * inner) + p.output_zero_point);
  }
}

}  // namespace kernels
}  // namespace embbert_aot
