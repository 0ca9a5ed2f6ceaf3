/*
 * Mamba keyword spotting: audio (10 ms chunks) -> micro-frontend (one 40-channel frame per 10 ms)
 * -> every KWS_FRAME_STACK frames (one hop, 20 ms) the model: one streaming step, or the whole
 * model on the last 1 s window (CONFIG_KWS_INFERENCE_*) -> smoothed posteriors -> one console line
 * per detection.
 */
#include <zephyr/kernel.h>
#include <zephyr/sys/printk.h>
#include <zephyr/toolchain.h>

#include "audio.h"
#include "detector.h"
#include "frontend.h"
#include "inference.h"
#include "kws_params.h"

static const char *const labels[KWS_NUM_CLASSES] = KWS_LABELS;

static struct kws_detector detector;
static uint32_t samples_seen;  /* since reset: the stream's clock */
static int frames_in_hop;
static uint32_t hops;
static int detections;
static uint64_t infer_cycles, infer_max, fe_cycles;
static uint64_t infer_total; /* never reset: lets on_chunk subtract the inference it triggered */
static uint32_t stat_hops;
static uint32_t infer_errors, frontend_errors; /* since boot: failed Invokes, chunks refused */

/*
 * The audio source's error counters since boot: failed reads, and blocks lost (audio_dmic.c
 * defines it; the built-in clips have none, so this default reports zeros).
 */
void kws_audio_counters(uint32_t *read_errors, uint32_t *dropped_blocks);
__weak void kws_audio_counters(uint32_t *read_errors, uint32_t *dropped_blocks)
{
	*read_errors = 0;
	*dropped_blocks = 0;
}

static void print_stats(void)
{
	uint32_t hz = sys_clock_hw_cycles_per_sec();
	uint32_t read_errors, dropped_blocks;

	if (stat_hops == 0) {
		return;
	}
	kws_audio_counters(&read_errors, &dropped_blocks);
	printk("STATS hops=%u infer_avg_us=%u infer_max_us=%u frontend_us_per_hop=%u "
	       "audio_errors=%u dropped_blocks=%u infer_errors=%u frontend_errors=%u\n", hops,
	       (uint32_t)(infer_cycles * 1000000ull / hz / stat_hops),
	       (uint32_t)(infer_max * 1000000ull / hz),
	       (uint32_t)(fe_cycles * 1000000ull / hz / stat_hops), read_errors, dropped_blocks,
	       infer_errors, frontend_errors);
	infer_cycles = infer_max = fe_cycles = 0;
	stat_hops = 0;
}

void kws_pipeline_reset(void)
{
	/* allocated at boot (main): a restart resets in place and cannot run out of memory */
	if (kws_frontend_init() != 0) {
		printk("front end: restart failed\n");
	}
	kws_inference_reset();
	kws_detector_reset(&detector);
	samples_seen = 0;
	frames_in_hop = 0;
	hops = 0;
	detections = 0;
}

int kws_pipeline_detections(void)
{
	return detections;
}

static void on_frame(const uint16_t *features, void *user)
{
	ARG_UNUSED(user);
	kws_inference_push_frame(features);
	if (++frames_in_hop < KWS_FRAME_STACK) {
		return;
	}
	frames_in_hop = 0;

	float post[KWS_NUM_CLASSES];
	float score = 0.0f;
	uint32_t t0 = k_cycle_get_32();

	if (kws_inference_run(post) != 0) {
		/* counted, printed once: one bad hop must not flood the console or stop listening */
		if (infer_errors++ == 0) {
			printk("inference failed (counted in STATS infer_errors)\n");
		}
		return;
	}
	uint32_t dt = k_cycle_get_32() - t0;

	infer_cycles += dt;
	infer_total += dt;
	infer_max = dt > infer_max ? dt : infer_max;
	stat_hops++;
	hops++;

	int k = kws_detector_update(&detector, post, &score);

	if (k >= 0) {
		detections++;
		int c = (int)(score * 100.0f + 0.5f);

		printk("DETECTED %s score=%d.%02d t=%ums\n", labels[k], c / 100, c % 100,
		       samples_seen / (KWS_SAMPLE_RATE / 1000));
	}
	if (CONFIG_KWS_STATS_EVERY_HOPS > 0 && stat_hops >= CONFIG_KWS_STATS_EVERY_HOPS) {
		print_stats();
	}
}

static void on_chunk(const int16_t *samples, size_t n)
{
	uint32_t t0 = k_cycle_get_32();
	uint64_t before = infer_total;

	samples_seen += n;
	if (kws_frontend_push(samples, n, on_frame, NULL) < 0) {
		frontend_errors++;
	}
	/* front-end time = chunk time minus the inference it triggered */
	fe_cycles += (k_cycle_get_32() - t0) - (infer_total - before);
}

int main(void)
{
	size_t arena_used = 0;
	int ret;

	printk("mamba-kws: model %s (%s, %s), %d classes, window %d frames, hop %d ms\n",
	       KWS_MODEL_NAME, IS_ENABLED(CONFIG_KWS_MODEL_FUSED) ? "fused" : "builtin ops",
	       IS_ENABLED(CONFIG_KWS_INFERENCE_STREAMING) ? "streaming" : "whole window",
	       KWS_NUM_CLASSES, KWS_WINDOW_FRAMES, KWS_HOP_MS);
	if (kws_frontend_init() != 0) {
		printk("front end: out of memory (CONFIG_COMMON_LIBC_MALLOC_ARENA_SIZE)\n");
		return 0;
	}
	ret = kws_inference_init(&arena_used);
	if (ret != 0) {
		printk("model init failed: %d\n", ret);
		return 0;
	}
	printk("arena used %u of %u bytes\n", (unsigned)arena_used, (unsigned)CONFIG_KWS_ARENA_BYTES);
	ret = kws_audio_run(on_chunk);
	print_stats();
	printk("done (%d)\n", ret);
	return 0;
}
