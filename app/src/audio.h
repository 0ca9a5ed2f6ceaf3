/* Audio sources: the PDM microphone (audio_dmic.c) or the built-in clips (audio_clips.c). */
#ifndef KWS_AUDIO_H_
#define KWS_AUDIO_H_

#include <stddef.h>
#include <stdint.h>

/* 10 ms at 16 kHz: the chunk every source delivers. */
#define KWS_CHUNK_SAMPLES 160

typedef void (*kws_chunk_fn)(const int16_t *samples, size_t n);

/* Deliver audio to on_chunk in KWS_CHUNK_SAMPLES chunks; returns when the source ends (<0: error). */
int kws_audio_run(kws_chunk_fn on_chunk);

/* Provided by main.c: restart the pipeline (front end, window, detector, clock). */
void kws_pipeline_reset(void);
/* Provided by main.c: detections since the last reset. */
int kws_pipeline_detections(void);

#endif /* KWS_AUDIO_H_ */
