// Port for QEMU's mps2-an386 (Cortex-M4F) and mps2-an500 (Cortex-M7): same
// memory map, CMSDK UART0 at 0x40004000. Bytes are polled; between them the
// CPU sleeps (WFI) until the UART's receive interrupt wakes it, so an idle
// emulator does not spin a host core.
#include <stdint.h>

#include "app.h"
#include "port.h"

extern "C" void port_counter_start(void);

namespace {
struct CmsdkUart {
  volatile uint32_t data;
  volatile uint32_t state;  // bit 0: TX full, bit 1: RX full
  volatile uint32_t ctrl;   // bit 0: TX enable, bit 1: RX enable
  volatile uint32_t intstatus;
  volatile uint32_t bauddiv;
};
CmsdkUart* const kUart0 = reinterpret_cast<CmsdkUart*>(0x40004000);
volatile uint32_t* const kAircr = reinterpret_cast<uint32_t*>(0xE000ED0C);
volatile uint32_t* const kNvicIser0 = reinterpret_cast<uint32_t*>(0xE000E100);
constexpr uint32_t kUart0Irqs = 0x3;  // IRQ 0 and 1: UART0 receive and transmit lines on mps2
volatile uint32_t* const kNvicIcpr0 = reinterpret_cast<uint32_t*>(0xE000E280);
constexpr uint32_t kRxFull = 0x2;
constexpr uint32_t kCtrlBusy = 0x3;         // TX, RX
constexpr uint32_t kCtrlIdle = 0x3 | 0x8;   // + RX interrupt, to wake from WFI
}  // namespace

extern "C" {
extern uint32_t __flash_start__, __flash_end__, __ram_start__, __ram_end__;

void port_init(void) {
  kUart0->bauddiv = 16;  // QEMU ignores the rate; real CMSDK needs >= 16
  kUart0->ctrl = kCtrlBusy;
  *kNvicIser0 = kUart0Irqs;
  port_counter_start();
}

// The byte stays in the data register for port_getc(); only the flag goes.
void port_irq(uint32_t) { kUart0->intstatus = 0xF; }

// Sleep until a byte is there. The receive interrupt is enabled only here,
// around WFI, with interrupts masked: it wakes the core but its handler never
// runs, so a byte that arrives while a command is timed (the host's second
// frame-ending zero, a pipelined request) costs no instructions in the count.
void port_idle(void) {
  __asm volatile("cpsid i" ::: "memory");
  if (!(kUart0->state & kRxFull)) {
    kUart0->ctrl = kCtrlIdle;
    __asm volatile("wfi");
    kUart0->ctrl = kCtrlBusy;
  }
  kUart0->intstatus = 0xF;
  *kNvicIcpr0 = kUart0Irqs;  // the wake-up was the only job of that interrupt
  __asm volatile("cpsie i" ::: "memory");
}

int port_getc(void) { return (kUart0->state & kRxFull) ? static_cast<int>(kUart0->data & 0xFF) : -1; }

void port_write(const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    while (kUart0->state & 0x1) {
    }
    kUart0->data = data[i];
  }
}

bool port_memory(uint32_t* flash_bytes, uint32_t* ram_bytes) {
  *flash_bytes = reinterpret_cast<uint32_t>(&__flash_end__) - reinterpret_cast<uint32_t>(&__flash_start__);
  *ram_bytes = reinterpret_cast<uint32_t>(&__ram_end__) - reinterpret_cast<uint32_t>(&__ram_start__);
  return true;
}

void port_reset(void) {
  __asm volatile("dsb");
  *kAircr = 0x05FA0004;  // VECTKEY | SYSRESETREQ
  __asm volatile("dsb");
  for (;;) {
  }
}

// The bare firmware's main; weak, so that a runtime with its own main (our
// MicroPython port, firmware/micropython/port) links the same port sources.
__attribute__((weak)) int main(void) {
  app_setup();
  for (;;) app_poll();
}
}
