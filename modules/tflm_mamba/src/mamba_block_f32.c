/* One residual Mamba block, float32 reference (mamba_block.h). */
#include <stddef.h>

#include "tflm_mamba/activations.h"
#include "tflm_mamba/mamba_block.h"
#include "tflm_mamba/norm.h"

size_t tm_block_f32_state_bytes(const tm_block_config *cfg)
{
	return sizeof(float) * (size_t)cfg->d_inner * ((size_t)cfg->d_conv - 1u + (size_t)cfg->d_state);
}

void tm_block_f32_state_bind(const tm_block_config *cfg, tm_block_f32_state *state, void *mem)
{
	state->conv = (float *)mem;
	state->h = state->conv + (size_t)cfg->d_inner * (size_t)(cfg->d_conv - 1);
	tm_block_f32_reset(cfg, state);
}

void tm_block_f32_reset(const tm_block_config *cfg, tm_block_f32_state *state)
{
	const size_t nc = (size_t)cfg->d_inner * (size_t)(cfg->d_conv - 1);
	const size_t nh = (size_t)cfg->d_inner * (size_t)cfg->d_state;
	for (size_t i = 0; i < nc; i++) {
		state->conv[i] = 0.0f;
	}
	for (size_t i = 0; i < nh; i++) {
		state->h[i] = 0.0f;
	}
}

/* Scratch layout (floats): v[d_model] xz[2 d_inner] xc[d_inner] dbc[dt_rank + 2 d_state] dt[d_inner]
 * y[d_inner] o[d_model] */
size_t tm_block_f32_scratch_bytes(const tm_block_config *cfg)
{
	return sizeof(float) * (2u * (size_t)cfg->d_model + 5u * (size_t)cfg->d_inner + (size_t)cfg->dt_rank +
				2u * (size_t)cfg->d_state);
}

void tm_block_f32_step(const tm_block_config *cfg, const tm_block_f32_weights *w, tm_block_f32_state *state,
		       const float *u, float *out, void *scratch)
{
	const int32_t dm = cfg->d_model, di = cfg->d_inner, n = cfg->d_state, r = cfg->dt_rank;
	float *v = (float *)scratch;
	float *xz = v + dm;
	float *x = xz;
	float *z = xz + di;
	float *xc = xz + 2 * di;
	float *dbc = xc + di;
	float *dt = dbc + r + 2 * n;
	float *y = dt + di;
	float *o = y + di;

	/* v = norm(u);  x, z = in_proj(v) */
	tm_norm_f32(cfg->norm, w->norm_weight, w->norm_bias, w->norm_eps, u, dm, v);
	tm_linear_f32(w->in_proj_w, 0, v, dm, 2 * di, xz);
	/* x = act(conv1d(x)) */
	tm_causal_conv1d_f32_step(w->conv_w, w->conv_b, di, cfg->d_conv, state->conv, x, xc);
	for (int32_t i = 0; i < di; i++) {
		xc[i] = tm_act_f32(cfg->activation, xc[i]);
	}
	/* dt, B, C = x_proj(x);  dt = dt_act(dt_proj(dt)) */
	tm_linear_f32(w->x_proj_w, 0, xc, di, r + 2 * n, dbc);
	tm_linear_f32(w->dt_proj_w, w->dt_proj_b, dbc, r, di, dt);
	for (int32_t i = 0; i < di; i++) {
		dt[i] = tm_dt_act_f32(cfg->dt_activation, dt[i]);
	}
	/* y = ssm_scan(x, dt, A, B, C, D) * act(z) */
	tm_ssm_scan_f32_step(cfg->decay, di, n, w->A, w->D, xc, dt, dbc + r, dbc + r + n, state->h, y);
	for (int32_t i = 0; i < di; i++) {
		y[i] *= tm_act_f32(cfg->activation, z[i]);
	}
	/* out = u + out_proj(y) */
	tm_linear_f32(w->out_proj_w, 0, y, di, dm, o);
	for (int32_t i = 0; i < dm; i++) {
		out[i] = u[i] + o[i];
	}
}

void tm_block_f32_run(const tm_block_config *cfg, const tm_block_f32_weights *w, tm_block_f32_state *state,
		      const float *u, int32_t L, float *out, void *scratch)
{
	for (int32_t t = 0; t < L; t++) {
		tm_block_f32_step(cfg, w, state, u + (size_t)t * (size_t)cfg->d_model,
				  out + (size_t)t * (size_t)cfg->d_model, scratch);
	}
}
