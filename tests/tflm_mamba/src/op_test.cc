/*
 * The TFLM custom op MAMBA_BLOCK on the target (scenario tflm_mamba.op: built with TFLM).
 * The test models are one int8 MAMBA_BLOCK node (models/*.tflite, from
 * mamba_kws.fused_tflite.build_block, made C at build time): whole sequence, one step per
 * Invoke, and one whose options do not match its tensors (d_state + 1), which Prepare must
 * refuse. The expected outputs are the numpy oracle's (src/test_models.h).
 *
 * Malformed models (suite tflm_mamba_bad_model): a RAM copy of the whole-sequence model with
 * one thing broken in place (an option past its range, a const tensor value past its range,
 * garbage options, an unknown key). Each must be refused by Prepare; none may crash.
 */
#include <limits.h>
#include <string.h>

#include <zephyr/ztest.h>

#include "flatbuffers/flexbuffers.h"
#include "mamba_block_tensors.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "test_models.h"
#include "tflm_mamba_ops.h"

namespace {

alignas(16) const uint8_t td_tflite_block_whole[] = {
#include "block_whole.inc"
};
alignas(16) const uint8_t td_tflite_block_step[] = {
#include "block_step.inc"
};
alignas(16) const uint8_t td_tflite_block_bad[] = {
#include "block_bad.inc"
};

constexpr size_t kArenaBytes = 16 * 1024;
alignas(16) uint8_t arena[kArenaBytes];

using Resolver = tflite::MicroMutableOpResolver<1>;

// One resolver for the suite, with this library's ops: null if registering failed.
Resolver* resolver() {
  static Resolver r;
  static const bool ok = tflm_mamba::AddMambaOps(r) == kTfLiteOk;
  return ok ? &r : nullptr;
}

}  // namespace

ZTEST(tflm_mamba_op, test_whole_sequence_is_bit_exact) {
  zassert_not_null(resolver(), "AddMambaOps failed");
  tflite::MicroInterpreter interp(tflite::GetModel(td_tflite_block_whole),
                                  *resolver(), arena, kArenaBytes);
  zassert_equal(interp.AllocateTensors(), kTfLiteOk, "AllocateTensors failed");
  TC_PRINT("MAMBA_BLOCK whole sequence (L=%d): arena %u B\n", TD_STEPS,
           static_cast<unsigned>(interp.arena_used_bytes()));
  TfLiteTensor* in = interp.input(0);
  zassert_equal(in->bytes, sizeof(td_q8_u), "input size");
  // Twice: a stateless block starts every Invoke from the zero state.
  for (int run = 0; run < 2; ++run) {
    memcpy(in->data.int8, td_q8_u, sizeof(td_q8_u));
    zassert_equal(interp.Invoke(), kTfLiteOk, "Invoke failed");
    zassert_mem_equal(interp.output(0)->data.int8, td_q8_out,
                      sizeof(td_q8_out), "run %d differs from the oracle", run);
  }
}

ZTEST(tflm_mamba_op, test_streaming_keeps_state_until_reset) {
  zassert_not_null(resolver(), "AddMambaOps failed");
  tflite::MicroInterpreter interp(tflite::GetModel(td_tflite_block_step),
                                  *resolver(), arena, kArenaBytes);
  zassert_equal(interp.AllocateTensors(), kTfLiteOk, "AllocateTensors failed");
  TC_PRINT("MAMBA_BLOCK one step per Invoke: arena %u B\n",
           static_cast<unsigned>(interp.arena_used_bytes()));
  TfLiteTensor* in = interp.input(0);
  zassert_equal(in->bytes, static_cast<size_t>(TD_D_MODEL), "input size");
  for (int t = 0; t < TD_STEPS; ++t) {
    memcpy(in->data.int8, td_q8_u + t * TD_D_MODEL, TD_D_MODEL);
    zassert_equal(interp.Invoke(), kTfLiteOk, "Invoke failed");
    zassert_mem_equal(interp.output(0)->data.int8, td_q8_out + t * TD_D_MODEL,
                      TD_D_MODEL, "step %d differs from the oracle", t);
  }
  zassert_equal(interp.Reset(), kTfLiteOk, "Reset failed");
  memcpy(in->data.int8, td_q8_u, TD_D_MODEL);
  zassert_equal(interp.Invoke(), kTfLiteOk, "Invoke failed");
  zassert_mem_equal(interp.output(0)->data.int8, td_q8_out, TD_D_MODEL,
                    "Reset() did not clear the state");
}

ZTEST(tflm_mamba_op, test_prepare_refuses_mismatched_weights) {
  zassert_not_null(resolver(), "AddMambaOps failed");
  tflite::MicroInterpreter interp(tflite::GetModel(td_tflite_block_bad),
                                  *resolver(), arena, kArenaBytes);
  zassert_not_equal(interp.AllocateTensors(), kTfLiteOk,
                    "a block whose options do not match its tensors was accepted");
}

ZTEST_SUITE(tflm_mamba_op, NULL, NULL, NULL, NULL, NULL);

// ------------------------------------------------------------------ malformed models

namespace {

alignas(16) uint8_t model_copy[sizeof(td_tflite_block_whole)];

// A fresh copy of the whole-sequence model; its one operator is the MAMBA_BLOCK.
const tflite::Operator* FreshCopy() {
  memcpy(model_copy, td_tflite_block_whole, sizeof(model_copy));
  return tflite::GetModel(model_copy)->subgraphs()->Get(0)->operators()->Get(0);
}

// The copy's custom options, writable in place.
uint8_t* Options(const tflite::Operator* op, size_t* size) {
  *size = op->custom_options()->size();
  return const_cast<uint8_t*>(op->custom_options()->data());
}

// Sets an integer option in place (the value must fit the width it is stored with).
bool SetOption(const char* key, int64_t value) {
  size_t n;
  uint8_t* opts = Options(FreshCopy(), &n);
  return flexbuffers::GetRoot(opts, n).AsMap()[key].MutateInt(value);
}

// Element `i` of the int32 const input `input` of the block, writable in place.
int32_t* TensorValue(int input, int i) {
  const tflite::Model* m = tflite::GetModel(model_copy);
  const tflite::SubGraph* sg = m->subgraphs()->Get(0);
  const int t = sg->operators()->Get(0)->inputs()->Get(input);
  const flatbuffers::Vector<uint8_t>* data =
      m->buffers()->Get(sg->tensors()->Get(t)->buffer())->data();
  return reinterpret_cast<int32_t*>(const_cast<uint8_t*>(data->data())) + i;
}

bool Refused() {
  tflite::MicroInterpreter interp(tflite::GetModel(model_copy), *resolver(),
                                  arena, kArenaBytes);
  return interp.AllocateTensors() != kTfLiteOk;
}

}  // namespace

ZTEST(tflm_mamba_bad_model, test_the_unbroken_copy_is_accepted) {
  zassert_not_null(resolver(), "AddMambaOps failed");
  FreshCopy();
  zassert_false(Refused(), "the copy of a good model was refused");
}

ZTEST(tflm_mamba_bad_model, test_options_out_of_range_are_refused) {
  const struct {
    const char* key;
    int64_t value;
  } bad[] = {
      {"ssm_bx_shift", 40},  {"ssm_bx_shift", -25}, {"ssm_hc_shift", 31},
      {"ssm_hc_shift", -40}, {"yg_shift", 31},      {"res_u_shift", -32},
      {"res_m_mult", INT32_MIN}, {"gate_zp", 1000}, {"ssm_y_zp", -129},
      {"d_state", 100000},   {"d_model", 0},        {"dt_rank", -1},
      {"ssm_y_bits", 12},    {"ssm_y_bits", 0},
  };
  for (const auto& b : bad) {
    zassert_true(SetOption(b.key, b.value), "could not set %s", b.key);
    zassert_true(Refused(), "%s = %d was accepted", b.key, static_cast<int>(b.value));
  }
}

ZTEST(tflm_mamba_bad_model, test_const_tensor_values_out_of_range_are_refused) {
  using tflm_mamba::kQ8AQ20;
  using tflm_mamba::kQ8D;
  using tflm_mamba::kQ8InProjXParams;
  using tflm_mamba::kQ8OutProjParams;
  const struct {
    int input, index;
    int32_t value;
  } bad[] = {
      {kQ8AQ20, 0, INT32_MIN},          // |A_q20| * 255 overflows int32
      {kQ8InProjXParams, 0, INT32_MAX}, // a bias past 2^30
      {kQ8OutProjParams, 2 * TD_D_MODEL, 31},  // a shift past 30 (row 2 = shifts)
      {kQ8D, 0, INT32_MIN},             // D_mult with no positive twin
  };
  for (const auto& b : bad) {
    FreshCopy();
    *TensorValue(b.input, b.index) = b.value;
    zassert_true(Refused(), "input %d [%d] = %d was accepted", b.input, b.index,
                 static_cast<int>(b.value));
  }
}

ZTEST(tflm_mamba_bad_model, test_garbage_and_unknown_options_are_refused) {
  size_t n;
  uint8_t* opts = Options(FreshCopy(), &n);
  memset(opts, 0xff, n);  // not a flexbuffer: VerifyBuffer fails
  zassert_true(Refused(), "garbage options were accepted");
  opts = Options(FreshCopy(), &n);
  opts[n - 1] = 3;  // a byte width that does not exist
  zassert_true(Refused(), "options with a bad root width were accepted");
  opts = Options(FreshCopy(), &n);
  uint8_t* key = nullptr;
  for (size_t i = 0; i + 9 <= n && key == nullptr; ++i) {
    if (memcmp(opts + i, "norm_eps", 9) == 0) key = opts + i;  // with its NUL
  }
  zassert_not_null(key, "no norm_eps key in the options");
  key[0] = 'x';  // "xorm_eps": unknown, and norm_eps is missing
  zassert_true(Refused(), "an unknown option key was accepted");
}

ZTEST_SUITE(tflm_mamba_bad_model, NULL, NULL, NULL, NULL, NULL);
