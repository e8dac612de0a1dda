// port_counter() from SysTick, extended to 64 bits by its wrap interrupt.
// For QEMU: it emulates no DWT cycle counter, but with `-icount shift=N`
// SysTick advances deterministically with the instructions executed; the
// board description gives the ticks-to-instructions factor.
#include <stdint.h>

#include "port.h"

namespace {
volatile uint32_t* const kSysTick = reinterpret_cast<uint32_t*>(0xE000E010);  // CTRL, LOAD, VAL
volatile uint32_t* const kIcsr = reinterpret_cast<uint32_t*>(0xE000ED04);
constexpr uint32_t kPendStSet = 1u << 26;
constexpr uint32_t kReload = 0xFFFFFF;  // the full 24 bits: one wrap per 2^24 ticks
volatile uint32_t g_wraps = 0;
}  // namespace

extern "C" void SysTick_Handler(void) { g_wraps = g_wraps + 1; }

extern "C" void port_counter_start(void) {
  kSysTick[1] = kReload;
  kSysTick[2] = 0;
  kSysTick[0] = 0x7;  // enable, interrupt on wrap, processor clock
}

extern "C" uint64_t port_counter(void) {
  uint32_t primask;
  __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask));
  uint32_t wraps = g_wraps;
  uint32_t value = kSysTick[2];
  if (*kIcsr & kPendStSet) {  // wrapped, interrupt not yet taken
    ++wraps;
    value = kSysTick[2];
  }
  __asm volatile("msr primask, %0" ::"r"(primask));
  return (static_cast<uint64_t>(wraps) << 24) + (kReload - value);
}
