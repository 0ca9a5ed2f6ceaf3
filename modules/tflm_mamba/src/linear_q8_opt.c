/*
 * The int8 dense layer, optimized: the integers of the reference (linear.c, built with
 * -DTFLM_MAMBA_REFERENCE), computed four output rows at a time so that every load of x serves
 * four rows:
 *
 *     acc[o + r] = bias[o + r] + sum_i W[o + r][i] x[i]        r = 0..3
 *     y[o + r]   = clamp(out_zp + rq32(acc[o + r], mult[o + r], shift[o + r]))
 *
 * With the DSP extension (Cortex-M4/M7/M33: __ARM_FEATURE_DSP) four int8 are sign-extended in
 * pairs by SXTB16 (bytes 0 and 2; rotated by 8: bytes 1 and 3) and multiplied-accumulated in
 * pairs by SMLAD: for each 4 inputs, x is loaded and unpacked once (1 LDR + 2 SXTB16) and each
 * row costs 1 LDR + 2 SXTB16 + 2 SMLAD. Without it (Cortex-M3, the host), one multiply-add per
 * weight, x loaded once for the four rows. Both give the integers of the reference exactly
 * (the int32 sums never overflow: the contract of mamba_block.h bounds |bias| and `in`).
 */
#include "tflm_mamba/linear.h"

#include <stddef.h>

#include "dsp.h"
#include "tflm_mamba/fixed_point.h"

#if !defined(TFLM_MAMBA_REFERENCE)

/* acc += w[0..3] . x[0..3], with x already unpacked into x02 and x13 */
#if TM_DSP
TM_INLINE int32_t dot4_dsp(const int8_t *w, uint32_t x02, uint32_t x13, int32_t acc)
{
	const uint32_t v = tm_load4(w);
	return tm_smlad(tm_sxtb16_ror8(v), x13, tm_smlad(tm_sxtb16(v), x02, acc));
}
#endif

/* acc[r] += W[r] . x for the four rows W[0..3] (row stride `in`) */
TM_INLINE void dot_rows4(const int8_t *W, const int8_t *x, int32_t in, int32_t acc[4])
{
	const int8_t *w0 = W, *w1 = W + in, *w2 = W + 2 * in, *w3 = W + 3 * in;
	const int8_t *const end = x + in;
	int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if TM_DSP
	for (; x + 4 <= end; x += 4, w0 += 4, w1 += 4, w2 += 4, w3 += 4) {
		const uint32_t xv = tm_load4(x);
		const uint32_t x02 = tm_sxtb16(xv), x13 = tm_sxtb16_ror8(xv);
		a0 = dot4_dsp(w0, x02, x13, a0);
		a1 = dot4_dsp(w1, x02, x13, a1);
		a2 = dot4_dsp(w2, x02, x13, a2);
		a3 = dot4_dsp(w3, x02, x13, a3);
	}
#endif
	while (x < end) {
		const int32_t xi = *x++;
		a0 += *w0++ * xi;
		a1 += *w1++ * xi;
		a2 += *w2++ * xi;
		a3 += *w3++ * xi;
	}
	acc[0] = a0;
	acc[1] = a1;
	acc[2] = a2;
	acc[3] = a3;
}

/* w . x for one row */
static int32_t dot_row(const int8_t *w, const int8_t *x, int32_t in)
{
	const int8_t *const end = x + in;
	int32_t a = 0;
#if TM_DSP
	for (; x + 4 <= end; x += 4, w += 4) {
		const uint32_t xv = tm_load4(x);
		a = dot4_dsp(w, tm_sxtb16(xv), tm_sxtb16_ror8(xv), a);
	}
#endif
	while (x < end) {
		a += *w++ * *x++;
	}
	return a;
}

/*
 * A narrow layer (dt_proj: in = dt_rank, 1 to 4): x stays in registers and the inner loop is
 * unrolled for the constant `in` each call site gives.
 */
TM_INLINE void linear_narrow(const tm_linear_q8 *p, const int8_t *x, int32_t in, int32_t out, int8_t *y)
{
	const int8_t *w = p->W;
	const int32_t *bias = p->bias, *mult = p->mult, *shift = p->shift;
	const int32_t zp = p->out_zp;
	int32_t xr[4];
	for (int32_t i = 0; i < in; i++) {
		xr[i] = x[i];
	}
	for (int32_t o = 0; o < out; o++, w += in) {
		int32_t acc = bias[o];
		for (int32_t i = 0; i < in; i++) {
			acc += w[i] * xr[i];
		}
		y[o] = tm_rq8(acc, mult[o], shift[o], zp);
	}
}

/* in = 1..4, each width its own unrolled loop (kept out of line: the 4-row loop below needs
 * every register of tm_linear_q8_run) */
TM_NOINLINE static void linear_narrow_any(const tm_linear_q8 *p, const int8_t *x, int32_t in, int32_t out, int8_t *y)
{
	switch (in) {
	case 1:
		linear_narrow(p, x, 1, out, y);
		break;
	case 2:
		linear_narrow(p, x, 2, out, y);
		break;
	case 3:
		linear_narrow(p, x, 3, out, y);
		break;
	default:
		linear_narrow(p, x, 4, out, y);
		break;
	}
}

void tm_linear_q8_run(const tm_linear_q8 *p, const int8_t *x, int32_t in, int32_t out, int8_t *y)
{
	if (in <= 4) {
		linear_narrow_any(p, x, in, out, y);
		return;
	}

	/* acc = bias + W q_x;  y = out_zp + rq32(acc, mult, shift), four rows at a time. The fields
	 * are read once: stores to y (int8) may alias anything, the compiler would reload them. */
	const int8_t *W = p->W;
	const int32_t *bias = p->bias, *mult = p->mult, *shift = p->shift;
	const int32_t zp = p->out_zp;
	int32_t o = 0;
	for (; o + 4 <= out; o += 4) {
		int32_t acc[4] = {bias[o], bias[o + 1], bias[o + 2], bias[o + 3]};
		dot_rows4(W + (size_t)o * (size_t)in, x, in, acc);
		y[o] = tm_rq8(acc[0], mult[o], shift[o], zp);
		y[o + 1] = tm_rq8(acc[1], mult[o + 1], shift[o + 1], zp);
		y[o + 2] = tm_rq8(acc[2], mult[o + 2], shift[o + 2], zp);
		y[o + 3] = tm_rq8(acc[3], mult[o + 3], shift[o + 3], zp);
	}
	for (; o < out; o++) {
		const int32_t acc = bias[o] + dot_row(W + (size_t)o * (size_t)in, x, in);
		y[o] = tm_rq8(acc, mult[o], shift[o], zp);
	}
}

/*
 * int16 inputs (out_proj reading y * act(z)): the same four rows at a time. With the DSP
 * extension two words of x (x0 x1, x2 x3) are repacked once per four inputs into the pairs
 * SMLAD needs (x0 x2, x1 x3: PKHBT, PKHTB), so each row costs what it costs for int8 inputs.
 */
TM_INLINE void dot16_rows4(const int8_t *W, const int16_t *x, int32_t in, int32_t acc[4])
{
	const int8_t *w0 = W, *w1 = W + in, *w2 = W + 2 * in, *w3 = W + 3 * in;
	const int16_t *const end = x + in;
	int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if TM_DSP
	for (; x + 4 <= end; x += 4, w0 += 4, w1 += 4, w2 += 4, w3 += 4) {
		const uint32_t x01 = tm_load2x16(x), x23 = tm_load2x16(x + 2);
		const uint32_t x02 = tm_pack_lo16(x01, x23), x13 = tm_pack_hi16(x01, x23);
		a0 = dot4_dsp(w0, x02, x13, a0);
		a1 = dot4_dsp(w1, x02, x13, a1);
		a2 = dot4_dsp(w2, x02, x13, a2);
		a3 = dot4_dsp(w3, x02, x13, a3);
	}
#endif
	while (x < end) {
		const int32_t xi = *x++;
		a0 += *w0++ * xi;
		a1 += *w1++ * xi;
		a2 += *w2++ * xi;
		a3 += *w3++ * xi;
	}
	acc[0] = a0;
	acc[1] = a1;
	acc[2] = a2;
	acc[3] = a3;
}

void tm_linear_q16x8_run(const tm_linear_q8 *p, const int16_t *x, int32_t in, int32_t out, int8_t *y)
{
	const int8_t *W = p->W;
	const int32_t *bias = p->bias, *mult = p->mult, *shift = p->shift;
	const int32_t zp = p->out_zp;
	int32_t o = 0;
	for (; o + 4 <= out; o += 4) {
		int32_t acc[4] = {bias[o], bias[o + 1], bias[o + 2], bias[o + 3]};
		dot16_rows4(W + (size_t)o * (size_t)in, x, in, acc);
		y[o] = tm_rq8(acc[0], mult[o], shift[o], zp);
		y[o + 1] = tm_rq8(acc[1], mult[o + 1], shift[o + 1], zp);
		y[o + 2] = tm_rq8(acc[2], mult[o + 2], shift[o + 2], zp);
		y[o + 3] = tm_rq8(acc[3], mult[o + 3], shift[o + 3], zp);
	}
	for (; o < out; o++) {
		const int8_t *w = W + (size_t)o * (size_t)in;
		int32_t acc = bias[o];
		for (int32_t i = 0; i < in; i++) {
			acc += w[i] * x[i];
		}
		y[o] = tm_rq8(acc, mult[o], shift[o], zp);
	}
}

#endif /* !TFLM_MAMBA_REFERENCE */
