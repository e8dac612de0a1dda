// What every bare-metal port shares: main() running the application, and the
// memory the image occupies, from sections.ld's symbols (INFO flash_bytes and
// ram_bytes; they equal the linker map's sums, tested).
#include <stdint.h>

#include "app.h"
#include "port.h"

extern "C" {
extern uint32_t __flash_start__, __flash_end__, __ram_start__, __ram_end__;

bool port_memory(uint32_t* flash_bytes, uint32_t* ram_bytes) {
  *flash_bytes = reinterpret_cast<uint32_t>(&__flash_end__) - reinterpret_cast<uint32_t>(&__flash_start__);
  *ram_bytes = reinterpret_cast<uint32_t>(&__ram_end__) - reinterpret_cast<uint32_t>(&__ram_start__);
  return true;
}

// Weak: a program with its own main (our MicroPython port, the bare-metal kernel
// tests and the per-op profile) links the same port sources.
__attribute__((weak)) int main(void) {
  app_setup();
  for (;;) app_poll();
}
}
