// DEPTHWISE_CONV_2D along one axis of the kernels folder on the include path
// (reference/ or optimized/), against TFLite-Micro's DepthwiseConvPerChannel
// called directly, bit for bit, on a bare-metal board
// (tests/test_aot_kernels.py). depthwise_conv_cases.h (generated) holds the
// shapes, per-channel multipliers and shifts, the weights in TFLite's layout
// (for the oracle) and as the code generator packs them for this folder
// (convert/aot/codegen.py pack_depthwise_weights); x and bias come from a
// seeded xorshift. pad_before (a PAD folded into the conv) against the PAD
// itself: that many rows of x's zero point written before x for the oracle. Over its own
// input in half the cases where the folder allows (DepthwiseConvInPlace). Prints "case K ..."
// per mismatch, "cases N mismatches M", END.
#include "app.h"
#include "baremetal_test.h"
#include "depthwise_conv.h"
#include "depthwise_conv_cases.h"  // kCases, kNumCases, kMaxIn, kMaxChannels, kMaxScratch
#include "reference_params.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/depthwise_conv.h"

namespace {
int8_t g_padded[kMaxIn * kMaxChannels], g_got[kMaxIn * kMaxChannels], g_want[kMaxIn * kMaxChannels];
int32_t g_bias[kMaxChannels];
alignas(16) uint8_t g_scratch[kMaxScratch];
}  // namespace

int Check(const Case& c, embbert_test::Xorshift32& random) {
  const int out_len = c.pad_before + c.in_len - c.taps + 1;
  for (int i = 0; i < c.pad_before * c.channels; ++i) g_padded[i] = static_cast<int8_t>(-c.x_offset);
  int8_t* x = g_padded + c.pad_before * c.channels;
  random.Fill(x, c.in_len * c.channels, c.lo, c.hi);
  for (int i = 0; i < c.channels; ++i) g_bias[i] = static_cast<int32_t>(random.Next() % 200001) - 100000;
  const int32_t* bias = c.bias ? g_bias : nullptr;
  const embbert_aot::kernels::DepthwiseParams p = {c.x_offset, c.out_offset, c.multiplier, c.shift, c.pad_before};
  if (c.seed & 1 && embbert_aot::kernels::DepthwiseConvInPlace(out_len, c.in_len)) {  // half the cases: out over x
    for (int i = 0; i < c.in_len * c.channels; ++i) g_got[i] = x[i];
    embbert_aot::kernels::DepthwiseConv1D(p, g_got, c.in_len, c.channels, c.w_packed, c.taps, bias, g_got, g_scratch);
  } else {
    embbert_aot::kernels::DepthwiseConv1D(p, x, c.in_len, c.channels, c.w_packed, c.taps, bias, g_got, g_scratch);
  }
  const embbert_aot::kernels::DepthwiseParams valid = {c.x_offset, c.out_offset, c.multiplier, c.shift, 0};
  const int32_t dx[] = {1, 1, c.pad_before + c.in_len, c.channels}, dw[] = {1, 1, c.taps, c.channels},
                db[] = {c.channels}, dout[] = {1, 1, out_len, c.channels};
  tflite_micro::reference_integer_ops::DepthwiseConvPerChannel(
      embbert_aot::kernels::ReferenceParams(valid), c.multiplier, c.shift, tflite_micro::RuntimeShape(4, dx), g_padded,
      tflite_micro::RuntimeShape(4, dw), c.w, tflite_micro::RuntimeShape(1, db), bias,
      tflite_micro::RuntimeShape(4, dout), g_want);
  int bad = 0;
  for (int i = 0; i < out_len * c.channels; ++i) bad += g_got[i] != g_want[i];
  return bad;
}

void app_setup(void) { embbert_test::RunCases(kCases, kNumCases, Check); }

void app_poll(void) {}
