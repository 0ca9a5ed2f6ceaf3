/* Dense layers, float and int8 (linear.h). */
#include "tflm_mamba/linear.h"

#include <stddef.h>
#include <string.h>

#include "tflm_mamba/fixed_point.h"

#if defined(__ARM_FEATURE_SIMD32) && __ARM_FEATURE_SIMD32
#include <arm_acle.h>
#define TM_LINEAR_SIMD 1
/* SXTB16 of the word rotated by 8: the int8 at bytes 1 and 3 as two int16 (one instruction) */
TM_INLINE int16x2_t sxtb16_ror8(uint32_t v)
{
	int16x2_t r;
	__asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
	return r;
}
#else
#define TM_LINEAR_SIMD 0
#endif

void tm_linear_f32(const float *W, const float *b, const float *x, int32_t in, int32_t out, float *y)
{
	/* y = W x + b */
	for (int32_t o = 0; o < out; o++) {
		const float *row = W + (size_t)o * (size_t)in;
		float acc = 0.0f;
		for (int32_t i = 0; i < in; i++) {
			acc += row[i] * x[i];
		}
		y[o] = b != 0 ? acc + b[o] : acc;
	}
}

/*
 * acc0 += W0 . x and acc1 += W1 . x over `in` int8 values (two rows share the loads of x).
 * With the DSP extension (Cortex-M4/M7/M33): four int8 at a time, sign-extended in pairs by
 * SXTB16 and multiplied-accumulated by SMLAD; the integer result is the same.
 */
static inline void dot2(const int8_t *w0, const int8_t *w1, const int8_t *x, int32_t in, int32_t *acc0,
			int32_t *acc1)
{
	int32_t a0 = *acc0, a1 = *acc1;
	int32_t i = 0;
#if TM_LINEAR_SIMD
	for (; i + 4 <= in; i += 4) {
		uint32_t xv, v0, v1;
		memcpy(&xv, x + i, 4);
		memcpy(&v0, w0 + i, 4);
		memcpy(&v1, w1 + i, 4);
		const int16x2_t x02 = __sxtb16((int8x4_t)xv);
		const int16x2_t x13 = sxtb16_ror8(xv);
		a0 = __smlad(__sxtb16((int8x4_t)v0), x02, a0);
		a0 = __smlad(sxtb16_ror8(v0), x13, a0);
		a1 = __smlad(__sxtb16((int8x4_t)v1), x02, a1);
		a1 = __smlad(sxtb16_ror8(v1), x13, a1);
	}
#endif
	for (; i < in; i++) {
		const int32_t xi = x[i];
		a0 += w0[i] * xi;
		a1 += w1[i] * xi;
	}
	*acc0 = a0;
	*acc1 = a1;
}

void tm_linear_q8_run(const tm_linear_q8 *p, const int8_t *x, int32_t in, int32_t out, int8_t *y)
{
	/* acc = bias + W q_x;  y = out_zp + rq32(acc, mult, shift) */
	int32_t o = 0;
	for (; o + 2 <= out; o += 2) {
		const int8_t *row = p->W + (size_t)o * (size_t)in;
		int32_t acc0 = p->bias[o], acc1 = p->bias[o + 1];
		dot2(row, row + in, x, in, &acc0, &acc1);
		y[o] = tm_rq8(acc0, p->mult[o], p->shift[o], p->out_zp);
		y[o + 1] = tm_rq8(acc1, p->mult[o + 1], p->shift[o + 1], p->out_zp);
	}
	if (o < out) {
		const int8_t *row = p->W + (size_t)o * (size_t)in;
		int32_t acc0 = p->bias[o], unused = 0;
		dot2(row, row, x, in, &acc0, &unused);
		y[o] = tm_rq8(acc0, p->mult[o], p->shift[o], p->out_zp);
	}
}
