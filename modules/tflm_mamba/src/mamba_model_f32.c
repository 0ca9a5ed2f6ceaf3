/* The whole keyword spotter, float32 reference (mamba_model.h). */
#include <stddef.h>

#include "tflm_mamba/mamba_model.h"
#include "tflm_mamba/norm.h"

static int32_t ring_steps(const tm_model_config *cfg)
{
	return (cfg->pooling == TM_POOL_MEAN && cfg->pool_window > 0) ? cfg->pool_window : 0;
}

size_t tm_model_f32_state_bytes(const tm_model_config *cfg)
{
	return (size_t)cfg->n_layers * tm_block_f32_state_bytes(&cfg->block) +
	       sizeof(float) * (size_t)cfg->block.d_model * (size_t)(1 + ring_steps(cfg));
}

void tm_model_f32_state_bind(const tm_model_config *cfg, tm_model_f32_state *state, void *mem)
{
	char *p = (char *)mem;
	for (int32_t i = 0; i < cfg->n_layers; i++) {
		tm_block_f32_state_bind(&cfg->block, &state->blocks[i], p);
		p += tm_block_f32_state_bytes(&cfg->block);
	}
	state->pool = (float *)p;
	state->ring = state->pool + cfg->block.d_model;
	tm_model_f32_reset(cfg, state);
}

void tm_model_f32_reset(const tm_model_config *cfg, tm_model_f32_state *state)
{
	for (int32_t i = 0; i < cfg->n_layers; i++) {
		tm_block_f32_reset(&cfg->block, &state->blocks[i]);
	}
	for (int32_t i = 0; i < cfg->block.d_model; i++) {
		state->pool[i] = 0.0f;
	}
	for (int32_t i = 0; i < ring_steps(cfg) * cfg->block.d_model; i++) {
		state->ring[i] = 0.0f;
	}
	state->count = 0;
}

/* Scratch: x[d_model] hid[d_model], then the block's scratch. */
size_t tm_model_f32_scratch_bytes(const tm_model_config *cfg)
{
	return sizeof(float) * 2 * (size_t)cfg->block.d_model + tm_block_f32_scratch_bytes(&cfg->block);
}

void tm_model_f32_step(const tm_model_config *cfg, const tm_model_f32_weights *w, tm_model_f32_state *state,
		       const float *frames, float *hidden, void *scratch)
{
	const int32_t dm = cfg->block.d_model;
	float *x = (float *)scratch;
	float *hid = x + dm;
	void *block_scratch = hid + dm;

	/* x = stem(frames);  x = x + mixer(norm(x)) per layer;  hidden = norm_f(x) */
	tm_linear_f32(w->stem_w, w->stem_b, frames, cfg->frame_stack * cfg->channels, dm, x);
	for (int32_t i = 0; i < cfg->n_layers; i++) {
		tm_block_f32_step(&cfg->block, &w->blocks[i], &state->blocks[i], x, x, block_scratch);
	}
	tm_norm_f32(cfg->block.norm, w->norm_f_weight, w->norm_f_bias, w->norm_f_eps, x, dm, hid);
	const int32_t W = ring_steps(cfg);
	if (W > 0) {
		/* the ring keeps the last W hidden; the logits sum it (no running sum to drift) */
		float *slot = state->ring + (size_t)(state->count % W) * (size_t)dm;
		for (int32_t i = 0; i < dm; i++) {
			slot[i] = hid[i];
		}
	} else {
		for (int32_t i = 0; i < dm; i++) {
			state->pool[i] = cfg->pooling == TM_POOL_LAST ? hid[i] : state->pool[i] + hid[i];
		}
	}
	if (state->count < INT32_MAX) {
		state->count++;
	}
	if (W > 0 && state->count - W >= W) {
		state->count -= W; /* keeps count % W (the next slot) and count >= W */
	}
	if (hidden != 0) {
		for (int32_t i = 0; i < dm; i++) {
			hidden[i] = hid[i];
		}
	}
}

void tm_model_f32_logits(const tm_model_config *cfg, const tm_model_f32_weights *w,
			 const tm_model_f32_state *state, float *logits, void *scratch)
{
	const int32_t dm = cfg->block.d_model;
	float *pooled = (float *)scratch;
	const int32_t W = ring_steps(cfg);
	const int32_t n = (W > 0 && state->count > W) ? W : state->count;
	const float k = (cfg->pooling == TM_POOL_LAST || n == 0) ? 1.0f : 1.0f / (float)n;
	if (W > 0) {
		for (int32_t i = 0; i < dm; i++) {
			float s = 0.0f;
			for (int32_t t = 0; t < n; t++) {
				s += state->ring[(size_t)t * (size_t)dm + (size_t)i];
			}
			pooled[i] = s * k;
		}
	} else {
		for (int32_t i = 0; i < dm; i++) {
			pooled[i] = state->pool[i] * k;
		}
	}
	tm_linear_f32(w->cls_w, w->cls_b, pooled, dm, cfg->n_classes, logits);
}

void tm_model_f32_run(const tm_model_config *cfg, const tm_model_f32_weights *w, tm_model_f32_state *state,
		      const float *feats, int32_t L, float *logits, void *scratch)
{
	const size_t step_in = (size_t)cfg->frame_stack * (size_t)cfg->channels;
	tm_model_f32_reset(cfg, state);
	for (int32_t t = 0; t < L; t++) {
		tm_model_f32_step(cfg, w, state, feats + (size_t)t * step_in, 0, scratch);
	}
	tm_model_f32_logits(cfg, w, state, logits, scratch);
}
