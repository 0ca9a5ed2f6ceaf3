/*
 * The custom options of MAMBA_BLOCK: a flexbuffers map, parsed once in Init.
 *
 *   shape     d_model, d_inner, d_state, d_conv, dt_rank            ints
 *   switches  decay "exp" | "sigmoid", dt_activation "relu" | "softplus",
 *             activation "silu" | "hard_swish", norm "none" | "rmsnorm" | "affine"
 *             (affine = batchnorm at inference), norm_eps (float), stateful (bool)
 *   int8      in_zp, out_zp, gate_zp, yg_mult, yg_shift, yg_zp, res_u_mult, res_u_shift,
 *             res_m_mult, res_m_shift, the out_zp of each layer (in_proj_x_out_zp, ...,
 *             conv_out_zp) and of the scan: ssm_x_zp, ssm_dt_zp, ssm_B_zp, ssm_C_zp,
 *             ssm_bx_shift, ssm_hc_mult, ssm_hc_shift, ssm_y_zp; optional: ssm_y_bits (8 or 16,
 *             default 8: the width of the scan output and the gate, ssm_scan.h)
 *
 *   version   1 (fused_tflite.OPTIONS_VERSION)
 *
 * The bytes are verified (flexbuffers::VerifyBuffer) before anything is read. Every key must be
 * one of the above with its type (ints must fit int32); the shape, switch, norm_eps, stateful and
 * version keys are required, the int8 keys come all together or not at all (a float block).
 * Values are range-checked by the validator (mamba_validate.h), which Prepare runs.
 *
 * Init cannot fail, so a problem is recorded here (`error`, `error_key`) and Prepare reports it.
 */
#ifndef TFLM_MAMBA_TFLM_MAMBA_BLOCK_OPTIONS_H_
#define TFLM_MAMBA_TFLM_MAMBA_BLOCK_OPTIONS_H_

#include <stddef.h>

#include "tflm_mamba/mamba_block.h"

namespace tflm_mamba {

struct MambaBlockOptions {
  tm_block_config cfg;
  float norm_eps;
  bool stateful;
  /* Every scalar of tm_block_q8_weights; its pointers are null (Eval fills them). */
  tm_block_q8_weights q8;
  bool has_q8;
  /* Set when the options cannot be used: what is wrong and with which key. */
  const char* error;
  const char* error_key;
  /* The first int8 key that is missing (has_q8 false). */
  const char* missing_q8_key;
};

/* Parses `length` bytes of custom options; never fails (see `error`). */
void ParseMambaBlockOptions(const char* buffer, size_t length,
                            MambaBlockOptions* options);

}  // namespace tflm_mamba

#endif  // TFLM_MAMBA_TFLM_MAMBA_BLOCK_OPTIONS_H_
