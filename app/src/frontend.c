/* The TFLM micro-frontend (tflite-micro: tensorflow/lite/experimental/microfrontend/lib). */
#include "frontend.h"

#include "kws_params.h"
#include "tensorflow/lite/experimental/microfrontend/lib/frontend.h"
#include "tensorflow/lite/experimental/microfrontend/lib/frontend_util.h"

static struct FrontendConfig fe_config;
static struct FrontendState fe_state;
static int fe_ready;

int kws_frontend_init(void)
{
	if (fe_ready) {
		/*
		 * Allocated once: a restart clears the state in place (window, FFT, filterbank and
		 * noise estimates to zero, as a fresh FrontendPopulateState leaves them; the same
		 * as pymicro-features' reset), with no free and malloc per clip.
		 */
		FrontendReset(&fe_state);
		return 0;
	}
	fe_config.window.size_ms = KWS_WINDOW_MS;
	fe_config.window.step_size_ms = KWS_STRIDE_MS;
	fe_config.filterbank.num_channels = KWS_CHANNELS;
	fe_config.filterbank.lower_band_limit = KWS_FE_LOWER_BAND_LIMIT;
	fe_config.filterbank.upper_band_limit = KWS_FE_UPPER_BAND_LIMIT;
	fe_config.noise_reduction.smoothing_bits = KWS_FE_SMOOTHING_BITS;
	fe_config.noise_reduction.even_smoothing = KWS_FE_EVEN_SMOOTHING;
	fe_config.noise_reduction.odd_smoothing = KWS_FE_ODD_SMOOTHING;
	fe_config.noise_reduction.min_signal_remaining = KWS_FE_MIN_SIGNAL_REMAINING;
	fe_config.pcan_gain_control.enable_pcan = KWS_FE_ENABLE_PCAN;
	fe_config.pcan_gain_control.strength = KWS_FE_PCAN_STRENGTH;
	fe_config.pcan_gain_control.offset = KWS_FE_PCAN_OFFSET;
	fe_config.pcan_gain_control.gain_bits = KWS_FE_PCAN_GAIN_BITS;
	fe_config.log_scale.enable_log = KWS_FE_ENABLE_LOG;
	fe_config.log_scale.scale_shift = KWS_FE_LOG_SCALE_SHIFT;
	if (!FrontendPopulateState(&fe_config, &fe_state, KWS_SAMPLE_RATE)) {
		return -1; /* out of heap; fe_ready stays 0 and kws_frontend_push refuses */
	}
	fe_ready = 1;
	return 0;
}

int kws_frontend_push(const int16_t *samples, size_t n,
		      void (*on_frame)(const uint16_t *features, void *user), void *user)
{
	int frames = 0;

	if (!fe_ready) {
		return -1; /* kws_frontend_init failed or was not called: no state to run */
	}
	/* FrontendProcessSamples consumes up to one stride and emits at most one frame a call. */
	while (n > 0) {
		size_t read = 0;
		struct FrontendOutput out = FrontendProcessSamples(&fe_state, samples, n, &read);

		samples += read;
		n -= read;
		if (out.values != NULL && out.size == KWS_CHANNELS) {
			on_frame(out.values, user);
			frames++;
		}
		if (read == 0) {
			break;
		}
	}
	return frames;
}
