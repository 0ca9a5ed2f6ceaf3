/*
 * The int8 causal conv1d step, optimized: the integers of the reference (causal_conv1d.c, built
 * with -DTFLM_MAMBA_REFERENCE). For Mamba's width K = 4 the window of each channel is read and
 * slid in registers, straight-line:
 *
 *     acc = bias[c] + w[c][0] s0 + w[c][1] s1 + w[c][2] s2 + w[c][3] u[c]    (s: the state)
 *     x[c] = clamp(out_zp + rq32(acc, mult[c], shift[c]));   state[c] <- (s1, s2, u[c])
 *
 * and the fields of p are read once (stores to int8 may alias them). Other widths: the reference loop.
 */
#include "tflm_mamba/causal_conv1d.h"

#include <stddef.h>

#include "tflm_mamba/fixed_point.h"

#if !defined(TFLM_MAMBA_REFERENCE)

void tm_causal_conv1d_q8_step(const tm_conv1d_q8 *p, int32_t d, int32_t K, int8_t *state, const int8_t *u,
			      int8_t *x)
{
	const int8_t *w = p->w;
	const int32_t *bias = p->bias, *mult = p->mult, *shift = p->shift;
	const int32_t zp = p->out_zp;
	if (K == 4) {
		for (int32_t c = 0; c < d; c++, w += 4, state += 3) {
			const int32_t s0 = state[0], s1 = state[1], s2 = state[2], uc = u[c];
			const int32_t acc = bias[c] + w[0] * s0 + w[1] * s1 + w[2] * s2 + w[3] * uc;
			state[0] = (int8_t)s1;
			state[1] = (int8_t)s2;
			state[2] = (int8_t)uc;
			x[c] = tm_rq8(acc, mult[c], shift[c], zp);
		}
		return;
	}
	for (int32_t c = 0; c < d; c++, w += K, state += K - 1) {
		int32_t acc = bias[c] + w[K - 1] * u[c];
		for (int32_t k = 0; k < K - 1; k++) {
			acc += w[k] * state[k];
		}
		for (int32_t k = 0; k + 1 < K - 1; k++) {
			state[k] = state[k + 1];
		}
		if (K > 1) {
			state[K - 2] = u[c];
		}
		x[c] = tm_rq8(acc, mult[c], shift[c], zp);
	}
}

#endif /* !TFLM_MAMBA_REFERENCE */
