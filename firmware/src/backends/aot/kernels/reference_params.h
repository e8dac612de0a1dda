// The aot kernels' parameters (kernel_params.h) as TFLite-Micro's reference
// kernels take them: for reference/ and for the kernel tests' oracle.
#pragma once
#include "kernel_params.h"
#include "tensorflow/lite/kernels/internal/types.h"

namespace embbert_aot {
namespace kernels {

// FULLY_CONNECTED / BATCH_MATMUL (per-tensor multiplier and shift: p.multiplier[0], p.shift[0])
inline tflite_micro::FullyConnectedParams ReferenceParams(const MatMulParams& p) {
  tflite_micro::FullyConnectedParams q = {};
  q.input_offset = p.x_offset;
  q.weights_offset = p.w_offset;
  q.output_offset = p.out_offset;
  q.output_multiplier = p.multiplier[0];
  q.output_shift = p.shift[0];
  q.quantized_activation_min = -128;
  q.quantized_activation_max = 127;
  return q;
}

// DEPTHWISE_CONV_2D along one axis: VALID, stride, dilation and depth multiplier 1
inline tflite_micro::DepthwiseParams ReferenceParams(const DepthwiseParams& p) {
  tflite_micro::DepthwiseParams q = {};
  q.padding_type = tflite_micro::PaddingType::kValid;
  q.stride_width = q.stride_height = q.dilation_width_factor = q.dilation_height_factor = q.depth_multiplier = 1;
  q.padding_values.width = p.pad_before;  // the reference kernel skips those taps: each adds (zp - zp) * w = 0
  q.input_offset = p.x_offset;
  q.output_offset = p.out_offset;
  q.quantized_activation_min = -128;
  q.quantized_activation_max = 127;
  return q;
}

}  // namespace kernels
}  // namespace embbert_aot
