// FULLY_CONNECTED (also over its own input where the folder allows: FullyConnectedInPlace) and
// BATCH_MATMUL (with adj_y, and without: BatchMatMulRhsDepthUnits) of the kernels folder on the include path
// (reference/ or optimized/), against TFLite-Micro's reference kernels called
// directly, bit for bit, on a bare-metal board (tests/test_aot_kernels.py).
// matmul_cases.h (generated) lists shapes, zero points, multipliers and
// shifts; the tensors come from a seeded xorshift, so the cases cost no flash.
// Prints "case K ..." per mismatch, then "cases N mismatches M" and END (baremetal_test.h).
#include "app.h"
#include "baremetal_test.h"
#include "batch_matmul.h"
#include "fully_connected.h"
#include "matmul_cases.h"  // struct Case kCases[kNumCases]; kMaxRows, kMaxUnits, kMaxDepth
#include "reference_params.h"
#include "tensorflow/lite/kernels/internal/reference/batch_matmul.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/fully_connected.h"

namespace {
using embbert_aot::kernels::MatMulParams;

int8_t g_x[kMaxRows * kMaxDepth], g_w[kMaxUnits * kMaxDepth], g_wt[kMaxUnits * kMaxDepth],
    g_got[kMaxRows * kMaxUnits], g_want[kMaxRows * kMaxUnits];
int32_t g_bias[kMaxUnits], g_mult[kMaxUnits];
int g_shift[kMaxUnits];
// the optimized kernels' 4 rows (or columns) as int16; the reference one's transposed RHS
alignas(8) int16_t g_scratch[4 * (kMaxDepth + 3) + kMaxUnits * kMaxDepth / 2];
void Oracle(const Case& c, const MatMulParams& p) {
  const tflite_micro::FullyConnectedParams q = embbert_aot::kernels::ReferenceParams(p);
  if (c.batch_matmul) {  // batch 1: batch_matmul.cc's RHS-first call, on the RHS as [units, depth]
    const int8_t* w = g_w;
    if (c.batch_matmul == 2) {  // g_w is [depth, units]
      for (int u = 0; u < c.units; ++u)
        for (int k = 0; k < c.depth; ++k) g_wt[u * c.depth + k] = g_w[k * c.units + u];
      w = g_wt;
    }
    const int32_t dw[] = {1, c.units, c.depth}, dx[] = {1, c.depth, c.rows}, dout[] = {1, c.rows, c.units};
    tflite_micro::reference_ops::BatchMatMul<int8_t, int32_t>(q, tflite_micro::RuntimeShape(3, dw), w,
                                                              tflite_micro::RuntimeShape(3, dx), g_x,
                                                              tflite_micro::RuntimeShape(3, dout), g_want);
    return;
  }
  const int32_t dx[] = {c.rows, c.depth}, dw[] = {c.units, c.depth}, db[] = {c.units}, dout[] = {c.rows, c.units};
  const tflite_micro::RuntimeShape sx(2, dx), sw(2, dw), sb(1, db), so(2, dout);
  const int32_t* bias = c.bias ? g_bias : nullptr;
  if (c.per_channel)
    tflite_micro::reference_integer_ops::FullyConnectedPerChannel<int8_t, int8_t, int8_t, int32_t>(
        q, g_mult, g_shift, sx, g_x, sw, g_w, sb, bias, so, g_want);
  else
    tflite_micro::reference_integer_ops::FullyConnected<int8_t, int8_t, int8_t, int32_t>(q, sx, g_x, sw, g_w, sb, bias,
                                                                                          so, g_want);
}
}  // namespace

int Check(const Case& c, embbert_test::Xorshift32& random) {
  random.Fill(g_x, c.rows * c.depth, c.x_lo, c.x_hi);
  random.Fill(g_w, c.units * c.depth, c.w_lo, c.w_hi);
  for (int u = 0; u < c.units; ++u) {
    g_bias[u] = static_cast<int32_t>(random.Next() % 200001) - 100000;
    g_mult[u] = c.per_channel ? static_cast<int32_t>((1u << 30) + random.Next() % (1u << 30)) : c.multiplier;
    g_shift[u] = c.per_channel ? c.shift - static_cast<int>(random.Next() % 4) : c.shift;
  }
  const MatMulParams p = {c.x_offset, c.w_offset, c.out_offset, g_mult, g_shift, c.per_channel != 0};
  for (int i = 0; i < c.rows * c.units; ++i) g_got[i] = g_want[i] = 0;
  if (c.batch_matmul == 2)
    embbert_aot::kernels::BatchMatMulRhsDepthUnits(p, g_x, g_w, 1, c.rows, c.units, c.depth, g_got, g_scratch);
  else if (c.batch_matmul)
    embbert_aot::kernels::BatchMatMul(p, g_x, g_w, 1, c.rows, c.units, c.depth, g_got, g_scratch);
  else if (c.in_place && embbert_aot::kernels::FullyConnectedInPlace(c.units, c.depth)) {  // out over x
    for (int i = 0; i < c.rows * c.depth; ++i) g_got[i] = g_x[i];
    embbert_aot::kernels::FullyConnected(p, g_got, c.rows, g_w, c.units, c.depth, c.bias ? g_bias : nullptr, g_got,
                                         g_scratch);
  } else
    embbert_aot::kernels::FullyConnected(p, g_x, c.rows, g_w, c.units, c.depth, c.bias ? g_bias : nullptr, g_got,
                                         g_scratch);
  Oracle(c, p);
  int bad = 0;
  for (int i = 0; i < c.rows * c.units; ++i) bad += g_got[i] != g_want[i];
  return bad;
}

void app_setup(void) { embbert_test::RunCases(kCases, kNumCases, Check); }

void app_poll(void) {}
