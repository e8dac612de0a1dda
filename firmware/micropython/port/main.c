// Our MicroPython port for the Cortex-M boards of boards/ (QEMU mps2 first):
// the board's start-up, UART and counter (boards/common/...), a static GC
// heap, the REPL (friendly and raw, for mpremote) from shared/runtime, and
// soft reset on Ctrl-D. The `embbert` module is built in (USER_C_MODULES).
#include <stdint.h>
#include <stdio.h>

#include "py/builtin.h"
#include "py/compile.h"
#include "py/gc.h"
#include "py/mperrno.h"
#include "py/mphal.h"
#include "py/runtime.h"
#include "py/stackctrl.h"
#include "shared/runtime/gchelper.h"
#include "shared/runtime/pyexec.h"

extern uint32_t __stack_top__, __stack_size__;

// The GC heap: static, its size from the build (a symbol the build report reads).
static uint8_t mp_gc_heap[MICROPY_GC_HEAP_BYTES] __attribute__((aligned(16)));

int main(void) {
  port_init();
  // The stack limit leaves room for the C code below Python (the model runs there).
  mp_cstack_init_with_top(&__stack_top__, (size_t)&__stack_size__ - 1024);
soft_reset:
  gc_init(mp_gc_heap, mp_gc_heap + sizeof(mp_gc_heap));
  mp_init();
  for (;;) {
    if (pyexec_mode_kind == PYEXEC_MODE_RAW_REPL) {
      if (pyexec_raw_repl() != 0) break;
    } else {
      if (pyexec_friendly_repl() != 0) break;
    }
  }
  mp_printf(&mp_plat_print, "MPY: soft reboot\n");
  gc_sweep_all();
  mp_deinit();
  goto soft_reset;
}

void gc_collect(void) {
  gc_collect_start();
  gc_helper_collect_regs_and_stack();
  gc_collect_end();
}

int mp_hal_stdin_rx_chr(void) {
  for (;;) {
    int c = port_getc();
    if (c >= 0) return c;
    port_idle();
  }
}

mp_uint_t mp_hal_stdout_tx_strn(const char *str, size_t len) {
  port_write((const uint8_t *)str, len);
  return len;
}

mp_import_stat_t mp_import_stat(const char *path) {
  (void)path;
  return MP_IMPORT_STAT_NO_EXIST;
}

mp_lexer_t *mp_lexer_new_from_file(qstr filename) {
  (void)filename;
  mp_raise_OSError(MP_ENOENT);  // no filesystem
}

void nlr_jump_fail(void *val) {
  (void)val;
  mp_hal_stdout_tx_strn("FATAL: uncaught NLR\r\n", 21);
  port_reset();
  for (;;) {
  }
}
