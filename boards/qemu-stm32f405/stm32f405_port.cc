// Port for the STM32F405 (RM0090), bare metal, no HAL: QEMU's netduinoplus2
// in CI, and the same .elf on a real F405 (pyboard v1.1, Adafruit Feather
// STM32F405, ...). Serial is USART1 on PA9 (TX) / PA10 (RX), AF7; the
// counter is SysTick at the core clock (boards/common/baremetal-cortex-m).
//
// Clock: from the 16 MHz HSI, so no board crystal is assumed, the PLL is set
// to 168 MHz (HSI/8 * 168 / 2; 48 MHz for USB), with 5 flash wait states and
// APB2 at 84 MHz. Every wait for a ready bit is bounded: if a step does not
// complete, the core stays on the HSI. QEMU has no RCC (its registers read 0,
// writes are dropped): HSION never reads ready, so nothing more is tried
// there. The baud rate divisor is then computed from the clock RCC says runs.
#include <stdint.h>

#include "app.h"
#include "port.h"

#ifndef EMBBERT_BAUDRATE
#error "EMBBERT_BAUDRATE is not defined (board.toml serial.baudrate, added by scripts/embbert_board.py)"
#endif

extern "C" void port_counter_start(void);

namespace {
// A memory-mapped register by its address (RM0090; the Cortex-M4's own for AIRCR and the NVIC).
inline volatile uint32_t& io(uint32_t address) { return *reinterpret_cast<volatile uint32_t*>(address); }

// RCC and the flash interface
constexpr uint32_t kRccCr = 0x40023800;
constexpr uint32_t kRccPllcfgr = 0x40023804;
constexpr uint32_t kRccCfgr = 0x40023808;
constexpr uint32_t kRccAhb1enr = 0x40023830;
constexpr uint32_t kRccApb2enr = 0x40023844;
constexpr uint32_t kFlashAcr = 0x40023C00;
constexpr uint32_t kHsiOn = 1u << 0, kHsiRdy = 1u << 1, kPllOn = 1u << 24, kPllRdy = 1u << 25;
constexpr uint32_t kSwMask = 0x3, kSwsMask = 0x3 << 2, kSwHsi = 0x0, kSwPll = 0x2;
constexpr uint32_t kPrescalers = (0xFu << 4) | (0x7u << 10) | (0x7u << 13);  // HPRE, PPRE1, PPRE2
constexpr uint32_t kApb1Div4Apb2Div2 = (0x5u << 10) | (0x4u << 13);          // 42 and 84 MHz at 168
// PLLM 8, PLLN 168, PLLP /2 (0), source HSI (bit 22 clear), PLLQ 7
constexpr uint32_t kPllConfig = 8u | (168u << 6) | (0u << 16) | (7u << 24);
constexpr uint32_t kFlash5WaitStates = 5u | (1u << 8) | (1u << 9) | (1u << 10);  // + prefetch, I- and D-cache
constexpr uint32_t kHsiHz = 16000000;
// Bounded waits: 100,000 polls are >= 25 ms at 16 MHz; HSI starts in a few
// µs and the PLL locks in about 100 µs (datasheet).
constexpr uint32_t kPolls = 100000;

// GPIOA (0x40020000), USART1 (0x40011000)
constexpr uint32_t kGpioaModer = 0x40020000;
constexpr uint32_t kGpioaPupdr = 0x4002000C;
constexpr uint32_t kGpioaAfrh = 0x40020024;
constexpr uint32_t kUsartSr = 0x40011000;
constexpr uint32_t kUsartDr = 0x40011004;
constexpr uint32_t kUsartBrr = 0x40011008;
constexpr uint32_t kUsartCr1 = 0x4001100C;
constexpr uint32_t kRxne = 1u << 5, kTc = 1u << 6, kTxe = 1u << 7;
constexpr uint32_t kCr1On = (1u << 13) | (1u << 3) | (1u << 2);  // UE, TE, RE
constexpr uint32_t kRxneIe = 1u << 5;

constexpr uint32_t kAircr = 0xE000ED0C;
constexpr uint32_t kNvicIser1 = 0xE000E104;
constexpr uint32_t kNvicIcpr1 = 0xE000E284;
constexpr uint32_t kUsart1Irq = 1u << (37 - 32);  // USART1 global interrupt: IRQ 37

bool wait_for(uint32_t address, uint32_t mask, uint32_t value) {
  for (uint32_t i = 0; i < kPolls; ++i) {
    if ((io(address) & mask) == value) return true;
  }
  return false;
}

// PLL to 168 MHz from the HSI, or stay on the HSI (see the top of the file).
void clock_init() {
  io(kRccCr) |= kHsiOn;
  if (!wait_for(kRccCr, kHsiRdy, kHsiRdy)) return;  // no RCC answering (QEMU)
  io(kRccCfgr) = (io(kRccCfgr) & ~kSwMask) | kSwHsi;  // off the PLL (a bootloader may have left it on)
  if (!wait_for(kRccCfgr, kSwsMask, kSwHsi << 2)) return;
  io(kRccCr) &= ~kPllOn;
  if (!wait_for(kRccCr, kPllRdy, 0)) return;
  io(kFlashAcr) = kFlash5WaitStates;
  if ((io(kFlashAcr) & 0xF) != 5) return;
  io(kRccPllcfgr) = kPllConfig;
  io(kRccCfgr) = (io(kRccCfgr) & ~kPrescalers) | kApb1Div4Apb2Div2;
  io(kRccCr) |= kPllOn;
  if (wait_for(kRccCr, kPllRdy, kPllRdy)) {
    io(kRccCfgr) = (io(kRccCfgr) & ~kSwMask) | kSwPll;
    if (wait_for(kRccCfgr, kSwsMask, kSwPll << 2)) return;
    io(kRccCfgr) = (io(kRccCfgr) & ~kSwMask) | kSwHsi;  // the switch did not happen: back to the HSI
  }
  io(kRccCr) &= ~kPllOn;
  io(kRccCfgr) &= ~kPrescalers;  // HSI, buses at 16 MHz
}

// The core clock RCC reports (SWS): the PLL from the HSI as configured, else
// the HSI. (QEMU's missing RCC reads as the HSI; its USART ignores the rate.)
uint32_t sysclk_hz() {
  const uint32_t pll = io(kRccPllcfgr);
  if ((io(kRccCfgr) & kSwsMask) != (kSwPll << 2) || (pll & (1u << 22))) return kHsiHz;
  const uint32_t m = pll & 0x3F, n = (pll >> 6) & 0x1FF, p = 2 * (((pll >> 16) & 0x3) + 1);
  return m ? kHsiHz / m * n / p : kHsiHz;
}

// APB2 (USART1's bus) = core clock >> PPRE2's divider (0xx: /1, 100: /2 ... 111: /16).
uint32_t apb2_hz() {
  const uint32_t ppre2 = (io(kRccCfgr) >> 13) & 0x7;
  return (ppre2 & 0x4) ? sysclk_hz() >> ((ppre2 & 0x3) + 1) : sysclk_hz();
}

// One received byte, taken from DR (kHeld set) until port_getc returns it.
// Reading SR then DR also clears an overrun (bytes lost while a command ran).
constexpr uint32_t kHeld = 0x100;
uint32_t g_held = 0;

void take_byte() {
  if (!(g_held & kHeld) && (io(kUsartSr) & kRxne)) g_held = kHeld | (io(kUsartDr) & 0xFF);
}

void usart1_init() {
  io(kRccAhb1enr) |= 1u << 0;  // GPIOA
  io(kRccApb2enr) |= 1u << 4;  // USART1
  const uint32_t enabled = io(kRccApb2enr);  // the read-back gives the clock enable its two cycles
  (void)enabled;
  // PA9, PA10: alternate function 7 (USART1); RX pulled up, so an unconnected line idles high
  io(kGpioaModer) = (io(kGpioaModer) & ~(0xFu << 18)) | (0xAu << 18);
  io(kGpioaPupdr) = (io(kGpioaPupdr) & ~(0x3u << 20)) | (0x1u << 20);
  io(kGpioaAfrh) = (io(kGpioaAfrh) & ~0xFF0u) | 0x770u;
  // oversampling by 16: BRR = f_APB2 / baud, rounded (84 MHz: 729 = 115,226 baud)
  io(kUsartBrr) = (apb2_hz() + EMBBERT_BAUDRATE / 2) / EMBBERT_BAUDRATE;
  io(kUsartCr1) = kCr1On;
  io(kNvicIser1) = kUsart1Irq;  // only ever wakes WFI (port_idle); its handler does not run
}
}  // namespace

extern "C" {
extern uint32_t __flash_start__, __flash_end__, __ram_start__, __ram_end__;

void port_init(void) {
  clock_init();
  usart1_init();
  port_counter_start();
}

// Not reached (port_idle masks the interrupt); if it were, take the byte, which ends the request.
void port_irq(uint32_t) { take_byte(); }

// Sleep until a byte is there: as on mps2, the receive interrupt is enabled
// only around WFI with interrupts masked, so it wakes the core but never runs,
// and a byte arriving during a timed command costs no instructions. The byte
// is taken before the pending interrupt is cleared: while RXNE and the line
// stay high the NVIC keeps it pending (QEMU's model lowers the line only when
// DR is read, even with RXNEIE clear).
void port_idle(void) {
  __asm volatile("cpsid i" ::: "memory");
  if (!(g_held & kHeld) && !(io(kUsartSr) & kRxne)) {
    io(kUsartCr1) = kCr1On | kRxneIe;
    __asm volatile("wfi");
    io(kUsartCr1) = kCr1On;
  }
  take_byte();
  io(kNvicIcpr1) = kUsart1Irq;
  __asm volatile("cpsie i" ::: "memory");
}

int port_getc(void) {
  take_byte();
  const uint32_t held = g_held;
  g_held = 0;
  return (held & kHeld) ? static_cast<int>(held & 0xFF) : -1;
}

void port_write(const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i) {
    while (!(io(kUsartSr) & kTxe)) {
    }
    io(kUsartDr) = data[i];
  }
}

bool port_memory(uint32_t* flash_bytes, uint32_t* ram_bytes) {
  *flash_bytes = reinterpret_cast<uint32_t>(&__flash_end__) - reinterpret_cast<uint32_t>(&__flash_start__);
  *ram_bytes = reinterpret_cast<uint32_t>(&__ram_end__) - reinterpret_cast<uint32_t>(&__ram_start__);
  return true;
}

void port_reset(void) {
  for (uint32_t i = 0; i < kPolls && !(io(kUsartSr) & kTc); ++i) {
  }  // the last reply byte leaves the wire first (bounded)
  __asm volatile("dsb");
  io(kAircr) = 0x05FA0004;  // VECTKEY | SYSRESETREQ
  __asm volatile("dsb");
  for (;;) {
  }
}

int main(void) {
  app_setup();
  for (;;) app_poll();
}
}
