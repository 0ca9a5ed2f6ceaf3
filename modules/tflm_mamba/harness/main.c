/*
 * The kernels on a bare Cortex-M under QEMU: runs the generated model (model_data.h) through the
 * int8 and float32 entry points, prints the outputs for the host to compare, and times them.
 *
 * Timing: qemu runs with -icount shift=0, so virtual time advances 1 ns per executed guest
 * instruction and SysTick (processor clock) counts instructions / (1e9 / f_sysclk). The ratio
 * is measured here on a loop of a known instruction count ("calib"), so the printed figures
 * are instructions (not cycles of a real core).
 *
 * -DTM_HARNESS_INT8_ONLY leaves the float32 path out (models whose float weights do not fit
 * the board's flash); -DTFLM_MAMBA_PROFILE adds the per-phase profile (profile.h).
 */
#include <stddef.h>
#include <stdint.h>

#include "harness.h"
#include "model_data.h"
#include "tflm_mamba/mamba_model.h"
#include "tflm_mamba/profile.h"

/* The state and scratch of the largest model the harness runs (lm3s6965evb has 64 KB of RAM). */
#define MAX_STATE 40960
#define MAX_SCRATCH 4096
#define MAX_DIM 128 /* d_model and n_classes */

static uint32_t state_mem[MAX_STATE / 4];
static uint32_t scratch_mem[MAX_SCRATCH / 4];

static void put_int(const char *key, int64_t v)
{
	char buf[48];
	char *p = buf + sizeof(buf) - 1;
	const int neg = v < 0;
	uint64_t u = neg ? (uint64_t)(-v) : (uint64_t)v;
	*p = '\0';
	do {
		*--p = (char)('0' + (u % 10u));
		u /= 10u;
	} while (u != 0u);
	if (neg) {
		*--p = '-';
	}
	h_puts(key);
	h_puts(" ");
	h_puts(p);
	h_puts("\n");
}

static void put_ints(const char *key, const int32_t *v, int32_t n)
{
	for (int32_t i = 0; i < n; i++) {
		put_int(key, v[i]);
	}
}

static uint32_t fnv1a(uint32_t h, const int8_t *p, int32_t n)
{
	for (int32_t i = 0; i < n; i++) {
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	}
	return h;
}

#if defined(TFLM_MAMBA_PROFILE)
/* The profile build: each TM_PROFILE_MARK(phase) of the core charges the ticks since the
 * previous mark (or prof_begin) to phase. */
static uint64_t prof_last;
static uint64_t prof_ticks[TM_PROF_PHASES];
static uint32_t prof_marks[TM_PROF_PHASES];

void tm_profile_mark(tm_prof_phase phase)
{
	const uint64_t now = h_clock();
	prof_ticks[phase] += now - prof_last;
	prof_marks[phase]++;
	prof_last = now;
}

static void prof_begin(void)
{
	prof_last = h_clock();
}

/* Per phase: its ticks and marks over L steps, each followed by a readout (the streaming use),
 * and the ticks of one mark alone (its cost, which the host subtracts once per mark). */
static void profile_steps(const tm_model_config *cfg, tm_model_q8_state *sq, int8_t *hidden8, int8_t *logits8)
{
	const int32_t step_in = cfg->frame_stack * cfg->channels;
	const uint32_t n_cal = 2000u;
	tm_model_q8_reset(cfg, &tm_h_q8, sq);
	for (int32_t p = 0; p < TM_PROF_PHASES; p++) {
		prof_ticks[p] = 0;
		prof_marks[p] = 0;
	}
	for (int32_t t = 0; t < tm_h_steps; t++) {
		prof_begin();
		tm_model_q8_step(cfg, &tm_h_q8, sq, tm_h_feats_q8 + (size_t)t * (size_t)step_in, hidden8, scratch_mem);
		prof_begin();
		tm_model_q8_logits(cfg, &tm_h_q8, sq, logits8, scratch_mem);
	}
	for (int32_t p = 0; p < TM_PROF_PHASES; p++) {
		put_int("prof_ticks", (int64_t)prof_ticks[p]);
		put_int("prof_marks", (int64_t)prof_marks[p]);
	}
	const uint64_t t0 = h_clock();
	prof_begin();
	for (uint32_t i = 0; i < n_cal; i++) {
		tm_profile_mark(TM_PROF_STEM);
	}
	put_int("prof_mark_calib_ticks", (int64_t)(h_clock() - t0));
	put_int("prof_mark_calib_marks", (int64_t)n_cal);
}
#endif

/* 2 instructions per iteration (subs, bne) */
static void spin(uint32_t n)
{
	__asm__ volatile("1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc");
}

int main(void)
{
	const tm_model_config *cfg = &tm_h_cfg;
	const int32_t dm = cfg->block.d_model, nc = cfg->n_classes, L = tm_h_steps;
	const int32_t step_in = cfg->frame_stack * cfg->channels;
	int32_t out[MAX_DIM];
	int8_t logits8[MAX_DIM], hidden8[MAX_DIM];

	if (tm_model_q8_state_bytes(cfg) > MAX_STATE || tm_model_q8_scratch_bytes(cfg) > MAX_SCRATCH ||
#if !defined(TM_HARNESS_INT8_ONLY)
	    tm_model_f32_state_bytes(cfg) > MAX_STATE || tm_model_f32_scratch_bytes(cfg) > MAX_SCRATCH ||
#endif
	    nc > MAX_DIM || dm > MAX_DIM) {
		h_puts("error: model too large for the harness buffers\n");
		return 1;
	}
	put_int("q8_state_bytes", (int64_t)tm_model_q8_state_bytes(cfg));
	put_int("q8_scratch_bytes", (int64_t)tm_model_q8_scratch_bytes(cfg));
	put_int("q8_block_state_bytes", (int64_t)tm_block_q8_state_bytes(&cfg->block));
	put_int("q8_block_scratch_bytes", (int64_t)tm_block_q8_scratch_bytes(&cfg->block));
#if !defined(TM_HARNESS_INT8_ONLY)
	put_int("f32_state_bytes", (int64_t)tm_model_f32_state_bytes(cfg));
	put_int("f32_scratch_bytes", (int64_t)tm_model_f32_scratch_bytes(cfg));
#endif

	h_clock_start();
	spin(1000u); /* let SysTick load its reload value */
	uint64_t t0 = h_clock();
	spin(1000000u);
	put_int("calib_instructions", 2000000);
	put_int("calib_ticks", (int64_t)(h_clock() - t0));

	/* int8: whole sequence */
	tm_model_q8_state sq;
	tm_model_q8_state_bind(cfg, &tm_h_q8, &sq, state_mem);
	t0 = h_clock();
	tm_model_q8_run(cfg, &tm_h_q8, &sq, tm_h_feats_q8, L, logits8, scratch_mem);
	put_int("ticks_q8_run", (int64_t)(h_clock() - t0));
	for (int32_t i = 0; i < nc; i++) {
		out[i] = logits8[i];
	}
	put_ints("q8_logits", out, nc);

	/* int8: streaming steps */
	tm_model_q8_reset(cfg, &tm_h_q8, &sq);
	uint32_t hash = 2166136261u;
	uint64_t step_ticks = 0, max_step = 0;
	for (int32_t t = 0; t < L; t++) {
		t0 = h_clock();
		tm_model_q8_step(cfg, &tm_h_q8, &sq, tm_h_feats_q8 + (size_t)t * (size_t)step_in, hidden8, scratch_mem);
		const uint64_t dt = h_clock() - t0;
		step_ticks += dt;
		max_step = dt > max_step ? dt : max_step;
		hash = fnv1a(hash, hidden8, dm);
	}
	t0 = h_clock();
	tm_model_q8_logits(cfg, &tm_h_q8, &sq, logits8, scratch_mem);
	put_int("ticks_q8_logits", (int64_t)(h_clock() - t0));
	put_int("ticks_q8_steps", (int64_t)step_ticks);
	put_int("ticks_q8_step_max", (int64_t)max_step);
	put_int("q8_hidden_hash", hash);
	for (int32_t i = 0; i < nc; i++) {
		out[i] = logits8[i];
	}
	put_ints("q8_step_logits", out, nc);

#if defined(TFLM_MAMBA_PROFILE)
	profile_steps(cfg, &sq, hidden8, logits8);
#endif

	/* int8: one block alone, L steps (its input: the quantised stem output is not needed for timing);
	 * the model's state is no longer needed, the block's state takes its memory */
	{
		tm_block_q8_state bs;
		tm_block_q8_state_bind(&cfg->block, &tm_h_q8.blocks[0], &bs, state_mem);
		int8_t u[MAX_DIM], o[MAX_DIM];
		for (int32_t i = 0; i < dm; i++) {
			u[i] = (int8_t)((i * 37) % 200 - 100);
		}
		t0 = h_clock();
		for (int32_t t = 0; t < L; t++) {
			tm_block_q8_step(&cfg->block, &tm_h_q8.blocks[0], &bs, u, o, scratch_mem);
		}
		put_int("ticks_q8_block_steps", (int64_t)(h_clock() - t0));
	}

#if !defined(TM_HARNESS_INT8_ONLY)
	/* float32: whole sequence and steps */
	float logitsf[MAX_DIM];
	tm_model_f32_state sf;
	tm_model_f32_state_bind(cfg, &sf, state_mem);
	t0 = h_clock();
	tm_model_f32_run(cfg, &tm_h_f32, &sf, tm_h_feats_f32, L, logitsf, scratch_mem);
	put_int("ticks_f32_run", (int64_t)(h_clock() - t0));
	for (int32_t i = 0; i < nc; i++) {
		const float v = logitsf[i] * 1e6f;
		out[i] = (int32_t)(v < 0.0f ? v - 0.5f : v + 0.5f);
	}
	put_ints("f32_logits_e6", out, nc);
	tm_model_f32_reset(cfg, &sf);
	float hid[MAX_DIM];
	step_ticks = 0;
	for (int32_t t = 0; t < L; t++) {
		t0 = h_clock();
		tm_model_f32_step(cfg, &tm_h_f32, &sf, tm_h_feats_f32 + (size_t)t * (size_t)step_in, hid, scratch_mem);
		step_ticks += h_clock() - t0;
	}
	put_int("ticks_f32_steps", (int64_t)step_ticks);
#endif
	put_int("steps", L);
	h_puts("done\n");
	return 0;
}
