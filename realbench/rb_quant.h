/*
 * rb_quant.h - INT8 requantisation and activations shared by the C kernels and
 * the CUDA benchmark, so that both produce bit-identical INT8 activations.
 *
 * Between layers an int32 accumulator becomes an int8 activation by a rounded
 * arithmetic right shift (round half up) and saturation, then the layer's
 * activation: ReLU directly on the integer, GELU and sigmoid through a 256-entry
 * table (input scale 1/16, built once on the host in double precision), and a
 * row-wise integer softmax (exp table, integer normalisation). Everything after
 * the table build is integer arithmetic, so CPU and GPU agree exactly.
 * This header has no dependencies beyond <stdint.h> and <math.h> so that the
 * standalone CUDA benchmark (nvcc only) can include it. Right shifts of
 * negative values are arithmetic on every compiler we build with (GCC, nvcc).
 */
#ifndef FLEETSIM_RB_QUANT_H
#define FLEETSIM_RB_QUANT_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define RB_HD __host__ __device__
#else
#define RB_HD
#endif

typedef enum {
    RB_ACT_NONE = 0,
    RB_ACT_RELU,
    RB_ACT_GELU,
    RB_ACT_SIGMOID,
    RB_ACT_SOFTMAX /* row-wise over the op's n outputs */
} rb_act;

/* Fixed-point scale of INT8 activations fed to the tables: x = q / 16. */
#define RB_Q_SCALE 16.0

/* int32 accumulator -> int8, round half up, saturate. shift >= 1. */
static inline RB_HD int8_t rb_requant(int32_t acc, int shift)
{
    int64_t v = ((int64_t)acc + ((int64_t)1 << (shift - 1))) >> shift;
    if (v > 127)
        v = 127;
    if (v < -128)
        v = -128;
    return (int8_t)v;
}

/* Tables: lut[act][q + 128] for GELU and sigmoid; exp_lut[d] = round(255 *
 * exp(-d / 16)) for d = max - q in [0, 255]. */
typedef struct {
    int8_t gelu[256];
    int8_t sigmoid[256];
    int32_t exp_neg[256];
} rb_qtables;

static inline void rb_qtables_init(rb_qtables *t)
{
    for (int q = -128; q < 128; q++) {
        double x = q / RB_Q_SCALE;
        double g = 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        double s = 1.0 / (1.0 + exp(-x));
        long gq = lround(g * RB_Q_SCALE);
        long sq = lround(s * 127.0);
        t->gelu[q + 128] = (int8_t)(gq > 127 ? 127 : gq < -128 ? -128 : gq);
        t->sigmoid[q + 128] = (int8_t)sq;
    }
    for (int d = 0; d < 256; d++)
        t->exp_neg[d] = (int32_t)lround(255.0 * exp(-d / RB_Q_SCALE));
}

/* Elementwise activation of one requantised value (not softmax). */
static inline RB_HD int8_t rb_act_s8(const rb_qtables *t, rb_act act, int8_t q)
{
    switch (act) {
    case RB_ACT_RELU:
        return q > 0 ? q : 0;
    case RB_ACT_GELU:
        return t->gelu[q + 128];
    case RB_ACT_SIGMOID:
        return t->sigmoid[q + 128];
    default:
        return q;
    }
}

/* Integer softmax of one row in place: out = round(127 * e_j / sum e). */
static inline RB_HD void rb_softmax_s8_row(const rb_qtables *t, int8_t *row, int n)
{
    int mx = -128;
    for (int j = 0; j < n; j++)
        mx = row[j] > mx ? row[j] : mx;
    int64_t sum = 0;
    for (int j = 0; j < n; j++)
        sum += t->exp_neg[mx - row[j]];
    for (int j = 0; j < n; j++)
        row[j] = (int8_t)((t->exp_neg[mx - row[j]] * (int64_t)127 + sum / 2) / sum);
}

/* Requantisation shift for an op with reduction length k: inputs uniform in
 * [-127, 127] have sd ~73, the accumulator sd ~ sqrt(k) * 73^2; the shift maps
 * that to ~32 so activations use the int8 range without saturating often. */
static inline int rb_requant_shift(int k)
{
    int s = (int)lround(log2(sqrt((double)k) * 73.0 * 73.0 / 32.0));
    return s < 1 ? 1 : s;
}

#endif
