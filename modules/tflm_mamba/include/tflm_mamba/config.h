/*
 * Shapes and switches of one Mamba block, mirroring the model YAML in models/ (tools/mamba_kws/config.py).
 * The generated firmware headers fill these from the YAML; nothing restates them by hand.
 */
#ifndef TFLM_MAMBA_CONFIG_H_
#define TFLM_MAMBA_CONFIG_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Upper bound on n_layers in a tm_model_config (the state struct holds one entry per layer). */
#define TM_MAX_LAYERS 8

typedef enum {
	TM_DECAY_EXP = 0,     /* Abar = exp(dt*A), the original */
	TM_DECAY_SIGMOID = 1, /* Abar = 2*sigmoid(dt*A) */
} tm_decay;

typedef enum {
	TM_DT_RELU = 0,
	TM_DT_SOFTPLUS = 1,
} tm_dt_activation;

typedef enum {
	TM_ACT_SILU = 0,
	TM_ACT_HARD_SWISH = 1,
} tm_activation;

typedef enum {
	TM_NORM_NONE = 0,
	TM_NORM_RMSNORM = 1,
	TM_NORM_AFFINE = 2, /* batchnorm at inference: y = weight * x + bias per channel */
} tm_norm;

typedef struct {
	int32_t d_model;
	int32_t d_inner; /* expand * d_model */
	int32_t d_state;
	int32_t d_conv;
	int32_t dt_rank;
	tm_decay decay;
	tm_dt_activation dt_activation;
	tm_activation activation;
	tm_norm norm;
} tm_block_config;

#ifdef __cplusplus
}
#endif

#endif /* TFLM_MAMBA_CONFIG_H_ */
