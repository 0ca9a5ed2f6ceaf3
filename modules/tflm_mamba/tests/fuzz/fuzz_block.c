/*
 * libFuzzer harness: any bytes -> an int8 block (config, scalars, arrays, inputs) -> the
 * validator (mamba_validate.h) -> the kernels. Either the validator refuses, or the block runs
 * a few steps without a sanitizer finding (clang -fsanitize=fuzzer,address,undefined). Values
 * are taken as they come, far outside the contract; every buffer is malloc'd at exactly the
 * size the validator computed, and that size must equal the kernels' own *_bytes.
 *
 * Input layout (little-endian; missing bytes read as 0):
 *   5 x int32   d_model d_inner d_state d_conv dt_rank   (values > 64 are folded into 1..64 to
 *                                                          keep runs fast, unless flags bit 31)
 *   4 x int8    decay dt_activation activation norm
 *   29 x int32  the scalars: as MAMBA_BLOCK's int8 options (mamba_block_options.cc), then the
 *               rmsnorm's in_zp, eps_q, out_zp
 *   uint32      flags: bit i set = array i is folded into its contract range (13 arrays), so
 *               the fuzzer can put one array out of range while the others pass; bit 13 set:
 *               ssm.y_bits 16 (else 8)
 *   uint8       L - 1 (steps, 1..4)
 *   rest        a pool the arrays and the inputs are read from, cyclically
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tflm_mamba/mamba_block.h"
#include "tflm_mamba/mamba_validate.h"

typedef struct {
	const uint8_t *p;
	size_t n, at;
} reader;

static uint32_t rd_u32(reader *r)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		const uint32_t b = r->at < r->n ? r->p[r->at] : 0u;
		r->at++;
		v |= b << (8 * i);
	}
	return v;
}

static int32_t rd_i32(reader *r)
{
	return (int32_t)rd_u32(r);
}

static int8_t rd_i8(reader *r)
{
	const uint8_t b = r->at < r->n ? r->p[r->at] : 0u;
	r->at++;
	return (int8_t)b;
}

/* The pool: bytes after the header, read cyclically (all zero when empty). */
typedef struct {
	const uint8_t *p;
	size_t n, at;
} pool;

static uint8_t pool_byte(pool *q)
{
	if (q->n == 0u) {
		return 0u;
	}
	const uint8_t b = q->p[q->at % q->n];
	q->at++;
	return b;
}

static int32_t pool_i32(pool *q)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		v |= (uint32_t)pool_byte(q) << (8 * i);
	}
	return (int32_t)v;
}

/* fold v into [lo, hi] (hi - lo < 2^32); a value inside stays as it is */
static int32_t fold(int32_t v, int64_t lo, int64_t hi)
{
	if (v >= lo && v <= hi) {
		return v;
	}
	const uint64_t span = (uint64_t)(hi - lo) + 1u;
	return (int32_t)(lo + (int64_t)((uint64_t)(uint32_t)v % span));
}

static int8_t *arr_i8(pool *q, size_t n)
{
	int8_t *a = malloc(n == 0u ? 1u : n);
	for (size_t i = 0; i < n; i++) {
		a[i] = (int8_t)pool_byte(q);
	}
	return a;
}

/* n int32 values; folded into [lo, hi] when `in_range` */
static int32_t *arr_i32(pool *q, size_t n, int in_range, int64_t lo, int64_t hi)
{
	int32_t *a = malloc(n == 0u ? 4u : n * 4u);
	for (size_t i = 0; i < n; i++) {
		const int32_t v = pool_i32(q);
		a[i] = in_range ? fold(v, lo, hi) : v;
	}
	return a;
}

#define N_ARRAYS 13
#define MAX_ALLOCS 64

typedef struct {
	void *p[MAX_ALLOCS];
	int n;
} allocs;

static void *keep(allocs *a, void *p)
{
	a->p[a->n++] = p;
	return p;
}

/* A layer's W, bias, mult and shift; flag bits 0-2 fold bias, mult, shift into their ranges. */
static void fill_layer(allocs *a, pool *q, uint32_t flags, size_t in, size_t out, const int8_t **W,
		       const int32_t **bias, const int32_t **mult, const int32_t **shift)
{
	*W = keep(a, arr_i8(q, in * out));
	*bias = keep(a, arr_i32(q, out, (flags >> 0) & 1u, -TM_BIAS_MAX, TM_BIAS_MAX));
	*mult = keep(a, arr_i32(q, out, (flags >> 1) & 1u, -(int64_t)INT32_MAX, INT32_MAX));
	*shift = keep(a, arr_i32(q, out, (flags >> 2) & 1u, TM_SHIFT_MIN, TM_SHIFT_MAX));
}

/* small dimensions run fast; the validator sees every value when `big` */
static int32_t dim(int32_t v, int big)
{
	return big ? v : (v > 64 ? 1 + v % 64 : v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	reader r = {data, size, 0u};
	int32_t dims[5];
	for (int i = 0; i < 5; i++) {
		dims[i] = rd_i32(&r);
	}
	tm_block_config c;
	c.decay = (tm_decay)rd_i8(&r);
	c.dt_activation = (tm_dt_activation)rd_i8(&r);
	c.activation = (tm_activation)rd_i8(&r);
	c.norm = (tm_norm)rd_i8(&r);

	tm_block_q8_weights w;
	memset(&w, 0, sizeof(w));
	int32_t *const scalars[] = {
		&w.in_zp,	    &w.in_proj_x.out_zp, &w.in_proj_z.out_zp, &w.conv.out_zp,  &w.x_proj_dt.out_zp,
		&w.x_proj_B.out_zp, &w.x_proj_C.out_zp,	 &w.dt_proj.out_zp,   &w.ssm.x_zp,     &w.ssm.dt_zp,
		&w.ssm.B_zp,	    &w.ssm.C_zp,	 &w.ssm.bx_shift,     &w.ssm.hc_mult,  &w.ssm.hc_shift,
		&w.ssm.y_zp,	    &w.gate_zp,		 &w.yg_mult,	      &w.yg_shift,     &w.yg_zp,
		&w.out_proj.out_zp, &w.res_u_mult,	 &w.res_u_shift,      &w.res_m_mult,   &w.res_m_shift,
		&w.out_zp,	    &w.norm.in_zp,	 &w.norm.eps_q,	      &w.norm.out_zp,
	};
	for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		*scalars[i] = rd_i32(&r);
	}
	const uint32_t flags = rd_u32(&r);
	const int32_t L = 1 + (rd_i8(&r) & 3);
	const int big = (int)(flags >> 31);
	w.ssm.y_bits = (flags >> 13) & 1u ? 16 : 8;
	c.d_model = dim(dims[0], big);
	c.d_inner = dim(dims[1], big);
	c.d_state = dim(dims[2], big);
	c.d_conv = dim(dims[3], big);
	c.dt_rank = dim(dims[4], big);

	/* the config and sizes first: nothing is allocated from a refused shape */
	size_t state_bytes, scratch_bytes;
	if (tm_validate_block_sizes(&c, 1, &state_bytes, &scratch_bytes, NULL) != TM_VALID) {
		return 0;
	}
	if (state_bytes != tm_block_q8_state_bytes(&c) || scratch_bytes != tm_block_q8_scratch_bytes(&c)) {
		abort(); /* the validator and the kernels disagree on a size */
	}
	pool q = {data + (r.at < size ? r.at : size), r.at < size ? size - r.at : 0u, 0u};
	allocs a = {{0}, 0};
	const size_t dm = (size_t)c.d_model, di = (size_t)c.d_inner, n = (size_t)c.d_state;
	const size_t K = (size_t)c.d_conv, rk = (size_t)c.dt_rank;
	/* the layers: flag bits 0-2 for every layer's bias/mult/shift (one group keeps runs reachable) */
	fill_layer(&a, &q, flags, dm, di, &w.in_proj_x.W, &w.in_proj_x.bias, &w.in_proj_x.mult,
		   &w.in_proj_x.shift);
	fill_layer(&a, &q, flags, dm, di, &w.in_proj_z.W, &w.in_proj_z.bias, &w.in_proj_z.mult,
		   &w.in_proj_z.shift);
	fill_layer(&a, &q, flags >> 3, K, di, &w.conv.w, &w.conv.bias, &w.conv.mult, &w.conv.shift);
	fill_layer(&a, &q, flags >> 6, di, rk, &w.x_proj_dt.W, &w.x_proj_dt.bias, &w.x_proj_dt.mult,
		   &w.x_proj_dt.shift);
	fill_layer(&a, &q, flags >> 6, di, n, &w.x_proj_B.W, &w.x_proj_B.bias, &w.x_proj_B.mult,
		   &w.x_proj_B.shift);
	fill_layer(&a, &q, flags >> 6, di, n, &w.x_proj_C.W, &w.x_proj_C.bias, &w.x_proj_C.mult,
		   &w.x_proj_C.shift);
	fill_layer(&a, &q, flags >> 6, rk, di, &w.dt_proj.W, &w.dt_proj.bias, &w.dt_proj.mult,
		   &w.dt_proj.shift);
	fill_layer(&a, &q, flags >> 6, di, dm, &w.out_proj.W, &w.out_proj.bias, &w.out_proj.mult,
		   &w.out_proj.shift);
	w.conv_act_lut = keep(&a, arr_i8(&q, 256));
	w.dt_act_lut = keep(&a, arr_i8(&q, 256));
	w.gate_act_lut = keep(&a, arr_i8(&q, 256));
	w.ssm.A_q20 = keep(&a, arr_i32(&q, di * n, (flags >> 9) & 1u, -(int64_t)TM_A_Q20_MAX, TM_A_Q20_MAX));
	w.ssm.D_mult = keep(&a, arr_i32(&q, di, (flags >> 10) & 1u, -(int64_t)INT32_MAX, INT32_MAX));
	w.ssm.D_shift = keep(&a, arr_i32(&q, di, (flags >> 11) & 1u, TM_SHIFT_MIN, TM_SHIFT_MAX));
	w.norm.mult = keep(&a, arr_i32(&q, dm, (flags >> 12) & 1u, -(int64_t)INT32_MAX, INT32_MAX));
	w.norm.shift = keep(&a, arr_i32(&q, dm, (flags >> 12) & 1u, TM_SHIFT_MIN, TM_SHIFT_MAX));

	tm_valid_error err;
#if defined(FUZZ_BLOCK_TRUST_ALL)
	/* the harness's own check: with no validator the sanitizers must find the bad values */
	const tm_valid_status verdict = TM_VALID;
	memset(&err, 0, sizeof(err));
#else
	const tm_valid_status verdict = tm_validate_block_q8(&c, &w, &err);
#endif
#if defined(FUZZ_BLOCK_VERBOSE)
	fprintf(stderr, "verdict: %s %s[%d] = %lld\n", verdict == TM_VALID ? "run" : "refused",
		err.field ? err.field : "", (int)err.index, (long long)err.value);
#endif
	if (verdict == TM_VALID) {
		/* accepted: the kernels must run clean on any input */
		void *state_mem = keep(&a, malloc(state_bytes));
		void *scratch = keep(&a, malloc(scratch_bytes));
		int8_t *u = keep(&a, arr_i8(&q, (size_t)L * dm));
		int8_t *out = keep(&a, malloc((size_t)L * dm));
		tm_block_q8_state st;
		tm_block_q8_state_bind(&c, &w, &st, state_mem);
		tm_block_q8_run(&c, &w, &st, u, L, out, scratch);
		tm_block_q8_step(&c, &w, &st, out, out, scratch); /* out aliasing u */
	}
	for (int i = 0; i < a.n; i++) {
		free(a.p[i]);
	}
	return 0;
}
