/*
 * Where an int8 step's instructions go. The int8 step and readout call TM_PROFILE_MARK(phase)
 * at the end of each phase; a mark charges the time since the previous mark to `phase`.
 *
 * The marks cost nothing unless the build defines TFLM_MAMBA_PROFILE; that build's caller
 * provides tm_profile_mark() (the QEMU harness, modules/tflm_mamba/harness/main.c, reads its
 * instruction clock there; tools/bench_kernels.py --profile prints the table).
 */
#ifndef TFLM_MAMBA_PROFILE_H_
#define TFLM_MAMBA_PROFILE_H_

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
	TM_PROF_STEM = 0,   /* stem linear */
	TM_PROF_NORM,       /* rmsnorm before a block and norm_f (TM_NORM_RMSNORM only) */
	TM_PROF_IN_PROJ,    /* in_proj x and z */
	TM_PROF_CONV,       /* causal conv1d + act() table */
	TM_PROF_X_PROJ,     /* x_proj: dt, B, C */
	TM_PROF_DT_PROJ,    /* dt_proj + dt_act() table */
	TM_PROF_SCAN,       /* selective scan */
	TM_PROF_GATE,       /* y * act(z) */
	TM_PROF_OUT_PROJ,   /* out_proj */
	TM_PROF_RESIDUAL,   /* u + out_proj(...) */
	TM_PROF_POOL,       /* pooling update of the step */
	TM_PROF_READOUT,    /* tm_model_q8_logits: mean + classifier */
	TM_PROF_PHASES
} tm_prof_phase;

#if defined(TFLM_MAMBA_PROFILE)
void tm_profile_mark(tm_prof_phase phase);
#define TM_PROFILE_MARK(phase) tm_profile_mark(phase)
#else
#define TM_PROFILE_MARK(phase) ((void)0)
#endif

#ifdef __cplusplus
}
#endif

#endif /* TFLM_MAMBA_PROFILE_H_ */
