// TFLite-Micro's log sink, for libraries that leave it to the application
// (the STM32 build skips Arduino_TensorFlowLite's Nano-33-specific
// system_setup.cpp, which defines it). The firmware strips TFLite-Micro's
// error strings (TF_LITE_STRIP_ERROR_STRINGS), and nothing but frames may
// reach the serial line, so it discards. Weak: a library's own DebugLog wins.
// Declared here without TFLite-Micro's header: its signature changed between
// releases (const char*; then const char*, va_list), and C linkage lets one
// definition that ignores its arguments serve both.
extern "C" __attribute__((weak)) void DebugLog(const char*, ...) {}
