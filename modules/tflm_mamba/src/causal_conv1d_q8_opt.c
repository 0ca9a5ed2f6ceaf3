/*
 * The int8 causal conv1d step, optimized: the integers of the reference (causal_conv1d.c, built
 * with -DTFLM_MAMBA_REFERENCE). For Mamba's width K = 4 the window of each channel is read and
 * slid in registers, straight-line:
 *
 *     acc = bias[c] + w[c][0] s0 + w[c][1] s1 + w[c][2] s2 + w[c][3] u[c]    (s: the state)
 *     x[c] = clamp(out_zp + rq32(acc, mult[c], shift[c]));   state[c] <- (s1, s2, u[c])
 *
 * and the fields of p are read once (stores to int8 may alias them). With the DSP extension the
 * window is one word and the four taps two SMLADs (conv4_dsp). Other widths: the reference loop.
 */
#include "tflm_mamba/causal_conv1d.h"

#include <stddef.h>
#include <string.h>

#include "dsp.h"
#include "tflm_mamba/fixed_point.h"

#if !defined(TFLM_MAMBA_REFERENCE)

#if TM_DSP
/*
 * K = 4, channels [0, d - 1) (the last one reads past its state: the caller does it alone):
 * the window (s0, s1, s2, u) is one word, the state's three bytes and the next channel's first
 * replaced by u; the four taps are two SMLADs; the state keeps bytes 1..3 of the window.
 */
static void conv4_dsp(const int8_t *w, const int32_t *bias, const int32_t *mult, const int32_t *shift, int32_t zp,
		      int32_t d, int8_t *state, const int8_t *u, int8_t *x)
{
	for (int32_t c = 0; c < d; c++, w += 4, state += 3) {
		const int8_t uc = u[c];
		const uint32_t wv = tm_load4(w);
		uint32_t win = tm_load4(state); /* s0 s1 s2 (next channel's s0) */
		win = (win & 0x00FFFFFFu) | ((uint32_t)(uint8_t)uc << 24);
		const int32_t acc = tm_dot4(wv, win, bias[c]);
		const uint16_t s12 = (uint16_t)(win >> 8);
		memcpy(state, &s12, 2); /* state <- (s1, s2, u) */
		state[2] = uc;
		x[c] = tm_rq8(acc, mult[c], shift[c], zp);
	}
}
#endif

void tm_causal_conv1d_q8_step(const tm_conv1d_q8 *p, int32_t d, int32_t K, int8_t *state, const int8_t *u,
			      int8_t *x)
{
	const int8_t *w = p->w;
	const int32_t *bias = p->bias, *mult = p->mult, *shift = p->shift;
	const int32_t zp = p->out_zp;
	if (K == 4) {
		int32_t c = 0;
#if TM_DSP
		if (d > 1) {
			conv4_dsp(w, bias, mult, shift, zp, d - 1, state, u, x);
			c = d - 1;
			w += 4 * c;
			state += 3 * c;
		}
#endif
		for (; c < d; c++, w += 4, state += 3) {
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
