/*
 * One step of the selective scan (Gu & Dao 2023, eq. 2a-2b with the ZOH-like decay):
 *
 *     h_t[d][n] = Abar_t[d][n] * h_{t-1}[d][n] + dt_t[d] * B_t[n] * x_t[d]
 *     Abar_t    = exp(dt_t[d] * A[d][n])  or  2 * sigmoid(dt_t[d] * A[d][n])
 *     y_t[d]    = sum_n C_t[n] * h_t[d][n] + D[d] * x_t[d]
 */
#ifndef TFLM_MAMBA_SSM_SCAN_H_
#define TFLM_MAMBA_SSM_SCAN_H_

#include <stdint.h>

#include "tflm_mamba/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* h: [d_inner][d_state], zero at reset. y: [d_inner]. */
void tm_ssm_scan_f32_step(tm_decay decay, int32_t d_inner, int32_t d_state, const float *A, const float *D,
			  const float *x, const float *dt, const float *B, const float *C, float *h, float *y);

/*
 * int8 inputs (x, dt, B, C raw int8 with zero points), int32 state h, output y (before the
 * gate) stored as int16: int8 values (y_bits 8) or int16 values (y_bits 16, where one int8 step
 * of y was the largest rounding of the block; README: int8 that agrees with float). The unit of h is tied to the input product by a power of two, so the update needs
 * no multiplier: s_h = s_dt * s_B * s_x * 2^-bx_shift, bx_shift in [-24, 6].
 *
 *     Abar    = decay(A_q20[d][n] * (q_dt - z_dt))                    Q30, fixed_point.h
 *     bx      = (q_dt-z_dt)(q_B-z_B)(q_x-z_x) * 2^bx_shift            (rounded half up if bx_shift < 0)
 *     h      <- clamp(mul_q30(h, Abar) + bx, TM_H_MIN, TM_H_MAX)      (-2^30 .. 2^30 - 1: one SSAT)
 *     y[d]    = clamp(y_zp + rq32(sat32(sum_n h (q_C - z_C)), hc_mult, hc_shift)
 *                          + rq32(q_x - z_x, D_mult[d], D_shift[d]))
 *
 * clamp is to [tm_y_min(y_bits), tm_y_max(y_bits)]: [-128, 127] or [-32767, 32767] (symmetric,
 * as TFLite's int16 tensors, so that out_proj's int32 sums keep their bound: mamba_validate.h).
 */
#define TM_H_MAX ((int32_t)((1L << 30) - 1))
#define TM_H_MIN (-(int32_t)(1L << 30))

/* The range of y and of y * act(z) for y_bits 8 or 16 */
static inline int32_t tm_y_max(int32_t y_bits)
{
	return y_bits == 16 ? 32767 : 127;
}
static inline int32_t tm_y_min(int32_t y_bits)
{
	return y_bits == 16 ? -32767 : -128;
}

typedef struct {
	const int32_t *A_q20;   /* [d_inner][d_state], round(s_dt * A * 2^20) */
	const int32_t *D_mult;  /* [d_inner], s_x * D[d] / s_y */
	const int32_t *D_shift; /* [d_inner] */
	int32_t x_zp, dt_zp, B_zp, C_zp;
	int32_t bx_shift;          /* s_dt * s_B * s_x / s_h = 2^bx_shift, in [-24, 6] */
	int32_t hc_mult, hc_shift; /* s_h * s_C / s_y */
	int32_t y_zp;
	int32_t y_bits; /* 8 or 16: the width of y and of y * act(z) (the gate, out_proj's input) */
} tm_ssm_q8;

void tm_ssm_scan_q8_step(const tm_ssm_q8 *p, tm_decay decay, int32_t d_inner, int32_t d_state, const int8_t *x,
			 const int8_t *dt, const int8_t *B, const int8_t *C, int32_t *h, int16_t *y);

#ifdef __cplusplus
}
#endif

#endif /* TFLM_MAMBA_SSM_SCAN_H_ */
