/*
 * Dense layer y = W x (+ b), W row-major [out][in]. The projections of the block (in_proj,
 * x_proj, dt_proj, out_proj), the stem and the classifier all call this.
 */
#ifndef TFLM_MAMBA_LINEAR_H_
#define TFLM_MAMBA_LINEAR_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* y[o] = b[o] + sum_i W[o][i] x[i]; b may be NULL. y must not alias x. */
void tm_linear_f32(const float *W, const float *b, const float *x, int32_t in, int32_t out, float *y);

/*
 * int8 dense layer with per-output-channel requantisation (see fixed_point.h):
 *
 *     acc[o] = bias[o] + sum_i W[o][i] * x[i]        W symmetric int8, x raw int8
 *     y[o]   = clamp(out_zp + rq32(acc[o], mult[o], shift[o]))
 *
 * The input zero point is folded into bias: bias[o] = round(b[o] / (s_x s_W[o])) - z_x * sum_i W[o][i].
 */
typedef struct {
	const int8_t *W;      /* [out][in] */
	const int32_t *bias;  /* [out], never NULL (it carries the zero-point correction) */
	const int32_t *mult;  /* [out], Q31 multiplier */
	const int32_t *shift; /* [out] */
	int32_t out_zp;
} tm_linear_q8;

void tm_linear_q8_run(const tm_linear_q8 *p, const int8_t *x, int32_t in, int32_t out, int8_t *y);

/*
 * The same layer on int16 inputs (out_proj reads y * act(z), int8 or int16 values stored as
 * int16; ssm_scan.h): acc[o] = bias[o] + sum_i W[o][i] * x[i], y[o] as above. With
 * |x| <= 32767, in <= 256 and |bias| <= 2^30 the int32 sum cannot overflow.
 */
void tm_linear_q16x8_run(const tm_linear_q8 *p, const int16_t *x, int32_t in, int32_t out, int8_t *y);

#ifdef __cplusplus
}
#endif

#endif /* TFLM_MAMBA_LINEAR_H_ */
