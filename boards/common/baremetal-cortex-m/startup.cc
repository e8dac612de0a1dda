// Bare-metal start for Cortex-M (the QEMU boards, and the real STM32F405 the
// qemu-stm32f405 image also runs on): vector table, copy .data, zero .bss,
// enable the FPU, run constructors, call main(). Symbols come from sections.ld,
// which each board's linker script includes after its MEMORY.
#include <stdint.h>

#include "port.h"

extern "C" {
extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__, __stack_top__;
void __libc_init_array(void);
int main(void);
void SysTick_Handler(void);  // the port's counter
void port_irq(uint32_t irq);  // the port's device interrupts (IRQ number from 0)

// newlib-nano's __libc_init_array calls these; nothing to do here.
void _init(void) {}
void _fini(void) {}

extern void* const g_vectors[];

[[noreturn]] void Reset_Handler(void) {
  // Our vector table, wherever the boot came from (a ROM bootloader jumping
  // here, e.g. the STM32's DFU, leaves VTOR at its own table).
  *reinterpret_cast<volatile uint32_t*>(0xE000ED08) = reinterpret_cast<uint32_t>(g_vectors);
  for (uint32_t *src = &__data_load__, *dst = &__data_start__; dst < &__data_end__;) *dst++ = *src++;
  for (uint32_t* dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
#if defined(__ARM_FP)
  volatile uint32_t* const cpacr = reinterpret_cast<uint32_t*>(0xE000ED88);
  *cpacr |= 0xFu << 20;  // CP10 and CP11: full access to the FPU
  __asm volatile("dsb\n isb");
#endif
  __libc_init_array();
  main();
  for (;;) {
  }
}

// A fault must not leave the board hung: restart it (the host sees a new
// ready line). Bad input never gets here; a bug might.
[[noreturn]] void Fault_Handler(void) { port_reset(); for (;;) {} }

// Every device interrupt lands here; the port finds out which from IPSR.
void Irq_Handler(void) {
  uint32_t ipsr;
  __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
  port_irq((ipsr & 0x1FF) - 16);
}

#define EMBBERT_IRQ8 reinterpret_cast<void*>(Irq_Handler), reinterpret_cast<void*>(Irq_Handler), \
    reinterpret_cast<void*>(Irq_Handler), reinterpret_cast<void*>(Irq_Handler), reinterpret_cast<void*>(Irq_Handler), \
    reinterpret_cast<void*>(Irq_Handler), reinterpret_cast<void*>(Irq_Handler), reinterpret_cast<void*>(Irq_Handler)

// 96 device interrupts: the STM32F4 family's 82..91 (USART1 is IRQ 37); mps2 has 32.
__attribute__((section(".isr_vector"), used)) void* const g_vectors[16 + 96] = {
    &__stack_top__,
    reinterpret_cast<void*>(Reset_Handler),
    reinterpret_cast<void*>(Fault_Handler),  // NMI
    reinterpret_cast<void*>(Fault_Handler),  // HardFault
    reinterpret_cast<void*>(Fault_Handler),  // MemManage
    reinterpret_cast<void*>(Fault_Handler),  // BusFault
    reinterpret_cast<void*>(Fault_Handler),  // UsageFault
    nullptr, nullptr, nullptr, nullptr,
    reinterpret_cast<void*>(Fault_Handler),  // SVCall
    reinterpret_cast<void*>(Fault_Handler),  // DebugMonitor
    nullptr,
    reinterpret_cast<void*>(Fault_Handler),  // PendSV
    reinterpret_cast<void*>(SysTick_Handler),
    EMBBERT_IRQ8, EMBBERT_IRQ8, EMBBERT_IRQ8, EMBBERT_IRQ8, EMBBERT_IRQ8, EMBBERT_IRQ8,  // IRQ 0..47
    EMBBERT_IRQ8, EMBBERT_IRQ8, EMBBERT_IRQ8, EMBBERT_IRQ8, EMBBERT_IRQ8, EMBBERT_IRQ8,  // IRQ 48..95
};
}
