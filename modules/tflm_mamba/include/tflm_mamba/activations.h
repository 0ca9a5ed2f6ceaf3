/*
 * Float element-wise functions of the block, as PyTorch defines them. The int8 path uses
 * tables built from the same definitions (fixed_point.h).
 */
#ifndef TFLM_MAMBA_ACTIVATIONS_H_
#define TFLM_MAMBA_ACTIVATIONS_H_

#include <math.h>

#include "tflm_mamba/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* silu(x) = x * sigmoid(x); hard_swish(x) = x * relu6(x + 3) / 6 */
static inline float tm_act_f32(tm_activation a, float x)
{
	if (a == TM_ACT_HARD_SWISH) {
		const float r = x + 3.0f < 0.0f ? 0.0f : (x + 3.0f > 6.0f ? 6.0f : x + 3.0f);
		return x * r / 6.0f;
	}
	return x / (1.0f + expf(-x));
}

/* relu(x) = max(x, 0); softplus(x) = log(1 + exp(x)) (x above 20: x, as torch) */
static inline float tm_dt_act_f32(tm_dt_activation a, float x)
{
	if (a == TM_DT_SOFTPLUS) {
		return x > 20.0f ? x : log1pf(expf(x));
	}
	return x > 0.0f ? x : 0.0f;
}

/* Abar from dt*A <= 0: exp(dt*A) or 2*sigmoid(dt*A) */
static inline float tm_decay_f32(tm_decay d, float dt_a)
{
	if (d == TM_DECAY_SIGMOID) {
		return 2.0f / (1.0f + expf(-dt_a));
	}
	return expf(dt_a);
}

#ifdef __cplusplus
}
#endif

#endif /* TFLM_MAMBA_ACTIVATIONS_H_ */
