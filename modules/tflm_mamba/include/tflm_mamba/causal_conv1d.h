/*
 * Causal depthwise conv1d, one time step, with its own streaming state (Mamba's conv1d):
 *
 *     x_t[d] = b[d] + sum_{k=0}^{K-1} w[d][k] * u_{t-K+1+k}[d]        (u_{<0} = 0)
 *
 * state[d][0..K-2] holds u_{t-K+1} .. u_{t-1}; the step shifts u_t in. w[d][K-1] multiplies
 * the newest input (PyTorch's conv1d.weight[d, 0, :] as it is).
 */
#ifndef TFLM_MAMBA_CAUSAL_CONV1D_H_
#define TFLM_MAMBA_CAUSAL_CONV1D_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* state: [d][K-1] floats, zero at reset. */
void tm_causal_conv1d_f32_step(const float *w, const float *b, int32_t d, int32_t K, float *state,
			       const float *u, float *x);

/*
 * int8: acc[d] = bias[d] + sum_k w[d][k] * q_u (raw int8; the input zero point is folded in
 * bias), x[d] = clamp(out_zp + rq32(acc, mult[d], shift[d])). state: [d][K-1] int8, reset to
 * the input zero point (real 0).
 */
typedef struct {
	const int8_t *w;      /* [d][K] */
	const int32_t *bias;  /* [d] */
	const int32_t *mult;  /* [d] */
	const int32_t *shift; /* [d] */
	int32_t out_zp;
} tm_conv1d_q8;

void tm_causal_conv1d_q8_step(const tm_conv1d_q8 *p, int32_t d, int32_t K, int8_t *state, const int8_t *u,
			      int8_t *x);

#ifdef __cplusplus
}
#endif

#endif /* TFLM_MAMBA_CAUSAL_CONV1D_H_ */
