/*
 * Dense layers (linear.h): float, and the int8 reference. The int8 reference is the definition
 * the tests hold every variant to; it is built with -DTFLM_MAMBA_REFERENCE, otherwise
 * linear_q8_opt.c provides tm_linear_q8_run.
 */
#include "tflm_mamba/linear.h"

#include <stddef.h>

#include "tflm_mamba/fixed_point.h"

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

#if defined(TFLM_MAMBA_REFERENCE)
void tm_linear_q8_run(const tm_linear_q8 *p, const int8_t *x, int32_t in, int32_t out, int8_t *y)
{
	/* acc = bias + W q_x;  y = out_zp + rq32(acc, mult, shift) */
	for (int32_t o = 0; o < out; o++) {
		const int8_t *row = p->W + (size_t)o * (size_t)in;
		int32_t acc = p->bias[o];
		for (int32_t i = 0; i < in; i++) {
			acc += (int32_t)row[i] * x[i];
		}
		y[o] = tm_rq8(acc, p->mult[o], p->shift[o], p->out_zp);
	}
}

void tm_linear_q16x8_run(const tm_linear_q8 *p, const int16_t *x, int32_t in, int32_t out, int8_t *y)
{
	/* acc = bias + W q_x;  y = out_zp + rq32(acc, mult, shift) */
	for (int32_t o = 0; o < out; o++) {
		const int8_t *row = p->W + (size_t)o * (size_t)in;
		int32_t acc = p->bias[o];
		for (int32_t i = 0; i < in; i++) {
			acc += (int32_t)row[i] * x[i];
		}
		y[o] = tm_rq8(acc, p->mult[o], p->shift[o], p->out_zp);
	}
}
#endif
