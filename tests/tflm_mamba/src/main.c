/*
 * The C core of modules/tflm_mamba on the target: models/tiny.yaml's weights and the expected
 * outputs computed on the host (src/test_data.h, written by ../gen_test_data.py).
 *
 * - float32: the block and the model against the float64 reference, within float32 rounding;
 * - int8: the block and the model bit-exact against the numpy oracle (intmodel.py);
 * - streaming: L calls of *_step give exactly what *_run gives, and reset starts over.
 */
#include <math.h>
#include <string.h>

#include <zephyr/ztest.h>

#include "test_data.h"
#include "tflm_mamba/mamba_block.h"
#include "tflm_mamba/mamba_model.h"

/* Caller-owned memory, sized by the *_bytes functions (checked in each test). */
#define STATE_MAX 2048
#define SCRATCH_MAX 2048
static uint32_t state_mem[STATE_MAX / 4];
static uint32_t scratch_mem[SCRATCH_MAX / 4];

static void check_close(const float *got, const float *want, int n, float tol, const char *what)
{
	for (int i = 0; i < n; i++) {
		const float err = fabsf(got[i] - want[i]);

		zassert_true(err <= tol * (1.0f + fabsf(want[i])), "%s[%d]: got %f, want %f", what, i,
			     (double)got[i], (double)want[i]);
	}
}

ZTEST(tflm_mamba_core, test_memory_is_counted)
{
	const size_t f32_state = tm_block_f32_state_bytes(&td_model_cfg.block);
	const size_t q8_state = tm_block_q8_state_bytes(&td_model_cfg.block);

	TC_PRINT("tiny block: f32 state %u B scratch %u B; int8 state %u B scratch %u B\n",
		 (unsigned)f32_state, (unsigned)tm_block_f32_scratch_bytes(&td_model_cfg.block), (unsigned)q8_state,
		 (unsigned)tm_block_q8_scratch_bytes(&td_model_cfg.block));
	TC_PRINT("tiny model: f32 state %u B scratch %u B; int8 state %u B scratch %u B\n",
		 (unsigned)tm_model_f32_state_bytes(&td_model_cfg),
		 (unsigned)tm_model_f32_scratch_bytes(&td_model_cfg),
		 (unsigned)tm_model_q8_state_bytes(&td_model_cfg),
		 (unsigned)tm_model_q8_scratch_bytes(&td_model_cfg));
	/* h (d_inner x d_state) and the conv window (d_inner x (d_conv - 1)) at least */
	zassert_true(f32_state >= sizeof(float) * 32 * (4 + 3), "f32 state too small: %u", (unsigned)f32_state);
	zassert_true(q8_state >= sizeof(int32_t) * 32 * 4 + 32 * 3, "int8 state too small: %u", (unsigned)q8_state);
	zassert_true(tm_model_f32_state_bytes(&td_model_cfg) <= STATE_MAX, "raise STATE_MAX");
	zassert_true(tm_model_f32_scratch_bytes(&td_model_cfg) <= SCRATCH_MAX, "raise SCRATCH_MAX");
}

ZTEST(tflm_mamba_core, test_block_f32_matches_reference)
{
	static float out[TD_STEPS * TD_D_MODEL];
	tm_block_f32_state st;

	tm_block_f32_state_bind(&td_model_cfg.block, &st, state_mem);
	tm_block_f32_run(&td_model_cfg.block, &td_f32_blocks[0], &st, td_f32_u, TD_STEPS, out, scratch_mem);
	check_close(out, td_f32_out, TD_STEPS * TD_D_MODEL, 1e-4f, "block out");
}

ZTEST(tflm_mamba_core, test_block_f32_step_equals_run)
{
	static float run[TD_STEPS * TD_D_MODEL], step[TD_STEPS * TD_D_MODEL];
	tm_block_f32_state st;

	tm_block_f32_state_bind(&td_model_cfg.block, &st, state_mem);
	tm_block_f32_run(&td_model_cfg.block, &td_f32_blocks[0], &st, td_f32_u, TD_STEPS, run, scratch_mem);
	tm_block_f32_reset(&td_model_cfg.block, &st);
	for (int t = 0; t < TD_STEPS; t++) {
		tm_block_f32_step(&td_model_cfg.block, &td_f32_blocks[0], &st, td_f32_u + TD_D_MODEL * t, step + TD_D_MODEL * t,
				  scratch_mem);
	}
	zassert_mem_equal(step, run, sizeof(run), "streaming differs from the whole sequence");
}

ZTEST(tflm_mamba_core, test_block_q8_is_bit_exact)
{
	static int8_t out[TD_STEPS * TD_D_MODEL];
	tm_block_q8_state st;

	tm_block_q8_state_bind(&td_model_cfg.block, &td_q8_blocks[0], &st, state_mem);
	tm_block_q8_run(&td_model_cfg.block, &td_q8_blocks[0], &st, td_q8_u, TD_STEPS, out, scratch_mem);
	for (int i = 0; i < TD_STEPS * TD_D_MODEL; i++) {
		zassert_equal(out[i], td_q8_out[i], "out[%d] = %d, oracle %d", i, out[i], td_q8_out[i]);
	}
}

ZTEST(tflm_mamba_core, test_block_q8_step_equals_run_and_reset_starts_over)
{
	static int8_t step[TD_STEPS * TD_D_MODEL], again[TD_D_MODEL];
	tm_block_q8_state st;

	tm_block_q8_state_bind(&td_model_cfg.block, &td_q8_blocks[0], &st, state_mem);
	for (int t = 0; t < TD_STEPS; t++) {
		tm_block_q8_step(&td_model_cfg.block, &td_q8_blocks[0], &st, td_q8_u + TD_D_MODEL * t, step + TD_D_MODEL * t,
				 scratch_mem);
	}
	zassert_mem_equal(step, td_q8_out, sizeof(step), "streaming differs from the oracle");
	tm_block_q8_reset(&td_model_cfg.block, &td_q8_blocks[0], &st);
	tm_block_q8_step(&td_model_cfg.block, &td_q8_blocks[0], &st, td_q8_u, again, scratch_mem);
	zassert_mem_equal(again, td_q8_out, sizeof(again), "reset did not clear the state");
}

ZTEST(tflm_mamba_core, test_model_f32_matches_reference)
{
	float logits[TD_CLASSES];
	tm_model_f32_state st;

	tm_model_f32_state_bind(&td_model_cfg, &st, state_mem);
	tm_model_f32_run(&td_model_cfg, &td_f32_model, &st, td_f32_feats, TD_FRAMES / td_model_cfg.frame_stack, logits, scratch_mem);
	check_close(logits, td_f32_logits, TD_CLASSES, 1e-3f, "logits");
}

ZTEST(tflm_mamba_core, test_model_q8_is_bit_exact_whole_and_streaming)
{
	int8_t logits[TD_CLASSES], streamed[TD_CLASSES];
	tm_model_q8_state st;
	const int32_t steps = TD_FRAMES / td_model_cfg.frame_stack;
	const int32_t step_in = td_model_cfg.frame_stack * TD_CHANNELS;

	tm_model_q8_state_bind(&td_model_cfg, &td_q8_model, &st, state_mem);
	tm_model_q8_run(&td_model_cfg, &td_q8_model, &st, td_q8_feats, steps, logits, scratch_mem);
	zassert_mem_equal(logits, td_q8_logits, sizeof(logits), "int8 logits differ from the oracle");

	tm_model_q8_reset(&td_model_cfg, &td_q8_model, &st);
	for (int32_t t = 0; t < steps; t++) {
		tm_model_q8_step(&td_model_cfg, &td_q8_model, &st, td_q8_feats + t * step_in, NULL, scratch_mem);
	}
	tm_model_q8_logits(&td_model_cfg, &td_q8_model, &st, streamed, scratch_mem);
	zassert_mem_equal(streamed, td_q8_logits, sizeof(streamed), "streaming logits differ");
}

ZTEST_SUITE(tflm_mamba_core, NULL, NULL, NULL, NULL, NULL);
