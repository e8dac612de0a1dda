// MEAN / SUM over the last axis, int8: TFLite-Micro's reference kernels (the oracle).
#pragma once
#include "kernel_params.h"
#include "tensorflow/lite/kernels/internal/reference/reduce.h"

namespace embbert_aot {
namespace kernels {

// x [outer, inner] -> out [outer]; scratch: outer int32
__attribute__((always_inline)) inline  // as a direct call: constant shapes propagate
void ReduceLastAxis(const ReduceParams& p, const int8_t* x, int outer, int inner, int8_t* out,
                    int32_t* scratch) {
  const int dx[] = {outer, inner}, dout[] = {outer, 1}, axis[] = {1};
  int temp_index[2], resolved_axis[2];
  if (!p.quantized) {
    tflite_micro::reference_ops::Mean<int8_t, int32_t>(x, dx, 2, out, dout, 2, axis, 1, true, temp_index,
                                                       resolved_axis, scratch);
  } else {
    tflite_micro::reference_ops::QuantizedMeanOrSum<int8_t, int32_t>(
        x, p.input_zero_point, dx, 2, out, p.output_multiplier, p.output_shift, p.output_zero_point, dout, 2, axis, 1,
        true, temp_index, resolved_axis, scratch, p.compute_sum);
  }
}

}  // namespace kernels
}  // namespace embbert_aot
