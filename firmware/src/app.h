// The portable application: a board port calls app_setup() once and
// app_poll() forever (from main(), or Arduino's setup() and loop()).
#pragma once

#define EMBBERT_FIRMWARE_VERSION "0.1.0"

void app_setup(void);
void app_poll(void);
