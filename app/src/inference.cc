/* The KWS model in TFLM (builtin ops, or the fused MAMBA_BLOCK custom op with CONFIG_TFLM_MAMBA). */
#include "inference.h"

#include <math.h>
#include <string.h>

#include "kws_model.h"
#include "kws_model_ops.h"
#include "kws_params.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/schema/schema_generated.h"
#if KWS_MODEL_HAS_MAMBA_BLOCK
#include "tflm_mamba_ops.h"
#endif

#include <zephyr/sys/printk.h>

namespace {

constexpr int kFrameValues = KWS_CHANNELS;
constexpr int kWindowValues = KWS_WINDOW_FRAMES * KWS_CHANNELS;

alignas(16) uint8_t arena[CONFIG_KWS_ARENA_BYTES];
tflite::MicroInterpreter *interpreter;
TfLiteTensor *input;
TfLiteTensor *output;

/* The last KWS_WINDOW_FRAMES frames in the model's input type, oldest first. */
#if KWS_MODEL_INPUT_IS_FLOAT
float window_f[kWindowValues];
#else
int8_t window_q[kWindowValues];

int8_t quantize(float x)
{
	float q = roundf(x / input->params.scale) + (float)input->params.zero_point;

	return (int8_t)(q < -128.0f ? -128.0f : (q > 127.0f ? 127.0f : q));
}
#endif

} // namespace

extern "C" int kws_inference_init(size_t *arena_used)
{
	static tflite::MicroMutableOpResolver<KWS_MODEL_NUM_OPS + 1> resolver;
	const tflite::Model *model = tflite::GetModel(kws_model);

	if (model->version() != TFLITE_SCHEMA_VERSION) {
		printk("model schema %u != %d\n", (unsigned)model->version(), TFLITE_SCHEMA_VERSION);
		return -1;
	}
#define KWS_ADD_OP(name) if (resolver.Add##name() != kTfLiteOk) return -2;
	KWS_MODEL_OPS(KWS_ADD_OP)
#undef KWS_ADD_OP
#if KWS_MODEL_HAS_MAMBA_BLOCK
	if (tflm_mamba::AddMambaOps(resolver) != kTfLiteOk) {
		return -2;
	}
#endif
	static tflite::MicroInterpreter interp(model, resolver, arena, sizeof(arena));
	interpreter = &interp;
	if (interpreter->AllocateTensors() != kTfLiteOk) {
		printk("AllocateTensors failed (CONFIG_KWS_ARENA_BYTES=%d)\n", CONFIG_KWS_ARENA_BYTES);
		return -3;
	}
	input = interpreter->input(0);
	output = interpreter->output(0);
	if ((int)input->bytes != kWindowValues * (KWS_MODEL_INPUT_IS_FLOAT ? 4 : 1) ||
	    (int)output->bytes != KWS_NUM_CLASSES * (KWS_MODEL_OUTPUT_IS_FLOAT ? 4 : 1)) {
		printk("model input/output sizes do not match kws_params.h\n");
		return -4;
	}
	*arena_used = interpreter->arena_used_bytes();
	kws_inference_reset();
	return 0;
}

extern "C" void kws_inference_reset(void)
{
#if KWS_MODEL_INPUT_IS_FLOAT
	memset(window_f, 0, sizeof(window_f));
#else
	memset(window_q, quantize(0.0f), sizeof(window_q));
#endif
}

extern "C" void kws_inference_push_frame(const uint16_t *features)
{
#if KWS_MODEL_INPUT_IS_FLOAT
	memmove(window_f, window_f + kFrameValues, sizeof(float) * (kWindowValues - kFrameValues));
	for (int i = 0; i < kFrameValues; i++) {
		window_f[kWindowValues - kFrameValues + i] = features[i] * KWS_FEATURE_SCALE;
	}
#else
	memmove(window_q, window_q + kFrameValues, kWindowValues - kFrameValues);
	for (int i = 0; i < kFrameValues; i++) {
		window_q[kWindowValues - kFrameValues + i] = quantize(features[i] * KWS_FEATURE_SCALE);
	}
#endif
}

extern "C" int kws_inference_run(float *posteriors)
{
#if KWS_MODEL_INPUT_IS_FLOAT
	memcpy(input->data.f, window_f, sizeof(window_f));
#else
	memcpy(input->data.int8, window_q, sizeof(window_q));
#endif
	if (interpreter->Invoke() != kTfLiteOk) {
		return -1;
	}
	float mx = -INFINITY;

	for (int k = 0; k < KWS_NUM_CLASSES; k++) {
#if KWS_MODEL_OUTPUT_IS_FLOAT
		posteriors[k] = output->data.f[k];
#else
		posteriors[k] = (output->data.int8[k] - output->params.zero_point) * output->params.scale;
#endif
		mx = posteriors[k] > mx ? posteriors[k] : mx;
	}
#if !KWS_MODEL_OUTPUT_IS_SOFTMAX
	/* p_k = exp(z_k - max z) / sum_j exp(z_j - max z) */
	float sum = 0.0f;

	for (int k = 0; k < KWS_NUM_CLASSES; k++) {
		posteriors[k] = expf(posteriors[k] - mx);
		sum += posteriors[k];
	}
	for (int k = 0; k < KWS_NUM_CLASSES; k++) {
		posteriors[k] /= sum;
	}
#endif
	return 0;
}
