// libFuzzer harness: any bytes as MAMBA_BLOCK's custom options -> the parser
// (mamba_block_options.cc: VerifyBuffer, keys, types) -> the validator -> one int8 step.
// Either the options are refused, or a block with these scalars (and in-contract arrays of
// zeros) runs clean. Built on the host with the flexbuffers header only (no TFLM):
// clang++ -fsanitize=fuzzer,address,undefined.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "mamba_block_options.h"
#include "tflm_mamba/mamba_block.h"
#include "tflm_mamba/mamba_validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  tflm_mamba::MambaBlockOptions o;
  tflm_mamba::ParseMambaBlockOptions(reinterpret_cast<const char*>(data), size,
                                     &o);
  if (o.error != nullptr) {
    if (o.error_key == nullptr || strlen(o.error_key) == 0u) abort();
#if defined(FUZZ_OPTIONS_VERBOSE)
    fprintf(stderr, "options: refused %s: %s\n", o.error_key, o.error);
#endif
    return 0;  // refused, with a key to name
  }
  size_t state_bytes = 0, scratch_bytes = 0;
  tm_valid_error size_err;
  if (tm_validate_block_sizes(&o.cfg, 1, &state_bytes, &scratch_bytes,
                              &size_err) != TM_VALID) {
#if defined(FUZZ_OPTIONS_VERBOSE)
    fprintf(stderr, "options: refused %s: %s\n", size_err.field,
            tm_valid_status_str(size_err.status));
#endif
    return 0;
  }
  if (!o.has_q8) {
#if defined(FUZZ_OPTIONS_VERBOSE)
    fprintf(stderr, "options: float block\n");
#endif
    return 0;
  }
  const tm_block_config& c = o.cfg;
  tm_block_q8_weights w = o.q8;
  // zero arrays: inside the contract, so only the options' scalars can be refused
  // every array has at most m * m elements, m the largest dimension (<= 256 once validated)
  int32_t m = c.d_model;
  for (int32_t d : {c.d_inner, c.d_state, c.d_conv, c.dt_rank}) m = d > m ? d : m;
  const size_t big = static_cast<size_t>(m) * static_cast<size_t>(m);
  std::vector<int8_t> i8(big + 3 * 256, 0);
  std::vector<int32_t> i32(big, 0);
  tm_linear_q8* layers[] = {&w.in_proj_x, &w.in_proj_z, &w.x_proj_dt, &w.x_proj_B,
                            &w.x_proj_C,  &w.dt_proj,   &w.out_proj};
  for (tm_linear_q8* l : layers) {
    l->W = i8.data();
    l->bias = l->mult = l->shift = i32.data();
  }
  w.conv.w = i8.data();
  w.conv.bias = w.conv.mult = w.conv.shift = i32.data();
  w.conv_act_lut = w.dt_act_lut = w.gate_act_lut = i8.data();
  w.ssm.A_q20 = w.ssm.D_mult = w.ssm.D_shift = i32.data();
  w.norm.mult = w.norm.shift = i32.data();
  tm_valid_error err;
  if (tm_validate_block_q8(&c, &w, &err) != TM_VALID) {
#if defined(FUZZ_OPTIONS_VERBOSE)
    fprintf(stderr, "options: refused %s: %s\n", err.field,
            tm_valid_status_str(err.status));
#endif
    return 0;
  }
#if defined(FUZZ_OPTIONS_VERBOSE)
  fprintf(stderr, "options: run\n");
#endif
  std::vector<int32_t> state((state_bytes + 3) / 4);
  std::vector<int8_t> scratch(scratch_bytes);
  std::vector<int8_t> u(static_cast<size_t>(c.d_model), 127);
  tm_block_q8_state st;
  tm_block_q8_state_bind(&c, &w, &st, state.data());
  tm_block_q8_step(&c, &w, &st, u.data(), u.data(), scratch.data());
  tm_block_q8_step(&c, &w, &st, u.data(), u.data(), scratch.data());
  return 0;
}
