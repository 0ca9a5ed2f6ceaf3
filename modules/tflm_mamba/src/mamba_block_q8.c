/* One residual Mamba block, int8 (mamba_block.h; the arithmetic is fixed_point.h's). */
#include <stddef.h>

#include "tflm_mamba/fixed_point.h"
#include "tflm_mamba/mamba_block.h"
#include "tflm_mamba/profile.h"

size_t tm_block_q8_state_bytes(const tm_block_config *cfg)
{
	/* h first (int32, aligned), then the conv window (int8) */
	return sizeof(int32_t) * (size_t)cfg->d_inner * (size_t)cfg->d_state +
	       (size_t)cfg->d_inner * ((size_t)cfg->d_conv - 1u);
}

void tm_block_q8_state_bind(const tm_block_config *cfg, const tm_block_q8_weights *w, tm_block_q8_state *state,
			    void *mem)
{
	state->h = (int32_t *)mem;
	state->conv = (int8_t *)(state->h + (size_t)cfg->d_inner * (size_t)cfg->d_state);
	tm_block_q8_reset(cfg, w, state);
}

void tm_block_q8_reset(const tm_block_config *cfg, const tm_block_q8_weights *w, tm_block_q8_state *state)
{
	const size_t nc = (size_t)cfg->d_inner * ((size_t)cfg->d_conv - 1u);
	const size_t nh = (size_t)cfg->d_inner * (size_t)cfg->d_state;
	for (size_t i = 0; i < nc; i++) {
		state->conv[i] = (int8_t)w->in_proj_x.out_zp; /* real 0 */
	}
	for (size_t i = 0; i < nh; i++) {
		state->h[i] = 0;
	}
}

/* q[i] = lut[q[i] + 128]: an element-wise function by its int8 table */
static void apply_lut(const int8_t *lut, int8_t *q, int32_t n)
{
	for (int32_t i = 0; i < n; i++) {
		q[i] = tm_lut8(lut, q[i]);
	}
}

/* y = y * act(z):  y[i] = clamp(yg_zp + rq32((q_y - y_zp) (act(q_z) - gate_zp), yg_mult, yg_shift)),
 * clamped to y_bits (ssm_scan.h); |(q_y - y_zp) g| < 2^24 */
static void gate(const tm_block_q8_weights *w, const int8_t *z, int16_t *y, int32_t n)
{
	const int8_t *lut = w->gate_act_lut;
	const int32_t gate_zp = w->gate_zp, y_zp = w->ssm.y_zp;
	const int32_t mult = w->yg_mult, shift = w->yg_shift, zp = w->yg_zp;
	if (w->ssm.y_bits == 16) {
		for (int32_t i = 0; i < n; i++) {
			const int32_t g = (int32_t)tm_lut8(lut, z[i]) - gate_zp;
			y[i] = tm_rq16(((int32_t)y[i] - y_zp) * g, mult, shift, zp);
		}
	} else {
		for (int32_t i = 0; i < n; i++) {
			const int32_t g = (int32_t)tm_lut8(lut, z[i]) - gate_zp;
			y[i] = tm_rq8(((int32_t)y[i] - y_zp) * g, mult, shift, zp);
		}
	}
}

/* out = u + m: both rescaled to the output's scale (units of 2^-16 for the rounding), summed */
static void residual(const tm_block_q8_weights *w, const int8_t *u, const int8_t *m, int8_t *out, int32_t n)
{
	const int32_t u_zp = w->in_zp, u_mult = w->res_u_mult, u_shift = w->res_u_shift;
	const int32_t m_zp = w->out_proj.out_zp, m_mult = w->res_m_mult, m_shift = w->res_m_shift;
	const int32_t zp = w->out_zp;
	for (int32_t i = 0; i < n; i++) {
		const int32_t a = tm_rq32(((int32_t)u[i] - u_zp) * 65536, u_mult, u_shift);
		const int32_t b = tm_rq32(((int32_t)m[i] - m_zp) * 65536, m_mult, m_shift);
		const int64_t s = (int64_t)zp + a + b;
		out[i] = (int8_t)(s > 127 ? 127 : (s < -128 ? -128 : s));
	}
}

/* Scratch layout: y[d_inner] (int16, first: the scratch is 2-byte aligned), then int8
 * x[d_inner] z[d_inner] xc[d_inner] dtl[dt_rank] B[d_state] C[d_state] dt[d_inner] m[d_model]
 * (+ v[d_model] for rmsnorm) */
size_t tm_block_q8_scratch_bytes(const tm_block_config *cfg)
{
	/* size_t throughout: no int product can wrap (tm_validate_block_sizes checks the bounds) */
	const size_t v = cfg->norm == TM_NORM_RMSNORM ? (size_t)cfg->d_model : 0u;
	return 6u * (size_t)cfg->d_inner + (size_t)cfg->dt_rank + 2u * (size_t)cfg->d_state + (size_t)cfg->d_model + v;
}

void tm_block_q8_step(const tm_block_config *cfg, const tm_block_q8_weights *w, tm_block_q8_state *state,
		      const int8_t *u, int8_t *out, void *scratch)
{
	const int32_t dm = cfg->d_model, di = cfg->d_inner, n = cfg->d_state, r = cfg->dt_rank;
	int16_t *y = (int16_t *)scratch;
	int8_t *x = (int8_t *)(y + di);
	int8_t *z = x + di;
	int8_t *xc = z + di;
	int8_t *dtl = xc + di;
	int8_t *B = dtl + r;
	int8_t *C = B + n;
	int8_t *dt = C + n;
	int8_t *m = dt + di;

	/* x, z = in_proj(norm(u))  (an affine norm is folded into in_proj) */
	const int8_t *v = u;
	if (cfg->norm == TM_NORM_RMSNORM) {
		int8_t *vn = m + dm;
		tm_rmsnorm_q8_run(&w->norm, u, dm, vn);
		v = vn;
		TM_PROFILE_MARK(TM_PROF_NORM);
	}
	tm_linear_q8_run(&w->in_proj_x, v, dm, di, x);
	tm_linear_q8_run(&w->in_proj_z, v, dm, di, z);
	TM_PROFILE_MARK(TM_PROF_IN_PROJ);
	/* x = act(conv1d(x)) */
	tm_causal_conv1d_q8_step(&w->conv, di, cfg->d_conv, state->conv, x, xc);
	apply_lut(w->conv_act_lut, xc, di);
	TM_PROFILE_MARK(TM_PROF_CONV);
	/* dt, B, C = x_proj(x);  dt = dt_act(dt_proj(dt)) */
	tm_linear_q8_run(&w->x_proj_dt, xc, di, r, dtl);
	tm_linear_q8_run(&w->x_proj_B, xc, di, n, B);
	tm_linear_q8_run(&w->x_proj_C, xc, di, n, C);
	TM_PROFILE_MARK(TM_PROF_X_PROJ);
	tm_linear_q8_run(&w->dt_proj, dtl, r, di, dt);
	apply_lut(w->dt_act_lut, dt, di);
	TM_PROFILE_MARK(TM_PROF_DT_PROJ);
	/* y = ssm_scan(x, dt, A, B, C, D);  y = y * act(z) */
	tm_ssm_scan_q8_step(&w->ssm, cfg->decay, di, n, xc, dt, B, C, state->h, y);
	TM_PROFILE_MARK(TM_PROF_SCAN);
	gate(w, z, y, di);
	TM_PROFILE_MARK(TM_PROF_GATE);
	/* out = u + out_proj(y) */
	tm_linear_q16x8_run(&w->out_proj, y, di, dm, m);
	TM_PROFILE_MARK(TM_PROF_OUT_PROJ);
	residual(w, u, m, out, dm);
	TM_PROFILE_MARK(TM_PROF_RESIDUAL);
}

void tm_block_q8_run(const tm_block_config *cfg, const tm_block_q8_weights *w, tm_block_q8_state *state,
		     const int8_t *u, int32_t L, int8_t *out, void *scratch)
{
	for (int32_t t = 0; t < L; t++) {
		tm_block_q8_step(cfg, w, state, u + (size_t)t * (size_t)cfg->d_model,
				 out + (size_t)t * (size_t)cfg->d_model, scratch);
	}
}
