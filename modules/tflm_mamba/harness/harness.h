/* The bare-metal harness's services: semihosting output and exit, an instruction clock. */
#ifndef TFLM_MAMBA_HARNESS_H_
#define TFLM_MAMBA_HARNESS_H_

#include <stdint.h>

void h_puts(const char *s);
void h_exit(int code);
/* SysTick on the processor clock; with qemu -icount the clock counts instructions (see main.c). */
void h_clock_start(void);
uint64_t h_clock(void);

#endif /* TFLM_MAMBA_HARNESS_H_ */
