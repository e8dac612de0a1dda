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

}  // namespace embbert_test
