/* What the generated model file (mamba_kws.fused.cgen) defines for the harness. */
#ifndef TFLM_MAMBA_HARNESS_MODEL_DATA_H_
#define TFLM_MAMBA_HARNESS_MODEL_DATA_H_

#include <stdint.h>

#include "tflm_mamba/mamba_model.h"

extern const tm_model_config tm_h_cfg;
extern const tm_model_q8_weights tm_h_q8;
extern const int8_t *const tm_h_feats_q8; /* [steps * frame_stack][channels] */
#if !defined(TM_HARNESS_INT8_ONLY)
extern const tm_model_f32_weights tm_h_f32;
extern const float *const tm_h_feats_f32;
#endif
extern const int32_t tm_h_steps;

#endif /* TFLM_MAMBA_HARNESS_MODEL_DATA_H_ */
