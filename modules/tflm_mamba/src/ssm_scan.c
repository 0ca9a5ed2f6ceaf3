/* One selective-scan step, float and int8 (ssm_scan.h). */
#include "tflm_mamba/ssm_scan.h"

#include <stddef.h>

#include "tflm_mamba/activations.h"
#include "tflm_mamba/fixed_point.h"

#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
/* clamp to [TM_H_MIN, TM_H_MAX] = [-2^30, 2^30 - 1]: one SSAT #31 */
TM_INLINE int32_t clamp_h(int32_t v)
{
	int32_t r;
	__asm__("ssat %0, #31, %1" : "=r"(r) : "r"(v));
	return r;
}
#else
TM_INLINE int32_t clamp_h(int32_t v)
{
	return v > TM_H_MAX ? TM_H_MAX : (v < TM_H_MIN ? TM_H_MIN : v);
}
#endif

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

/*
 * The int8 step. The inner loop is specialised at compile time on the decay and on the sign of
 * bx_shift, and reads B and C as precomputed differences (Bs = (q_B - z_B) * 2^bx_shift when
 * bx_shift >= 0), so it keeps few values live: on Cortex-M it stays in registers.
 */
TM_INLINE void scan_q8(const tm_ssm_q8 *p, int sigmoid, int right_shift,
							  int32_t d_inner, int32_t d_state, const int8_t *x,
							  const int8_t *dt, const int32_t *Bs, const int32_t *Cs, int32_t *h,
							  int8_t *y)
{
	const int32_t rshift = right_shift ? -p->bx_shift : 1;
	const int32_t rround = (int32_t)1 << (rshift - 1);
	for (int32_t d = 0; d < d_inner; d++) {
		const int32_t *Ad = p->A_q20 + (size_t)d * (size_t)d_state;
		int32_t *hd = h + (size_t)d * (size_t)d_state;
		const int32_t xd = (int32_t)x[d] - p->x_zp;
		const int32_t dtd = (int32_t)dt[d] - p->dt_zp;
		const int32_t dtx = dtd * xd; /* |.| <= 255^2 */
		int64_t acc = 0;
		if (dtd == 0) {
			/* dt = 0 (ReLU often gives it): Abar = 1 and dt B x = 0, so h stays as it is */
			for (int32_t n = 0; n < d_state; n++) {
				acc += (int64_t)hd[n] * Cs[n];
			}
		}
		/* h[d][n] = Abar(dt A) h[d][n] + dt B[n] x[d]   (Q30 decay, h in units of s_h)
		 * y[d]    = sum_n C[n] h[d][n] + D[d] x[d]      (in units of s_y) */
		for (int32_t n = 0; dtd != 0 && n < d_state; n++) {
			const int32_t arg = Ad[n] * dtd; /* dt*A in Q20; the quantiser bounds |A_q20| * 255 < 2^31 */
			const int32_t abar = sigmoid ? tm_two_sigmoid_neg_q30(arg) : tm_exp_neg_q30(arg);
			const int32_t v = dtx * Bs[n]; /* |.| <= 2^30 */
			const int32_t bx = right_shift ? (v + rround) >> rshift : v;
			/* |h * Abar| <= 2^30 and |bx| <= 2^30: the sum fits int32 */
			const int32_t hn = clamp_h(tm_mul_q30(hd[n], abar) + bx);
			hd[n] = hn;
			acc += (int64_t)hn * Cs[n];
		}
		const int64_t yv = (int64_t)p->y_zp + tm_rq32(tm_sat_i32(acc), p->hc_mult, p->hc_shift) +
				   tm_rq32(xd, p->D_mult[d], p->D_shift[d]);
		y[d] = (int8_t)(yv > 127 ? 127 : (yv < -128 ? -128 : yv));
	}
}

/* d_state columns [n0, n0 + len) of the scan, len <= TM_SSM_CHUNK. */
#define TM_SSM_CHUNK 16

void tm_ssm_scan_q8_step(const tm_ssm_q8 *p, tm_decay decay, int32_t d_inner, int32_t d_state, const int8_t *x,
			 const int8_t *dt, const int8_t *B, const int8_t *C, int32_t *h, int8_t *y)
{
	int32_t Bs[TM_SSM_CHUNK], Cs[TM_SSM_CHUNK];
	const int right = p->bx_shift < 0;
	if (d_state > TM_SSM_CHUNK) {
		/* wide states: the same arithmetic, B and C read in place */
		for (int32_t d = 0; d < d_inner; d++) {
			const int32_t xd = (int32_t)x[d] - p->x_zp;
			const int32_t dtd = (int32_t)dt[d] - p->dt_zp;
			int32_t *hd = h + (size_t)d * (size_t)d_state;
			int64_t acc = 0;
			for (int32_t n = 0; n < d_state; n++) {
				const int32_t arg = p->A_q20[(size_t)d * (size_t)d_state + (size_t)n] * dtd;
				const int32_t abar = decay == TM_DECAY_SIGMOID ? tm_two_sigmoid_neg_q30(arg)
									   : tm_exp_neg_q30(arg);
				const int32_t v = dtd * xd * ((int32_t)B[n] - p->B_zp);
				const int32_t bx = right ? (v + ((int32_t)1 << (-p->bx_shift - 1))) >> -p->bx_shift
							 : v * ((int32_t)1 << p->bx_shift);
				const int32_t hn = clamp_h(tm_mul_q30(hd[n], abar) + bx);
				hd[n] = hn;
				acc += (int64_t)hn * ((int32_t)C[n] - p->C_zp);
			}
			const int64_t yv = (int64_t)p->y_zp + tm_rq32(tm_sat_i32(acc), p->hc_mult, p->hc_shift) +
					   tm_rq32(xd, p->D_mult[d], p->D_shift[d]);
			y[d] = (int8_t)(yv > 127 ? 127 : (yv < -128 ? -128 : yv));
		}
		return;
	}
	for (int32_t n = 0; n < d_state; n++) {
		const int32_t b = (int32_t)B[n] - p->B_zp;
		Bs[n] = right ? b : b * ((int32_t)1 << p->bx_shift);
		Cs[n] = (int32_t)C[n] - p->C_zp;
	}
	if (decay == TM_DECAY_SIGMOID) {
		if (right) {
			scan_q8(p, 1, 1, d_inner, d_state, x, dt, Bs, Cs, h, y);
		} else {
			scan_q8(p, 1, 0, d_inner, d_state, x, dt, Bs, Cs, h, y);
		}
	} else {
		if (right) {
			scan_q8(p, 0, 1, d_inner, d_state, x, dt, Bs, Cs, h, y);
		} else {
			scan_q8(p, 0, 0, d_inner, d_state, x, dt, Bs, Cs, h, y);
		}
	}
}
