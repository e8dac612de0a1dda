// ESP32-S3 counter and reset: the Xtensa CCOUNT cycle register (through
// Arduino-ESP32's ESP.getCycleCount()), extended to 64 bits, and
// ESP.restart().
#include <Arduino.h>

#include "port.h"

namespace {
uint32_t g_last = 0, g_high = 0;
}  // namespace

extern "C" void port_counter_start(void) { g_last = ESP.getCycleCount(); }

// Correct while calls are < 2^32 cycles apart (17 s at 240 MHz).
extern "C" uint64_t port_counter(void) {
  const uint32_t now = ESP.getCycleCount();
  if (now < g_last) ++g_high;
  g_last = now;
  return (static_cast<uint64_t>(g_high) << 32) | now;
}

extern "C" void port_reset(void) {
  ESP.restart();
  for (;;) {
  }
}
