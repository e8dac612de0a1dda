// What a board port implements (boards/<board>/, boards/common/): the whole
// of the board-specific code. Everything else in firmware/src is portable.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void port_init(void);                              // clocks, UART, cycle/instruction counter
int port_getc(void);                               // next received byte, or -1 if none yet
void port_idle(void);                              // nothing received: wait (WFI) or return
void port_write(const uint8_t* data, size_t len);  // blocking
uint64_t port_counter(void);                       // free-running; see EMBBERT_COUNTER_* below
// Flash and RAM the image occupies, from the linker's symbols; false if the
// port cannot tell (the host's build report, from the map, always can).
bool port_memory(uint32_t* flash_bytes, uint32_t* ram_bytes);
void port_reset(void);                             // system reset; does not return

#ifdef __cplusplus
}
#endif

// Set by the build from the board description (boards/<board>/board.toml).
#ifndef EMBBERT_BOARD
#error "EMBBERT_BOARD is not defined: build through PlatformIO (firmware/platformio.ini) or `embbert build`"
#endif
// Elapsed = (counter delta) * NUM / DEN, in EMBBERT_COUNTER_UNIT: "cycles" on
// hardware (DWT CYCCNT, CCOUNT), "instructions" on QEMU (-icount + SysTick).
#ifndef EMBBERT_COUNTER_UNIT
#error "EMBBERT_COUNTER_UNIT is not defined (\"cycles\" or \"instructions\")"
#endif
#ifndef EMBBERT_COUNTER_NUM
#define EMBBERT_COUNTER_NUM 1
#endif
#ifndef EMBBERT_COUNTER_DEN
#define EMBBERT_COUNTER_DEN 1
#endif
