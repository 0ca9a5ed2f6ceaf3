/*
 * PDM microphone through Zephyr's DMIC API: 16 kHz mono, 100 ms blocks, fed on in 10 ms chunks.
 * Listening never ends on a read error: each is counted (STATS audio_errors), a block that is
 * lost (a failed read, or no buffer) is counted as dropped (STATS dropped_blocks), and after a
 * run of failed reads the stream is restarted.
 */
#include <zephyr/audio/dmic.h>
#include <zephyr/device.h>
#include <zephyr/kernel.h>
#include <zephyr/sys/printk.h>

#include "audio.h"
#include "kws_params.h"

#define BLOCK_SAMPLES (KWS_SAMPLE_RATE / 10)
#define BLOCK_BYTES   (BLOCK_SAMPLES * sizeof(int16_t))
#define BLOCK_COUNT   4
#define READ_TIMEOUT_MS 1000
/* failed reads in a row before the stream is stopped and started again */
#define RESTART_AFTER_ERRORS 3
/* the first error and every this many after it are printed */
#define PRINT_EVERY_ERRORS 100

static uint32_t read_errors, dropped_blocks;

/* STATS (main.c): the counters since boot */
void kws_audio_counters(uint32_t *errors, uint32_t *dropped);
void kws_audio_counters(uint32_t *errors, uint32_t *dropped)
{
	*errors = read_errors;
	*dropped = dropped_blocks;
}

/* Stop and start the stream after a run of failed reads; backs off while the start fails. */
static void restart_stream(const struct device *dmic)
{
	int ret;

	(void)dmic_trigger(dmic, DMIC_TRIGGER_STOP);
	ret = dmic_trigger(dmic, DMIC_TRIGGER_START);
	if (ret < 0) {
		printk("DMIC restart failed: %d (retrying)\n", ret);
		k_sleep(K_MSEC(READ_TIMEOUT_MS));
	}
}

K_MEM_SLAB_DEFINE_STATIC(dmic_slab, BLOCK_BYTES, BLOCK_COUNT, 4);

int kws_audio_run(kws_chunk_fn on_chunk)
{
	const struct device *const dmic = DEVICE_DT_GET(DT_NODELABEL(dmic_dev));
	struct pcm_stream_cfg stream = {
		.pcm_rate = KWS_SAMPLE_RATE,
		.pcm_width = 16,
		.block_size = BLOCK_BYTES,
		.mem_slab = &dmic_slab,
	};
	struct dmic_cfg cfg = {
		.io = {
			.min_pdm_clk_freq = 1000000,
			.max_pdm_clk_freq = 3500000,
			.min_pdm_clk_dc = 40,
			.max_pdm_clk_dc = 60,
		},
		.streams = &stream,
		.channel = {
			.req_num_streams = 1,
			.req_num_chan = 1,
		},
	};
	int ret;

	if (!device_is_ready(dmic)) {
		printk("DMIC %s not ready\n", dmic->name);
		return -ENODEV;
	}
	cfg.channel.req_chan_map_lo = dmic_build_channel_map(0, 0, PDM_CHAN_LEFT);
	ret = dmic_configure(dmic, &cfg);
	if (ret < 0) {
		printk("DMIC configure failed: %d\n", ret);
		return ret;
	}
	ret = dmic_trigger(dmic, DMIC_TRIGGER_START);
	if (ret < 0) {
		printk("DMIC start failed: %d\n", ret);
		return ret;
	}
	kws_pipeline_reset();
	printk("listening (PDM, %d Hz)\n", KWS_SAMPLE_RATE);
	for (uint32_t in_a_row = 0;;) {
		void *buf = NULL;
		uint32_t size = 0;

		ret = dmic_read(dmic, 0, &buf, &size, READ_TIMEOUT_MS);
		if (ret < 0) {
			/* a timeout or an overrun: the audio of this block is lost, listening goes on */
			if (read_errors % PRINT_EVERY_ERRORS == 0) {
				printk("DMIC read failed: %d (errors so far %u)\n", ret, read_errors + 1);
			}
			read_errors++;
			dropped_blocks++;
			if (++in_a_row >= RESTART_AFTER_ERRORS) {
				restart_stream(dmic);
				in_a_row = 0;
			}
			continue;
		}
		in_a_row = 0;
		if (buf == NULL) {
			dropped_blocks++;
			continue;
		}
		const int16_t *s = buf;
		size_t n = size / sizeof(int16_t);

		for (size_t pos = 0; pos + KWS_CHUNK_SAMPLES <= n; pos += KWS_CHUNK_SAMPLES) {
			on_chunk(s + pos, KWS_CHUNK_SAMPLES);
		}
		k_mem_slab_free(&dmic_slab, buf);
	}
}
