// Port for real boards on an Arduino core (STM32duino, Arduino-ESP32): the
// board's USB serial (ST-Link virtual COM port, USB-UART bridge), polled.
// The counter and reset come from the board's own folder (DWT, CCOUNT).
#include <Arduino.h>

#include "app.h"
#include "port.h"

#ifndef EMBBERT_BAUDRATE
#define EMBBERT_BAUDRATE 115200
#endif

extern "C" void port_counter_start(void);

extern "C" void port_init(void) {
  Serial.begin(EMBBERT_BAUDRATE);
  port_counter_start();
}

extern "C" int port_getc(void) { return Serial.available() > 0 ? Serial.read() : -1; }

extern "C" void port_idle(void) {}  // the cores' Serial is interrupt-driven already

extern "C" void port_write(const uint8_t* data, size_t len) { Serial.write(data, len); }

// The cores' linker symbols differ; the host reads the map instead.
extern "C" bool port_memory(uint32_t*, uint32_t*) { return false; }

void setup() { app_setup(); }

void loop() { app_poll(); }
