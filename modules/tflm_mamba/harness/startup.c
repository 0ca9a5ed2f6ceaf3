/*
 * Bare-metal start-up for the QEMU Cortex-M3/M4 machines: vector table, reset (copy .data,
 * clear .bss, enable the FPU on an M4F), SysTick as an instruction clock, semihosting output.
 */
#include <stdint.h>

#include "harness.h"

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
int main(void);

static volatile uint32_t systick_wraps;

static void semihost(uint32_t op, const void *arg)
{
	register uint32_t r0 __asm__("r0") = op;
	register const void *r1 __asm__("r1") = arg;
	__asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
}

void h_puts(const char *s)
{
	semihost(0x04u, s); /* SYS_WRITE0 */
}

void h_exit(int code)
{
	/* SYS_EXIT: ADP_Stopped_ApplicationExit (qemu exits 0) or RunTimeErrorUnknown (exits 1) */
	semihost(0x18u, (const void *)(uintptr_t)(code == 0 ? 0x20026u : 0x20023u));
	for (;;) {
	}
}

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)

void h_clock_start(void)
{
	SYST_RVR = 0xFFFFFFu;
	SYST_CVR = 0u;
	SYST_CSR = 0x7u; /* enable, interrupt on wrap, processor clock */
}

uint64_t h_clock(void)
{
	uint32_t w, v;
	do {
		w = systick_wraps;
		v = SYST_CVR;
	} while (w != systick_wraps);
	return ((uint64_t)w << 24) + (0xFFFFFFu - v);
}

static void systick_handler(void)
{
	systick_wraps++;
}

static void fault_handler(void)
{
	h_puts("FAULT\n");
	h_exit(1);
}

void reset_handler(void)
{
	uint32_t *src = &_sidata;
	for (uint32_t *dst = &_sdata; dst < &_edata;) {
		*dst++ = *src++;
	}
	for (uint32_t *dst = &_sbss; dst < &_ebss;) {
		*dst++ = 0u;
	}
#if defined(__ARM_FP)
	*(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* CPACR: CP10, CP11 full access */
	__asm__ volatile("dsb\n isb" ::: "memory");
#endif
	h_exit(main());
}

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
	(void (*)(void))(uintptr_t)&_estack,
	reset_handler,
	fault_handler, /* NMI */
	fault_handler, /* HardFault */
	fault_handler, /* MemManage */
	fault_handler, /* BusFault */
	fault_handler, /* UsageFault */
	0, 0, 0, 0,
	fault_handler, /* SVC */
	fault_handler, /* DebugMon */
	0,
	fault_handler, /* PendSV */
	systick_handler,
};
