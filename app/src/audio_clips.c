/* Built-in clips (QEMU): each clip from a reset pipeline, in 10 ms chunks, then a silent tail. */
#include <string.h>

#include <zephyr/kernel.h>
#include <zephyr/sys/printk.h>

#include "audio.h"
#include "kws_clips.h" /* the clip table; the samples come from app/clips/ at build time */

int kws_audio_run(kws_chunk_fn on_chunk)
{
	static const int16_t silence[KWS_CHUNK_SAMPLES];
	static int16_t chunk[KWS_CHUNK_SAMPLES];
	const uint32_t tail_chunks = CONFIG_KWS_CLIP_TAIL_MS / 10;

	for (int i = 0; i < kws_num_clips; i++) {
		const struct kws_clip *c = &kws_clips[i];

		kws_pipeline_reset();
		printk("CLIP %d %s samples=%u\n", i, c->name, (unsigned)c->len);
		for (uint32_t pos = 0; pos + KWS_CHUNK_SAMPLES <= c->len; pos += KWS_CHUNK_SAMPLES) {
			/* int16 little-endian bytes, as the Cortex-M reads them */
			memcpy(chunk, c->pcm + 2 * pos, sizeof(chunk));
			on_chunk(chunk, KWS_CHUNK_SAMPLES);
		}
		for (uint32_t j = 0; j < tail_chunks; j++) {
			on_chunk(silence, KWS_CHUNK_SAMPLES);
		}
		printk("CLIP_END %d %s detections=%d\n", i, c->name, kws_pipeline_detections());
	}
	printk("ALL_CLIPS_DONE\n");
	return 0;
}
