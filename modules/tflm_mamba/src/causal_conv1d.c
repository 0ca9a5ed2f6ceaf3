/* Causal depthwise conv1d, one step with streaming state (causal_conv1d.h): float, and the int8 reference. */
#include "tflm_mamba/causal_conv1d.h"

#include <stddef.h>

#include "tflm_mamba/fixed_point.h"

void tm_causal_conv1d_f32_step(const float *w, const float *b, int32_t d, int32_t K, float *state,
			       const float *u, float *x)
{
	/* x_t[c] = b[c] + sum_k w[c][k] u_{t-K+1+k}[c]; then the window slides by one */
	for (int32_t c = 0; c < d; c++) {
		const float *wc = w + (size_t)c * (size_t)K;
		float *sc = state + (size_t)c * (size_t)(K - 1);
		float acc = b[c] + wc[K - 1] * u[c];
		for (int32_t k = 0; k < K - 1; k++) {
			acc += wc[k] * sc[k];
		}
		for (int32_t k = 0; k + 1 < K - 1; k++) {
			sc[k] = sc[k + 1];
		}
		if (K > 1) {
			sc[K - 2] = u[c];
		}
		x[c] = acc;
	}
}

#if defined(TFLM_MAMBA_REFERENCE)
/* The int8 step, the reference (built with -DTFLM_MAMBA_REFERENCE; otherwise causal_conv1d_q8_opt.c). */
void tm_causal_conv1d_q8_step(const tm_conv1d_q8 *p, int32_t d, int32_t K, int8_t *state, const int8_t *u,
			      int8_t *x)
{
	/* acc = bias[c] + sum_k w[c][k] q_u(t-K+1+k);  x = out_zp + rq32(acc); then the window slides */
	for (int32_t c = 0; c < d; c++) {
		const int8_t *wc = p->w + (size_t)c * (size_t)K;
		int8_t *sc = state + (size_t)c * (size_t)(K - 1);
		int32_t acc = p->bias[c] + wc[K - 1] * u[c];
		for (int32_t k = 0; k < K - 1; k++) {
			acc += wc[k] * sc[k];
		}
		for (int32_t k = 0; k + 1 < K - 1; k++) {
			sc[k] = sc[k + 1];
		}
		if (K > 1) {
			sc[K - 2] = u[c];
		}
		x[c] = tm_rq8(acc, p->mult[c], p->shift[c], p->out_zp);
	}
}
#endif
