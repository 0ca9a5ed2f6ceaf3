/*
 * Fuzz the int8 (and float) entry points: random shapes, random parameters anywhere inside the
 * documented contract (fixed_point.h, ssm_scan.h), extreme inputs. Built with
 * -fsanitize=address,undefined by tests/python/test_kernels_fuzz.py; every buffer is malloc'd
 * at exactly the size the *_bytes functions give, so an overrun is an ASan error.
 *
 * usage: fuzz_q8 <cases> <seed>     prints "ok <cases> <hash>"
 *
 * The hash covers every int8 output (logits, the hidden state of every step, a block run on its
 * own) and the final streaming state (the scan's h), so two builds of the core agree on the same seed only if their integers are the same:
 * the test compares the optimized build with the reference (-DTFLM_MAMBA_REFERENCE).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tflm_mamba/fixed_point.h"
#include "tflm_mamba/mamba_model.h"
#include "tflm_mamba/mamba_validate.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

static int32_t rint_in(int32_t lo, int32_t hi) /* inclusive */
{
	return lo + (int32_t)(rnd() % (uint32_t)(hi - lo + 1));
}

static int32_t rnd_zp(void)
{
	const int32_t e = rint_in(0, 3);
	return e == 0 ? -128 : (e == 1 ? 127 : rint_in(-128, 127));
}

static int32_t rnd_mult(void)
{
	switch (rint_in(0, 4)) {
	case 0:
		return 0;
	case 1:
		return INT32_MAX;
	case 2:
		return -INT32_MAX;
	default:
		return (int32_t)rnd() | 1;
	}
}

static int32_t rnd_shift(void)
{
	const int32_t e = rint_in(0, 3);
	return e == 0 ? -31 : (e == 1 ? 30 : rint_in(-31, 30));
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n == 0 ? 1 : n);
	if (p == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(2);
	}
	return p;
}

static int8_t *rnd_i8(size_t n)
{
	int8_t *p = xmalloc(n);
	const int32_t mode = rint_in(0, 3);
	for (size_t i = 0; i < n; i++) {
		p[i] = (int8_t)(mode == 0 ? 127 : (mode == 1 ? -128 : rint_in(-128, 127)));
	}
	return p;
}

static int32_t *rnd_i32(size_t n, int32_t lo, int32_t hi)
{
	int32_t *p = xmalloc(n * sizeof(int32_t));
	for (size_t i = 0; i < n; i++) {
		p[i] = rint_in(lo, hi);
	}
	return p;
}

static int32_t *rnd_mults(size_t n)
{
	int32_t *p = xmalloc(n * sizeof(int32_t));
	for (size_t i = 0; i < n; i++) {
		p[i] = rnd_mult();
	}
	return p;
}

static int32_t *rnd_shifts(size_t n)
{
	int32_t *p = xmalloc(n * sizeof(int32_t));
	for (size_t i = 0; i < n; i++) {
		p[i] = rnd_shift();
	}
	return p;
}

/* Biases within +-2^20 keep every int32 accumulator in range for in <= 256 (the contract). */
static tm_linear_q8 rnd_linear(int32_t in, int32_t out)
{
	tm_linear_q8 p = {rnd_i8((size_t)in * (size_t)out), rnd_i32((size_t)out, -(1 << 20), 1 << 20),
			  rnd_mults((size_t)out), rnd_shifts((size_t)out), rnd_zp()};
	return p;
}

static void free_linear(tm_linear_q8 *p)
{
	free((void *)p->W);
	free((void *)p->bias);
	free((void *)p->mult);
	free((void *)p->shift);
}

static tm_block_q8_weights rnd_block(const tm_block_config *c)
{
	tm_block_q8_weights w;
	memset(&w, 0, sizeof(w));
	w.in_zp = rnd_zp();
	w.in_proj_x = rnd_linear(c->d_model, c->d_inner);
	w.in_proj_z = rnd_linear(c->d_model, c->d_inner);
	w.conv.w = rnd_i8((size_t)c->d_inner * (size_t)c->d_conv);
	w.conv.bias = rnd_i32((size_t)c->d_inner, -(1 << 20), 1 << 20);
	w.conv.mult = rnd_mults((size_t)c->d_inner);
	w.conv.shift = rnd_shifts((size_t)c->d_inner);
	w.conv.out_zp = rnd_zp();
	w.conv_act_lut = rnd_i8(256);
	w.x_proj_dt = rnd_linear(c->d_inner, c->dt_rank);
	w.x_proj_B = rnd_linear(c->d_inner, c->d_state);
	w.x_proj_C = rnd_linear(c->d_inner, c->d_state);
	w.dt_proj = rnd_linear(c->dt_rank, c->d_inner);
	w.dt_act_lut = rnd_i8(256);
	const int32_t amax = (int32_t)((INT32_MAX) / 255);
	w.ssm.A_q20 = rnd_i32((size_t)c->d_inner * (size_t)c->d_state, rint_in(0, 1) ? -amax : -64, rint_in(0, 3) ? 0 : amax);
	w.ssm.D_mult = rnd_mults((size_t)c->d_inner);
	w.ssm.D_shift = rnd_shifts((size_t)c->d_inner);
	w.ssm.x_zp = rnd_zp();
	w.ssm.dt_zp = rnd_zp();
	w.ssm.B_zp = rnd_zp();
	w.ssm.C_zp = rnd_zp();
	w.ssm.bx_shift = rint_in(-24, 6);
	w.ssm.hc_mult = rnd_mult();
	w.ssm.hc_shift = rnd_shift();
	w.ssm.y_zp = rnd_zp();
	w.ssm.y_bits = rint_in(0, 1) ? 16 : 8;
	w.gate_act_lut = rnd_i8(256);
	w.gate_zp = rnd_zp();
	w.yg_mult = rnd_mult();
	w.yg_shift = rnd_shift();
	w.yg_zp = rnd_zp();
	w.out_proj = rnd_linear(c->d_inner, c->d_model);
	w.res_u_mult = rnd_mult();
	w.res_u_shift = rnd_shift();
	w.res_m_mult = rnd_mult();
	w.res_m_shift = rnd_shift();
	w.out_zp = rnd_zp();
	w.norm.in_zp = rnd_zp();
	w.norm.eps_q = rint_in(0, 3) == 0 ? 0 : rint_in(0, 1 << 30);
	w.norm.mult = rnd_mults((size_t)c->d_model);
	w.norm.shift = rnd_shifts((size_t)c->d_model);
	w.norm.out_zp = rnd_zp();
	return w;
}

static void free_block(tm_block_q8_weights *w)
{
	free_linear(&w->in_proj_x);
	free_linear(&w->in_proj_z);
	free((void *)w->conv.w);
	free((void *)w->conv.bias);
	free((void *)w->conv.mult);
	free((void *)w->conv.shift);
	free((void *)w->conv_act_lut);
	free_linear(&w->x_proj_dt);
	free_linear(&w->x_proj_B);
	free_linear(&w->x_proj_C);
	free_linear(&w->dt_proj);
	free((void *)w->dt_act_lut);
	free((void *)w->ssm.A_q20);
	free((void *)w->ssm.D_mult);
	free((void *)w->ssm.D_shift);
	free((void *)w->gate_act_lut);
	free_linear(&w->out_proj);
	free((void *)w->norm.mult);
	free((void *)w->norm.shift);
}

static float *rnd_f32(size_t n, float scale)
{
	float *p = xmalloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++) {
		p[i] = scale * ((float)rint_in(-1000, 1000) / 1000.0f);
	}
	return p;
}

static uint32_t fnv1a(uint32_t h, const int8_t *p, int32_t n)
{
	for (int32_t i = 0; i < n; i++) {
		h = (h ^ (uint8_t)p[i]) * 16777619u;
	}
	return h;
}

static uint32_t fuzz_case(void)
{
	tm_model_config mc;
	memset(&mc, 0, sizeof(mc));
	tm_block_config *c = &mc.block;
	c->d_model = rint_in(1, 40);
	c->d_inner = rint_in(1, 80);
	c->d_state = rint_in(0, 3) ? rint_in(1, 24) : rint_in(25, 40); /* past 32: the scan's wide path */
	c->d_conv = rint_in(1, 5);
	c->dt_rank = rint_in(1, 4);
	c->decay = (tm_decay)rint_in(0, 1);
	c->dt_activation = (tm_dt_activation)rint_in(0, 1);
	c->activation = (tm_activation)rint_in(0, 1);
	c->norm = (tm_norm)rint_in(0, 2);
	mc.n_layers = rint_in(0, 3);
	mc.channels = rint_in(1, 40);
	mc.frame_stack = rint_in(1, 3);
	mc.n_classes = rint_in(1, 12);
	mc.pooling = (tm_pooling)rint_in(0, 1);
	mc.pool_window = rint_in(0, 1) ? 0 : rint_in(1, 5); /* L up to 12: the ring wraps */
	const int32_t L = rint_in(1, 12);
	const int32_t step_in = mc.frame_stack * mc.channels;

	tm_block_q8_weights blocks[TM_MAX_LAYERS];
	for (int32_t i = 0; i < mc.n_layers; i++) {
		blocks[i] = rnd_block(c);
		/* the validator accepts every draw: it checks the contract, not a narrower one */
		tm_valid_error err;
		if (tm_validate_block_q8(c, &blocks[i], &err) != TM_VALID) {
			fprintf(stderr, "validator refused an in-contract block: %s[%d] = %lld\n", err.field,
				(int)err.index, (long long)err.value);
			exit(3);
		}
	}
	tm_model_q8_weights w;
	memset(&w, 0, sizeof(w));
	w.in_scale = 0.1f;
	w.in_zp = rnd_zp();
	w.stem = rnd_linear(step_in, c->d_model);
	w.blocks = blocks;
	w.pool_mult = rnd_mult();
	w.pool_shift = rnd_shift();
	w.pool_zp = rnd_zp();
	w.cls = rnd_linear(c->d_model, mc.n_classes);
	w.norm_f.in_zp = rnd_zp();
	w.norm_f.eps_q = rint_in(0, 1 << 30);
	w.norm_f.mult = rnd_mults((size_t)c->d_model);
	w.norm_f.shift = rnd_shifts((size_t)c->d_model);
	w.norm_f.out_zp = rnd_zp();

	int8_t *feats = rnd_i8((size_t)L * (size_t)step_in);
	void *state_mem = xmalloc(tm_model_q8_state_bytes(&mc));
	void *scratch = xmalloc(tm_model_q8_scratch_bytes(&mc));
	int8_t *logits = xmalloc((size_t)mc.n_classes);
	int8_t *hidden = xmalloc((size_t)c->d_model);
	tm_model_q8_state st;
	tm_model_q8_state_bind(&mc, &w, &st, state_mem);
	tm_model_q8_run(&mc, &w, &st, feats, L, logits, scratch);
	uint32_t h = fnv1a(2166136261u, logits, mc.n_classes);
	/* streaming must equal the whole sequence */
	tm_model_q8_reset(&mc, &w, &st);
	for (int32_t t = 0; t < L; t++) {
		tm_model_q8_step(&mc, &w, &st, feats + (size_t)t * (size_t)step_in, hidden, scratch);
		h = fnv1a(h, hidden, c->d_model);
	}
	/* the state too: a one-LSB difference in h rarely reaches an int8 output */
	h = fnv1a(h, (const int8_t *)state_mem, (int32_t)tm_model_q8_state_bytes(&mc));
	int8_t *logits2 = xmalloc((size_t)mc.n_classes);
	tm_model_q8_logits(&mc, &w, &st, logits2, scratch);
	if (memcmp(logits, logits2, (size_t)mc.n_classes) != 0) {
		fprintf(stderr, "streaming != sequence\n");
		exit(1);
	}
	/* one block alone, in place (out aliases u) */
	if (mc.n_layers > 0) {
		void *bmem = xmalloc(tm_block_q8_state_bytes(c));
		void *bscr = xmalloc(tm_block_q8_scratch_bytes(c));
		tm_block_q8_state bs;
		tm_block_q8_state_bind(c, &blocks[0], &bs, bmem);
		int8_t *u = rnd_i8((size_t)L * (size_t)c->d_model);
		tm_block_q8_run(c, &blocks[0], &bs, u, L, u, bscr);
		h = fnv1a(h, u, L * c->d_model);
		free(u);
		free(bmem);
		free(bscr);
	}
	/* float block with random (finite) weights */
	{
		const size_t di = (size_t)c->d_inner, dm = (size_t)c->d_model, n = (size_t)c->d_state;
		tm_block_config fc = *c;
		fc.norm = (tm_norm)rint_in(0, 2);
		tm_block_f32_weights fw = {rnd_f32(dm, 1.0f), rnd_f32(dm, 1.0f), 1e-5f,
					   rnd_f32(2 * di * dm, 0.5f), rnd_f32(di * (size_t)c->d_conv, 0.5f),
					   rnd_f32(di, 0.5f), rnd_f32(((size_t)c->dt_rank + 2 * n) * di, 0.5f),
					   rnd_f32(di * (size_t)c->dt_rank, 0.5f), rnd_f32(di, 0.5f), rnd_f32(di * n, 4.0f),
					   rnd_f32(di, 1.0f), rnd_f32(dm * di, 0.5f)};
		void *fmem = xmalloc(tm_block_f32_state_bytes(&fc));
		void *fscr = xmalloc(tm_block_f32_scratch_bytes(&fc));
		tm_block_f32_state fs;
		tm_block_f32_state_bind(&fc, &fs, fmem);
		float *u = rnd_f32((size_t)L * dm, 3.0f);
		tm_block_f32_run(&fc, &fw, &fs, u, L, u, fscr);
		free(u);
		free(fmem);
		free(fscr);
		free((void *)fw.norm_weight);
		free((void *)fw.norm_bias);
		free((void *)fw.in_proj_w);
		free((void *)fw.conv_w);
		free((void *)fw.conv_b);
		free((void *)fw.x_proj_w);
		free((void *)fw.dt_proj_w);
		free((void *)fw.dt_proj_b);
		free((void *)fw.A);
		free((void *)fw.D);
		free((void *)fw.out_proj_w);
	}
	/* float model (stem, blocks, final norm, pooling incl. the ring) with random finite weights */
	{
		const size_t dm = (size_t)c->d_model, di = (size_t)c->d_inner, n = (size_t)c->d_state;
		tm_block_f32_weights fb[TM_MAX_LAYERS];
		for (int32_t i = 0; i < mc.n_layers; i++) {
			tm_block_f32_weights b = {rnd_f32(dm, 1.0f), rnd_f32(dm, 1.0f), 1e-5f,
						  rnd_f32(2 * di * dm, 0.3f), rnd_f32(di * (size_t)c->d_conv, 0.3f),
						  rnd_f32(di, 0.3f), rnd_f32(((size_t)c->dt_rank + 2 * n) * di, 0.3f),
						  rnd_f32(di * (size_t)c->dt_rank, 0.3f), rnd_f32(di, 0.3f),
						  rnd_f32(di * n, 4.0f), rnd_f32(di, 1.0f), rnd_f32(dm * di, 0.3f)};
			fb[i] = b;
		}
		tm_model_f32_weights fw = {rnd_f32(dm * (size_t)step_in, 0.2f), rnd_f32(dm, 0.2f), fb, rnd_f32(dm, 1.0f),
					   rnd_f32(dm, 1.0f), 1e-5f, rnd_f32((size_t)mc.n_classes * dm, 0.5f),
					   rnd_f32((size_t)mc.n_classes, 0.5f)};
		void *fmem = xmalloc(tm_model_f32_state_bytes(&mc));
		void *fscr = xmalloc(tm_model_f32_scratch_bytes(&mc));
		float *ff = rnd_f32((size_t)L * (size_t)step_in, 20.0f);
		float *fl = xmalloc(sizeof(float) * (size_t)mc.n_classes);
		float *fh = xmalloc(sizeof(float) * dm);
		tm_model_f32_state fs;
		tm_model_f32_state_bind(&mc, &fs, fmem);
		tm_model_f32_run(&mc, &fw, &fs, ff, L, fl, fscr);
		tm_model_f32_reset(&mc, &fs);
		for (int32_t t = 0; t < L; t++) {
			tm_model_f32_step(&mc, &fw, &fs, ff + (size_t)t * (size_t)step_in, fh, fscr);
		}
		tm_model_f32_logits(&mc, &fw, &fs, fl, fscr);
		int8_t *fq = xmalloc(dm + 4);
		const float specials[4] = {1e30f, -1e30f, 0.0f / 0.0f, 0.49999997f};
		for (int32_t i = 0; i < 4; i++) {
			fh[i % (int32_t)dm] = specials[i];
			tm_quantize_f32(fh, (int32_t)dm, 0.1f, rnd_zp(), fq);
		}
		free(fq);
		for (int32_t i = 0; i < mc.n_layers; i++) {
			const float *ps[] = {fb[i].norm_weight, fb[i].norm_bias, fb[i].in_proj_w, fb[i].conv_w, fb[i].conv_b,
					     fb[i].x_proj_w, fb[i].dt_proj_w, fb[i].dt_proj_b, fb[i].A, fb[i].D,
					     fb[i].out_proj_w};
			for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++) {
				free((void *)ps[k]);
			}
		}
		free((void *)fw.stem_w);
		free((void *)fw.stem_b);
		free((void *)fw.norm_f_weight);
		free((void *)fw.norm_f_bias);
		free((void *)fw.cls_w);
		free((void *)fw.cls_b);
		free(fmem);
		free(fscr);
		free(ff);
		free(fl);
		free(fh);
	}
	for (int32_t i = 0; i < mc.n_layers; i++) {
		free_block(&blocks[i]);
	}
	free_linear(&w.stem);
	free_linear(&w.cls);
	free((void *)w.norm_f.mult);
	free((void *)w.norm_f.shift);
	free(feats);
	free(state_mem);
	free(scratch);
	free(logits);
	free(logits2);
	free(hidden);
	return h;
}

int main(int argc, char **argv)
{
	const int cases = argc > 1 ? atoi(argv[1]) : 100;
	rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1u;
	uint32_t h = 0;
	for (int i = 0; i < cases; i++) {
		h = h * 31u + fuzz_case();
	}
	/* the scalar fixed-point functions over their whole argument range, edges included */
	const int32_t edges[] = {INT32_MIN, INT32_MIN + 1, -(16 << 20), -(16 << 20) + 1, -1, 0, 1, INT32_MAX};
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		h ^= (uint32_t)tm_exp_neg_q30(edges[i]) ^ (uint32_t)tm_two_sigmoid_neg_q30(edges[i]);
		h ^= (uint32_t)tm_rq32(edges[i], INT32_MAX, 30) ^ (uint32_t)tm_rq32(edges[i], INT32_MIN, -31);
		h ^= (uint32_t)tm_mul_q30(edges[i], TM_Q30_ONE) ^ (uint32_t)tm_div_round(edges[i], 7);
		h ^= (uint32_t)tm_rsqrt_q30(edges[i]);
	}
	for (int i = 0; i < 100000; i++) {
		const int32_t x = (int32_t)rnd();
		h ^= (uint32_t)tm_exp_neg_q30(x) + (uint32_t)tm_two_sigmoid_neg_q30(x);
	}
	printf("ok %d %08x\n", cases, h);
	return 0;
}
