/*
 * Fixed-point maths of the int8 Mamba kernels, explained once. Everything else calls this.
 *
 * Quantised tensors (int8 activations and weights):
 *
 *     real = scale * (q - zero_point)            q in [-128, 127]; weights: zero_point = 0
 *
 * Requantisation. An int32 accumulator `acc` in units of s_in becomes units of s_out by the
 * real factor M = s_in / s_out, stored as a Q31 multiplier and a shift:
 *
 *     M = multiplier * 2^(shift - 31)            multiplier in [2^30, 2^31) (or negative), shift in [-31, 30]
 *     tm_rq32(acc, multiplier, shift) = floor((acc * multiplier + 2^(30 - shift)) / 2^(31 - shift))
 *
 * i.e. round-half-up of acc * M, computed exactly in 64 bits and saturated to int32. The
 * Python side (mamba_kws.fused.quantize.quantize_multiplier) makes multiplier/shift with frexp.
 *
 * Element-wise functions of one int8 tensor (SiLU, hard-swish, ReLU, softplus) are 256-entry
 * int8 tables: lut[q + 128] = round(f(s_in * (q - z_in)) / s_out) + z_out, clamped. The table
 * is computed in float64 by the Python quantiser and stored with the weights.
 *
 * The SSM decay Abar = exp(dt*A) or 2*sigmoid(dt*A) with dt*A <= 0, in Q30 (1.0 = 2^30):
 *
 *   argument  x = dt*A in Q20 (real = x / 2^20), formed as A_q20[d][n] * (q_dt - z_dt),
 *             A_q20 = round(s_dt * A * 2^20); x >= 0 gives 1.0 (the decay never grows h).
 *   exp       exp(x) = 2^-y with y = -x*log2(e) (Q20): 2^-y = 2^-floor(y) * 2^-frac(y), and
 *             2^-f, f in [0,1), is linear interpolation in tm_exp2_neg_table (257 entries:
 *             round(2^30 * 2^(-k/256)), k = 0..256). Max relative error ~2e-6.
 *   sigmoid   2*sigmoid(x) for x in [-16, 0] is linear interpolation in tm_two_sigmoid_table
 *             (257 entries: round(2^30 * 2 / (1 + exp(k/16))), k = 0..256); 0 below -16.
 *             The optimized scan reads the same interpolation from tm_two_sigmoid_dA_table:
 *             per interval k the pair 2 (t_k - 2^30), (t_k - t_{k+1}) * 32, and (-2^31, 0)
 *             (Abar = 0) for k = 256..511 so that one USAT bounds the index (ssm_scan_q8_opt.c).
 *
 * 1/sqrt(v) for RMSNorm, v an integer >= 1, in Q30: v = m 2^-e with m in [2^29, 2^31) and e
 * even; 1/sqrt(v) = 2^(e/2 - 15) / sqrt(m / 2^30), and 1/sqrt(t), t in [0.5, 2), is linear
 * interpolation in tm_rsqrt_table (193 entries, Q28: round(2^28 / sqrt(0.5 + k/128))).
 */
#ifndef TFLM_MAMBA_FIXED_POINT_H_
#define TFLM_MAMBA_FIXED_POINT_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The helpers below sit in inner loops: inlined even at -Os (Zephyr's default). */
#if defined(__GNUC__)
#define TM_INLINE static inline __attribute__((always_inline))
#define TM_LIKELY(c) __builtin_expect(!!(c), 1) /* the branch taken almost always: kept in line */
#define TM_NOINLINE __attribute__((noinline))
#else
#define TM_INLINE static inline
#define TM_LIKELY(c) (c)
#define TM_NOINLINE
#endif

#define TM_Q30_ONE ((int32_t)1 << 30)
#define TM_DECAY_ARG_FRAC_BITS 20
/* log2(e) in Q30, round(2^30 / ln 2). */
#define TM_LOG2E_Q30 ((int64_t)1549082005)

extern const int32_t tm_exp2_neg_table[257];
extern const int32_t tm_two_sigmoid_table[257];
extern const int32_t tm_rsqrt_table[193];
/* One interval k of the sigmoid table for the optimized scan (read with one LDRD). */
typedef struct {
	int32_t dA;    /* 2 (t_k - 2^30) */
	int32_t slope; /* (t_k - t_{k+1}) * 32 */
} tm_sigmoid_interval;
extern const tm_sigmoid_interval tm_two_sigmoid_dA_table[512];

TM_INLINE int32_t tm_sat_i32(int64_t v)
{
	return v > INT32_MAX ? INT32_MAX : (v < INT32_MIN ? INT32_MIN : (int32_t)v);
}

/* clamp to [-128, 127] (one SSAT on a Cortex-M3/M4) */
TM_INLINE int8_t tm_sat_i8(int32_t v)
{
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
	int32_t r;
	__asm__("ssat %0, #8, %1" : "=r"(r) : "r"(v));
	return (int8_t)r;
#else
	return (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
#endif
}

/* clamp to [-2^30, 2^30 - 1], the range of the scan state h (one SSAT #31 on a Cortex-M3/M4) */
TM_INLINE int32_t tm_sat_i31(int32_t v)
{
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
	int32_t r;
	__asm__("ssat %0, #31, %1" : "=r"(r) : "r"(v));
	return r;
#else
	return v > 0x3FFFFFFF ? 0x3FFFFFFF : (v < -0x40000000 ? -0x40000000 : v);
#endif
}

/*
 * round-half-up(acc * multiplier * 2^(shift - 31)), saturated to int32; shift in [-31, 30].
 *
 * For the usual shift <= -2 (a factor below 1/4: every requantisation of a trained model but
 * an occasional D) only the high word of the product matters. With t = 31 - shift >= 33,
 * hi = floor(prod / 2^32) and k = t - 33 = -2 - shift:
 *
 *     floor((prod + 2^(t-1)) / 2^t) = floor((hi + 2^k) / 2^(k+1))       (0 <= lo < 2^32)
 *                                   = ((hi >> k) + 1) >> 1               (hi = q 2^k + r, r < 2^k)
 *
 * one SMULL and three ALU operations on a Cortex-M, and no rounding constant to build.
 */
TM_INLINE int32_t tm_rq32(int32_t acc, int32_t multiplier, int32_t shift)
{
	const int64_t prod = (int64_t)acc * multiplier;
	const int32_t k = -2 - shift;
	if (TM_LIKELY(k >= 0)) {
		const int32_t hi = (int32_t)(prod >> 32); /* |hi| <= 2^30 */
		return ((hi >> k) + 1) >> 1;
	}
	const int32_t total = 31 - shift; /* 1 .. 32 */
	return tm_sat_i32((prod + ((int64_t)1 << (total - 1))) >> total);
}

/*
 * tm_rq32 of a small input (|x| < 2^15, e.g. an int8 difference), exactly: for shift >= -15 it
 * computes tm_rq32(x 2^16, multiplier, shift - 16), the same real product, so that a factor above
 * 1/4 (D of an int16 y) takes the fast path too.
 */
TM_INLINE int32_t tm_rq32_small(int32_t x, int32_t multiplier, int32_t shift)
{
	return shift >= -15 ? tm_rq32(x * 65536, multiplier, shift - 16) : tm_rq32(x, multiplier, shift);
}

/* clamp to [-32768, 32767] (one SSAT on a Cortex-M3/M4) */
TM_INLINE int32_t tm_sat_i16(int32_t v)
{
#if defined(__ARM_FEATURE_SAT) && __ARM_FEATURE_SAT
	int32_t r;
	__asm__("ssat %0, #16, %1" : "=r"(r) : "r"(v));
	return r;
#else
	return v > 32767 ? 32767 : (v < -32768 ? -32768 : v);
#endif
}

/* out = clamp(zero_point + tm_rq32(acc, multiplier, shift)) to [-32767, 32767] (symmetric int16) */
TM_INLINE int16_t tm_rq16(int32_t acc, int32_t multiplier, int32_t shift, int32_t zero_point)
{
	const int32_t r = tm_rq32(acc, multiplier, shift);
	int32_t v;
	if (TM_LIKELY(shift <= -2)) {
		v = tm_sat_i16(zero_point + r); /* |r| <= 2^29: the sum fits int32 */
	} else {
		const int64_t w = (int64_t)zero_point + r;
		v = (int32_t)(w > 32767 ? 32767 : (w < -32768 ? -32768 : w));
	}
	return (int16_t)(v < -32767 ? -32767 : v);
}

/* out = clamp(zero_point + tm_rq32(acc, multiplier, shift)) as int8. */
TM_INLINE int8_t tm_rq8(int32_t acc, int32_t multiplier, int32_t shift, int32_t zero_point)
{
	const int32_t r = tm_rq32(acc, multiplier, shift);
	if (TM_LIKELY(shift <= -2)) {
		return tm_sat_i8(zero_point + r); /* |r| <= 2^29: the sum fits int32 */
	}
	const int64_t v = (int64_t)zero_point + r;
	return (int8_t)(v > 127 ? 127 : (v < -128 ? -128 : v));
}

/* (a * b + 2^31) >> 32: the rounded high word of a product (one SMMULR on a Cortex-M4). */
TM_INLINE int32_t tm_mulhi_round(int32_t a, int32_t b)
{
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
	int32_t r;
	__asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
	return r;
#else
	return (int32_t)(((int64_t)a * b + 0x80000000LL) >> 32);
#endif
}

/* c + ((a * b + 2^31) >> 32), for a result that fits int32 (one SMMLAR on a Cortex-M4). */
TM_INLINE int32_t tm_mla_hi_round(int32_t a, int32_t b, int32_t c)
{
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
	int32_t r;
	__asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(c));
	return r;
#else
	return c + (int32_t)(((int64_t)a * b + 0x80000000LL) >> 32);
#endif
}

/* An int8 -> int8 element-wise function by table: lut[q + 128]. */
TM_INLINE int8_t tm_lut8(const int8_t *lut, int8_t q)
{
	return lut[(int32_t)q + 128];
}

/* exp(x) in Q30 for x = x_q20 / 2^20 <= 0 (see the header comment). */
TM_INLINE int32_t tm_exp_neg_q30(int32_t x_q20)
{
	if (x_q20 >= 0) {
		return TM_Q30_ONE;
	}
	/* y = -x * log2(e), Q20, rounded. -x <= 2^31, so the product fits 64 bits (unsigned). */
	const uint32_t y = (uint32_t)(((uint64_t)(0u - (uint32_t)x_q20) * (uint64_t)TM_LOG2E_Q30 + (1u << 29)) >> 30);
	const uint32_t ipart = y >> 20;
	if (ipart >= 31u) {
		return 0;
	}
	const uint32_t f = y & 0xFFFFFu; /* Q20 fraction */
	const uint32_t idx = f >> 12;    /* 8 bits */
	const int32_t frac = (int32_t)(f & 0xFFFu); /* 12 bits */
	const int32_t t0 = tm_exp2_neg_table[idx];
	const int32_t t1 = tm_exp2_neg_table[idx + 1u];
	/* (d f + 2^11) >> 12 = (d 2^8 * f 2^12 + 2^31) >> 32 with 0 <= d < 2^22, f < 2^12 */
	const int32_t v = t0 - tm_mulhi_round((t0 - t1) * 256, frac * 4096);
	return ipart == 0u ? v : (int32_t)(((uint32_t)v + (1u << (ipart - 1u))) >> ipart);
}

/* 2*sigmoid(x) in Q30 for x = x_q20 / 2^20 <= 0 (see the header comment). */
TM_INLINE int32_t tm_two_sigmoid_neg_q30(int32_t x_q20)
{
	if (x_q20 >= 0) {
		return TM_Q30_ONE;
	}
	const uint32_t u = 0u - (uint32_t)x_q20; /* -x in Q20, 1 .. 2^31; table step 1/16 = 2^16 */
	if (u >= ((uint32_t)16 << 20)) {
		return 0;
	}
	const uint32_t idx = u >> 16;
	const int32_t frac = (int32_t)(u & 0xFFFFu);
	const int32_t t0 = tm_two_sigmoid_table[idx];
	const int32_t t1 = tm_two_sigmoid_table[idx + 1u];
	/* (d f + 2^15) >> 16 = (d 2^5 * f 2^11 + 2^31) >> 32 with 0 <= d < 2^25, f < 2^16 */
	return t0 - tm_mulhi_round((t0 - t1) * 32, frac * 2048);
}

/* round(2^30 / sqrt(v)) approximately, for v >= 1 (v < 1 is taken as 1); see the header comment. */
TM_INLINE int32_t tm_rsqrt_q30(int32_t v)
{
	const uint32_t u = v < 1 ? 1u : (uint32_t)v;
#if defined(__GNUC__)
	const int32_t lz = __builtin_clz(u) - 1; /* zeros above bit 30: u << lz in [2^30, 2^31) */
#else
	int32_t lz = 0;
	while ((u << lz) < 0x40000000u) {
		lz++;
	}
#endif
	const int32_t e = lz & ~1; /* even: m = u << e in [2^29, 2^31) */
	const uint32_t m = u << e;
	const uint32_t off = m - 0x20000000u;                 /* 0 .. 3 * 2^29 - 1 */
	const uint32_t idx = off >> 23;                        /* 0 .. 191 */
	const int32_t frac = (int32_t)((off >> 11) & 0xFFFu); /* 12 bits */
	const int32_t t0 = tm_rsqrt_table[idx];
	const int32_t t1 = tm_rsqrt_table[idx + 1u];
	/* (d f + 2^11) >> 12 = (d 2^8 * f 2^12 + 2^31) >> 32 with 0 <= d < 2^22 */
	const int32_t g = t0 - tm_mulhi_round((t0 - t1) * 256, frac * 4096); /* Q28 */
	const int32_t half = e / 2;                                            /* 0 .. 15 */
	return half >= 13 ? g * ((int32_t)1 << (half - 13))
			  : (int32_t)(((uint32_t)g + (1u << (12 - half))) >> (13 - half));
}

/*
 * (h * decay + 2^29) >> 30 for h in [-2^30, 2^30 - 1] and decay in [0, 2^30] (Q30): equal to
 * (2h * 2decay + 2^31) >> 32, one rounded high-word multiply; decay = 1.0 leaves h as it is.
 */
TM_INLINE int32_t tm_mul_q30(int32_t h, int32_t decay_q30)
{
	return decay_q30 == TM_Q30_ONE ? h : tm_mulhi_round(h * 2, decay_q30 * 2);
}

/*
 * round(num / den) for den > 0, halves away from zero. On |num| = q den + r (0 <= r < den):
 * floor((2|num| + den) / (2 den)) = q + (2r >= den), one 32-bit division (UDIV on a Cortex-M3/M4).
 */
TM_INLINE int32_t tm_div_round(int32_t num, int32_t den)
{
	const uint32_t a = num >= 0 ? (uint32_t)num : 0u - (uint32_t)num; /* |num| <= 2^31 */
	const uint32_t d = (uint32_t)den;
	const uint32_t q = a / d;
	const uint32_t r = a - q * d;
	const uint32_t m = q + (r >= d - r ? 1u : 0u); /* 2r >= d without overflow; m <= 2^31 */
	return num >= 0 ? (int32_t)m : (int32_t)(0u - m);
}

#ifdef __cplusplus
}
#endif

#endif /* TFLM_MAMBA_FIXED_POINT_H_ */
