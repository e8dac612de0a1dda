// Per-op profile of the aot model on an emulated board (bench/device_latency.py).
// The generated model_aot.cc is built with EMBBERT_AOT_TRACE calling
// ProfileOp (aot_profile_hook.h, -include'd): the counter delta since the
// previous op is the op's cost; the bookkeeping itself is left out.
// Prints, per length n of aot_profile_input.h: "n N total T" and one
// "op K T" per op, T in counter ticks (the host converts with the board's
// counter num/den), then END.
#include "aot_profile_hook.h"
#include "aot_profile_input.h"  // generated: kLengths, kNumLengths, kIds (kMaxLen ids)
#include "app.h"
#include "baremetal_test.h"
#include "model_aot.h"

namespace {
constexpr int kMaxOps = 1024;
uint64_t g_ticks[kMaxOps];
uint64_t g_last;
}  // namespace

extern "C" void ProfileOp(int op) {
  const uint64_t now = port_counter();
  if (op >= 0 && op < kMaxOps) g_ticks[op] += now - g_last;
  g_last = port_counter();
}

void app_setup(void) {
  using embbert_test::Print;
  using embbert_test::PrintInt;
  port_init();
  static int8_t logits[embbert_aot::kNumLogits];
  for (int k = 0; k < kNumLengths; ++k) {
    const int n = kLengths[k];
    for (int i = 0; i < kMaxOps; ++i) g_ticks[i] = 0;
    const uint64_t start = port_counter();
    g_last = start;
    embbert_aot::Infer(kIds, n, logits);
    const uint64_t total = port_counter() - start;
    Print("n ");
    PrintInt(n);
    Print(" total ");
    PrintInt(static_cast<int64_t>(total));
    Print(" logits");
    for (int i = 0; i < embbert_aot::kNumLogits; ++i) {
      Print(" ");
      PrintInt(logits[i]);
    }
    Print("\n");
    for (int i = 0; i < kMaxOps; ++i) {
      if (!g_ticks[i]) continue;
      Print("op ");
      PrintInt(i);
      Print(" ");
      PrintInt(static_cast<int64_t>(g_ticks[i]));
      Print("\n");
    }
  }
  embbert_test::End();
}

void app_poll(void) {}
