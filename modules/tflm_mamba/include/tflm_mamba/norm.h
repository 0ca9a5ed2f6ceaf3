/* Normalisation before each block and at the end (float; int8 folds the affine norm away). */
#ifndef TFLM_MAMBA_NORM_H_
#define TFLM_MAMBA_NORM_H_

#include <stdint.h>

#include "tflm_mamba/config.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y may alias x. weight/bias unused where the kind does not need them. */
void tm_norm_f32(tm_norm kind, const float *weight, const float *bias, float eps, const float *x, int32_t d,
		 float *y);

/*
 * int8 RMSNorm, y = x / sqrt(mean(x^2) + eps) * w, with x = s_x (q - z_x) (the scale cancels):
 *
 *     r_i = q_i - in_zp;   R = rsqrt_q30(sum_i r_i^2 + eps_q)         eps_q = round(d eps / s_x^2)
 *     y_i = clamp(out_zp + rq32(round(r_i R / 2^15), mult[i], shift[i]))
 *                                                  mult, shift: w_i sqrt(d) / (s_y 2^15)
 */
typedef struct {
	int32_t in_zp;
	int32_t eps_q;        /* in [0, 2^30] */
	const int32_t *mult;  /* [d] */
	const int32_t *shift; /* [d] */
	int32_t out_zp;
} tm_rmsnorm_q8;

/* d <= 256; y may alias x. */
void tm_rmsnorm_q8_run(const tm_rmsnorm_q8 *p, const int8_t *x, int32_t d, int8_t *y);

#ifdef __cplusplus
}
#endif

#endif /* TFLM_MAMBA_NORM_H_ */
