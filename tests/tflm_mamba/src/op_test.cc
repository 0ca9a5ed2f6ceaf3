/*
 * The TFLM custom op MAMBA_BLOCK on the target (scenario tflm_mamba.op: built with TFLM).
 * The test models are one int8 MAMBA_BLOCK node (models/*.tflite, from
 * mamba_kws.fused_tflite.build_block, made C at build time): whole sequence, one step per
 * Invoke, and one whose options do not match its tensors (d_state + 1), which Prepare must
 * refuse. The expected outputs are the numpy oracle's (src/test_models.h).
 */
#include <string.h>

#include <zephyr/ztest.h>

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
