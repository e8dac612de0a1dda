// The HAL of our port: the UART and the counter of the board's port
// (firmware/src/port.h, implemented in boards/common/...).
#include "port.h"
#include "shared/runtime/interrupt_char.h"

// No pins; defining the type keeps py/mphal.h from including extmod/virtpin.h,
// which the sdist does not ship.
#define mp_hal_pin_obj_t void *

// SysTick runs at the core clock; the build passes the board's (board.toml).
static inline mp_uint_t mp_hal_ticks_ms(void) { return (mp_uint_t)(port_counter() / (EMBBERT_CPU_HZ / 1000)); }
static inline mp_uint_t mp_hal_ticks_us(void) { return (mp_uint_t)(port_counter() / (EMBBERT_CPU_HZ / 1000000)); }
static inline mp_uint_t mp_hal_ticks_cpu(void) { return (mp_uint_t)port_counter(); }
static inline void mp_hal_delay_ms(mp_uint_t ms) {
  const mp_uint_t start = mp_hal_ticks_ms();
  while (mp_hal_ticks_ms() - start < ms) {
  }
}
