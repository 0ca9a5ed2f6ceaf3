#include "detector.h"

#include <string.h>

static const unsigned char fires[KWS_NUM_CLASSES] = KWS_FIRES;
static const float thresholds[KWS_NUM_CLASSES] = KWS_THRESHOLDS;

void kws_detector_reset(struct kws_detector *d)
{
	memset(d, 0, sizeof(*d));
}

/*
 * s_t = (1 / W') * sum_{i = t - W' + 1 .. t} p_i          W' = min(W, hops seen since reset)
 * k_t = argmax_{k keyword, s_t[k] >= thr[k]} s_t[k]       (_silence_ / _unknown_ never fire)
 * fire k_t unless a detection happened in the last S hops
 */
int kws_detector_update(struct kws_detector *d, const float *posteriors, float *score)
{
	unsigned int slot = d->seen % KWS_SMOOTHING_HOPS;
	unsigned int n;
	int best = -1;
	float best_s = 0.0f;

	for (int k = 0; k < KWS_NUM_CLASSES; k++) {
		d->sum[k] += posteriors[k] - d->ring[slot][k];
		d->ring[slot][k] = posteriors[k];
	}
	d->seen++;
	if (d->quiet > 0) {
		d->quiet--;
		return -1;
	}
	n = d->seen < KWS_SMOOTHING_HOPS ? d->seen : KWS_SMOOTHING_HOPS;
	for (int k = 0; k < KWS_NUM_CLASSES; k++) {
		float s = d->sum[k] / (float)n;

		if (fires[k] && s >= thresholds[k] && (best < 0 || s > best_s)) {
			best = k;
			best_s = s;
		}
	}
	if (best >= 0) {
		d->quiet = KWS_SUPPRESSION_HOPS;
		*score = best_s;
	}
	return best;
}
