/*
 * One residual Mamba block (mamba-minimal's ResidualBlock), one time step or a whole sequence:
 *
 *     v        = norm(u)                                 rmsnorm, affine (batchnorm) or none
 *     x, z     = in_proj(v)                              d_inner each
 *     x        = act(conv1d(x))                          causal depthwise, width d_conv
 *     dt, B, C = x_proj(x)                               dt_rank, d_state, d_state
 *     dt       = dt_act(dt_proj(dt))                     d_inner
 *     y        = ssm_scan(x, dt, A, B, C, D)             (ssm_scan.h)
 *     out      = u + out_proj(y * act(z))
 *
 * Both entry points run the same step code: `*_step` takes one u (d_model) and updates the
 * state; `*_run` loops `*_step` over L steps (u and out are [L][d_model]). The caller owns
 * every buffer: the state (`*_state_bytes`, bound with `*_state_bind`, cleared with
 * `*_reset`) and the scratch (`*_scratch_bytes`). out may alias u. No allocation, no globals.
 */
#ifndef TFLM_MAMBA_MAMBA_BLOCK_H_
#define TFLM_MAMBA_MAMBA_BLOCK_H_

#include <stddef.h>
#include <stdint.h>

#include "tflm_mamba/causal_conv1d.h"
#include "tflm_mamba/config.h"
#include "tflm_mamba/linear.h"
#include "tflm_mamba/norm.h"
#include "tflm_mamba/ssm_scan.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- float32 reference */

typedef struct {
	const float *norm_weight; /* [d_model]: rmsnorm weight or affine scale; unused for TM_NORM_NONE */
	const float *norm_bias;   /* [d_model]: affine shift (TM_NORM_AFFINE only) */
	float norm_eps;           /* rmsnorm epsilon */
	const float *in_proj_w;   /* [2*d_inner][d_model]: the x rows, then the z rows */
	const float *conv_w;      /* [d_inner][d_conv] */
	const float *conv_b;      /* [d_inner] */
	const float *x_proj_w;    /* [dt_rank + 2*d_state][d_inner]: dt rows, B rows, C rows */
	const float *dt_proj_w;   /* [d_inner][dt_rank] */
	const float *dt_proj_b;   /* [d_inner] */
	const float *A;           /* [d_inner][d_state] = -exp(A_log) */
	const float *D;           /* [d_inner] */
	const float *out_proj_w;  /* [d_model][d_inner] */
} tm_block_f32_weights;

typedef struct {
	float *conv; /* [d_inner][d_conv - 1] */
	float *h;    /* [d_inner][d_state] */
} tm_block_f32_state;

size_t tm_block_f32_state_bytes(const tm_block_config *cfg);
/* Points the state at mem (tm_block_f32_state_bytes bytes, 4-byte aligned) and resets it. */
void tm_block_f32_state_bind(const tm_block_config *cfg, tm_block_f32_state *state, void *mem);
void tm_block_f32_reset(const tm_block_config *cfg, tm_block_f32_state *state);
size_t tm_block_f32_scratch_bytes(const tm_block_config *cfg);

void tm_block_f32_step(const tm_block_config *cfg, const tm_block_f32_weights *w, tm_block_f32_state *state,
		       const float *u, float *out, void *scratch);
void tm_block_f32_run(const tm_block_config *cfg, const tm_block_f32_weights *w, tm_block_f32_state *state,
		      const float *u, int32_t L, float *out, void *scratch);

/* ---------------------------------------------------------------- int8 */

/*
 * Quantised block (tools/mamba_kws/fused/quantize.py makes these). Norm: TM_NORM_AFFINE is
 * folded into in_proj (it runs as TM_NORM_NONE); TM_NORM_RMSNORM runs `norm` (norm.h) first and
 * in_proj reads its output. Element-wise functions are int8 tables (fixed_point.h).
 *
 * Contract on the parameters, checked by tm_validate_block_q8 (mamba_validate.h, which lists
 * every bound) and kept by the quantiser (quantize.check_block_q8): dimensions in [1, 256];
 * zero points in [-128, 127]; every multiplier shift in [-31, 30]; ssm.bx_shift in [-24, 6];
 * |A_q20| <= (2^31 - 1) / 255; |bias| <= 2^30, so with at most 256 inputs per output no int32
 * accumulator overflows. Any int8 input is valid. The sanitizer fuzz tests run random values
 * anywhere inside the contract (tests/python/test_kernels_fuzz.py) and outside it
 * (tests/python/test_libfuzzer.py: the validator refuses or the kernels run clean).
 */
typedef struct {
	int32_t in_zp;              /* zero point of u */
	tm_linear_q8 in_proj_x;     /* d_model -> d_inner (norm folded in) */
	tm_linear_q8 in_proj_z;     /* d_model -> d_inner */
	tm_conv1d_q8 conv;          /* d_inner, input zero point = in_proj_x.out_zp */
	const int8_t *conv_act_lut; /* [256] act() after the conv */
	tm_linear_q8 x_proj_dt;     /* d_inner -> dt_rank */
	tm_linear_q8 x_proj_B;      /* d_inner -> d_state */
	tm_linear_q8 x_proj_C;      /* d_inner -> d_state */
	tm_linear_q8 dt_proj;       /* dt_rank -> d_inner, pre-activation */
	const int8_t *dt_act_lut;   /* [256] dt_act() */
	tm_ssm_q8 ssm;
	const int8_t *gate_act_lut; /* [256] act(z) */
	int32_t gate_zp;            /* zero point of act(z) */
	int32_t yg_mult, yg_shift, yg_zp; /* y * act(z): s_y * s_g / s_yg */
	tm_linear_q8 out_proj;      /* d_inner -> d_model */
	/* out = clamp(out_zp + rq32((q_u - in_zp) * 2^16, res_u_mult, res_u_shift)
	 *                    + rq32((q_m - out_proj.out_zp) * 2^16, res_m_mult, res_m_shift)) */
	int32_t res_u_mult, res_u_shift, res_m_mult, res_m_shift;
	int32_t out_zp;
	tm_rmsnorm_q8 norm; /* TM_NORM_RMSNORM only: u -> in_proj's input (zero point norm.out_zp) */
} tm_block_q8_weights;

typedef struct {
	int8_t *conv; /* [d_inner][d_conv - 1], reset to in_proj_x.out_zp */
	int32_t *h;   /* [d_inner][d_state], reset to 0 */
} tm_block_q8_state;

size_t tm_block_q8_state_bytes(const tm_block_config *cfg);
/* Points the state at mem (tm_block_q8_state_bytes bytes, 4-byte aligned) and resets it. */
void tm_block_q8_state_bind(const tm_block_config *cfg, const tm_block_q8_weights *w, tm_block_q8_state *state,
			    void *mem);
void tm_block_q8_reset(const tm_block_config *cfg, const tm_block_q8_weights *w, tm_block_q8_state *state);
size_t tm_block_q8_scratch_bytes(const tm_block_config *cfg);

void tm_block_q8_step(const tm_block_config *cfg, const tm_block_q8_weights *w, tm_block_q8_state *state,
		      const int8_t *u, int8_t *out, void *scratch);
void tm_block_q8_run(const tm_block_config *cfg, const tm_block_q8_weights *w, tm_block_q8_state *state,
		     const int8_t *u, int32_t L, int8_t *out, void *scratch);

#ifdef __cplusplus
}
#endif

#endif /* TFLM_MAMBA_MAMBA_BLOCK_H_ */
