// SOFTMAX, LOGISTIC, ADD, MUL, MEAN and SUM of the kernels folder on the include path
// (reference/ or optimized/), against TFLite-Micro's reference kernels called
// directly (Softmax, Logistic, Add / BroadcastAdd6DSlow, Mul /
// BroadcastMul6DSlow, Mean / QuantizedMeanOrSum), bit for bit, out of place and in place, on a bare-metal
// board (tests/test_aot_kernels.py). elementwise_cases.h (generated) holds
// shapes and Prepare's parameters (convert/aot/quant.py); tensors come from a
// seeded xorshift. Prints "case K ..." per mismatch, "cases N mismatches M", END.
#include "add.h"
#include "app.h"
#include "baremetal_test.h"
#include "elementwise_cases.h"  // struct Case kCases[kNumCases]; kMaxElements
#include "logistic.h"
#include "mul.h"
#include "reduce.h"
#include "softmax.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/add.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/logistic.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/mul.h"
#include "tensorflow/lite/kernels/internal/reference/reduce.h"
#include "tensorflow/lite/kernels/internal/reference/softmax.h"

namespace {
int8_t g_a[kMaxElements], g_b[kMaxElements], g_got[kMaxElements], g_in_place[kMaxElements], g_want[kMaxElements];
int8_t g_full[kMaxElements], g_scratch[kMaxElements];  // softmax: the full rows (real keys, then padded at -128)
int32_t g_sums[kMaxElements];
tflite_micro::ArithmeticParams Arithmetic(const Case& c) {
  tflite_micro::ArithmeticParams p = {};
  p.left_shift = c.left_shift;
  p.input1_offset = c.offset1;
  p.input1_multiplier = c.multiplier1;
  p.input1_shift = c.shift1;
  p.input2_offset = c.offset2;
  p.input2_multiplier = c.multiplier2;
  p.input2_shift = c.shift2;
  p.output_offset = c.out_offset;
  p.output_multiplier = c.multiplier;
  p.output_shift = c.shift;
  p.quantized_activation_min = -128;
  p.quantized_activation_max = 127;
  return p;
}

// kind: 0 softmax [outer, inner], each row the first inner keys of a row of inner + padded whose padded
// keys are -128; 1 logistic [outer * inner]; 2 add, 3 mul: a [outer, inner] with b
// by strides (b_outer, b_inner): same, a row [inner], a column [outer, 1] or a scalar;
// 4 mean / sum of each row [outer, inner] -> [outer]
embbert_aot::kernels::ReduceParams Reduce(const Case& c) {
  return {c.quantized != 0, c.compute_sum != 0, c.zero_point, c.multiplier, static_cast<int>(c.shift), c.out_offset};
}

void Run(const Case& c, const int8_t* a, int8_t* out) {
  const int n = c.outer * c.inner;
  if (c.kind == 4) {
    embbert_aot::kernels::ReduceLastAxis(Reduce(c), a, c.outer, c.inner, out, g_sums);
    return;
  }
  if (c.kind == 0) {
    tflite_micro::SoftmaxParams p = {};
    p.input_multiplier = c.multiplier;
    p.input_left_shift = c.shift;
    p.diff_min = c.diff_min;
    embbert_aot::kernels::Softmax(p, a, c.outer, c.inner, c.padded, out, g_scratch);
  } else if (c.kind == 1) {
    const embbert_aot::kernels::LogisticParams p = {c.zero_point, c.radius, c.multiplier, c.shift};
    embbert_aot::kernels::Logistic(p, a, n, out);
  } else if (c.kind == 2) {
    embbert_aot::kernels::Add(Arithmetic(c), a, g_b, c.outer, c.inner, c.b_outer, c.b_inner, out);
  } else {
    embbert_aot::kernels::Mul(Arithmetic(c), a, g_b, c.outer, c.inner, c.b_outer, c.b_inner, out);
  }
}

void Oracle(const Case& c) {
  const int n = c.outer * c.inner;
  const int32_t dims[] = {c.outer, c.inner};
  const tflite_micro::RuntimeShape shape(2, dims);
  if (c.kind == 0) {
    tflite_micro::SoftmaxParams p = {};
    p.input_multiplier = c.multiplier;
    p.input_left_shift = c.shift;
    p.diff_min = c.diff_min;
    const int full = c.inner + c.padded;  // the oracle runs the full rows, as the full graph does
    for (int r = 0; r < c.outer; ++r)
      for (int k = 0; k < full; ++k) g_full[r * full + k] = k < c.inner ? g_a[r * c.inner + k] : -128;
    const int32_t full_dims[] = {c.outer, full};
    const tflite_micro::RuntimeShape full_shape(2, full_dims);
    tflite_micro::reference_ops::Softmax<int8_t, int8_t>(p, full_shape, g_full, full_shape, g_scratch);
    for (int r = 0; r < c.outer; ++r)
      for (int k = 0; k < c.inner; ++k) g_want[r * c.inner + k] = g_scratch[r * full + k];
    return;
  }
  if (c.kind == 1) {
    tflite_micro::reference_integer_ops::Logistic(c.zero_point, c.radius, c.multiplier, c.shift, n, g_a, g_want);
    return;
  }
  if (c.kind == 4) {
    const int dx[] = {c.outer, c.inner}, dout[] = {c.outer, 1}, axis[] = {1};
    int temp_index[2], resolved_axis[2];
    if (c.quantized)
      tflite_micro::reference_ops::QuantizedMeanOrSum<int8_t, int32_t>(
          g_a, c.zero_point, dx, 2, g_want, c.multiplier, c.shift, c.out_offset, dout, 2, axis, 1, true, temp_index,
          resolved_axis, g_sums, c.compute_sum != 0);
    else
      tflite_micro::reference_ops::Mean<int8_t, int32_t>(g_a, dx, 2, g_want, dout, 2, axis, 1, true, temp_index,
                                                         resolved_axis, g_sums);
    return;
  }
  const int32_t bdims[] = {c.b_outer ? c.outer : 1, c.b_inner ? c.inner : 1};
  const tflite_micro::RuntimeShape bshape(2, bdims);
  const bool same = c.b_inner && c.b_outer;
  const tflite_micro::ArithmeticParams p = Arithmetic(c);
  if (c.kind == 2 && same) tflite_micro::reference_integer_ops::Add(p, shape, g_a, shape, g_b, shape, g_want);
  if (c.kind == 2 && !same)
    tflite_micro::reference_integer_ops::BroadcastAdd6DSlow(p, shape, g_a, bshape, g_b, shape, g_want);
  if (c.kind == 3 && same) tflite_micro::reference_integer_ops::Mul(p, shape, g_a, shape, g_b, shape, g_want);
  if (c.kind == 3 && !same)
    tflite_micro::reference_integer_ops::BroadcastMul6DSlow(p, shape, g_a, bshape, g_b, shape, g_want);
}
}  // namespace

int Check(const Case& c, embbert_test::Xorshift32& random) {
  const int n = c.outer * c.inner;
  random.Fill(g_a, n, c.lo, c.hi);
  random.Fill(g_b, (c.b_outer ? c.outer : 1) * (c.b_inner ? c.inner : 1), -128, 127);
  Run(c, g_a, g_got);
  for (int i = 0; i < n; ++i) g_in_place[i] = g_a[i];
  const bool reduce = c.kind == 4;  // its output is smaller than its input: never in place
  if (!reduce) Run(c, g_in_place, g_in_place);  // out = a, as the arena plan allows
  Oracle(c);
  int bad = 0;
  for (int i = 0; i < (reduce ? c.outer : n); ++i) bad += (g_got[i] != g_want[i]) + (!reduce && g_in_place[i] != g_want[i]);
  return bad;
}

void app_setup(void) { embbert_test::RunCases(kCases, kNumCases, Check); }

void app_poll(void) {}
