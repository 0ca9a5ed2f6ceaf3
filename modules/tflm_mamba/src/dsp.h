/*
 * The Cortex-M DSP-extension instructions the optimized int8 kernels use (*_q8_opt.c), as small
 * inline functions; only where the compiler says the extension is there (__ARM_FEATURE_DSP:
 * Cortex-M4/M7/M33). Private to src/.
 */
#ifndef TFLM_MAMBA_SRC_DSP_H_
#define TFLM_MAMBA_SRC_DSP_H_

#include <stdint.h>
#include <string.h>

#include "tflm_mamba/fixed_point.h"

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TM_DSP 1

/* four int8 from any address (ARMv7-M loads words unaligned) */
TM_INLINE uint32_t tm_load4(const int8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* SXTB16: the int8 at bytes 0 and 2 of v as two int16 */
TM_INLINE uint32_t tm_sxtb16(uint32_t v)
{
	uint32_t r;
	__asm__("sxtb16 %0, %1" : "=r"(r) : "r"(v));
	return r;
}

/* SXTB16 of v rotated by 8: the int8 at bytes 1 and 3 as two int16 (one instruction) */
TM_INLINE uint32_t tm_sxtb16_ror8(uint32_t v)
{
	uint32_t r;
	__asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
	return r;
}

/* SMLAD: acc + a.lo * b.lo + a.hi * b.hi (int16 halves) */
TM_INLINE int32_t tm_smlad(uint32_t a, uint32_t b, int32_t acc)
{
	int32_t r;
	__asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
	return r;
}

/* two int16 from any address: x[0] in the low half */
TM_INLINE uint32_t tm_load2x16(const int16_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* PKHBT: the low half of lo, the low half of hi as the high half */
TM_INLINE uint32_t tm_pack_lo16(uint32_t lo, uint32_t hi)
{
	uint32_t r;
	__asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(lo), "r"(hi));
	return r;
}

/* PKHTB: the high half of lo as the low half, the high half of hi */
TM_INLINE uint32_t tm_pack_hi16(uint32_t lo, uint32_t hi)
{
	uint32_t r;
	__asm__("pkhtb %0, %1, %2, asr #16" : "=r"(r) : "r"(hi), "r"(lo));
	return r;
}

/* acc + the dot product of the four int8 in each of a and b */
TM_INLINE int32_t tm_dot4(uint32_t a, uint32_t b, int32_t acc)
{
	return tm_smlad(tm_sxtb16_ror8(a), tm_sxtb16_ror8(b), tm_smlad(tm_sxtb16(a), tm_sxtb16(b), acc));
}
#else
#define TM_DSP 0
#endif

#endif /* TFLM_MAMBA_SRC_DSP_H_ */
