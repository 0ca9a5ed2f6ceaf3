/*
 * The contract of the Mamba block kernels, checked in one place (mamba_validate.c).
 *
 * The kernels trust their parameters: Eval must stay fast and branch-free. Whatever comes from
 * outside (a model file's options and const tensors, a fuzzer's bytes) goes through
 * tm_validate_block_* once, before the first step; a parameter set it accepts runs without
 * undefined behaviour for any int8 input. The bounds (fixed_point.h has the arithmetic):
 *
 *   dimensions    d_model, d_inner, d_state, d_conv, dt_rank in [1, TM_MAX_DIM]: at most 256
 *                 inputs to any dot product, so |bias| + 256 * 128 * 128 < 2^31
 *   sizes         state and scratch bytes computed in size_t with every product and sum
 *                 checked for overflow
 *   switches      decay, dt_activation, activation, norm: one of the enum values
 *   zero points   [-128, 127]
 *   multipliers   |m| <= 2^31 - 1 (INT32_MIN has no positive twin; a negative factor is
 *                 valid: D and the rmsnorm weights have a sign)
 *   shifts        [TM_SHIFT_MIN, TM_SHIFT_MAX] = [-31, 30] (tm_rq32's shift exponents)
 *   ssm.bx_shift  [-24, 6]: |dt B x| 2^bx_shift <= 2^30 and the rounding shift stays below 31
 *   ssm.y_bits    8 or 16 (y and y * act(z) clamped to [-32767, 32767] at 16 bits, so
 *                 out_proj's |bias| + 256 * 128 * 32767 < 2^31)
 *   A_q20         |A_q20| <= TM_A_Q20_MAX = (2^31 - 1) / 255: A_q20 * (q_dt - z_dt) fits int32
 *                 (the quantiser's A = -exp(A_log) gives A_q20 <= 0; dt*A >= 0 decays by 1.0)
 *   biases        |bias| <= TM_BIAS_MAX = 2^30 (linear layers and the conv)
 *   rmsnorm       eps_q in [0, 2^30] (sum r^2 + eps_q < 2^31)
 *   tables        the three int8 activation tables have 256 entries (any int8 value is valid);
 *                 the decay tables are the library's own
 *
 * On a refusal the result names the field as the options and tensors spell it ("ssm.bx_shift",
 * "in_proj_x.bias"), the element index for an array (-1 for a scalar) and the offending value.
 */
#ifndef TFLM_MAMBA_MAMBA_VALIDATE_H_
#define TFLM_MAMBA_MAMBA_VALIDATE_H_

#include <stddef.h>
#include <stdint.h>

#include "tflm_mamba/config.h"
#include "tflm_mamba/mamba_block.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TM_MAX_DIM 256
#define TM_ZP_MIN (-128)
#define TM_ZP_MAX 127
#define TM_SHIFT_MIN (-31)
#define TM_SHIFT_MAX 30
#define TM_BX_SHIFT_MIN (-24)
#define TM_BX_SHIFT_MAX 6
#define TM_A_Q20_MAX ((int32_t)(INT32_MAX / 255))
#define TM_BIAS_MAX ((int32_t)1 << 30)
#define TM_EPS_Q_MAX ((int32_t)1 << 30)

typedef enum {
	TM_VALID = 0,
	TM_INVALID_NULL,  /* a pointer the kernels read is missing */
	TM_INVALID_ENUM,  /* a switch has no such value */
	TM_INVALID_DIM,   /* a dimension outside [1, TM_MAX_DIM] */
	TM_INVALID_SIZE,  /* a byte count does not fit size_t (or the caller's limit) */
	TM_INVALID_RANGE, /* a parameter outside the range the kernels assume */
} tm_valid_status;

typedef struct {
	tm_valid_status status;
	const char *field; /* "d_model", "ssm.bx_shift", "in_proj_x.bias", ...; NULL when valid */
	int32_t index;     /* element of an array, -1 for a scalar */
	int64_t value;     /* the offending value */
	int64_t lo, hi;    /* the allowed range, where there is one */
} tm_valid_error;

/* "ok", "missing pointer", "unknown value", "dimension out of range", ... */
const char *tm_valid_status_str(tm_valid_status status);

/* Shape and switches. err may be NULL. */
tm_valid_status tm_validate_block_config(const tm_block_config *cfg, tm_valid_error *err);

/*
 * The config, then the state and scratch bytes of the int8 (q8 = 1) or float (q8 = 0) block,
 * each computed with overflow checks; equal to tm_block_*_state_bytes / *_scratch_bytes.
 */
tm_valid_status tm_validate_block_sizes(const tm_block_config *cfg, int q8, size_t *state_bytes,
					size_t *scratch_bytes, tm_valid_error *err);

/* The scalars of an int8 block (what a model's options carry); the arrays are not read. */
tm_valid_status tm_validate_block_q8_scalars(const tm_block_config *cfg, const tm_block_q8_weights *w,
					     tm_valid_error *err);

/* Everything of an int8 block: config, sizes, scalars, and every value of every array once. */
tm_valid_status tm_validate_block_q8(const tm_block_config *cfg, const tm_block_q8_weights *w, tm_valid_error *err);

#ifdef __cplusplus
}
#endif

#endif /* TFLM_MAMBA_MAMBA_VALIDATE_H_ */
