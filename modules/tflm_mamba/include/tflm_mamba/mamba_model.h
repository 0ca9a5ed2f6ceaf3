/*
 * The whole keyword spotter (tools/mamba_kws/model.py MambaKWS), float32 and int8:
 *
 *     step t:  x = stem(frame_stack stacked feature frames)     Linear(frame_stack*channels -> d_model)
 *              x = block_i(x) for each layer                     (mamba_block.h, residual inside)
 *              hidden_t = norm_f(x)
 *     logits = classifier(mean_t hidden_t)   (pooling "mean")  or classifier(hidden_last)  ("last")
 *
 * `*_step` runs one step and adds hidden_t to the pooled sum in the state; `*_logits` reads the
 * classifier over what the state has pooled; `*_run` = reset, L steps, logits.
 *
 * Streaming (tools/mamba_kws/stream.py "stream_mean"): with pool_window = W > 0 the state keeps
 * the last W hidden_t in a ring and the mean is over those only (the Mamba state itself is
 * carried forever), so `*_logits` after every step gives one posterior vector per hop. With
 * pool_window = 0 the mean is over every step since the reset (W = 49 and 0 agree on the first
 * 49 steps).
 *
 * int8: the features are quantised by the caller (tm_quantize_f32 with the model's in_scale,
 * in_zp); the final affine norm (batchnorm) is folded into the classifier, which is exact
 * because the mean commutes with an affine map, so the int8 "hidden" is the residual stream
 * before that affine map; a final rmsnorm runs per step (norm_f) and "hidden" is its output.
 * Logits are int8: real = logit_scale * (q - logit_zp).
 */
#ifndef TFLM_MAMBA_MAMBA_MODEL_H_
#define TFLM_MAMBA_MAMBA_MODEL_H_

#include <stddef.h>
#include <stdint.h>

#include "tflm_mamba/config.h"
#include "tflm_mamba/mamba_block.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
	TM_POOL_MEAN = 0,
	TM_POOL_LAST = 1,
} tm_pooling;

typedef struct {
	tm_block_config block;
	int32_t n_layers;    /* <= TM_MAX_LAYERS */
	int32_t channels;    /* feature channels per 10 ms frame (40) */
	int32_t frame_stack; /* frames per step (2) */
	int32_t n_classes;
	tm_pooling pooling;
	int32_t pool_window; /* mean over the last pool_window steps (ring in the state); 0: since reset */
} tm_model_config;

/* ---------------------------------------------------------------- float32 */

typedef struct {
	const float *stem_w; /* [d_model][frame_stack*channels] */
	const float *stem_b; /* [d_model] */
	const tm_block_f32_weights *blocks; /* [n_layers] */
	const float *norm_f_weight;         /* [d_model], as the blocks' norm (block.norm) */
	const float *norm_f_bias;           /* [d_model], TM_NORM_AFFINE */
	float norm_f_eps;
	const float *cls_w; /* [n_classes][d_model] */
	const float *cls_b; /* [n_classes] */
} tm_model_f32_weights;

typedef struct {
	tm_block_f32_state blocks[TM_MAX_LAYERS];
	float *pool;  /* [d_model]: sum of hidden_t (mean) or the last hidden_t (last) */
	int32_t count; /* steps pooled since reset */
	float *ring;   /* [pool_window][d_model] (mean pooling with pool_window > 0) */
} tm_model_f32_state;

size_t tm_model_f32_state_bytes(const tm_model_config *cfg);
void tm_model_f32_state_bind(const tm_model_config *cfg, tm_model_f32_state *state, void *mem);
void tm_model_f32_reset(const tm_model_config *cfg, tm_model_f32_state *state);
size_t tm_model_f32_scratch_bytes(const tm_model_config *cfg);

/* frames: [frame_stack*channels]; hidden (may be NULL): [d_model]. */
void tm_model_f32_step(const tm_model_config *cfg, const tm_model_f32_weights *w, tm_model_f32_state *state,
		       const float *frames, float *hidden, void *scratch);
/* logits: [n_classes]. */
void tm_model_f32_logits(const tm_model_config *cfg, const tm_model_f32_weights *w,
			 const tm_model_f32_state *state, float *logits, void *scratch);
/* feats: [L*frame_stack][channels] (L steps); resets the state first. */
void tm_model_f32_run(const tm_model_config *cfg, const tm_model_f32_weights *w, tm_model_f32_state *state,
		      const float *feats, int32_t L, float *logits, void *scratch);

/* ---------------------------------------------------------------- int8 */

typedef struct {
	float in_scale; /* features: real = in_scale * (q - in_zp) */
	int32_t in_zp;
	tm_linear_q8 stem;                  /* -> residual stream zero point = blocks[0].in_zp */
	const tm_block_q8_weights *blocks;  /* [n_layers]; block i+1's in_zp = block i's out_zp */
	/* pooled[c] = clamp(pool_zp + rq32(round(256 * sum_t (q_t[c] - z) / count), pool_mult, pool_shift)) */
	int32_t pool_mult, pool_shift, pool_zp;
	tm_linear_q8 cls; /* d_model -> n_classes, the final affine norm folded in */
	float logit_scale;
	int32_t logit_zp;
	tm_rmsnorm_q8 norm_f; /* block.norm == TM_NORM_RMSNORM only: the final norm, per step */
} tm_model_q8_weights;

typedef struct {
	tm_block_q8_state blocks[TM_MAX_LAYERS];
	int32_t *pool; /* [d_model]: sum of (q - z) over steps, saturated (mean), or the last (q - z) (last) */
	int32_t count;
	int8_t *ring; /* [pool_window][d_model] hidden (mean pooling with pool_window > 0) */
} tm_model_q8_state;

size_t tm_model_q8_state_bytes(const tm_model_config *cfg);
void tm_model_q8_state_bind(const tm_model_config *cfg, const tm_model_q8_weights *w, tm_model_q8_state *state,
			    void *mem);
void tm_model_q8_reset(const tm_model_config *cfg, const tm_model_q8_weights *w, tm_model_q8_state *state);
size_t tm_model_q8_scratch_bytes(const tm_model_config *cfg);

void tm_model_q8_step(const tm_model_config *cfg, const tm_model_q8_weights *w, tm_model_q8_state *state,
		      const int8_t *frames, int8_t *hidden, void *scratch);
void tm_model_q8_logits(const tm_model_config *cfg, const tm_model_q8_weights *w,
			const tm_model_q8_state *state, int8_t *logits, void *scratch);
void tm_model_q8_run(const tm_model_config *cfg, const tm_model_q8_weights *w, tm_model_q8_state *state,
		     const int8_t *feats, int32_t L, int8_t *logits, void *scratch);

/* q[i] = clamp(round(x[i] / scale) + zp) */
void tm_quantize_f32(const float *x, int32_t n, float scale, int32_t zp, int8_t *q);

#ifdef __cplusplus
}
#endif

#endif /* TFLM_MAMBA_MAMBA_MODEL_H_ */
