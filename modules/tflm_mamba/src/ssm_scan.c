/* One selective-scan step: float, and the int8 reference (ssm_scan.h). */
#include "tflm_mamba/ssm_scan.h"

#include <stddef.h>

#include "tflm_mamba/activations.h"
#include "tflm_mamba/fixed_point.h"

void tm_ssm_scan_f32_step(tm_decay decay, int32_t d_inner, int32_t d_state, const float *A, const float *D,
			  const float *x, const float *dt, const float *B, const float *C, float *h, float *y)
{
	for (int32_t d = 0; d < d_inner; d++) {
		const float *Ad = A + (size_t)d * (size_t)d_state;
		float *hd = h + (size_t)d * (size_t)d_state;
		const float dtx = dt[d] * x[d];
		float acc = 0.0f;
		/* h[d][n] = Abar(dt[d] A[d][n]) h[d][n] + dt[d] B[n] x[d];  y[d] = sum_n C[n] h[d][n] + D[d] x[d] */
		for (int32_t n = 0; n < d_state; n++) {
			hd[n] = tm_decay_f32(decay, dt[d] * Ad[n]) * hd[n] + dtx * B[n];
			acc += hd[n] * C[n];
		}
		y[d] = acc + D[d] * x[d];
	}
}

#if defined(TFLM_MAMBA_REFERENCE)
/*
 * The int8 step, the reference (ssm_scan.h): the definition the tests hold every variant to.
 * Built with -DTFLM_MAMBA_REFERENCE; otherwise ssm_scan_q8_opt.c provides it.
 */
void tm_ssm_scan_q8_step(const tm_ssm_q8 *p, tm_decay decay, int32_t d_inner, int32_t d_state, const int8_t *x,
			 const int8_t *dt, const int8_t *B, const int8_t *C, int32_t *h, int16_t *y)
{
	const int64_t lo = tm_y_min(p->y_bits), hi = tm_y_max(p->y_bits);
	for (int32_t d = 0; d < d_inner; d++) {
		const int32_t xd = (int32_t)x[d] - p->x_zp;
		const int32_t dtd = (int32_t)dt[d] - p->dt_zp;
		int32_t *hd = h + (size_t)d * (size_t)d_state;
		int64_t acc = 0;
		/* h[d][n] = Abar(dt A) h[d][n] + dt B[n] x[d]   (Q30 decay, h in units of s_h)
		 * y[d]    = sum_n C[n] h[d][n] + D[d] x[d]      (in units of s_y) */
		for (int32_t n = 0; n < d_state; n++) {
			const int32_t arg = p->A_q20[(size_t)d * (size_t)d_state + (size_t)n] * dtd; /* dt*A in Q20 */
			const int32_t abar = decay == TM_DECAY_SIGMOID ? tm_two_sigmoid_neg_q30(arg) : tm_exp_neg_q30(arg);
			const int32_t v = dtd * xd * ((int32_t)B[n] - p->B_zp); /* |.| < 2^24 */
			const int32_t bx = p->bx_shift < 0 ? (v + ((int32_t)1 << (-p->bx_shift - 1))) >> -p->bx_shift
							   : v * ((int32_t)1 << p->bx_shift);
			/* |h * Abar| <= 2^30 and |bx| <= 2^30: the sum fits int32 */
			const int32_t hn = tm_sat_i31(tm_mul_q30(hd[n], abar) + bx);
			hd[n] = hn;
			acc += (int64_t)hn * ((int32_t)C[n] - p->C_zp);
		}
		const int64_t yv = (int64_t)p->y_zp + tm_rq32(tm_sat_i32(acc), p->hc_mult, p->hc_shift) +
				   tm_rq32(xd, p->D_mult[d], p->D_shift[d]);
		y[d] = (int16_t)(yv > hi ? hi : (yv < lo ? lo : yv));
	}
}
#endif
