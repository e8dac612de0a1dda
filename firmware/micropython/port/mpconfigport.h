// MicroPython configuration of our Cortex-M port (firmware/micropython/port):
// the core language, a static GC heap, the raw REPL over the board's UART,
// and the `embbert` user C module. The board's name, clock and GC heap size
// come from the build (embbert.micropython.firmware).
#include <stdint.h>

#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_CORE_FEATURES)

#define MICROPY_ENABLE_GC (1)
#define MICROPY_HELPER_REPL (1)
#define MICROPY_KBD_EXCEPTION (1)
#define MICROPY_ENABLE_EXTERNAL_IMPORT (0)  // no filesystem: only built-in modules
#define MICROPY_LONGINT_IMPL (MICROPY_LONGINT_IMPL_LONGLONG)
#define MICROPY_FLOAT_IMPL (MICROPY_FLOAT_IMPL_FLOAT)
#define MICROPY_ERROR_REPORTING (MICROPY_ERROR_REPORTING_DETAILED)
#define MICROPY_PY_BUILTINS_STR_UNICODE (1)
#define MICROPY_PY_ARRAY (1)
#define MICROPY_PY_GC (1)
#define MICROPY_PY_SYS (1)
#define MICROPY_PY_MICROPYTHON_MEM_INFO (1)
#define MICROPY_ALLOC_PATH_MAX (128)
#define MICROPY_STACK_CHECK (1)
#define MICROPY_PY_IO (0)
#define MICROPY_PY_OS (0)
#define MICROPY_PY_TIME (0)

#define MICROPY_HW_BOARD_NAME EMBBERT_BOARD
#define MICROPY_HW_MCU_NAME "Cortex-M"

typedef long mp_off_t;
#define MP_STATE_PORT MP_STATE_VM

#include <alloca.h>
