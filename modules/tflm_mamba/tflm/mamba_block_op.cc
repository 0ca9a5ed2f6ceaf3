// MAMBA_BLOCK: the TFLM adapter of tflm_mamba/mamba_block.h (see tflm_mamba_ops.h).
//
// Init     parses the custom options (mamba_block_options.h).
// Prepare  checks every tensor's type and shape against the options and says why it refuses
//          (MicroPrintf + kTfLiteError); allocates the persistent state and requests the
//          scratch buffer in the arena.
// Eval     points the C weight struct at the tensors and runs the block: no checks, no
//          allocation.
// Reset    (MicroInterpreter::Reset) clears the streaming state.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mamba_block_options.h"
#include "mamba_block_tensors.h"
#include "tflm_mamba_ops.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "tensorflow/lite/micro/micro_utils.h"
#include "tflm_mamba/mamba_block.h"

namespace tflm_mamba {
namespace {

// Kconfig TFLM_MAMBA_FLOAT / TFLM_MAMBA_INT8; outside Zephyr both paths are built.
#if defined(CONFIG_TFLM_MAMBA)
#if defined(CONFIG_TFLM_MAMBA_FLOAT)
constexpr bool kWithF32 = true;
#else
constexpr bool kWithF32 = false;
#endif
#if defined(CONFIG_TFLM_MAMBA_INT8)
constexpr bool kWithQ8 = true;
#else
constexpr bool kWithQ8 = false;
#endif
#else
constexpr bool kWithF32 = true;
constexpr bool kWithQ8 = true;
#endif

struct OpData {
  MambaBlockOptions options;
  TfLiteType type;  // kTfLiteFloat32 or kTfLiteInt8, from the input
  int32_t steps;    // L: elements of u / d_model
  void* state_mem;  // persistent, tm_block_*_state_bytes
  tm_block_f32_state f32_state;
  tm_block_q8_state q8_state;
  int scratch_index;
};

void* Init(TfLiteContext* context, const char* buffer, size_t length) {
  OpData* data = static_cast<OpData*>(
      context->AllocatePersistentBuffer(context, sizeof(OpData)));
  if (data == nullptr) return nullptr;
  // The arena is not cleared between interpreters: start from a known OpData.
  memset(data, 0, sizeof(*data));
  ParseMambaBlockOptions(buffer, length, &data->options);
  return data;
}

// ------------------------------------------------------------------ Prepare's checks

// Checks one input against an expected type and shape (rows x cols; rows 0 = a vector).
// An optional input (index -1) passes when `optional` is set.
TfLiteStatus CheckWeight(TfLiteContext* context, TfLiteNode* node, int index,
                         const char* name, TfLiteType type, int rows, int cols,
                         bool optional = false) {
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  TfLiteTensor* t = micro_context->AllocateTempInputTensor(node, index);
  if (t == nullptr) {
    if (optional) return kTfLiteOk;
    MicroPrintf("MAMBA_BLOCK: input %d (%s) is missing", index, name);
    return kTfLiteError;
  }
  TfLiteStatus status = kTfLiteOk;
  const int want_dims = rows > 0 ? 2 : 1;
  const TfLiteIntArray* dims = t->dims;
  if (t->type != type) {
    MicroPrintf("MAMBA_BLOCK: input %d (%s) must be %s, got %s", index, name,
                TfLiteTypeGetName(type), TfLiteTypeGetName(t->type));
    status = kTfLiteError;
  } else if (dims->size != want_dims ||
             (rows > 0 && (dims->data[0] != rows || dims->data[1] != cols)) ||
             (rows == 0 && dims->data[0] != cols)) {
    if (rows > 0) {
      MicroPrintf("MAMBA_BLOCK: input %d (%s) must have shape [%d, %d]", index,
                  name, rows, cols);
    } else {
      MicroPrintf("MAMBA_BLOCK: input %d (%s) must have shape [%d]", index,
                  name, cols);
    }
    status = kTfLiteError;
  }
  micro_context->DeallocateTempTfLiteTensor(t);
  return status;
}

TfLiteStatus CheckF32Weights(TfLiteContext* context, TfLiteNode* node,
                             const MambaBlockOptions& o) {
  const tm_block_config& c = o.cfg;
  const bool no_norm = c.norm == TM_NORM_NONE;
  const bool no_bias = c.norm != TM_NORM_AFFINE;
  const TfLiteType f = kTfLiteFloat32;
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kF32NormWeight,
                                         "norm_weight", f, 0, c.d_model, no_norm));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kF32NormBias,
                                         "norm_bias", f, 0, c.d_model, no_bias));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kF32InProjW, "in_proj_w",
                                         f, 2 * c.d_inner, c.d_model));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kF32ConvW, "conv_w", f,
                                         c.d_inner, c.d_conv));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kF32ConvB, "conv_b", f,
                                         0, c.d_inner));
  TF_LITE_ENSURE_OK(context,
                    CheckWeight(context, node, kF32XProjW, "x_proj_w", f,
                                c.dt_rank + 2 * c.d_state, c.d_inner));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kF32DtProjW,
                                         "dt_proj_w", f, c.d_inner, c.dt_rank));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kF32DtProjB,
                                         "dt_proj_b", f, 0, c.d_inner));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kF32A, "A", f,
                                         c.d_inner, c.d_state));
  TF_LITE_ENSURE_OK(context,
                    CheckWeight(context, node, kF32D, "D", f, 0, c.d_inner));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kF32OutProjW,
                                         "out_proj_w", f, c.d_model, c.d_inner));
  return kTfLiteOk;
}

// A layer: W int8 [out, in] and params int32 [3, out].
TfLiteStatus CheckQ8Layer(TfLiteContext* context, TfLiteNode* node, int w_index,
                          const char* name, int out, int in) {
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, w_index, name,
                                         kTfLiteInt8, out, in));
  return CheckWeight(context, node, w_index + 1, name, kTfLiteInt32, 3, out);
}

TfLiteStatus CheckQ8Weights(TfLiteContext* context, TfLiteNode* node,
                            const MambaBlockOptions& o) {
  const tm_block_config& c = o.cfg;
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8InProjXW,
                                          "in_proj_x", c.d_inner, c.d_model));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8InProjZW,
                                          "in_proj_z", c.d_inner, c.d_model));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8ConvW, "conv",
                                          c.d_inner, c.d_conv));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8XProjDtW,
                                          "x_proj_dt", c.dt_rank, c.d_inner));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8XProjBW, "x_proj_B",
                                          c.d_state, c.d_inner));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8XProjCW, "x_proj_C",
                                          c.d_state, c.d_inner));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8DtProjW, "dt_proj",
                                          c.d_inner, c.dt_rank));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8OutProjW,
                                          "out_proj", c.d_model, c.d_inner));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kQ8Luts, "luts",
                                         kTfLiteInt8, 3, 256));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kQ8AQ20, "A_q20",
                                         kTfLiteInt32, c.d_inner, c.d_state));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kQ8D, "D",
                                         kTfLiteInt32, 2, c.d_inner));
  return kTfLiteOk;
}

// u and out: same type, same shape, last dimension d_model, batch 1.
TfLiteStatus CheckInputOutput(TfLiteContext* context, TfLiteNode* node,
                              OpData* data) {
  tflite::MicroContext* micro_context = tflite::GetMicroContext(context);
  const MambaBlockOptions& o = data->options;
  TfLiteTensor* u = micro_context->AllocateTempInputTensor(node, 0);
  TfLiteTensor* out = micro_context->AllocateTempOutputTensor(node, 0);
  TfLiteStatus status = kTfLiteError;
  const TfLiteIntArray* dims = u != nullptr ? u->dims : nullptr;
  if (u == nullptr || out == nullptr) {
    MicroPrintf("MAMBA_BLOCK: needs an input u and an output");
  } else if (u->type != kTfLiteFloat32 && u->type != kTfLiteInt8) {
    MicroPrintf("MAMBA_BLOCK: u must be float32 or int8, got %s",
                TfLiteTypeGetName(u->type));
  } else if (out->type != u->type) {
    MicroPrintf("MAMBA_BLOCK: output must be %s like u, got %s",
                TfLiteTypeGetName(u->type), TfLiteTypeGetName(out->type));
  } else if (dims->size < 2 || dims->size > 3 || dims->data[0] != 1 ||
             dims->data[dims->size - 1] != o.cfg.d_model) {
    MicroPrintf("MAMBA_BLOCK: u must be [1, L, %d] or [1, %d] (d_model %d)",
                o.cfg.d_model, o.cfg.d_model, o.cfg.d_model);
  } else if (tflite::ElementCount(*out->dims) != tflite::ElementCount(*dims)) {
    MicroPrintf("MAMBA_BLOCK: output must have the shape of u");
  } else if (u->type == kTfLiteInt8 && !o.has_q8) {
    MicroPrintf("MAMBA_BLOCK: an int8 block needs custom option '%s'",
                o.missing_q8_key);
  } else if (u->type == kTfLiteInt8 &&
             (u->params.zero_point != o.q8.in_zp ||
              out->params.zero_point != o.q8.out_zp)) {
    MicroPrintf(
        "MAMBA_BLOCK: zero points of u / out (%d / %d) differ from the "
        "options in_zp / out_zp (%d / %d)",
        static_cast<int>(u->params.zero_point),
        static_cast<int>(out->params.zero_point),
        static_cast<int>(o.q8.in_zp), static_cast<int>(o.q8.out_zp));
  } else {
    data->type = u->type;
    data->steps = dims->size == 3 ? dims->data[1] : 1;
    status = kTfLiteOk;
  }
  if (u != nullptr) micro_context->DeallocateTempTfLiteTensor(u);
  if (out != nullptr) micro_context->DeallocateTempTfLiteTensor(out);
  return status;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  OpData* data = static_cast<OpData*>(node->user_data);
  TF_LITE_ENSURE(context, data != nullptr);
  const MambaBlockOptions& o = data->options;
  if (o.error != nullptr) {
    MicroPrintf("MAMBA_BLOCK: custom option '%s' %s", o.error_key, o.error);
    return kTfLiteError;
  }
  TF_LITE_ENSURE_OK(context, CheckInputOutput(context, node, data));
  if (node->outputs->size != 1) {
    MicroPrintf("MAMBA_BLOCK: has 1 output, got %d", node->outputs->size);
    return kTfLiteError;
  }
  const bool is_f32 = data->type == kTfLiteFloat32;
  if ((is_f32 && !kWithF32) || (!is_f32 && !kWithQ8)) {
    MicroPrintf("MAMBA_BLOCK: the %s kernels are not built (Kconfig %s)",
                TfLiteTypeGetName(data->type),
                is_f32 ? "TFLM_MAMBA_FLOAT" : "TFLM_MAMBA_INT8");
    return kTfLiteError;
  }
  const int want_inputs = is_f32 ? static_cast<int>(kF32NumInputs)
                                  : static_cast<int>(kQ8NumInputs);
  if (node->inputs->size != want_inputs) {
    MicroPrintf("MAMBA_BLOCK: a %s block has %d inputs, got %d",
                TfLiteTypeGetName(data->type), want_inputs, node->inputs->size);
    return kTfLiteError;
  }
  size_t state_bytes = 0;
  size_t scratch_bytes = 0;
  if (kWithF32 && is_f32) {
    TF_LITE_ENSURE_OK(context, CheckF32Weights(context, node, o));
    state_bytes = tm_block_f32_state_bytes(&o.cfg);
    scratch_bytes = tm_block_f32_scratch_bytes(&o.cfg);
  } else {
    if (o.cfg.norm == TM_NORM_RMSNORM) {
      MicroPrintf(
          "MAMBA_BLOCK: int8 has no rmsnorm (use norm 'none': batchnorm is "
          "folded into in_proj)");
      return kTfLiteError;
    }
    TF_LITE_ENSURE_OK(context, CheckQ8Weights(context, node, o));
    state_bytes = tm_block_q8_state_bytes(&o.cfg);
    scratch_bytes = tm_block_q8_scratch_bytes(&o.cfg);
  }
  // The state outlives Invoke (streaming), so it is persistent, not scratch.
  if (data->state_mem == nullptr) {
    data->state_mem = context->AllocatePersistentBuffer(context, state_bytes);
    if (data->state_mem == nullptr) {
      MicroPrintf("MAMBA_BLOCK: no room in the arena for %u bytes of state",
                  static_cast<unsigned>(state_bytes));
      return kTfLiteError;
    }
    if (kWithF32 && is_f32) {
      tm_block_f32_state_bind(&o.cfg, &data->f32_state, data->state_mem);
    } else {
      tm_block_q8_state_bind(&o.cfg, &o.q8, &data->q8_state, data->state_mem);
    }
  }
  return context->RequestScratchBufferInArena(context, scratch_bytes,
                                              &data->scratch_index);
}

// ------------------------------------------------------------------ Eval

template <typename T>
const T* Input(TfLiteContext* context, TfLiteNode* node, int index) {
  const TfLiteEvalTensor* t = tflite::micro::GetEvalInput(context, node, index);
  return t == nullptr ? nullptr : tflite::micro::GetTensorData<T>(t);
}

void BindLayer(TfLiteContext* context, TfLiteNode* node, int w_index, int out,
               tm_linear_q8* layer) {
  const int32_t* params = Input<int32_t>(context, node, w_index + 1);
  layer->W = Input<int8_t>(context, node, w_index);
  layer->bias = params + kParamBias * out;
  layer->mult = params + kParamMult * out;
  layer->shift = params + kParamShift * out;
}

TfLiteStatus EvalF32(TfLiteContext* context, TfLiteNode* node, OpData* data,
                     void* scratch) {
  const MambaBlockOptions& o = data->options;
  tm_block_f32_weights w;
  w.norm_weight = Input<float>(context, node, kF32NormWeight);
  w.norm_bias = Input<float>(context, node, kF32NormBias);
  w.norm_eps = o.norm_eps;
  w.in_proj_w = Input<float>(context, node, kF32InProjW);
  w.conv_w = Input<float>(context, node, kF32ConvW);
  w.conv_b = Input<float>(context, node, kF32ConvB);
  w.x_proj_w = Input<float>(context, node, kF32XProjW);
  w.dt_proj_w = Input<float>(context, node, kF32DtProjW);
  w.dt_proj_b = Input<float>(context, node, kF32DtProjB);
  w.A = Input<float>(context, node, kF32A);
  w.D = Input<float>(context, node, kF32D);
  w.out_proj_w = Input<float>(context, node, kF32OutProjW);
  if (!o.stateful) tm_block_f32_reset(&o.cfg, &data->f32_state);
  TfLiteEvalTensor* out = tflite::micro::GetEvalOutput(context, node, 0);
  tm_block_f32_run(&o.cfg, &w, &data->f32_state,
                   Input<float>(context, node, kF32U), data->steps,
                   tflite::micro::GetTensorData<float>(out), scratch);
  return kTfLiteOk;
}

TfLiteStatus EvalQ8(TfLiteContext* context, TfLiteNode* node, OpData* data,
                    void* scratch) {
  const MambaBlockOptions& o = data->options;
  const tm_block_config& c = o.cfg;
  tm_block_q8_weights w = o.q8;  // the scalars; the arrays are the tensors
  BindLayer(context, node, kQ8InProjXW, c.d_inner, &w.in_proj_x);
  BindLayer(context, node, kQ8InProjZW, c.d_inner, &w.in_proj_z);
  const int32_t* conv = Input<int32_t>(context, node, kQ8ConvParams);
  w.conv.w = Input<int8_t>(context, node, kQ8ConvW);
  w.conv.bias = conv + kParamBias * c.d_inner;
  w.conv.mult = conv + kParamMult * c.d_inner;
  w.conv.shift = conv + kParamShift * c.d_inner;
  BindLayer(context, node, kQ8XProjDtW, c.dt_rank, &w.x_proj_dt);
  BindLayer(context, node, kQ8XProjBW, c.d_state, &w.x_proj_B);
  BindLayer(context, node, kQ8XProjCW, c.d_state, &w.x_proj_C);
  BindLayer(context, node, kQ8DtProjW, c.d_inner, &w.dt_proj);
  BindLayer(context, node, kQ8OutProjW, c.d_model, &w.out_proj);
  const int8_t* luts = Input<int8_t>(context, node, kQ8Luts);
  w.conv_act_lut = luts + kLutConvAct * 256;
  w.dt_act_lut = luts + kLutDtAct * 256;
  w.gate_act_lut = luts + kLutGateAct * 256;
  const int32_t* d = Input<int32_t>(context, node, kQ8D);
  w.ssm.A_q20 = Input<int32_t>(context, node, kQ8AQ20);
  w.ssm.D_mult = d;
  w.ssm.D_shift = d + c.d_inner;
  if (!o.stateful) tm_block_q8_reset(&c, &w, &data->q8_state);
  TfLiteEvalTensor* out = tflite::micro::GetEvalOutput(context, node, 0);
  tm_block_q8_run(&c, &w, &data->q8_state, Input<int8_t>(context, node, kQ8U),
                  data->steps, tflite::micro::GetTensorData<int8_t>(out),
                  scratch);
  return kTfLiteOk;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
  OpData* data = static_cast<OpData*>(node->user_data);
  void* scratch = context->GetScratchBuffer(context, data->scratch_index);
  if (kWithF32 && data->type == kTfLiteFloat32) {
    return EvalF32(context, node, data, scratch);
  }
  if (kWithQ8 && data->type == kTfLiteInt8) {
    return EvalQ8(context, node, data, scratch);
  }
  return kTfLiteError;  // Prepare refused it already
}

// MicroInterpreter::Reset(): a new stream starts from the zero state.
void Reset(TfLiteContext* context, void* buffer) {
  (void)context;
  OpData* data = static_cast<OpData*>(buffer);
  if (data == nullptr || data->state_mem == nullptr) return;
  if (kWithF32 && data->type == kTfLiteFloat32) {
    tm_block_f32_reset(&data->options.cfg, &data->f32_state);
  } else if (kWithQ8 && data->type == kTfLiteInt8) {
    tm_block_q8_reset(&data->options.cfg, &data->options.q8, &data->q8_state);
  }
}

}  // namespace

const TFLMRegistration* Register_MAMBA_BLOCK() {
  static const TFLMRegistration r =
      tflite::micro::RegisterOp(Init, Prepare, Eval, /*free=*/nullptr, Reset);
  return &r;
}

}  // namespace tflm_mamba
