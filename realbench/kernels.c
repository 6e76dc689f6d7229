/*
 * kernels.c - CPU GEMM kernels (INT8 and FP32) and their references.
 *
 * Both operands are K-contiguous (C = A . B^T), the layout of inference
 * weights, so each output is a dot product. The INT8 kernel computes a 2 x 4
 * block of outputs per pass over K with int32 accumulators; GCC -O3 turns each
 * sum of int8 x int8 products into widening multiply-adds (pmaddwd on AVX2).
 * The FP32 kernel has the same shape; its sums are split into vector lanes
 * (omp simd reduction, so no -ffast-math is needed), so its rounding differs
 * from the reference's, within the tolerance the checks use. The references
 * are plain triple loops.
 */
#include "realbench.h"

static void dot_s8_2x4(const int8_t *restrict a0, const int8_t *restrict a1,
                       const int8_t *restrict b0, const int8_t *restrict b1,
                       const int8_t *restrict b2, const int8_t *restrict b3, int K,
                       int32_t out[8])
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (int k = 0; k < K; k++) {
        int32_t x = a0[k], y = a1[k];
        s0 += x * b0[k];
        s1 += x * b1[k];
        s2 += x * b2[k];
        s3 += x * b3[k];
        s4 += y * b0[k];
        s5 += y * b1[k];
        s6 += y * b2[k];
        s7 += y * b3[k];
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
    out[4] = s4, out[5] = s5, out[6] = s6, out[7] = s7;
}

static void dot_s8_1x4(const int8_t *restrict a0, const int8_t *restrict b0,
                       const int8_t *restrict b1, const int8_t *restrict b2,
                       const int8_t *restrict b3, int K, int32_t out[4])
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int k = 0; k < K; k++) {
        int32_t x = a0[k];
        s0 += x * b0[k];
        s1 += x * b1[k];
        s2 += x * b2[k];
        s3 += x * b3[k];
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

static int32_t dot_s8(const int8_t *restrict a, const int8_t *restrict b, int K)
{
    int32_t s = 0;
    for (int k = 0; k < K; k++)
        s += (int32_t)a[k] * b[k];
    return s;
}

void rb_gemm_s8(const int8_t *A, const int8_t *B, int32_t *C, int ldc, int M, int K, int n0,
                int n1)
{
    int n = n0;
    for (; n + 4 <= n1; n += 4) {
        const int8_t *b0 = B + (size_t)n * K, *b1 = b0 + K, *b2 = b1 + K, *b3 = b2 + K;
        int m = 0;
        for (; m + 2 <= M; m += 2) {
            int32_t o[8];
            dot_s8_2x4(A + (size_t)m * K, A + (size_t)(m + 1) * K, b0, b1, b2, b3, K, o);
            int32_t *c0 = C + (size_t)m * ldc + n, *c1 = c0 + ldc;
            c0[0] = o[0], c0[1] = o[1], c0[2] = o[2], c0[3] = o[3];
            c1[0] = o[4], c1[1] = o[5], c1[2] = o[6], c1[3] = o[7];
        }
        for (; m < M; m++) {
            int32_t o[4];
            dot_s8_1x4(A + (size_t)m * K, b0, b1, b2, b3, K, o);
            int32_t *c0 = C + (size_t)m * ldc + n;
            c0[0] = o[0], c0[1] = o[1], c0[2] = o[2], c0[3] = o[3];
        }
    }
    for (; n < n1; n++)
        for (int m = 0; m < M; m++)
            C[(size_t)m * ldc + n] = dot_s8(A + (size_t)m * K, B + (size_t)n * K, K);
}

/* FP32 sums are reassociated into vector lanes only where asked:
 * `omp simd reduction` (compiled with -fopenmp-simd, no OpenMP runtime). */
static void dot_f32_2x4(const float *restrict a0, const float *restrict a1,
                        const float *restrict b0, const float *restrict b1,
                        const float *restrict b2, const float *restrict b3, int K, float out[8])
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3, s4, s5, s6, s7)
    for (int k = 0; k < K; k++) {
        float x = a0[k], y = a1[k];
        s0 += x * b0[k];
        s1 += x * b1[k];
        s2 += x * b2[k];
        s3 += x * b3[k];
        s4 += y * b0[k];
        s5 += y * b1[k];
        s6 += y * b2[k];
        s7 += y * b3[k];
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
    out[4] = s4, out[5] = s5, out[6] = s6, out[7] = s7;
}

static void dot_f32_1x4(const float *restrict a, const float *restrict b0,
                        const float *restrict b1, const float *restrict b2,
                        const float *restrict b3, int K, float out[4])
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int k = 0; k < K; k++) {
        float x = a[k];
        s0 += x * b0[k];
        s1 += x * b1[k];
        s2 += x * b2[k];
        s3 += x * b3[k];
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

static float dot_f32(const float *restrict a, const float *restrict b, int K)
{
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int k = 0; k < K; k++)
        s += a[k] * b[k];
    return s;
}

void rb_gemm_f32(const float *A, const float *B, float *C, int ldc, int M, int K, int n0, int n1)
{
    int n = n0;
    for (; n + 4 <= n1; n += 4) {
        const float *b0 = B + (size_t)n * K, *b1 = b0 + K, *b2 = b1 + K, *b3 = b2 + K;
        int m = 0;
        for (; m + 2 <= M; m += 2) {
            float o[8];
            dot_f32_2x4(A + (size_t)m * K, A + (size_t)(m + 1) * K, b0, b1, b2, b3, K, o);
            float *c0 = C + (size_t)m * ldc + n, *c1 = c0 + ldc;
            c0[0] = o[0], c0[1] = o[1], c0[2] = o[2], c0[3] = o[3];
            c1[0] = o[4], c1[1] = o[5], c1[2] = o[6], c1[3] = o[7];
        }
        for (; m < M; m++) {
            float o[4];
            dot_f32_1x4(A + (size_t)m * K, b0, b1, b2, b3, K, o);
            float *c = C + (size_t)m * ldc + n;
            c[0] = o[0], c[1] = o[1], c[2] = o[2], c[3] = o[3];
        }
    }
    for (; n < n1; n++)
        for (int m = 0; m < M; m++)
            C[(size_t)m * ldc + n] = dot_f32(A + (size_t)m * K, B + (size_t)n * K, K);
}

void rb_gemm_s8_ref(const int8_t *A, const int8_t *B, int32_t *C, int M, int N, int K)
{
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            int64_t s = 0;
            for (int k = 0; k < K; k++)
                s += (int64_t)A[(size_t)m * K + k] * B[(size_t)n * K + k];
            C[(size_t)m * N + n] = (int32_t)s;
        }
}

void rb_gemm_f32_ref(const float *A, const float *B, float *C, int M, int N, int K)
{
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)A[(size_t)m * K + k] * B[(size_t)n * K + k];
            C[(size_t)m * N + n] = (float)s;
        }
}
