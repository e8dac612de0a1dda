// DEPTHWISE_CONV_2D along one axis, int8 per channel: TFLite-Micro's reference
// kernel (the oracle). Weights in TFLite's layout [1, 1, taps, channels].
#pragma once
#include "kernel_params.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/depthwise_conv.h"

namespace embbert_aot {
namespace kernels {

constexpr int DepthwiseConvScratchBytes(int /*out_len*/, int /*taps*/) { return 0; }

// x [in_len, channels], w [taps, channels], bias [channels] or nullptr -> out [in_len - taps + 1, channels]
inline void DepthwiseConv1D(const DepthwiseParams& p, const int8_t* x, int in_len, int channels, const int8_t* w,
                            int taps, const int32_t* bias, int8_t* out, void* /*scratch*/) {
  tflite_micro::DepthwiseParams q = {};
  q.padding_type = tflite_micro::PaddingType::kValid;
  q.stride_width = q.stride_height = q.dilation_width_factor = q.dilation_height_factor = q.depth_multiplier = 1;
  q.input_offset = p.x_offset;
  q.output_offset = p.out_offset;
  q.quantized_activation_min = -128;
  q.quantized_activation_max = 127;
  const int32_t dx[] = {1, 1, in_len, channels}, dw[] = {1, 1, taps, channels}, db[] = {channels},
                dout[] = {1, 1, in_len - taps + 1, channels};
  tflite_micro::reference_integer_ops::DepthwiseConvPerChannel(
      q, p.multiplier, p.shift, tflite_micro::RuntimeShape(4, dx), x, tflite_micro::RuntimeShape(4, dw), w,
      tflite_micro::RuntimeShape(1, db), bias, tflite_micro::RuntimeShape(4, dout), out);
}

}  // namespace kernels
}  // namespace embbert_aot
