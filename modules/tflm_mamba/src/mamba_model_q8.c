/* The whole keyword spotter, int8 (mamba_model.h). */
#include <math.h>
#include <stddef.h>

#include "tflm_mamba/fixed_point.h"
#include "tflm_mamba/mamba_model.h"
#include "tflm_mamba/profile.h"

static int32_t ring_steps(const tm_model_config *cfg)
{
	return (cfg->pooling == TM_POOL_MEAN && cfg->pool_window > 0) ? cfg->pool_window : 0;
}

size_t tm_model_q8_state_bytes(const tm_model_config *cfg)
{
	/* pool first (int32), then each block's state rounded up to 4 bytes, then the ring (int8) */
	const size_t blk = (tm_block_q8_state_bytes(&cfg->block) + 3u) & ~(size_t)3u;
	return sizeof(int32_t) * (size_t)cfg->block.d_model + (size_t)cfg->n_layers * blk +
	       (size_t)ring_steps(cfg) * (size_t)cfg->block.d_model;
}

void tm_model_q8_state_bind(const tm_model_config *cfg, const tm_model_q8_weights *w, tm_model_q8_state *state,
			    void *mem)
{
	const size_t blk = (tm_block_q8_state_bytes(&cfg->block) + 3u) & ~(size_t)3u;
	state->pool = (int32_t *)mem;
	char *p = (char *)(state->pool + cfg->block.d_model);
	for (int32_t i = 0; i < cfg->n_layers; i++) {
		tm_block_q8_state_bind(&cfg->block, &w->blocks[i], &state->blocks[i], p);
		p += blk;
	}
	state->ring = (int8_t *)p;
	tm_model_q8_reset(cfg, w, state);
}

void tm_model_q8_reset(const tm_model_config *cfg, const tm_model_q8_weights *w, tm_model_q8_state *state)
{
	for (int32_t i = 0; i < cfg->n_layers; i++) {
		tm_block_q8_reset(&cfg->block, &w->blocks[i], &state->blocks[i]);
	}
	for (int32_t i = 0; i < cfg->block.d_model; i++) {
		state->pool[i] = 0;
	}
	for (int32_t i = 0; i < ring_steps(cfg) * cfg->block.d_model; i++) {
		state->ring[i] = 0; /* never read before it is written */
	}
	state->count = 0;
}

/* Scratch (int8): x[d_model] pooled[d_model], then the block's scratch. */
size_t tm_model_q8_scratch_bytes(const tm_model_config *cfg)
{
	return 2 * (size_t)cfg->block.d_model + tm_block_q8_scratch_bytes(&cfg->block);
}

void tm_model_q8_step(const tm_model_config *cfg, const tm_model_q8_weights *w, tm_model_q8_state *state,
		      const int8_t *frames, int8_t *hidden, void *scratch)
{
	const int32_t dm = cfg->block.d_model;
	int8_t *x = (int8_t *)scratch;
	void *block_scratch = x + 2 * dm;

	/* x = stem(frames);  x = x + mixer(norm(x)) per layer */
	tm_linear_q8_run(&w->stem, frames, cfg->frame_stack * cfg->channels, dm, x);
	TM_PROFILE_MARK(TM_PROF_STEM);
	for (int32_t i = 0; i < cfg->n_layers; i++) {
		tm_block_q8_step(&cfg->block, &w->blocks[i], &state->blocks[i], x, x, block_scratch);
	}
	int32_t zp = cfg->n_layers > 0 ? w->blocks[cfg->n_layers - 1].out_zp : w->stem.out_zp;
	if (cfg->block.norm == TM_NORM_RMSNORM) {
		/* hidden = norm_f(x), per step (rmsnorm does not commute with the mean) */
		tm_rmsnorm_q8_run(&w->norm_f, x, dm, x);
		zp = w->norm_f.out_zp;
		TM_PROFILE_MARK(TM_PROF_NORM);
	}
	const int32_t W = ring_steps(cfg);
	if (W > 0) {
		/* pool = sum of (q - z) over the last W hidden: the oldest leaves as this one enters */
		int8_t *slot = state->ring + (size_t)(state->count % W) * (size_t)dm;
		const int full = state->count >= W;
		for (int32_t i = 0; i < dm; i++) {
			const int32_t old = full ? (int32_t)slot[i] - zp : 0;
			state->pool[i] += ((int32_t)x[i] - zp) - old; /* |pool| <= 255 W */
			slot[i] = x[i];
		}
	} else {
		for (int32_t i = 0; i < dm; i++) {
			const int32_t v = (int32_t)x[i] - zp;
			state->pool[i] = cfg->pooling == TM_POOL_LAST ? v : tm_sat_i32((int64_t)state->pool[i] + v);
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
			hidden[i] = x[i];
		}
	}
	TM_PROFILE_MARK(TM_PROF_POOL);
}

void tm_model_q8_logits(const tm_model_config *cfg, const tm_model_q8_weights *w,
			const tm_model_q8_state *state, int8_t *logits, void *scratch)
{
	const int32_t dm = cfg->block.d_model;
	int8_t *pooled = (int8_t *)scratch + dm;
	const int32_t W = ring_steps(cfg);
	const int32_t n = (W > 0 && state->count > W) ? W : state->count;
	const int32_t count = (cfg->pooling == TM_POOL_LAST || n == 0) ? 1 : n;
	/* pooled = pool_zp + rq32(round(256 * sum / count)) */
	for (int32_t i = 0; i < dm; i++) {
		const int32_t mean256 = tm_div_round(tm_sat_i32((int64_t)state->pool[i] * 256), count);
		pooled[i] = tm_rq8(mean256, w->pool_mult, w->pool_shift, w->pool_zp);
	}
	tm_linear_q8_run(&w->cls, pooled, dm, cfg->n_classes, logits);
	TM_PROFILE_MARK(TM_PROF_READOUT);
}

void tm_model_q8_run(const tm_model_config *cfg, const tm_model_q8_weights *w, tm_model_q8_state *state,
		     const int8_t *feats, int32_t L, int8_t *logits, void *scratch)
{
	const size_t step_in = (size_t)cfg->frame_stack * (size_t)cfg->channels;
	tm_model_q8_reset(cfg, w, state);
	for (int32_t t = 0; t < L; t++) {
		tm_model_q8_step(cfg, w, state, feats + (size_t)t * step_in, 0, scratch);
	}
	tm_model_q8_logits(cfg, w, state, logits, scratch);
}

void tm_quantize_f32(const float *x, int32_t n, float scale, int32_t zp, int8_t *q)
{
	for (int32_t i = 0; i < n; i++) {
		const float v = roundf(x[i] / scale) + (float)zp;
		/* written so that NaN gives -128 (no float -> int conversion of NaN) */
		q[i] = (int8_t)(v >= 127.0f ? 127 : (v >= -128.0f ? (int32_t)v : -128));
	}
}
