// Host harness for the aot backend: reads lines "n id_0 ... id_{n-1}" on
// stdin, runs embbert_aot::Infer on the n ids, prints the int8 logits.
// Built with the same flags as the firmware (-ffp-contract=off, no fast-math)
// by convert/aot/host.py; tests compare it with the host TFLite-Micro interpreter.
#include <stdio.h>

#include "model_aot.h"

int main() {
  static int32_t ids[embbert_aot::kMaxLen];
  int8_t logits[embbert_aot::kNumLogits];
  int n;
  while (scanf("%d", &n) == 1) {
    if (n < 1 || n > embbert_aot::kMaxLen) return 2;
    for (int i = 0; i < n; ++i)
      if (scanf("%d", &ids[i]) != 1) return 2;
    embbert_aot::Infer(ids, n, logits);
    for (int i = 0; i < embbert_aot::kNumLogits; ++i) printf(i ? " %d" : "%d", logits[i]);
    printf("\n");
    fflush(stdout);
  }
  return 0;
}
