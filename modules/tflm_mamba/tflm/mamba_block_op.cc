// MAMBA_BLOCK: the TFLM adapter of tflm_mamba/mamba_block.h (see tflm_mamba_ops.h).
//
// Init     parses the custom options (mamba_block_options.h).
// Prepare  checks the options and every tensor's type and shape, requires the weights to be
//          constant, runs the validator (mamba_validate.h: dimensions, sizes, every parameter
//          and every value of the const tensors) and says why it refuses (MicroPrintf +
//          kTfLiteError); allocates the persistent state and requests the scratch buffer.
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
#include "tflm_mamba/mamba_validate.h"

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

// The validator's refusal, with the field as the options and tensors name it.
TfLiteStatus Refuse(const tm_valid_error& e) {
  const bool range = e.status == TM_INVALID_RANGE ||
                     e.status == TM_INVALID_DIM || e.status == TM_INVALID_ENUM;
  if (range && e.index >= 0) {  // an element of a const tensor
    MicroPrintf("MAMBA_BLOCK: %s[%d] = %d %s: allowed [%d, %d]", e.field,
                static_cast<int>(e.index), static_cast<int>(e.value),
                tm_valid_status_str(e.status), static_cast<int>(e.lo),
                static_cast<int>(e.hi));
  } else if (range) {  // a scalar of the options
    MicroPrintf("MAMBA_BLOCK: %s = %d %s: allowed [%d, %d]", e.field,
                static_cast<int>(e.value), tm_valid_status_str(e.status),
                static_cast<int>(e.lo), static_cast<int>(e.hi));
  } else {
    MicroPrintf("MAMBA_BLOCK: %s %s", e.field, tm_valid_status_str(e.status));
  }
  return kTfLiteError;
}

// Checks one input against an expected type and shape (rows x cols; rows 0 = a vector) and,
// where `data` is given, that it is a constant tensor (its values are in the model, so
// Prepare can validate them), whose data it returns. An optional input (index -1) passes
// when `optional` is set.
TfLiteStatus CheckWeight(TfLiteContext* context, TfLiteNode* node, int index,
                         const char* name, TfLiteType type, int rows, int cols,
                         bool optional = false,
                         const void** data = nullptr) {
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
  } else if (data != nullptr) {
    if (t->allocation_type != kTfLiteMmapRo || t->data.raw == nullptr) {
      MicroPrintf("MAMBA_BLOCK: input %d (%s) must be a constant tensor",
                  index, name);
      status = kTfLiteError;
    }
    *data = t->data.raw;  // in the model's buffer: valid after the temp tensor
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

// A layer: W int8 [out, in] and params int32 [3, out], both constant.
TfLiteStatus CheckQ8Layer(TfLiteContext* context, TfLiteNode* node, int w_index,
                          const char* name, int out, int in,
                          const void** data) {
  TF_LITE_ENSURE_OK(context,
                    CheckWeight(context, node, w_index, name, kTfLiteInt8, out,
                                in, false, &data[w_index]));
  return CheckWeight(context, node, w_index + 1, name, kTfLiteInt32, 3, out,
                     false, &data[w_index + 1]);
}

// The int8 weights' types and shapes; data[i] receives input i's values.
TfLiteStatus CheckQ8Weights(TfLiteContext* context, TfLiteNode* node,
                            const MambaBlockOptions& o, const void** data) {
  const tm_block_config& c = o.cfg;
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8InProjXW, "in_proj_x",
                                          c.d_inner, c.d_model, data));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8InProjZW, "in_proj_z",
                                          c.d_inner, c.d_model, data));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8ConvW, "conv",
                                          c.d_inner, c.d_conv, data));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8XProjDtW, "x_proj_dt",
                                          c.dt_rank, c.d_inner, data));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8XProjBW, "x_proj_B",
                                          c.d_state, c.d_inner, data));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8XProjCW, "x_proj_C",
                                          c.d_state, c.d_inner, data));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8DtProjW, "dt_proj",
                                          c.d_inner, c.dt_rank, data));
  TF_LITE_ENSURE_OK(context, CheckQ8Layer(context, node, kQ8OutProjW, "out_proj",
                                          c.d_model, c.d_inner, data));
  TF_LITE_ENSURE_OK(context,
                    CheckWeight(context, node, kQ8Luts, "luts", kTfLiteInt8, 3,
                                256, false, &data[kQ8Luts]));
  TF_LITE_ENSURE_OK(context,
                    CheckWeight(context, node, kQ8AQ20, "A_q20", kTfLiteInt32,
                                c.d_inner, c.d_state, false, &data[kQ8AQ20]));
  TF_LITE_ENSURE_OK(context, CheckWeight(context, node, kQ8D, "D", kTfLiteInt32,
                                         2, c.d_inner, false, &data[kQ8D]));
  return kTfLiteOk;
}

// The weight struct of an int8 block: the scalars from the options, the arrays from the input
// tensors' data (data[i] = input i). Prepare validates what Eval will run: the same binding.
void BindQ8(const MambaBlockOptions& o, const void* const* data,
            tm_block_q8_weights* w) {
  const tm_block_config& c = o.cfg;
  *w = o.q8;
  struct {
    int index;
    int32_t out;
    tm_linear_q8* layer;
  } const layers[] = {
      {kQ8InProjXW, c.d_inner, &w->in_proj_x},
      {kQ8InProjZW, c.d_inner, &w->in_proj_z},
      {kQ8XProjDtW, c.dt_rank, &w->x_proj_dt},
      {kQ8XProjBW, c.d_state, &w->x_proj_B},
      {kQ8XProjCW, c.d_state, &w->x_proj_C},
      {kQ8DtProjW, c.d_inner, &w->dt_proj},
      {kQ8OutProjW, c.d_model, &w->out_proj},
  };
  for (const auto& l : layers) {
    const int32_t* params = static_cast<const int32_t*>(data[l.index + 1]);
    l.layer->W = static_cast<const int8_t*>(data[l.index]);
    l.layer->bias = params + kParamBias * l.out;
    l.layer->mult = params + kParamMult * l.out;
    l.layer->shift = params + kParamShift * l.out;
  }
  const int32_t* conv = static_cast<const int32_t*>(data[kQ8ConvParams]);
  w->conv.w = static_cast<const int8_t*>(data[kQ8ConvW]);
  w->conv.bias = conv + kParamBias * c.d_inner;
  w->conv.mult = conv + kParamMult * c.d_inner;
  w->conv.shift = conv + kParamShift * c.d_inner;
  const int8_t* luts = static_cast<const int8_t*>(data[kQ8Luts]);
  w->conv_act_lut = luts + kLutConvAct * 256;
  w->dt_act_lut = luts + kLutDtAct * 256;
  w->gate_act_lut = luts + kLutGateAct * 256;
  const int32_t* d = static_cast<const int32_t*>(data[kQ8D]);
  w->ssm.A_q20 = static_cast<const int32_t*>(data[kQ8AQ20]);
  w->ssm.D_mult = d;
  w->ssm.D_shift = d + c.d_inner;
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
  } else if (dims->size == 3 && dims->data[1] < 1) {
    MicroPrintf("MAMBA_BLOCK: u has %d steps", static_cast<int>(dims->data[1]));
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
  // The shape before anything is computed from it (the tensor checks multiply dimensions).
  tm_valid_error err;
  if (tm_validate_block_config(&o.cfg, &err) != TM_VALID) return Refuse(err);
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
  // The byte counts, overflow-checked (equal to tm_block_*_state_bytes / _scratch_bytes).
  size_t state_bytes = 0;
  size_t scratch_bytes = 0;
  if (tm_validate_block_sizes(&o.cfg, is_f32 ? 0 : 1, &state_bytes,
                              &scratch_bytes, &err) != TM_VALID) {
    return Refuse(err);
  }
  if (kWithF32 && is_f32) {
    TF_LITE_ENSURE_OK(context, CheckF32Weights(context, node, o));
  } else {
    if (o.cfg.norm == TM_NORM_RMSNORM) {
      MicroPrintf(
          "MAMBA_BLOCK: int8 has no rmsnorm (use norm 'none': batchnorm is "
          "folded into in_proj)");
      return kTfLiteError;
    }
    // Every parameter and every value of the const tensors, once: Eval trusts them.
    const void* weights[kQ8NumInputs] = {};
    TF_LITE_ENSURE_OK(context, CheckQ8Weights(context, node, o, weights));
    tm_block_q8_weights w;
    BindQ8(o, weights, &w);
    if (tm_validate_block_q8(&o.cfg, &w, &err) != TM_VALID) return Refuse(err);
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
  const void* weights[kQ8NumInputs] = {};
  for (int i = 1; i < kQ8NumInputs; ++i) {
    weights[i] = Input<int8_t>(context, node, i);  // bytes: BindQ8 types them
  }
  tm_block_q8_weights w;
  BindQ8(o, weights, &w);  // as Prepare validated it
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
