/*
 * The KWS model in TFLM (builtin ops, or the fused MAMBA_BLOCK custom op with CONFIG_TFLM_MAMBA).
 *
 * CONFIG_KWS_INFERENCE_WINDOW     every hop: the model on the last KWS_WINDOW_FRAMES frames.
 * CONFIG_KWS_INFERENCE_STREAMING  every hop: ONE step of the streaming model on the hop's
 *                                 KWS_FRAME_STACK frames (the Mamba state lives in the op), then
 *                                 the stream_mean readout (kws_readout.h).
 * tools/mamba_kws/firmware.py (ImageModel) runs exactly this on the host to pick the clips.
 */
#include "inference.h"

#include <float.h>
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
#ifdef CONFIG_KWS_INFERENCE_STREAMING
#include "kws_readout.h"
#endif

#include <zephyr/sys/printk.h>

namespace {

constexpr int kFrameValues = KWS_CHANNELS;
#ifdef CONFIG_KWS_INFERENCE_STREAMING
/* The model input: one step, KWS_FRAME_STACK frames; the output: the last block's h (int8). */
constexpr int kInputValues = KWS_FRAME_STACK * KWS_CHANNELS;
constexpr int kOutputValues = KWS_STREAM_DIM;
#if KWS_MODEL_INPUT_IS_FLOAT || KWS_MODEL_OUTPUT_IS_FLOAT
#error "streaming needs the int8 fused streaming model (tools/fused_tflite.py --streaming --int8)"
#endif
#else
constexpr int kInputValues = KWS_WINDOW_FRAMES * KWS_CHANNELS;
constexpr int kOutputValues = KWS_NUM_CLASSES;
#endif

alignas(16) uint8_t arena[CONFIG_KWS_ARENA_BYTES];
tflite::MicroInterpreter *interpreter;
TfLiteTensor *input;
TfLiteTensor *output;

/*
 * Window: the last KWS_WINDOW_FRAMES frames in the model's input type, oldest first.
 * Streaming: the frames of the current step (filled frame by frame).
 */
#if KWS_MODEL_INPUT_IS_FLOAT
float frames_f[kInputValues];
#else
int8_t frames_q[kInputValues];

int8_t quantize(float x)
{
	float q = roundf(x / input->params.scale) + (float)input->params.zero_point;

	return (int8_t)(q < -128.0f ? -128.0f : (q > 127.0f ? 127.0f : q));
}
#endif

#ifdef CONFIG_KWS_INFERENCE_STREAMING
int step_fill;                                   /* frames of the current step so far */
int8_t ring[KWS_STREAM_STEPS][KWS_STREAM_DIM];   /* the last KWS_STREAM_STEPS step outputs h */
int32_t ring_sum[KWS_STREAM_DIM];
uint32_t steps_seen;
#endif

/* a quantisation scale the arithmetic can use: finite and > 0 (NaN fails both tests) */
bool valid_scale(float s)
{
	return s > 0.0f && s <= FLT_MAX;
}

/* The model's input and output tensors: the types this file reads, usable scales and, for the
 * streaming readout, the scale and zero point baked into kws_readout.h. 0 when they agree. */
int check_tensors(void)
{
	const TfLiteType in_type = KWS_MODEL_INPUT_IS_FLOAT ? kTfLiteFloat32 : kTfLiteInt8;
	const TfLiteType out_type = KWS_MODEL_OUTPUT_IS_FLOAT ? kTfLiteFloat32 : kTfLiteInt8;

	if (input->type != in_type || output->type != out_type) {
		printk("model input/output types %s/%s, expected %s/%s (kws_model_ops.h)\n",
		       TfLiteTypeGetName(input->type), TfLiteTypeGetName(output->type),
		       TfLiteTypeGetName(in_type), TfLiteTypeGetName(out_type));
		return -1;
	}
	if (!KWS_MODEL_INPUT_IS_FLOAT && !valid_scale(input->params.scale)) {
		printk("model input scale is not finite and > 0\n");
		return -1;
	}
	if (!KWS_MODEL_OUTPUT_IS_FLOAT && !valid_scale(output->params.scale)) {
		printk("model output scale is not finite and > 0\n");
		return -1;
	}
#ifdef CONFIG_KWS_INFERENCE_STREAMING
	/* the readout reads h with the header's scale: it must be the tensor's (relative 1e-6) */
	const float s = output->params.scale;

	if (fabsf(s - KWS_STREAM_H_SCALE) > 1e-6f * KWS_STREAM_H_SCALE ||
	    output->params.zero_point != KWS_STREAM_H_ZP) {
		printk("readout scale/zero point %d.%06d/%d in kws_readout.h differ from the model's "
		       "output (regenerate the firmware headers)\n",
		       (int)KWS_STREAM_H_SCALE, (int)((KWS_STREAM_H_SCALE - (int)KWS_STREAM_H_SCALE) * 1e6f),
		       KWS_STREAM_H_ZP);
		return -1;
	}
#endif
	return 0;
}

#if defined(CONFIG_KWS_INFERENCE_STREAMING) || !KWS_MODEL_OUTPUT_IS_SOFTMAX
/* p_k = exp(z_k - max z) / sum_j exp(z_j - max z), in place */
void softmax(float *z, int n)
{
	float mx = -INFINITY;
	float sum = 0.0f;

	for (int k = 0; k < n; k++) {
		mx = z[k] > mx ? z[k] : mx;
	}
	for (int k = 0; k < n; k++) {
		z[k] = expf(z[k] - mx);
		sum += z[k];
	}
	for (int k = 0; k < n; k++) {
		z[k] /= sum;
	}
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
	if ((int)input->bytes != kInputValues * (KWS_MODEL_INPUT_IS_FLOAT ? 4 : 1) ||
	    (int)output->bytes != kOutputValues * (KWS_MODEL_OUTPUT_IS_FLOAT ? 4 : 1)) {
		printk("model input/output sizes do not match kws_params.h\n");
		return -4;
	}
	if (check_tensors() != 0) {
		return -5;
	}
	*arena_used = interpreter->arena_used_bytes();
	kws_inference_reset();
	return 0;
}

extern "C" void kws_inference_reset(void)
{
#ifdef CONFIG_KWS_INFERENCE_STREAMING
	/* MicroInterpreter::Reset: every stateful MAMBA_BLOCK back to the zero state. */
	if (interpreter != nullptr && interpreter->Reset() != kTfLiteOk) {
		/* the state may be stale: the stream goes on, and the console says so */
		printk("interpreter Reset failed: the model state was not cleared\n");
	}
	step_fill = 0;
	steps_seen = 0;
	memset(ring, 0, sizeof(ring));
	memset(ring_sum, 0, sizeof(ring_sum));
#endif
#if KWS_MODEL_INPUT_IS_FLOAT
	memset(frames_f, 0, sizeof(frames_f));
#else
	memset(frames_q, quantize(0.0f), sizeof(frames_q));
#endif
}

extern "C" void kws_inference_push_frame(const uint16_t *features)
{
#ifdef CONFIG_KWS_INFERENCE_STREAMING
	int8_t *dst = frames_q + step_fill * kFrameValues;

	step_fill = (step_fill + 1) % KWS_FRAME_STACK;
#elif KWS_MODEL_INPUT_IS_FLOAT
	float *dst = frames_f + kInputValues - kFrameValues;

	memmove(frames_f, frames_f + kFrameValues, sizeof(float) * (kInputValues - kFrameValues));
#else
	int8_t *dst = frames_q + kInputValues - kFrameValues;

	memmove(frames_q, frames_q + kFrameValues, kInputValues - kFrameValues);
#endif
	for (int i = 0; i < kFrameValues; i++) {
#if KWS_MODEL_INPUT_IS_FLOAT
		dst[i] = features[i] * KWS_FEATURE_SCALE;
#else
		dst[i] = quantize(features[i] * KWS_FEATURE_SCALE);
#endif
	}
}

#ifdef CONFIG_KWS_INFERENCE_STREAMING
/*
 * stream_mean: S_t = sum_{i = t - n + 1 .. t} h_i  (int32; n = min(t + 1, KWS_STREAM_STEPS))
 *              m_t = (S_t / n - zp) * scale,  p_t = softmax(W m_t + b)
 */
static void stream_mean_readout(const int8_t *h, float *posteriors)
{
	const uint32_t slot = steps_seen % KWS_STREAM_STEPS;
	float mean[KWS_STREAM_DIM];

	steps_seen++;
	const float n = (float)(steps_seen < KWS_STREAM_STEPS ? steps_seen : KWS_STREAM_STEPS);

	for (int j = 0; j < KWS_STREAM_DIM; j++) {
		ring_sum[j] += h[j] - ring[slot][j];
		ring[slot][j] = h[j];
		mean[j] = ((float)ring_sum[j] / n - (float)KWS_STREAM_H_ZP) * KWS_STREAM_H_SCALE;
	}
	for (int k = 0; k < KWS_NUM_CLASSES; k++) {
		float z = kws_readout_b[k];

		for (int j = 0; j < KWS_STREAM_DIM; j++) {
			z += kws_readout_w[k][j] * mean[j];
		}
		posteriors[k] = z;
	}
	softmax(posteriors, KWS_NUM_CLASSES);
}
#endif

extern "C" int kws_inference_run(float *posteriors)
{
#if KWS_MODEL_INPUT_IS_FLOAT
	memcpy(input->data.f, frames_f, sizeof(frames_f));
#else
	memcpy(input->data.int8, frames_q, sizeof(frames_q));
#endif
	if (interpreter->Invoke() != kTfLiteOk) {
		return -1;
	}
#ifdef CONFIG_KWS_INFERENCE_STREAMING
	stream_mean_readout(output->data.int8, posteriors);
#else
	for (int k = 0; k < KWS_NUM_CLASSES; k++) {
#if KWS_MODEL_OUTPUT_IS_FLOAT
		posteriors[k] = output->data.f[k];
#else
		posteriors[k] = (output->data.int8[k] - output->params.zero_point) * output->params.scale;
#endif
	}
#if !KWS_MODEL_OUTPUT_IS_SOFTMAX
	softmax(posteriors, KWS_NUM_CLASSES);
#endif
#endif
	return 0;
}
