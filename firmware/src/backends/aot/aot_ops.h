// Kernels of the aot backend that TFLite-Micro keeps in .cc files (not in the
// headers the wheels ship): RSQRT's int8 arithmetic, and plain data movement
// (gather, concat, transpose, pad, strided slice, select, compare, cast).
// The arithmetic is TFLite-Micro's, reproduced; tests hold the generated model
// to the host TFLite-Micro interpreter bit for bit. Everything else the
// generated code calls is TFLite-Micro's own reference kernels.
#pragma once
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <limits>

#include "tensorflow/lite/kernels/internal/common.h"

namespace embbert_aot {

// TFLite-Micro's MultiplyByQuantizedMultiplier(int32_t, ...) (double rounding, the
// default build: TFLITE_SINGLE_ROUNDING unset), inline for the kernels' inner
// loops; aot_common.cc defines TFLite-Micro's out-of-line symbol with it.
inline int32_t MultiplyByQuantizedMultiplierInline(int32_t x, int32_t quantized_multiplier, int shift) {
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  return gemmlowp::RoundingDivideByPOT(
      gemmlowp::SaturatingRoundingDoublingHighMul(x * (1 << left_shift), quantized_multiplier), right_shift);
}

// RSQRT, int8 (elementwise.cc RsqrtEvalQuantized). Prepare's multiplier and
// shift come from convert/aot/quant.py (SetRsqrtOutputMultiplier).
inline void RsqrtInt8(const int8_t* in, int8_t* out, int size, int32_t input_offset, int32_t output_offset,
                      int32_t multiplier, int shift) {
  const int32_t kShift = 20;  // keeps the intermediate an integer, as upstream
  for (int i = 0; i < size; ++i) {
    const int32_t value = in[i] - input_offset;
    if (value == 0) {  // upstream: the max output value
      out[i] = std::numeric_limits<int8_t>::max();
      continue;
    }
    int32_t inv_sqrt_multiplier;
    int inv_sqrt_shift;
    tflite_micro::GetInvSqrtQuantizedMultiplierExp(value, tflite_micro::kReverseShift, &inv_sqrt_multiplier,
                                                   &inv_sqrt_shift);
    const int32_t data = tflite_micro::MultiplyByQuantizedMultiplier(static_cast<int32_t>(1), inv_sqrt_multiplier,
                                                                     inv_sqrt_shift + kShift);
    const int32_t output = tflite_micro::MultiplyByQuantizedMultiplier(data, multiplier, shift - kShift) + output_offset;
    out[i] = static_cast<int8_t>(std::min<int32_t>(std::max<int32_t>(output, -128), 127));
  }
}

// MultiplyByQuantizedMultiplierInline for a multiplier >= 0 (QuantizeMultiplier's
// are 0 or in [2^30, 2^31)), bit for bit, in fewer instructions, with what
// depends only on (multiplier, shift) computed once:
// - gemmlowp's SaturatingRoundingDoublingHighMul divides (a*b + nudge) by 2^31
//   toward zero, nudge 2^30 or 1 - 2^30 by the sign of a*b; for a*b < 0 that
//   quotient, ceil((a*b + 1 - 2^30) / 2^31), equals floor((a*b + 2^30) / 2^31),
//   so one arithmetic shift serves both signs (no branch, no 64-bit division).
//   It saturates only for a = b = INT32_MIN, which b >= 0 rules out.
// - gemmlowp's RoundingDivideByPOT with its mask and threshold precomputed.
// - ApplySmall's RoundingDivideByPOT of a high word under 2^30 as one rounded
//   shift, (x + 2^(right-1) - (x < 0)) >> right: x >> right, plus one when the
//   remainder mod 2^right is at least 2^(right-1) (x >= 0) or above it (x < 0),
//   gemmlowp's threshold; 4 instructions instead of 6. For right = 0 nothing
//   is added (round and sign are 0).
struct QuantizedMultiplier {
  int32_t multiplier;
  int left, right;  // shift > 0: left shift of x; else right shift of the product
  int32_t mask, half;
  int32_t round, sign;  // ApplySmall's: 2^(right-1) and -1, or 0 and 0 for right = 0
  QuantizedMultiplier(int32_t quantized_multiplier, int shift)
      : multiplier(quantized_multiplier), left(shift > 0 ? shift : 0), right(shift > 0 ? 0 : -shift),
        mask(static_cast<int32_t>((int64_t{1} << right) - 1)), half(mask >> 1), round(half + (right > 0 ? 1 : 0)),
        sign(right > 0 ? -1 : 0) {}
  int32_t Apply(int32_t x) const { return DivideByPOT(static_cast<int32_t>((Product(x) + (int64_t{1} << 30)) >> 31)); }
  // The same for |x * 2^left| < 2^30: then (x * 2^left * m + 2^30) >> 31 is the
  // rounded high word of (2 * x * 2^left) * m, one SMMULR on Cortex-M4/M7.
  int32_t ApplySmall(int32_t x) const {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    int32_t high;
    __asm("smmulr %0, %1, %2" : "=r"(high) : "r"(x * (2 << left)), "r"(multiplier));
    return (high + round + ((high >> 31) & sign)) >> right;  // |high| < 2^30: no overflow
#else
    return Apply(x);
#endif
  }
  int64_t Product(int32_t x) const { return static_cast<int64_t>(x * (1 << left)) * multiplier; }
  int32_t DivideByPOT(int32_t high) const {  // gemmlowp's RoundingDivideByPOT(high, right)
    const int32_t threshold = half + (high < 0 ? 1 : 0);
    return (high >> right) + ((high & mask) > threshold ? 1 : 0);
  }
  // largest |x| that ApplySmall takes (none for right > 31, which TFLite's multipliers never have)
  int32_t SmallLimit() const { return right > 31 ? -1 : ((int32_t{1} << 30) - 1) >> left; }
};

inline int32_t MultiplyByQuantizedMultiplierFast(int32_t x, int32_t quantized_multiplier, int shift) {
  return QuantizedMultiplier(quantized_multiplier, shift).Apply(x);
}

// Row gather along axis `axis` of params [outer, axis_size, inner].
template <typename T>
inline void Gather(const T* params, int outer, int axis_size, int inner, const int32_t* idx, int n_idx, T* out) {
  for (int o = 0; o < outer; ++o) {
    for (int k = 0; k < n_idx; ++k) {
      int32_t j = idx[k];
      if (j < 0 || j >= axis_size) j = 0;  // ids are range-checked before inference
      memcpy(out + (o * n_idx + k) * inner, params + (o * axis_size + j) * inner, sizeof(T) * inner);
    }
  }
}

// Concatenation of two tensors along an axis: [outer, a_axis*inner] + [outer, b_axis*inner].
template <typename T>
inline void Concat2(const T* a, int a_chunk, const T* b, int b_chunk, int outer, T* out) {
  for (int o = 0; o < outer; ++o) {
    memcpy(out, a + o * a_chunk, sizeof(T) * a_chunk);
    out += a_chunk;
    memcpy(out, b + o * b_chunk, sizeof(T) * b_chunk);
    out += b_chunk;
  }
}

// Transpose of a rank-<=4 tensor (dims padded to 4 with leading 1s; perm over 4).
template <typename T>
inline void Transpose4(const T* in, const int32_t* dims, const int* perm, T* out) {
  if (perm[0] == 0 && perm[1] == 1 && perm[2] == 3 && perm[3] == 2) {  // the last two axes swapped
    const int rows = dims[2], cols = dims[3];
    for (int m = 0; m < dims[0] * dims[1]; ++m, in += rows * cols, out += rows * cols)
      for (int c = 0; c < cols; ++c)
        for (int r = 0; r < rows; ++r) out[c * rows + r] = in[r * cols + c];
    return;
  }
  int32_t stride[4];
  stride[3] = 1;
  for (int i = 2; i >= 0; --i) stride[i] = stride[i + 1] * dims[i + 1];
  int32_t od[4];
  for (int i = 0; i < 4; ++i) od[i] = dims[perm[i]];
  int k = 0;
  for (int a = 0; a < od[0]; ++a)
    for (int b = 0; b < od[1]; ++b)
      for (int c = 0; c < od[2]; ++c)
        for (int d = 0; d < od[3]; ++d)
          out[k++] = in[a * stride[perm[0]] + b * stride[perm[1]] + c * stride[perm[2]] + d * stride[perm[3]]];
}

// Pad (rank <= 4) with a constant value; before[i], after[i] per axis.
template <typename T>
inline void Pad4(const T* in, const int32_t* dims, const int32_t* before, const int32_t* after, T value, T* out) {
  int32_t od[4];
  for (int i = 0; i < 4; ++i) od[i] = dims[i] + before[i] + after[i];
  if (before[3] == 0 && after[3] == 0) {  // whole rows: copied or filled, not element by element
    const int row = dims[3];
    for (int a = 0; a < od[0]; ++a)
      for (int b = 0; b < od[1]; ++b)
        for (int c = 0; c < od[2]; ++c, out += row) {
          const int ia = a - before[0], ib = b - before[1], ic = c - before[2];
          if (ia >= 0 && ia < dims[0] && ib >= 0 && ib < dims[1] && ic >= 0 && ic < dims[2])
            memcpy(out, in + ((ia * dims[1] + ib) * dims[2] + ic) * row, sizeof(T) * row);
          else
            for (int d = 0; d < row; ++d) out[d] = value;
        }
    return;
  }
  int k = 0;
  for (int a = 0; a < od[0]; ++a)
    for (int b = 0; b < od[1]; ++b)
      for (int c = 0; c < od[2]; ++c)
        for (int d = 0; d < od[3]; ++d) {
          const int ia = a - before[0], ib = b - before[1], ic = c - before[2], id = d - before[3];
          const bool inside = ia >= 0 && ia < dims[0] && ib >= 0 && ib < dims[1] && ic >= 0 && ic < dims[2] &&
                              id >= 0 && id < dims[3];
          out[k++] = inside ? in[((ia * dims[1] + ib) * dims[2] + ic) * dims[3] + id] : value;
        }
}

// Strided slice with stride 1 (rank <= 4): start[i] .. start[i] + size[i].
template <typename T>
inline void Slice4(const T* in, const int32_t* dims, const int32_t* start, const int32_t* size, T* out) {
  int k = 0;
  for (int a = 0; a < size[0]; ++a)
    for (int b = 0; b < size[1]; ++b)
      for (int c = 0; c < size[2]; ++c)
        for (int d = 0; d < size[3]; ++d)
          out[k++] = in[(((start[0] + a) * dims[1] + start[1] + b) * dims[2] + start[2] + c) * dims[3] + start[3] + d];
}

}  // namespace embbert_aot
