/*
 * TFLM custom op "MAMBA_BLOCK": one residual Mamba block (tflm_mamba/mamba_block.h) as a
 * single node of a .tflite graph, float32 or int8 (chosen by the input tensor's type).
 *
 *   inputs[0]   u        [1, L, d_model] (or [1, d_model]: one step)
 *   inputs[1..] weights  constant tensors, order in mamba_block_tensors.h
 *   outputs[0]  out      same shape and type as u; out = u + Mamba(norm(u))
 *
 * Options (flexbuffers map in the operator's custom_options, written by
 * tools/mamba_kws/fused_tflite.py): the block shape and switches, "stateful", and for int8 the
 * zero points / scalar multipliers of tm_block_q8_weights (per-channel arrays are tensors).
 *
 * State. The conv window and h live in a persistent arena buffer owned by the node
 * (AllocatePersistentBuffer in Prepare), so they survive Invoke calls:
 *   stateful = false  each Invoke resets the state first: a whole window, L = 49 steps.
 *   stateful = true   each Invoke continues from the previous one: streaming, typically L = 1
 *                     step of 20 ms per Invoke. MicroInterpreter::Reset() clears the state.
 * No VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE resource variables are needed.
 *
 * Use:
 *   tflite::MicroMutableOpResolver<8> resolver;
 *   tflm_mamba::AddMambaOps(resolver);       // plus the builtins the graph uses
 */
#ifndef TFLM_MAMBA_TFLM_MAMBA_OPS_H_
#define TFLM_MAMBA_TFLM_MAMBA_OPS_H_

#include "tensorflow/lite/micro/micro_common.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace tflm_mamba {

/* The custom-op name the .tflite refers to (OperatorCode.custom_code). */
constexpr const char kMambaBlockOpName[] = "MAMBA_BLOCK";

/* The registration (Init / Prepare / Eval / Reset) of MAMBA_BLOCK. */
const TFLMRegistration* Register_MAMBA_BLOCK();

/* Registers every op of this library with a resolver; uses one of its tOpCount slots. */
template <unsigned int tOpCount>
TfLiteStatus AddMambaOps(tflite::MicroMutableOpResolver<tOpCount>& resolver) {
  return resolver.AddCustom(kMambaBlockOpName, Register_MAMBA_BLOCK());
}

}  // namespace tflm_mamba

#endif  // TFLM_MAMBA_TFLM_MAMBA_OPS_H_
