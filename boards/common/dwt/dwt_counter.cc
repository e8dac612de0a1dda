// Counter and reset for real Cortex-M3/M4/M7 boards: the DWT cycle counter
// (CYCCNT), extended to 64 bits in software, and a reset through AIRCR.
// Plain register addresses (ARMv7-M architecture), so no vendor headers.
// QEMU does not emulate CYCCNT: the QEMU ports use SysTick instead.
#include <stdint.h>

#include "port.h"

namespace {
volatile uint32_t* const kDemcr = reinterpret_cast<uint32_t*>(0xE000EDFC);
volatile uint32_t* const kDwtCtrl = reinterpret_cast<uint32_t*>(0xE0001000);
volatile uint32_t* const kDwtCyccnt = reinterpret_cast<uint32_t*>(0xE0001004);
volatile uint32_t* const kDwtLar = reinterpret_cast<uint32_t*>(0xE0001FB0);  // lock on Cortex-M7
volatile uint32_t* const kAircr = reinterpret_cast<uint32_t*>(0xE000ED0C);
uint32_t g_last = 0, g_high = 0;
}  // namespace

extern "C" void port_counter_start(void) {
  *kDemcr |= 1u << 24;  // TRCENA: enable the DWT
  *kDwtLar = 0xC5ACCE55;
  *kDwtCyccnt = 0;
  *kDwtCtrl |= 1u;      // CYCCNTENA
}

// Extends the 32-bit counter; correct while calls are < 2^32 cycles apart
// (36 s at 120 MHz), which every timed command is.
extern "C" uint64_t port_counter(void) {
  const uint32_t now = *kDwtCyccnt;
  if (now < g_last) ++g_high;
  g_last = now;
  return (static_cast<uint64_t>(g_high) << 32) | now;
}

extern "C" void port_reset(void) {
  __asm volatile("dsb");
  *kAircr = 0x05FA0004;  // VECTKEY | SYSRESETREQ
  __asm volatile("dsb");
  for (;;) {
  }
}
