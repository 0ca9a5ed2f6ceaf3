/*
 * Input tensors of MAMBA_BLOCK, in order. tools/mamba_kws/fused_tflite.py writes the same
 * order (FLOAT_INPUTS / INT8_INPUTS there); a test checks that the two lists agree.
 *
 * float32 (12 inputs), as tm_block_f32_weights:
 *   u, norm_weight, norm_bias, in_proj_w, conv_w, conv_b, x_proj_w, dt_proj_w, dt_proj_b,
 *   A, D, out_proj_w
 *   norm_weight / norm_bias are optional (index -1) when the block has no norm.
 *
 * int8 (20 inputs), as tm_block_q8_weights: every int8 layer is a weight tensor W and one
 * int32 tensor [3, out] of per-output-channel rows (bias, multiplier, shift):
 *   u,
 *   in_proj_x W, params   in_proj_z W, params   conv w, params
 *   x_proj_dt W, params   x_proj_B W, params    x_proj_C W, params
 *   dt_proj W, params     out_proj W, params
 *   luts   int8 [3, 256]: act after the conv, dt activation, act of the gate z
 *   A_q20  int32 [d_inner, d_state]
 *   D      int32 [2, d_inner]: D_mult, D_shift
 */
#ifndef TFLM_MAMBA_TFLM_MAMBA_BLOCK_TENSORS_H_
#define TFLM_MAMBA_TFLM_MAMBA_BLOCK_TENSORS_H_

namespace tflm_mamba {

enum MambaBlockF32Input {
  kF32U = 0,
  kF32NormWeight,
  kF32NormBias,
  kF32InProjW,
  kF32ConvW,
  kF32ConvB,
  kF32XProjW,
  kF32DtProjW,
  kF32DtProjB,
  kF32A,
  kF32D,
  kF32OutProjW,
  kF32NumInputs,
};

enum MambaBlockQ8Input {
  kQ8U = 0,
  kQ8InProjXW,
  kQ8InProjXParams,
  kQ8InProjZW,
  kQ8InProjZParams,
  kQ8ConvW,
  kQ8ConvParams,
  kQ8XProjDtW,
  kQ8XProjDtParams,
  kQ8XProjBW,
  kQ8XProjBParams,
  kQ8XProjCW,
  kQ8XProjCParams,
  kQ8DtProjW,
  kQ8DtProjParams,
  kQ8OutProjW,
  kQ8OutProjParams,
  kQ8Luts,
  kQ8AQ20,
  kQ8D,
  kQ8NumInputs,
};

/* Rows of a [3, out] params tensor and of the luts tensor. */
enum { kParamBias = 0, kParamMult = 1, kParamShift = 2 };
enum { kLutConvAct = 0, kLutDtAct = 1, kLutGateAct = 2 };

}  // namespace tflm_mamba

#endif  // TFLM_MAMBA_TFLM_MAMBA_BLOCK_TENSORS_H_
