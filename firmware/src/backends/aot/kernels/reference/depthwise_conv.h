// DEPTHWISE_CONV_2D along one axis, int8 per channel: TFLite-Micro's reference
// kernel (the oracle). Weights in TFLite's layout [1, 1, taps, channels].
#pragma once
#include "reference_params.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/depthwise_conv.h"

namespace embbert_aot {
namespace kernels {

constexpr int DepthwiseConvScratchBytes(int /*out_len*/, int /*taps*/) { return 0; }

// never over its input: an output row reads the taps - 1 rows before it
constexpr bool DepthwiseConvInPlace(int /*out_len*/, int /*in_len*/) { return false; }

// x [in_len, channels] after p.pad_before rows of its zero point, w [taps, channels], bias [channels] or
// nullptr -> out [pad_before + in_len - taps + 1, channels]
__attribute__((always_inline)) inline  // as a direct call: constant shapes propagate
void DepthwiseConv1D(const DepthwiseParams& p, const int8_t* x, int in_len, int channels, const int8_t* w,
                     int taps, const int32_t* bias, int8_t* out, void* /*scratch*/) {
  const tflite_micro::DepthwiseParams q = ReferenceParams(p);
  const int32_t dx[] = {1, 1, in_len, channels}, dw[] = {1, 1, taps, channels}, db[] = {channels},
                dout[] = {1, 1, p.pad_before + in_len - taps + 1, channels};
  tflite_micro::reference_integer_ops::DepthwiseConvPerChannel(
      q, p.multiplier, p.shift, tflite_micro::RuntimeShape(4, dx), x, tflite_micro::RuntimeShape(4, dw), w,
      tflite_micro::RuntimeShape(1, db), bias, tflite_micro::RuntimeShape(4, dout), out);
}

}  // namespace kernels
}  // namespace embbert_aot
