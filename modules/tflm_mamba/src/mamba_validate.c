/* The kernels' contract, checked once (mamba_validate.h). */
#include "tflm_mamba/mamba_validate.h"

#include <stddef.h>
#include <stdint.h>

/* The first failure wins; later checks of a failed validation change nothing. */
static tm_valid_status fail(tm_valid_error *err, tm_valid_status status, const char *field, int32_t index,
			    int64_t value, int64_t lo, int64_t hi)
{
	if (err != NULL) {
		err->status = status;
		err->field = field;
		err->index = index;
		err->value = value;
		err->lo = lo;
		err->hi = hi;
	}
	return status;
}

static void ok(tm_valid_error *err)
{
	if (err != NULL) {
		err->status = TM_VALID;
		err->field = NULL;
		err->index = -1;
		err->value = 0;
		err->lo = 0;
		err->hi = 0;
	}
}

#define TM_TRY(expr)                                                                                                   \
	do {                                                                                                           \
		const tm_valid_status s_ = (expr);                                                                     \
		if (s_ != TM_VALID) {                                                                                  \
			return s_;                                                                                     \
		}                                                                                                      \
	} while (0)

static tm_valid_status in_range(tm_valid_error *err, const char *field, int32_t index, int64_t v, int64_t lo,
				int64_t hi)
{
	return (v < lo || v > hi) ? fail(err, TM_INVALID_RANGE, field, index, v, lo, hi) : TM_VALID;
}

static tm_valid_status zero_point(tm_valid_error *err, const char *field, int32_t v)
{
	return in_range(err, field, -1, v, TM_ZP_MIN, TM_ZP_MAX);
}

/* A requantisation pair (fixed_point.h): multiplier and shift. */
static tm_valid_status requant(tm_valid_error *err, const char *mult_field, const char *shift_field, int32_t index,
			       int32_t mult, int32_t shift)
{
	TM_TRY(in_range(err, mult_field, index, mult, -(int64_t)INT32_MAX, INT32_MAX));
	return in_range(err, shift_field, index, shift, TM_SHIFT_MIN, TM_SHIFT_MAX);
}

/* ---------------------------------------------------------------- sizes without overflow */

static int mul_ok(size_t a, size_t b, size_t *r)
{
	if (a != 0u && b > SIZE_MAX / a) {
		return 0;
	}
	*r = a * b;
	return 1;
}

static int add_ok(size_t a, size_t b, size_t *r)
{
	if (b > SIZE_MAX - a) {
		return 0;
	}
	*r = a + b;
	return 1;
}

/* r = sum_i k[i] * v[i] for n terms, 0 on overflow */
static int lin_ok(const size_t *k, const size_t *v, int n, size_t *r)
{
	size_t acc = 0u;
	for (int i = 0; i < n; i++) {
		size_t t;
		if (!mul_ok(k[i], v[i], &t) || !add_ok(acc, t, &acc)) {
			return 0;
		}
	}
	*r = acc;
	return 1;
}

/* ---------------------------------------------------------------- config and sizes */

tm_valid_status tm_validate_block_config(const tm_block_config *cfg, tm_valid_error *err)
{
	ok(err);
	if (cfg == NULL) {
		return fail(err, TM_INVALID_NULL, "config", -1, 0, 0, 0);
	}
	const struct {
		const char *name;
		int32_t v;
	} dims[] = {
		{"d_model", cfg->d_model}, {"d_inner", cfg->d_inner}, {"d_state", cfg->d_state},
		{"d_conv", cfg->d_conv},   {"dt_rank", cfg->dt_rank},
	};
	for (size_t i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
		if (dims[i].v < 1 || dims[i].v > TM_MAX_DIM) {
			return fail(err, TM_INVALID_DIM, dims[i].name, -1, dims[i].v, 1, TM_MAX_DIM);
		}
	}
	/* the enums as integers: a model file can hold any value */
	const struct {
		const char *name;
		int64_t v, hi;
	} enums[] = {
		{"decay", (int64_t)cfg->decay, TM_DECAY_SIGMOID},
		{"dt_activation", (int64_t)cfg->dt_activation, TM_DT_SOFTPLUS},
		{"activation", (int64_t)cfg->activation, TM_ACT_HARD_SWISH},
		{"norm", (int64_t)cfg->norm, TM_NORM_AFFINE},
	};
	for (size_t i = 0; i < sizeof(enums) / sizeof(enums[0]); i++) {
		if (enums[i].v < 0 || enums[i].v > enums[i].hi) {
			return fail(err, TM_INVALID_ENUM, enums[i].name, -1, enums[i].v, 0, enums[i].hi);
		}
	}
	return TM_VALID;
}

tm_valid_status tm_validate_block_sizes(const tm_block_config *cfg, int q8, size_t *state_bytes,
					size_t *scratch_bytes, tm_valid_error *err)
{
	TM_TRY(tm_validate_block_config(cfg, err));
	const size_t dm = (size_t)cfg->d_model, di = (size_t)cfg->d_inner, n = (size_t)cfg->d_state;
	const size_t K1 = (size_t)cfg->d_conv - 1u, r = (size_t)cfg->dt_rank;
	size_t st, sc;
	int good;
	if (q8) {
		/* h: 4 di n; conv window: di (K - 1).  scratch: 6 di + r + 2 n + dm (+ dm for rmsnorm) */
		const size_t sk[] = {sizeof(int32_t) * di, di};
		const size_t sv[] = {n, K1};
		const size_t ck[] = {6u, 1u, 2u, cfg->norm == TM_NORM_RMSNORM ? 2u : 1u};
		const size_t cv[] = {di, r, n, dm};
		good = lin_ok(sk, sv, 2, &st) && lin_ok(ck, cv, 4, &sc);
	} else {
		/* 4 di (K - 1 + n);  4 (2 dm + 5 di + r + 2 n) */
		const size_t sk[] = {sizeof(float) * di, sizeof(float) * di};
		const size_t sv[] = {K1, n};
		const size_t ck[] = {2u * sizeof(float), 5u * sizeof(float), sizeof(float), 2u * sizeof(float)};
		const size_t cv[] = {dm, di, r, n};
		good = lin_ok(sk, sv, 2, &st) && lin_ok(ck, cv, 4, &sc);
	}
	if (!good) {
		return fail(err, TM_INVALID_SIZE, "state/scratch bytes", -1, 0, 0, 0);
	}
	if (state_bytes != NULL) {
		*state_bytes = st;
	}
	if (scratch_bytes != NULL) {
		*scratch_bytes = sc;
	}
	return TM_VALID;
}

/* ---------------------------------------------------------------- int8 parameters */

tm_valid_status tm_validate_block_q8_scalars(const tm_block_config *cfg, const tm_block_q8_weights *w,
					     tm_valid_error *err)
{
	TM_TRY(tm_validate_block_sizes(cfg, 1, NULL, NULL, err));
	if (w == NULL) {
		return fail(err, TM_INVALID_NULL, "weights", -1, 0, 0, 0);
	}
	const tm_ssm_q8 *s = &w->ssm;
	const struct {
		const char *name;
		int32_t v;
	} zps[] = {
		{"in_zp", w->in_zp},
		{"in_proj_x.out_zp", w->in_proj_x.out_zp},
		{"in_proj_z.out_zp", w->in_proj_z.out_zp},
		{"conv.out_zp", w->conv.out_zp},
		{"x_proj_dt.out_zp", w->x_proj_dt.out_zp},
		{"x_proj_B.out_zp", w->x_proj_B.out_zp},
		{"x_proj_C.out_zp", w->x_proj_C.out_zp},
		{"dt_proj.out_zp", w->dt_proj.out_zp},
		{"ssm.x_zp", s->x_zp},
		{"ssm.dt_zp", s->dt_zp},
		{"ssm.B_zp", s->B_zp},
		{"ssm.C_zp", s->C_zp},
		{"ssm.y_zp", s->y_zp},
		{"gate_zp", w->gate_zp},
		{"yg_zp", w->yg_zp},
		{"out_proj.out_zp", w->out_proj.out_zp},
		{"out_zp", w->out_zp},
	};
	for (size_t i = 0; i < sizeof(zps) / sizeof(zps[0]); i++) {
		TM_TRY(zero_point(err, zps[i].name, zps[i].v));
	}
	TM_TRY(in_range(err, "ssm.bx_shift", -1, s->bx_shift, TM_BX_SHIFT_MIN, TM_BX_SHIFT_MAX));
	if (s->y_bits != 8 && s->y_bits != 16) {
		return fail(err, TM_INVALID_ENUM, "ssm.y_bits", -1, s->y_bits, 8, 16);
	}
	TM_TRY(requant(err, "ssm.hc_mult", "ssm.hc_shift", -1, s->hc_mult, s->hc_shift));
	TM_TRY(requant(err, "yg_mult", "yg_shift", -1, w->yg_mult, w->yg_shift));
	TM_TRY(requant(err, "res_u_mult", "res_u_shift", -1, w->res_u_mult, w->res_u_shift));
	TM_TRY(requant(err, "res_m_mult", "res_m_shift", -1, w->res_m_mult, w->res_m_shift));
	if (cfg->norm == TM_NORM_RMSNORM) {
		TM_TRY(zero_point(err, "norm.in_zp", w->norm.in_zp));
		TM_TRY(zero_point(err, "norm.out_zp", w->norm.out_zp));
		TM_TRY(in_range(err, "norm.eps_q", -1, w->norm.eps_q, 0, TM_EPS_Q_MAX));
	}
	return TM_VALID;
}

/* An int8 layer: W [out][in] (any int8), bias/mult/shift [out]. */
static tm_valid_status layer(tm_valid_error *err, const char *const names[4], const int8_t *W, const int32_t *bias,
			     const int32_t *mult, const int32_t *shift, int32_t out)
{
	if (W == NULL || bias == NULL || mult == NULL || shift == NULL) {
		return fail(err, TM_INVALID_NULL, names[W == NULL ? 0 : bias == NULL ? 1 : mult == NULL ? 2 : 3], -1, 0,
			    0, 0);
	}
	for (int32_t o = 0; o < out; o++) {
		TM_TRY(in_range(err, names[1], o, bias[o], -(int64_t)TM_BIAS_MAX, TM_BIAS_MAX));
		TM_TRY(requant(err, names[2], names[3], o, mult[o], shift[o]));
	}
	return TM_VALID;
}

#define TM_LAYER_NAMES(l) {#l ".W", #l ".bias", #l ".mult", #l ".shift"}

static tm_valid_status linear(tm_valid_error *err, const char *const names[4], const tm_linear_q8 *p, int32_t out)
{
	return layer(err, names, p->W, p->bias, p->mult, p->shift, out);
}

tm_valid_status tm_validate_block_q8(const tm_block_config *cfg, const tm_block_q8_weights *w, tm_valid_error *err)
{
	TM_TRY(tm_validate_block_q8_scalars(cfg, w, err));
	const int32_t dm = cfg->d_model, di = cfg->d_inner, n = cfg->d_state, r = cfg->dt_rank;
	static const char *const in_x[4] = TM_LAYER_NAMES(in_proj_x), *const in_z[4] = TM_LAYER_NAMES(in_proj_z);
	static const char *const conv[4] = TM_LAYER_NAMES(conv), *const xdt[4] = TM_LAYER_NAMES(x_proj_dt);
	static const char *const xB[4] = TM_LAYER_NAMES(x_proj_B), *const xC[4] = TM_LAYER_NAMES(x_proj_C);
	static const char *const dtp[4] = TM_LAYER_NAMES(dt_proj), *const outp[4] = TM_LAYER_NAMES(out_proj);
	TM_TRY(linear(err, in_x, &w->in_proj_x, di));
	TM_TRY(linear(err, in_z, &w->in_proj_z, di));
	TM_TRY(layer(err, conv, w->conv.w, w->conv.bias, w->conv.mult, w->conv.shift, di));
	TM_TRY(linear(err, xdt, &w->x_proj_dt, r));
	TM_TRY(linear(err, xB, &w->x_proj_B, n));
	TM_TRY(linear(err, xC, &w->x_proj_C, n));
	TM_TRY(linear(err, dtp, &w->dt_proj, di));
	TM_TRY(linear(err, outp, &w->out_proj, dm));
	if (w->conv_act_lut == NULL || w->dt_act_lut == NULL || w->gate_act_lut == NULL) {
		const char *f = w->conv_act_lut == NULL ? "conv_act_lut" : w->dt_act_lut == NULL ? "dt_act_lut" : "gate_act_lut";
		return fail(err, TM_INVALID_NULL, f, -1, 0, 0, 0);
	}
	const tm_ssm_q8 *s = &w->ssm;
	if (s->A_q20 == NULL || s->D_mult == NULL || s->D_shift == NULL) {
		const char *f = s->A_q20 == NULL ? "ssm.A_q20" : s->D_mult == NULL ? "ssm.D_mult" : "ssm.D_shift";
		return fail(err, TM_INVALID_NULL, f, -1, 0, 0, 0);
	}
	/* A_q20 [d_inner][d_state]: the index is the flat one, d * d_state + n */
	const int32_t na = di * n; /* <= 2^16: the dimensions are capped */
	for (int32_t i = 0; i < na; i++) {
		TM_TRY(in_range(err, "ssm.A_q20", i, s->A_q20[i], -(int64_t)TM_A_Q20_MAX, TM_A_Q20_MAX));
	}
	for (int32_t d = 0; d < di; d++) {
		TM_TRY(requant(err, "ssm.D_mult", "ssm.D_shift", d, s->D_mult[d], s->D_shift[d]));
	}
	if (cfg->norm == TM_NORM_RMSNORM) {
		if (w->norm.mult == NULL || w->norm.shift == NULL) {
			return fail(err, TM_INVALID_NULL, w->norm.mult == NULL ? "norm.mult" : "norm.shift", -1, 0, 0, 0);
		}
		for (int32_t i = 0; i < dm; i++) {
			TM_TRY(requant(err, "norm.mult", "norm.shift", i, w->norm.mult[i], w->norm.shift[i]));
		}
	}
	return TM_VALID;
}

const char *tm_valid_status_str(tm_valid_status status)
{
	switch (status) {
	case TM_VALID:
		return "ok";
	case TM_INVALID_NULL:
		return "is missing";
	case TM_INVALID_ENUM:
		return "has no such value";
	case TM_INVALID_DIM:
		return "is a dimension out of range";
	case TM_INVALID_SIZE:
		return "overflows a byte count";
	case TM_INVALID_RANGE:
		return "is out of range";
	}
	return "is invalid";
}
