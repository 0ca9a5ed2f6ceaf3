/* The TFLM micro-frontend configured exactly like pymicro-features (constants in kws_params.h). */
#ifndef KWS_FRONTEND_H_
#define KWS_FRONTEND_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Start (or restart) the front end; allocates its state once with malloc. 0 on success. */
int kws_frontend_init(void);

/*
 * Feed int16 samples; for every completed 10 ms frame calls on_frame(features, user) with
 * KWS_CHANNELS uint16 values (pymicro-features' float = value * KWS_FEATURE_SCALE).
 * Returns the number of frames completed.
 */
int kws_frontend_push(const int16_t *samples, size_t n,
		      void (*on_frame)(const uint16_t *features, void *user), void *user);

#ifdef __cplusplus
}
#endif

#endif /* KWS_FRONTEND_H_ */
