/* Pre-block normalisation, float (norm.h). */
#include "tflm_mamba/norm.h"

#include <math.h>

#include "tflm_mamba/fixed_point.h"

void tm_norm_f32(tm_norm kind, const float *weight, const float *bias, float eps, const float *x, int32_t d,
		 float *y)
{
	if (kind == TM_NORM_RMSNORM) {
		/* y = x / sqrt(mean(x^2) + eps) * weight */
		float ss = 0.0f;
		for (int32_t i = 0; i < d; i++) {
			ss += x[i] * x[i];
		}
		const float r = 1.0f / sqrtf(ss / (float)d + eps);
		for (int32_t i = 0; i < d; i++) {
			y[i] = x[i] * r * weight[i];
		}
	} else if (kind == TM_NORM_AFFINE) {
		/* y = weight * x + bias (batchnorm with its running statistics folded in) */
		for (int32_t i = 0; i < d; i++) {
			y[i] = weight[i] * x[i] + bias[i];
		}
	} else {
		for (int32_t i = 0; i < d; i++) {
			y[i] = x[i];
		}
	}
}

void tm_rmsnorm_q8_run(const tm_rmsnorm_q8 *p, const int8_t *x, int32_t d, int8_t *y)
{
	/* ss = sum r^2 (<= 256 * 255^2 < 2^24);  R = 2^30 / sqrt(ss + eps_q) */
	int32_t ss = 0;
	for (int32_t i = 0; i < d; i++) {
		const int32_t r = (int32_t)x[i] - p->in_zp;
		ss += r * r;
	}
	const int32_t R = tm_rsqrt_q30(ss + p->eps_q);
	/* y = out_zp + rq32(round(r R / 2^15)) */
	for (int32_t i = 0; i < d; i++) {
		const int32_t r = (int32_t)x[i] - p->in_zp;
		const int32_t t = (int32_t)(((int64_t)r * R + (1 << 14)) >> 15); /* |.| <= 2^23 */
		y[i] = tm_rq8(t, p->mult[i], p->shift[i], p->out_zp);
	}
}
