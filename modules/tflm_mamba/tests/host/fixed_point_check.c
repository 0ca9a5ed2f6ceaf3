/*
 * The scalar helpers of fixed_point.h over random and edge arguments inside their contracts,
 * one line per call: "<name> <args...> <result>". tests/python/test_kernels_host.py recomputes
 * every line with mamba_kws.fused.fixed_point (Python integers, no overflow) and compares.
 *
 * usage: fixed_point_check <count> <seed>
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "tflm_mamba/fixed_point.h"

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(rng_state >> 33);
}

static int32_t rint_in(int32_t lo, int32_t hi) /* inclusive */
{
	return (int32_t)((int64_t)lo + (int64_t)(rnd() % (uint32_t)((int64_t)hi - lo + 1)));
}

/* a random int32 of random magnitude (small values and the extremes are common) */
static int32_t rnd_i32(void)
{
	switch (rint_in(0, 5)) {
	case 0:
		return INT32_MIN;
	case 1:
		return INT32_MAX;
	default: {
		const int32_t bits = rint_in(0, 31);
		const int32_t v = (int32_t)(rnd() & (bits == 31 ? 0x7FFFFFFFu : ((1u << bits) - 1u)));
		return rint_in(0, 1) ? v : -v;
	}
	}
}

int main(int argc, char **argv)
{
	const int n = argc > 1 ? atoi(argv[1]) : 1000;
	rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) : 1u;
	for (int i = 0; i < n; i++) {
		/* requantisation: any acc, multiplier and zero point; shift in [-31, 30] */
		const int32_t acc = rnd_i32(), mult = rnd_i32(), shift = rint_in(-31, 30), zp = rint_in(-128, 127);
		printf("rq32 %ld %ld %ld %ld\n", (long)acc, (long)mult, (long)shift, (long)tm_rq32(acc, mult, shift));
		printf("rq8 %ld %ld %ld %ld %ld\n", (long)acc, (long)mult, (long)shift, (long)zp,
		       (long)tm_rq8(acc, mult, shift, zp));
		/* round(num / den), den > 0 */
		const int32_t den = rint_in(0, 2) ? rint_in(1, 600) : (int32_t)(rnd() >> 1) + 1;
		printf("div_round %ld %ld %ld\n", (long)acc, (long)den, (long)tm_div_round(acc, den));
		/* the decays, any argument */
		const int32_t x = rint_in(0, 3) ? -rint_in(0, 20 << 20) : rnd_i32();
		printf("exp %ld %ld\n", (long)x, (long)tm_exp_neg_q30(x));
		printf("sigmoid %ld %ld\n", (long)x, (long)tm_two_sigmoid_neg_q30(x));
		/* c + round-high(a b) where the result fits: the scan's h + h (Abar - 1) */
		const int32_t h = rint_in(-(1 << 30), (1 << 30) - 1), d2 = -rint_in(0, 1 << 30) * 2;
		printf("mla_hi_round %ld %ld %ld %ld\n", (long)(2 * h), (long)d2, (long)h,
		       (long)tm_mla_hi_round(2 * h, d2, h));
	}
	return 0;
}
