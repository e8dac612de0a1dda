// Port for the STM32F405 (RM0090), bare metal, no HAL: QEMU's netduinoplus2
// in CI, and the same .elf on a real F405 (pyboard v1.1, Adafruit Feather
// STM32F405, ...). Serial is USART1 on PA9 (TX) / PA10 (RX), AF7; the
// counter is SysTick at the core clock; start-up, main() and port_memory() come
// from boards/common/baremetal-cortex-m.
//
// Clock: from the 16 MHz HSI, so no board crystal is assumed, the PLL is set
// to 168 MHz (HSI/8 * 168 / 2; 48 MHz for USB), with 5 flash wait states and
// APB2 at 84 MHz. Every wait for a ready bit is bounded: if a step does not
// complete, the core stays on the HSI. QEMU has no RCC (its registers read 0,
// writes are dropped): HSION never reads ready, so nothing more is tried
// there. The baud rate divisor is then computed from the clock RCC says runs.
#include <stddef.h>
#include <stdint.h>

#include "port.h"

#ifndef EMBBERT_BAUDRATE
#error "EMBBERT_BAUDRATE is not defined (board.toml serial.baudrate, added by scripts/embbert_board.py)"
#endif

extern "C" void port_counter_start(void);

namespace {
// The registers used, laid out as in RM0090 (gaps padded); Cortex-M4's own for AIRCR and the NVIC.
struct Rcc {
  volatile uint32_t cr, pllcfgr, cfgr, cir, ahb1rstr, ahb2rstr, ahb3rstr, reserved0, apb1rstr, apb2rstr,
      reserved1[2], ahb1enr, ahb2enr, ahb3enr, reserved2, apb1enr, apb2enr;
};
struct Gpio {
  volatile uint32_t moder, otyper, ospeedr, pupdr, idr, odr, bsrr, lckr, afrl, afrh;
};
struct Usart {
  volatile uint32_t sr, dr, brr, cr1, cr2, cr3, gtpr;
};
static_assert(offsetof(Rcc, ahb1enr) == 0x30 && offsetof(Rcc, apb2enr) == 0x44, "RCC layout (RM0090 6.3)");
static_assert(offsetof(Gpio, afrh) == 0x24 && offsetof(Usart, cr1) == 0x0C, "GPIO, USART layout (RM0090)");
Rcc* const kRcc = reinterpret_cast<Rcc*>(0x40023800);
volatile uint32_t* const kFlashAcr = reinterpret_cast<uint32_t*>(0x40023C00);
Gpio* const kGpioa = reinterpret_cast<Gpio*>(0x40020000);
Usart* const kUsart1 = reinterpret_cast<Usart*>(0x40011000);
volatile uint32_t* const kAircr = reinterpret_cast<uint32_t*>(0xE000ED0C);
volatile uint32_t* const kNvicIser1 = reinterpret_cast<uint32_t*>(0xE000E104);
volatile uint32_t* const kNvicIcpr1 = reinterpret_cast<uint32_t*>(0xE000E284);

constexpr uint32_t kHsiOn = 1u << 0, kHsiRdy = 1u << 1, kPllOn = 1u << 24, kPllRdy = 1u << 25;  // RCC_CR
constexpr uint32_t kSwMask = 0x3, kSwsMask = 0x3 << 2, kSwHsi = 0x0, kSwPll = 0x2;              // RCC_CFGR
constexpr uint32_t kPrescalers = (0xFu << 4) | (0x7u << 10) | (0x7u << 13);  // HPRE, PPRE1, PPRE2
constexpr uint32_t kApb1Div4Apb2Div2 = (0x5u << 10) | (0x4u << 13);          // 42 and 84 MHz at 168
// PLLM 8, PLLN 168, PLLP /2 (0), source HSI (bit 22 clear), PLLQ 7
constexpr uint32_t kPllConfig = 8u | (168u << 6) | (0u << 16) | (7u << 24);
constexpr uint32_t kFlash5WaitStates = 5u | (1u << 8) | (1u << 9) | (1u << 10);  // + prefetch, I- and D-cache
constexpr uint32_t kHsiHz = 16000000;
// Bounded waits: 100,000 polls are >= 25 ms at 16 MHz; HSI starts in a few
// µs and the PLL locks in about 100 µs (datasheet).
constexpr uint32_t kPolls = 100000;

constexpr uint32_t kRxne = 1u << 5, kTc = 1u << 6, kTxe = 1u << 7;  // USART_SR
constexpr uint32_t kCr1On = (1u << 13) | (1u << 3) | (1u << 2);      // USART_CR1: UE, TE, RE
constexpr uint32_t kRxneIe = 1u << 5;
constexpr uint32_t kUsart1Irq = 1u << (37 - 32);  // USART1 global interrupt: IRQ 37

bool wait_for(const volatile uint32_t& reg, uint32_t mask, uint32_t value) {
  for (uint32_t i = 0; i < kPolls; ++i) {
    if ((reg & mask) == value) return true;
  }
  return false;
}

// PLL to 168 MHz from the HSI, or stay on the HSI (see the top of the file).
void clock_init() {
  kRcc->cr |= kHsiOn;
  if (!wait_for(kRcc->cr, kHsiRdy, kHsiRdy)) return;  // no RCC answering (QEMU)
  kRcc->cfgr = (kRcc->cfgr & ~kSwMask) | kSwHsi;  // off the PLL (a bootloader may have left it on)
  if (!wait_for(kRcc->cfgr, kSwsMask, kSwHsi << 2)) return;
  kRcc->cr &= ~kPllOn;
  if (!wait_for(kRcc->cr, kPllRdy, 0)) return;
  *kFlashAcr = kFlash5WaitStates;
  if ((*kFlashAcr & 0xF) != 5) return;
  kRcc->pllcfgr = kPllConfig;
  kRcc->cfgr = (kRcc->cfgr & ~kPrescalers) | kApb1Div4Apb2Div2;
  kRcc->cr |= kPllOn;
  if (wait_for(kRcc->cr, kPllRdy, kPllRdy)) {
    kRcc->cfgr = (kRcc->cfgr & ~kSwMask) | kSwPll;
    if (wait_for(kRcc->cfgr, kSwsMask, kSwPll << 2)) return;
    kRcc->cfgr = (kRcc->cfgr & ~kSwMask) | kSwHsi;  // the switch did not happen: back to the HSI
  }
  kRcc->cr &= ~kPllOn;
  kRcc->cfgr &= ~kPrescalers;  // HSI, buses at 16 MHz
}

// The core clock RCC reports (SWS): the PLL from the HSI as configured, else
// the HSI. (QEMU's missing RCC reads as the HSI; its USART ignores the rate.)
uint32_t sysclk_hz() {
  const uint32_t pll = kRcc->pllcfgr;
  if ((kRcc->cfgr & kSwsMask) != (kSwPll << 2) || (pll & (1u << 22))) return kHsiHz;
  const uint32_t m = pll & 0x3F, n = (pll >> 6) & 0x1FF, p = 2 * (((pll >> 16) & 0x3) + 1);
  return m ? kHsiHz / m * n / p : kHsiHz;
}

// APB2 (USART1's bus) = core clock >> PPRE2's divider (0xx: /1, 100: /2 ... 111: /16).
uint32_t apb2_hz() {
  const uint32_t ppre2 = (kRcc->cfgr >> 13) & 0x7;
  return (ppre2 & 0x4) ? sysclk_hz() >> ((ppre2 & 0x3) + 1) : sysclk_hz();
}

// One received byte, taken from DR (kHeld set) until port_getc returns it.
// Reading SR then DR also clears an overrun (bytes lost while a command ran).
constexpr uint32_t kHeld = 0x100;
uint32_t g_held = 0;

void take_byte() {
  if (!(g_held & kHeld) && (kUsart1->sr & kRxne)) g_held = kHeld | (kUsart1->dr & 0xFF);
}

void usart1_init() {
  kRcc->ahb1enr |= 1u << 0;  // GPIOA
  kRcc->apb2enr |= 1u << 4;  // USART1
  const uint32_t enabled = kRcc->apb2enr;  // the read-back gives the clock enable its two cycles
  (void)enabled;
  // PA9, PA10: alternate function 7 (USART1); RX pulled up, so an unconnected line idles high
  kGpioa->moder = (kGpioa->moder & ~(0xFu << 18)) | (0xAu << 18);
  kGpioa->pupdr = (kGpioa->pupdr & ~(0x3u << 20)) | (0x1u << 20);
  kGpioa->afrh = (kGpioa->afrh & ~0xFF0u) | 0x770u;
  // oversampling by 16: BRR = f_APB2 / baud, rounded (84 MHz: 729 = 115,226 baud)
  kUsart1->brr = (apb2_hz() + EMBBERT_BAUDRATE / 2) / EMBBERT_BAUDRATE;
  kUsart1->cr1 = kCr1On;
  *kNvicIser1 = kUsart1Irq;  // only ever wakes WFI (port_idle); its handler does not run
}
}  // namespace

extern "C" {
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
  if (!(g_held & kHeld) && !(kUsart1->sr & kRxne)) {
    kUsart1->cr1 = kCr1On | kRxneIe;
    __asm volatile("wfi");
    kUsart1->cr1 = kCr1On;
  }
  take_byte();
  *kNvicIcpr1 = kUsart1Irq;
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
    while (!(kUsart1->sr & kTxe)) {
    }
    kUsart1->dr = data[i];
  }
}

void port_reset(void) {
  for (uint32_t i = 0; i < kPolls && !(kUsart1->sr & kTc); ++i) {
  }  // the last reply byte leaves the wire first (bounded)
  __asm volatile("dsb");
  *kAircr = 0x05FA0004;  // VECTKEY | SYSRESETREQ
  __asm volatile("dsb");
  for (;;) {
  }
}
}
