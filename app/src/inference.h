/* The KWS model in TFLM: feature frames in, posteriors out, one hop at a time (window or streaming). */
#ifndef KWS_INFERENCE_H_
#define KWS_INFERENCE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Set up the interpreter; 0 on success. *arena_used gets the arena bytes TFLM used. */
int kws_inference_init(size_t *arena_used);

/*
 * Append one frame (KWS_CHANNELS uint16 front-end values): to the window (oldest drops out), or
 * (streaming) to the current step's KWS_FRAME_STACK frames.
 */
void kws_inference_push_frame(const uint16_t *features);

/* Zero features in the window / a zero model state and an empty readout (as the host starts). */
void kws_inference_reset(void);

/* Run one hop (the window, or one streaming step); posteriors (KWS_NUM_CLASSES, softmax). 0 on success. */
int kws_inference_run(float *posteriors);

#ifdef __cplusplus
}
#endif

#endif /* KWS_INFERENCE_H_ */
