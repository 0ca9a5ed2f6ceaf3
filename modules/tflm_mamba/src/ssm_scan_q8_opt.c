/*
 * One int8 selective-scan step, optimized: the integers of the reference (ssm_scan.c, built
 * with -DTFLM_MAMBA_REFERENCE), with less work per state element h[d][n]:
 *
 *   - The decay product without the special case Abar = 1. The reference computes
 *     mul_q30(h, Abar) = (h Abar + 2^29) >> 30; since h 2^30 is a multiple of 2^30,
 *
 *         (h Abar + 2^29) >> 30 = h + ((h (Abar - 2^30) + 2^29) >> 30)
 *                               = h + ((2h * dA + 2^31) >> 32),     dA = 2 (Abar - 2^30)
 *
 *     one SMMLAR (tm_mla_hi_round). Abar in [0, 2^30] puts dA in [-2^31, 0]: it fits int32,
 *     and dA = 2^31 + 2 Abar (mod 2^32) is one ADD.
 *   - B and C enter as differences computed once per step, B already scaled by 2^bx_shift
 *     when bx_shift >= 0; the loop is specialised at compile time on the decay and on the
 *     sign of bx_shift, so it keeps few values live (on a Cortex-M they stay in registers).
 *   - With the DSP extension a right shift bx_shift = -s rounds by a second SMMLAR:
 *     (v + 2^(s-1)) >> s = (2v * 2^(31-s) + 2^31) >> 32, with 2v = dt x (2 (q_B - z_B)).
 *   - A row with dt = 0 (ReLU gives many) keeps h as it is: Abar = 1 and dt B x = 0.
 *   - D x by tm_rq32_small: with int16 y the factor s_x D / s_y is above 1/4, off rq32's fast path.
 */
#include "tflm_mamba/ssm_scan.h"

#include <stddef.h>

#include "tflm_mamba/fixed_point.h"

#if !defined(TFLM_MAMBA_REFERENCE)

/* The widest d_state with B and C precomputed on the stack; wider ones read B and C in place. */
#define TM_SSM_CHUNK 32

/* dA = 2 (Abar - 2^30) for Abar = decay(x_q20), mod 2^32 (see the file comment). */
TM_INLINE int32_t decay_minus_one(int sigmoid, int32_t x_q20)
{
	const int32_t abar = sigmoid ? tm_two_sigmoid_neg_q30(x_q20) : tm_exp_neg_q30(x_q20);
	return (int32_t)(0x80000000u + 2u * (uint32_t)abar);
}

/* clamp to [0, 2^25 - 1] (one USAT on a Cortex-M3/M4) */
TM_INLINE int32_t usat25(int32_t v)
{
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
	int32_t r;
	__asm__("usat %0, #25, %1" : "=r"(r) : "r"(v));
	return r;
#else
	return v < 0 ? 0 : (v > 0x1FFFFFF ? 0x1FFFFFF : v);
#endif
}

/*
 * dA for the sigmoid decay from u = -x_q20 = A * (-dt): the interpolation of
 * tm_two_sigmoid_neg_q30(-u), Abar = t_k - round((t_k - t_{k+1}) f / 2^16) with k = u >> 16 and
 * f = u & 0xFFFF, read as dA = 2 (t_k - 2^30) - 2 round(...) from tm_two_sigmoid_dA_table
 * (fixed_point.h). One USAT covers both ends: u <= 0 (Abar = 1) becomes 0, where interval 0
 * gives dA = 0 exactly (f = 0); u >= 16 in Q20 (Abar = 0) lands in intervals 256..511, which
 * give dA = -2^31 whatever f.
 */
TM_INLINE int32_t sigmoid_minus_one(int32_t u)
{
	const int32_t v = usat25(u);
	const tm_sigmoid_interval t = tm_two_sigmoid_dA_table[v >> 16];
	return t.dA - 2 * tm_mulhi_round(t.slope, (v & 0xFFFF) * 2048);
}

/* clamp(zp + a + b) to [lo, hi] (a range inside int16): with the DSP extension by two saturating
 * adds (QADD; saturating at int32 first does not change the clamped result), else in int64 */
TM_INLINE int32_t clamp_y(int32_t zp, int32_t a, int32_t b, int32_t lo, int32_t hi)
{
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
	int32_t s;
	__asm__("qadd %0, %1, %2" : "=r"(s) : "r"(a), "r"(b));
	__asm__("qadd %0, %1, %2" : "=r"(s) : "r"(s), "r"(zp));
#else
	const int64_t s = (int64_t)zp + a + b;
#endif
	return s > hi ? hi : (s < lo ? lo : (int32_t)s);
}

/* B and C of one state column, read together (one LDRD) */
typedef struct {
	int32_t B; /* (q_B - z_B) * 2^bx_shift, or * 2 when bx_shift < 0 and the DSP rounds (see above) */
	int32_t C; /* q_C - z_C */
} bc_pair;

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TM_SCAN_ROUND_BY_SMMLAR 1
#else
#define TM_SCAN_ROUND_BY_SMMLAR 0
#endif

/*
 * The scan over all d for one decay (sigmoid) and one sign of bx_shift (right_shift):
 *
 *     h[d][n] = Abar(dt[d] A[d][n]) h[d][n] + dt[d] B[n] x[d]
 *     y[d]    = sum_n C[n] h[d][n] + D[d] x[d]
 */
TM_INLINE void scan_rows(const tm_ssm_q8 *p, int sigmoid, int right_shift, int32_t d_inner, int32_t d_state,
			 const int8_t *x, const int8_t *dt, const bc_pair *BC, int32_t *h, int16_t *y)
{
	const int32_t rshift = right_shift ? -p->bx_shift : 1; /* 1 .. 24 */
	const int32_t rround = (int32_t)1 << (rshift - 1);
	const int32_t rmult = (int32_t)1 << (31 - rshift); /* 2^(31-s) */
	/* the fields once: the stores to y may alias them */
	const int32_t *A = p->A_q20, *D_mult = p->D_mult, *D_shift = p->D_shift;
	const int32_t x_zp = p->x_zp, dt_zp = p->dt_zp, hc_mult = p->hc_mult, hc_shift = p->hc_shift, y_zp = p->y_zp;
	const int32_t y_lo = tm_y_min(p->y_bits), y_hi = tm_y_max(p->y_bits);
	for (int32_t d = 0; d < d_inner; d++, A += d_state, h += d_state) {
		const int32_t xd = (int32_t)x[d] - x_zp;
		const int32_t dtd = (int32_t)dt[d] - dt_zp;
		const int32_t dtx = dtd * xd; /* |.| <= 255^2 */
		const int32_t ndt = -dtd;
		int64_t acc = 0;
		if (dtd == 0) {
			for (int32_t n = 0; n < d_state; n++) {
				acc += (int64_t)h[n] * BC[n].C;
			}
		} else {
			for (int32_t n = 0; n < d_state; n++) {
				/* dt*A in Q20: the quantiser bounds |A_q20| * 255 < 2^31 */
				const int32_t dA = sigmoid ? sigmoid_minus_one(A[n] * ndt) : decay_minus_one(0, A[n] * dtd);
				const bc_pair bc = BC[n];
				const int32_t hn = h[n];
				/* h Abar = h + round-high(2h dA), |h Abar| <= 2^30, |bx| <= 2^30: the sum fits int32 */
				const int32_t habar = tm_mla_hi_round(hn * 2, dA, hn);
				int32_t hv;
				if (!right_shift) {
					hv = habar + dtx * bc.B;
				} else if (TM_SCAN_ROUND_BY_SMMLAR) {
					hv = tm_mla_hi_round(dtx * bc.B, rmult, habar); /* |dt x 2(q_B - z_B)| < 2^25 */
				} else {
					hv = habar + ((dtx * bc.B + rround) >> rshift);
				}
				hv = tm_sat_i31(hv);
				h[n] = hv;
				acc += (int64_t)hv * bc.C;
			}
		}
		const int32_t yv = tm_rq32(tm_sat_i32(acc), hc_mult, hc_shift);
		const int32_t yd = tm_rq32_small(xd, D_mult[d], D_shift[d]); /* = tm_rq32(xd, ...) */
		y[d] = (int16_t)clamp_y(y_zp, yv, yd, y_lo, y_hi);
	}
}

/* d_state > TM_SSM_CHUNK: the same arithmetic, B and C read in place */
static void scan_wide(const tm_ssm_q8 *p, int sigmoid, int32_t d_inner, int32_t d_state, const int8_t *x,
		      const int8_t *dt, const int8_t *B, const int8_t *C, int32_t *h, int16_t *y)
{
	const int32_t k = p->bx_shift;
	const int64_t y_lo = tm_y_min(p->y_bits), y_hi = tm_y_max(p->y_bits);
	for (int32_t d = 0; d < d_inner; d++) {
		const int32_t xd = (int32_t)x[d] - p->x_zp;
		const int32_t dtd = (int32_t)dt[d] - p->dt_zp;
		int32_t *hd = h + (size_t)d * (size_t)d_state;
		const int32_t *Ad = p->A_q20 + (size_t)d * (size_t)d_state;
		int64_t acc = 0;
		for (int32_t n = 0; n < d_state; n++) {
			const int32_t dA = decay_minus_one(sigmoid, Ad[n] * dtd);
			const int32_t v = dtd * xd * ((int32_t)B[n] - p->B_zp);
			const int32_t bx = k < 0 ? (v + ((int32_t)1 << (-k - 1))) >> -k : v * ((int32_t)1 << k);
			const int32_t hv = tm_sat_i31(tm_mla_hi_round(hd[n] * 2, dA, hd[n]) + bx);
			hd[n] = hv;
			acc += (int64_t)hv * ((int32_t)C[n] - p->C_zp);
		}
		const int64_t s = (int64_t)p->y_zp + tm_rq32(tm_sat_i32(acc), p->hc_mult, p->hc_shift) +
				  tm_rq32_small(xd, p->D_mult[d], p->D_shift[d]);
		y[d] = (int16_t)(s > y_hi ? y_hi : (s < y_lo ? y_lo : s));
	}
}

void tm_ssm_scan_q8_step(const tm_ssm_q8 *p, tm_decay decay, int32_t d_inner, int32_t d_state, const int8_t *x,
			 const int8_t *dt, const int8_t *B, const int8_t *C, int32_t *h, int16_t *y)
{
	const int sigmoid = decay == TM_DECAY_SIGMOID;
	if (d_state > TM_SSM_CHUNK) {
		scan_wide(p, sigmoid, d_inner, d_state, x, dt, B, C, h, y);
		return;
	}
	bc_pair BC[TM_SSM_CHUNK];
	const int right = p->bx_shift < 0;
	for (int32_t n = 0; n < d_state; n++) {
		const int32_t b = (int32_t)B[n] - p->B_zp;
		BC[n].B = right ? (TM_SCAN_ROUND_BY_SMMLAR ? 2 * b : b) : b * ((int32_t)1 << p->bx_shift);
		BC[n].C = (int32_t)C[n] - p->C_zp;
	}
	if (sigmoid) {
		if (right) {
			scan_rows(p, 1, 1, d_inner, d_state, x, dt, BC, h, y);
		} else {
			scan_rows(p, 1, 0, d_inner, d_state, x, dt, BC, h, y);
		}
	} else {
		if (right) {
			scan_rows(p, 0, 1, d_inner, d_state, x, dt, BC, h, y);
		} else {
			scan_rows(p, 0, 0, d_inner, d_state, x, dt, BC, h, y);
		}
	}
}

#endif /* !TFLM_MAMBA_REFERENCE */
