// SOFTMAX, int8 -> int8 (ours): TFLite-Micro's reference arithmetic with its
// exponentials looked up. Every value the reference computes per element
// depends only on the difference d = max(row) - x, one of 256: the table of
// exp_on_negative_values (and of its Rescale into the 12-integer-bit sum) is
// filled by the reference's own functions on the same arguments, so it holds
// exactly what the reference would compute; it is kept for the next call with
// the same parameters. For rows of up to 16 the reference kernel itself is
// cheaper and runs instead.
#pragma once
#include <stdint.h>

#include "aot_ops.h"
#include "dsp.h"
#include "tensorflow/lite/kernels/internal/reference/softmax.h"

namespace embbert_aot {
namespace kernels {

// By d = max - x: exp_on_negative_values(rescaled -d).raw(), and its Rescale<12>
// (what the sum adds); both 0 below diff_min.
struct SoftmaxTable {
  int32_t input_multiplier = 0, input_left_shift = 0, diff_min = 1;  // diff_min 1: never filled
  int32_t exp0[256];
  int32_t exp_acc[256];
};

// The table of p, filled when p differs from the last call's (the attention
// loop, attention.py, calls Softmax once per tile of rows with the same p).
inline const SoftmaxTable& SoftmaxTableFor(const tflite_micro::SoftmaxParams& p) {
  static SoftmaxTable t;
  if (t.input_multiplier == p.input_multiplier && t.input_left_shift == p.input_left_shift &&
      t.diff_min == p.diff_min)
    return t;
  using FixedPointScaledDiff = gemmlowp::FixedPoint<int32_t, 5>;  // softmax.h's kScaledDiffIntegerBits
  for (int d = 0; d < 256; ++d) {
    if (-d >= p.diff_min) {
      const int32_t rescaled =
          tflite_micro::MultiplyByQuantizedMultiplierGreaterThanOne(-d, p.input_multiplier, p.input_left_shift);
      const auto e = gemmlowp::exp_on_negative_values(FixedPointScaledDiff::FromRaw(rescaled));
      t.exp0[d] = e.raw();
      t.exp_acc[d] = gemmlowp::Rescale<12>(e).raw();
    } else {
      t.exp0[d] = 0;
      t.exp_acc[d] = 0;
    }
  }
  t.input_multiplier = p.input_multiplier;
  t.input_left_shift = p.input_left_shift;
  t.diff_min = p.diff_min;
  return t;
}

// x [rows, depth] -> out [rows, depth]; out may be x (a row's max and sum are read first).
// Each row is the first depth keys of a row of depth + padded keys whose last
// padded keys are -128 (padded keys of the full graph, convert/exact_mask.py):
// each of them adds the same term, exp_acc[max + 128], to the row's integer
// sum, so padded times it is that sum exactly (at most 2^19 per term, so under
// 2^31 for up to 4,096 keys). scratch: unused (reference/softmax.h's).
inline void Softmax(const tflite_micro::SoftmaxParams& p, const int8_t* x, int rows, int depth, int padded, int8_t* out,
                    int8_t* /*scratch*/) {
  if (padded == 0 && depth <= 16) {  // at most 16 keys: filling the table costs more than it saves
    const int32_t dims[] = {rows, depth};
    const tflite_micro::RuntimeShape shape(2, dims);
    tflite_micro::reference_ops::Softmax<int8_t, int8_t>(p, shape, x, shape, out);
    return;
  }
  constexpr int kAccumulationIntegerBits = 12;
  const SoftmaxTable& t = SoftmaxTableFor(p);
  const int32_t* exp0 = t.exp0;
  const int32_t* exp_acc = t.exp_acc;
  for (int i = 0; i < rows; ++i, x += depth, out += depth) {
    int32_t max = -128;
    for (int c = 0; c < depth; ++c) max = x[c] > max ? x[c] : max;
    int32_t sum = 0;  // FixedPoint<int32_t, 12> addition: plain int32 addition of the raw values
    for (int c = 0; c < depth; ++c) sum += exp_acc[max - x[c]];
    sum += padded * exp_acc[max + 128];
    int num_bits_over_unit;
    const int32_t shifted_scale = tflite_micro::GetReciprocal(sum, kAccumulationIntegerBits, &num_bits_over_unit);
    const int exponent = num_bits_over_unit + 31 - 8;
    for (int c = 0; c < depth; ++c) {
      const int d = max - x[c];
      if (-d >= p.diff_min) {
        // RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(shifted_scale, exp), exponent): both >= 0
        const int32_t unsat = MultiplyByQuantizedMultiplierFast(exp0[d], shifted_scale, -exponent);
        out[c] = Saturate8(unsat - 128);
      } else {
        out[c] = -128;
      }
    }
  }
}

}  // namespace kernels
}  // namespace embbert_aot
