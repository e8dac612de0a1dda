// Instructions of single FULLY_CONNECTED and BATCH_MATMUL calls on an emulated
// board (bench/kernel_loops.py), over the kernels folder on the include path
// (reference/ or optimized/). kernel_loops_calls.h (generated) lists the
// calls and makes each with the dimensions the generated model passes as
// constants as constants, the others (n, a tile's rows) from the table; the
// tensors come from a seeded xorshift (baremetal_test.h).
// Prints "empty T" (two counter reads back to back: their own cost), then per
// call "call K ticks T hash H", H the FNV-1a of its output (the host holds it
// to the reference kernels' build), then END. T in counter ticks (the host
// converts with the board's counter num/den).
#include "app.h"
#include "baremetal_test.h"
#include "kernel_loops_calls.h"  // generated: struct Call kCalls[kNumCalls], kMax*, RunCall(k, ...)

namespace {
using embbert_aot::kernels::MatMulParams;

alignas(8) int8_t g_x[kMaxX];
alignas(8) int8_t g_w[kMaxW];
alignas(8) int8_t g_out[kMaxOut];
alignas(8) uint8_t g_scratch[kScratchBytes];
int32_t g_bias[kMaxUnits], g_mult[kMaxUnits];
int g_shift[kMaxUnits];

uint32_t Fnv1a(const int8_t* p, int n) {
  uint32_t h = 2166136261u;
  for (int i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(p[i])) * 16777619u;
  return h;
}
}  // namespace

void app_setup(void) {
  using embbert_test::Print;
  using embbert_test::PrintInt;
  port_init();
  const uint64_t t0 = port_counter();
  const uint64_t t1 = port_counter();
  Print("empty ");
  PrintInt(static_cast<int64_t>(t1 - t0));
  Print("\n");
  embbert_test::Xorshift32 random;
  for (int k = 0; k < kNumCalls; ++k) {
    const Call& c = kCalls[k];
    random.state = c.seed;
    random.Fill(g_x, c.rows * c.depth, -128, 127);
    random.Fill(g_w, c.units * c.depth, -128, 127);
    for (int u = 0; u < c.units; ++u) {
      g_bias[u] = static_cast<int32_t>(random.Next() % 200001) - 100000;
      g_mult[u] = c.per_channel ? static_cast<int32_t>((1u << 30) + random.Next() % (1u << 30)) : c.multiplier;
      g_shift[u] = c.per_channel ? c.shift - static_cast<int>(random.Next() % 4) : c.shift;
    }
    const MatMulParams p = {c.x_offset, c.w_offset, c.out_offset, g_mult, g_shift, c.per_channel != 0};
    for (int i = 0; i < c.rows * c.units; ++i) g_out[i] = 0;
    const uint64_t start = port_counter();
    RunCall(k, p, g_x, c.rows, c.units, c.depth, g_w, g_bias, g_out, g_scratch);
    const uint64_t ticks = port_counter() - start;
    Print("call ");
    PrintInt(k);
    Print(" ticks ");
    PrintInt(static_cast<int64_t>(ticks));
    Print(" hash ");
    PrintInt(Fnv1a(g_out, c.rows * c.units));
    Print("\n");
  }
  embbert_test::End();
}

void app_poll(void) {}
