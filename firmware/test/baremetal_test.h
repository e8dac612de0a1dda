// What a bare-metal test program (toolkit/device/baremetal.py) needs besides
// the board's port: text on the UART and a way to stop the emulator.
#pragma once
#include <stdint.h>
#include <string.h>

#include "port.h"

namespace embbert_test {

inline void Print(const char* s) { port_write(reinterpret_cast<const uint8_t*>(s), strlen(s)); }

inline void PrintInt(int64_t v) {
  char buf[24];
  int i = sizeof(buf);
  buf[--i] = 0;
  const bool neg = v < 0;
  uint64_t u = neg ? -static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  do {
    buf[--i] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u);
  if (neg) buf[--i] = '-';
  Print(buf + i);
}

// Seeded tensors for kernel tests: the cases carry a seed, not the data.
struct Xorshift32 {
  uint32_t state;
  uint32_t Next() {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  }
  void Fill(int8_t* p, int n, int lo, int hi) {
    for (int i = 0; i < n; ++i) p[i] = static_cast<int8_t>(lo + static_cast<int>(Next() % (hi - lo + 1)));
  }
};

// Counts cases with wrong outputs, one line per such case, and the summary
// line the host checks: "cases N mismatches M".
struct Mismatches {
  int cases = 0, mismatched = 0;
  void Case(int wrong_outputs) {
    if (wrong_outputs) {
      ++mismatched;
      Print("case ");
      PrintInt(cases);
      Print(" wrong outputs ");
      PrintInt(wrong_outputs);
      Print("\n");
    }
    ++cases;
  }
  void Summary() const {
    Print("cases ");
    PrintInt(cases);
    Print(" mismatches ");
    PrintInt(mismatched);
    Print("\n");
  }
};

// Prints END and stops QEMU (semihosting SYS_EXIT, ADP_Stopped_ApplicationExit);
// the runner starts QEMU with -semihosting-config enable=on.
[[noreturn]] inline void End() {
  Print("END\n");
  register uint32_t r0 __asm("r0") = 0x18;
  register uint32_t r1 __asm("r1") = 0x20026;
  __asm volatile("bkpt 0xab" : : "r"(r0), "r"(r1) : "memory");
  for (;;) {
  }
}

// A kernel test's app_setup: each case's tensors seeded from case.seed, checked
// by check(case, random) -> its wrong outputs; then the summary and END.
template <class Case, class Check>
[[noreturn]] void RunCases(const Case* cases, int count, Check check) {
  port_init();
  Mismatches mismatches;
  Xorshift32 random;
  for (int k = 0; k < count; ++k) {
    random.state = cases[k].seed;
    mismatches.Case(check(cases[k], random));
  }
  mismatches.Summary();
  End();
}

}  // namespace embbert_test
