// TFLite-Micro's MultiplyByQuantizedMultiplier (double rounding, the default
// build: TFLITE_SINGLE_ROUNDING unset). The headers declare it; its body lives
// in tensorflow/lite/kernels/internal/common.cc, which the wheels do not ship,
// so the aot backend reproduces it here. Bit-exactness against the host
// TFLite-Micro interpreter is tested (tests/test_aot.py).
#include <assert.h>

#include "aot_ops.h"

namespace tflite_micro {

int32_t MultiplyByQuantizedMultiplier(int32_t x, int32_t quantized_multiplier, int shift) {
  return embbert_aot::MultiplyByQuantizedMultiplierInline(x, quantized_multiplier, shift);
}

int32_t MultiplyByQuantizedMultiplier(int64_t x, int32_t quantized_multiplier, int shift) {
  // quantized_multiplier has its fixed point at bit 31; shift in [-31, 7];
  // |x| < 2^47 (upstream's stated input range).
  const int32_t reduced_multiplier =
      (quantized_multiplier < 0x7FFF0000) ? ((quantized_multiplier + (1 << 15)) >> 16) : 0x7FFF;
  const int total_shift = 15 - shift;
  x = (x * static_cast<int64_t>(reduced_multiplier)) + (static_cast<int64_t>(1) << (total_shift - 1));
  return static_cast<int32_t>(x >> total_shift);
}

}  // namespace tflite_micro
