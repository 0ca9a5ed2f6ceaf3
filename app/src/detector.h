/* The detection policy of mamba_kws.detection, one hop at a time (parameters in kws_params.h). */
#ifndef KWS_DETECTOR_H_
#define KWS_DETECTOR_H_

#include "kws_params.h"

#ifdef __cplusplus
extern "C" {
#endif

struct kws_detector {
	float ring[KWS_SMOOTHING_HOPS][KWS_NUM_CLASSES];
	float sum[KWS_NUM_CLASSES];
	unsigned int seen;  /* hops since reset */
	unsigned int quiet; /* hops left in which nothing may fire */
};

void kws_detector_reset(struct kws_detector *d);

/*
 * Add one hop's posteriors; returns the label index that fires, or -1. *score gets its smoothed
 * posterior.
 */
int kws_detector_update(struct kws_detector *d, const float *posteriors, float *score);

#ifdef __cplusplus
}
#endif

#endif /* KWS_DETECTOR_H_ */
