/*
 * rb_cuda_llm_step.cu - `rb_cuda_bench --llm-step`: the decoder layer stack
 * of `realbench llm-step` (realbench/llm_layer.c) run on the GPU as an LLM
 * engine runs one scheduler step, timed over the same grid of step
 * compositions, written as CSV for `realbench cuda-llm-step` to fit.
 *
 * Per layer and step of T tokens: x -> QKV projection -> each new token's K
 * and V into the cache (FP16, one buffer per KV head that every sequence
 * reads a prefix of, as on the CPU) -> attention -> output projection,
 * residual add -> ReLU MLP, residual add. The projections and MLP are
 * cuBLASLt GEMMs (C = A W^T, "TN" as cuBLAS sees it) in:
 *   fp16  A, W IEEE half, FP32 accumulation and output (CUBLAS_COMPUTE_32F);
 *   bf16  the same in bfloat16;
 *   int8  W quantised per output row, A per token (row) on the fly, int8 x
 *         int8 -> int32 (CUBLAS_COMPUTE_32I, IMMA), scaled back to FP32.
 * Attention is a kernel of this file: one block per (query, head), the
 * query's scores against its len = c + r + 1 cached keys (causal) in shared
 * memory, softmax, the weighted sum of the values; FP16 K/V, FP32 sums.
 * It serves prefill rows as it serves decode rows (one query each, not a
 * FlashAttention tiling), so a long prefill chunk's attention costs more
 * here than in an engine that tiles it. Softmax, residuals and ReLU are
 * FP32 in every precision.
 *
 * Before timing, each precision's output over two steps (a prefill chunk on
 * cached context beside decode rows, then decode and a fresh prompt) is
 * compared with a plain FP32 CPU reference of the same stack from the same
 * random values: max |y - y_ref| / max |y_ref| within the precision's bound
 * (fp16 5e-3 as on the CPU; bf16 3e-2, its 8-bit mantissa; int8 5e-2) or
 * the program exits 4. Timing: CUDA events around each step, warm-up first,
 * the median of the repetitions written.
 *
 * CSV: `# key=value` lines (device.*), then `check,PREC,ERR,BOUND` and
 * `step,PREC,IMPL,PREFILL_TOKENS,DECODE_SEQS,CONTEXT_TOKENS,REPS,LATENCY_S,PAIRS`
 * (PAIRS: the prefill chunks' causal query-key pairs, n (c + (n + 1) / 2) each).
 */
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

int rb_cuda_llm_step_main(int argc, char **argv);

namespace {

enum { X_CUDA = 1, X_USAGE = 2, X_NODEV = 3, X_CHECK = 4 };
enum lprec { L_FP16, L_BF16, L_INT8, L_N };
const char *const LNAME[L_N] = {"fp16", "bf16", "int8"};
const char *const LIMPL[L_N] = {"cublaslt-fp16-f32acc", "cublaslt-bf16-f32acc",
                                "cublaslt-int8-i32acc"};
const double LBOUND[L_N] = {5e-3, 3e-2, 5e-2};

struct llm_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void ck(cudaError_t e, const char *what, int line)
{
    if (e != cudaSuccess) {
        char b[512];
        snprintf(b, sizeof b, "line %d: %s: %s", line, what, cudaGetErrorString(e));
        throw llm_error(b);
    }
}
void cb(cublasStatus_t s, const char *what, int line)
{
    if (s != CUBLAS_STATUS_SUCCESS) {
        char b[512];
        snprintf(b, sizeof b, "line %d: %s: cuBLAS status %d", line, what, (int)s);
        throw llm_error(b);
    }
}
#define LCK(x) ck((x), #x, __LINE__)
#define LCB(x) cb((x), #x, __LINE__)

struct shape_t {
    int L, d, f, H, Hkv, dh, kvd, dq;
};

struct chunk_t {
    int n, c;
};

/* ---- kernels ------------------------------------------------------------ */

__global__ void k_to_half(const float *x, __half *y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2half(x[i]);
}

__global__ void k_to_bf16(const float *x, __nv_bfloat16 *y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16(x[i]);
}

__device__ float block_reduce(float v, bool is_max)
{
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, w) : v + w;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    __syncthreads();
    if (lane == 0)
        part[warp] = v;
    __syncthreads();
    v = lane < nw ? part[lane] : (is_max ? -INFINITY : 0.f);
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, w) : v + w;
    }
    return v;
}

/* One row per block: q = round(x / s), s = max|x| / 127 (as llm_layer.c). */
__global__ void k_quant_rows(const float *x, int8_t *q, float *scale, int K)
{
    const float *r = x + (size_t)blockIdx.x * K;
    float mx = 0;
    for (int k = threadIdx.x; k < K; k += blockDim.x)
        mx = fmaxf(mx, fabsf(r[k]));
    mx = block_reduce(mx, true);
    float s = mx > 0 ? mx / 127.f : 1.f, inv = 1.f / s;
    for (int k = threadIdx.x; k < K; k += blockDim.x) {
        float v = r[k] * inv;
        q[(size_t)blockIdx.x * K + k] = (int8_t)(v >= 0 ? (int)(v + 0.5f) : -(int)(-v + 0.5f));
    }
    if (threadIdx.x == 0)
        scale[blockIdx.x] = s;
}

__global__ void k_dequant(const int32_t *acc, const float *as, const float *ws, float *y, int N,
                          size_t total)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = (float)acc[i] * as[i / N] * ws[i % N];
}

__global__ void k_add(float *y, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

__global__ void k_relu(float *y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = fmaxf(y[i], 0.f);
}

/* Row t's new K and V (from its QKV row) into the cache at pos[t]. */
__global__ void k_cache_write(const float *qkv, const int *pos, __half *kc, __half *vc, int d,
                              int dq, int kvd, int dh, int C)
{
    int t = blockIdx.x;
    for (int i = threadIdx.x; i < kvd; i += blockDim.x) {
        int g = i / dh, j = i % dh;
        size_t at = ((size_t)g * C + pos[t]) * dh + j;
        kc[at] = __float2half(qkv[(size_t)t * dq + d + i]);
        vc[at] = __float2half(qkv[(size_t)t * dq + d + kvd + i]);
    }
}

/* Block (t, h): query row t of head h against the first pos[t] + 1 keys of
 * its KV head; shared memory holds the query and the scores. */
__global__ void k_attention(const float *qkv, const int *pos, const __half *kc, const __half *vc,
                            float *att, int d, int dq, int dh, int group, int C, float qscale)
{
    extern __shared__ float sh[];
    int t = blockIdx.x, h = blockIdx.y, g = h / group, len = pos[t] + 1;
    float *q = sh, *p = sh + dh;
    for (int j = threadIdx.x; j < dh; j += blockDim.x)
        q[j] = qkv[(size_t)t * dq + h * dh + j] * qscale;
    __syncthreads();
    const __half *K = kc + (size_t)g * C * dh, *V = vc + (size_t)g * C * dh;
    float mx = -INFINITY;
    for (int s = threadIdx.x; s < len; s += blockDim.x) {
        float a = 0;
        for (int j = 0; j < dh; j++)
            a += q[j] * __half2float(K[(size_t)s * dh + j]);
        p[s] = a;
        mx = fmaxf(mx, a);
    }
    mx = block_reduce(mx, true);
    float sum = 0;
    for (int s = threadIdx.x; s < len; s += blockDim.x) {
        p[s] = __expf(p[s] - mx);
        sum += p[s];
    }
    sum = block_reduce(sum, false);
    __syncthreads();
    for (int j = threadIdx.x; j < dh; j += blockDim.x) {
        float a = 0;
        for (int s = 0; s < len; s++)
            a += p[s] * __half2float(V[(size_t)s * dh + j]);
        att[(size_t)t * d + h * dh + j] = a / sum;
    }
}

unsigned blocks_for(size_t n)
{
    size_t b = (n + 255) / 256;
    return (unsigned)std::min<size_t>(b ? b : 1, 4096);
}

/* ---- host values and the FP32 reference --------------------------------- */

struct host_net {
    shape_t s;
    int T, C;
    std::vector<float> w[4]; /* qkv, o, up, down; all layers consecutive */
    std::vector<float> x, k, v;
};

const int WROWS_QKV = 0, W_O = 1, W_UP = 2, W_DOWN = 3;

void wdims(const shape_t &s, int w, int *rows, int *cols)
{
    int r[4] = {s.dq, s.d, s.f, s.d}, c[4] = {s.d, s.d, s.d, s.f};
    *rows = r[w];
    *cols = c[w];
}

/* The values: weights uniform with variance 1/K, input and cache uniform
 * in [-0.5, 0.5] (the scale of llm_layer.c; the draws are this program's). */
void host_init(host_net &h, const shape_t &s, int T, int C, unsigned long seed)
{
    h.s = s;
    h.T = T;
    h.C = C;
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<float> u(-1.f, 1.f);
    for (int w = 0; w < 4; w++) {
        int r, c;
        wdims(s, w, &r, &c);
        float a = std::sqrt(3.f / c);
        h.w[w].resize((size_t)s.L * r * c);
        for (float &e : h.w[w])
            e = u(rng) * a;
    }
    h.x.resize((size_t)T * s.d);
    for (float &e : h.x)
        e = 0.5f * u(rng);
    h.k.resize((size_t)s.Hkv * C * s.dh);
    h.v.resize(h.k.size());
    for (float &e : h.k)
        e = 0.5f * u(rng);
    for (float &e : h.v)
        e = 0.5f * u(rng);
}

void ref_mm(const float *A, int M, const float *W, int N, int K, float *C)
{
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double a = 0;
            for (int k = 0; k < K; k++)
                a += (double)A[(size_t)m * K + k] * W[(size_t)n * K + k];
            C[(size_t)m * N + n] = (float)a;
        }
}

/* One step through the stack in FP32 on the host (cache updated in place). */
std::vector<float> ref_step(host_net &h, const std::vector<chunk_t> &ch)
{
    const shape_t &s = h.s;
    int T = 0;
    for (const chunk_t &c : ch)
        T += c.n;
    std::vector<float> cur(h.x.begin(), h.x.begin() + (size_t)T * s.d), qkv((size_t)T * s.dq),
        att((size_t)T * s.d), o((size_t)T * s.d), hid((size_t)T * s.f), p(h.C);
    float qscale = 1.f / std::sqrt((float)s.dh);
    int group = s.H / s.Hkv;
    for (int l = 0; l < s.L; l++) {
        const float *w[4];
        for (int k = 0; k < 4; k++) {
            int r, c;
            wdims(s, k, &r, &c);
            w[k] = h.w[k].data() + (size_t)l * r * c;
        }
        ref_mm(cur.data(), T, w[0], s.dq, s.d, qkv.data());
        int row = 0;
        for (const chunk_t &c : ch) {
            for (int r = 0; r < c.n; r++)
                for (int i = 0; i < s.kvd; i++) {
                    size_t at = ((size_t)(i / s.dh) * h.C + c.c + r) * s.dh + i % s.dh;
                    h.k[at] = qkv[(size_t)(row + r) * s.dq + s.d + i];
                    h.v[at] = qkv[(size_t)(row + r) * s.dq + s.d + s.kvd + i];
                }
            row += c.n;
        }
        row = 0;
        for (const chunk_t &c : ch) {
            for (int r = 0; r < c.n; r++)
                for (int hd = 0; hd < s.H; hd++) {
                    int g = hd / group, len = c.c + r + 1;
                    const float *q = &qkv[(size_t)(row + r) * s.dq + hd * s.dh];
                    const float *K = &h.k[(size_t)g * h.C * s.dh], *V = &h.v[(size_t)g * h.C * s.dh];
                    double mx = -INFINITY, sum = 0;
                    for (int t = 0; t < len; t++) {
                        double a = 0;
                        for (int j = 0; j < s.dh; j++)
                            a += (double)q[j] * qscale * K[(size_t)t * s.dh + j];
                        p[t] = (float)a;
                        mx = std::max(mx, a);
                    }
                    for (int t = 0; t < len; t++) {
                        p[t] = (float)std::exp(p[t] - mx);
                        sum += p[t];
                    }
                    for (int j = 0; j < s.dh; j++) {
                        double a = 0;
                        for (int t = 0; t < len; t++)
                            a += (double)p[t] * V[(size_t)t * s.dh + j];
                        att[(size_t)(row + r) * s.d + hd * s.dh + j] = (float)(a / sum);
                    }
                }
            row += c.n;
        }
        ref_mm(att.data(), T, w[1], s.d, s.d, o.data());
        for (size_t i = 0; i < cur.size(); i++)
            cur[i] += o[i];
        ref_mm(cur.data(), T, w[2], s.f, s.d, hid.data());
        for (float &e : hid)
            e = std::max(e, 0.f);
        ref_mm(hid.data(), T, w[3], s.d, s.f, o.data());
        for (size_t i = 0; i < cur.size(); i++)
            cur[i] += o[i];
    }
    return cur;
}

/* ---- the GPU net -------------------------------------------------------- */

struct plan_t {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    cublasLtMatmulAlgo_t algo;
};

struct gpu_net {
    lprec p;
    shape_t s;
    int T, C;
    cudaStream_t stream = nullptr;
    cublasLtHandle_t lt = nullptr;
    void *workspace = nullptr;
    size_t workspace_bytes = 32u << 20;
    void *w[4] = {};        /* typed weights, layer l at l * wstride[k] elements */
    size_t wstride[4] = {}; /* one layer's matrix rounded up to 64 elements, so that
                             * every layer's starts 64-byte aligned (cuBLASLt's
                             * IMMA kernels want 16) */
    float *ws[4] = {};      /* int8 per-row scales */
    float *x = nullptr, *cur = nullptr, *qkv = nullptr, *att = nullptr, *o = nullptr,
          *hid = nullptr, *as = nullptr;
    void *a = nullptr;      /* GEMM input in the GEMM's type */
    int32_t *acc = nullptr;
    __half *kc = nullptr, *vc = nullptr;
    int *pos = nullptr;
    std::map<std::tuple<int, int, int>, plan_t> plans;

    ~gpu_net()
    {
        for (auto &e : plans) {
            cublasLtMatmulDescDestroy(e.second.desc);
            cublasLtMatrixLayoutDestroy(e.second.la);
            cublasLtMatrixLayoutDestroy(e.second.lb);
            cublasLtMatrixLayoutDestroy(e.second.lc);
        }
        void *bufs[] = {w[0], w[1], w[2], w[3], ws[0], ws[1], ws[2], ws[3], x, cur, qkv, att,
                        o, hid, as, a, acc, kc, vc, pos, workspace};
        for (void *b : bufs)
            if (b)
                cudaFree(b);
        if (lt)
            cublasLtDestroy(lt);
        if (stream)
            cudaStreamDestroy(stream);
    }

    template <class T_> T_ *alloc(size_t n)
    {
        void *q = nullptr;
        LCK(cudaMalloc(&q, n * sizeof(T_) + 16));
        return (T_ *)q;
    }

    void init(lprec p_, const host_net &h)
    {
        p = p_;
        s = h.s;
        T = h.T;
        C = h.C;
        LCK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        LCB(cublasLtCreate(&lt));
        LCK(cudaMalloc(&workspace, workspace_bytes));
        for (int k = 0; k < 4; k++) {
            int r, c;
            wdims(s, k, &r, &c);
            size_t one = (size_t)r * c, rows = (size_t)s.L * r;
            wstride[k] = (one + 63) / 64 * 64;
            size_t n = (size_t)s.L * wstride[k];
            if (p == L_INT8) {
                std::vector<int8_t> q(n);
                std::vector<float> sc(rows);
                for (size_t i = 0; i < rows; i++) {
                    const float *src = &h.w[k][i * c];
                    int8_t *dst = &q[(i / r) * wstride[k] + (i % r) * c];
                    float mx = 0;
                    for (int j = 0; j < c; j++)
                        mx = std::max(mx, std::fabs(src[j]));
                    float sv = mx > 0 ? mx / 127.f : 1.f;
                    sc[i] = sv;
                    for (int j = 0; j < c; j++) {
                        float v = src[j] / sv;
                        dst[j] = (int8_t)(v >= 0 ? (int)(v + 0.5f) : -(int)(-v + 0.5f));
                    }
                }
                w[k] = alloc<int8_t>(n);
                ws[k] = alloc<float>(rows);
                LCK(cudaMemcpy(w[k], q.data(), n, cudaMemcpyHostToDevice));
                LCK(cudaMemcpy(ws[k], sc.data(), rows * 4, cudaMemcpyHostToDevice));
            } else {
                std::vector<uint16_t> b(n);
                for (int l = 0; l < s.L; l++)
                    for (size_t i = 0; i < one; i++) {
                        float x = h.w[k][(size_t)l * one + i];
                        uint16_t *dst = &b[(size_t)l * wstride[k] + i];
                        if (p == L_FP16) {
                            __half v = __float2half(x);
                            memcpy(dst, &v, 2);
                        } else {
                            __nv_bfloat16 v = __float2bfloat16(x);
                            memcpy(dst, &v, 2);
                        }
                    }
                w[k] = alloc<uint16_t>(n);
                LCK(cudaMemcpy(w[k], b.data(), n * 2, cudaMemcpyHostToDevice));
            }
        }
        size_t wide = (size_t)T * std::max({s.dq, s.f, s.d});
        x = alloc<float>((size_t)T * s.d);
        cur = alloc<float>((size_t)T * s.d);
        qkv = alloc<float>((size_t)T * s.dq);
        att = alloc<float>((size_t)T * s.d);
        o = alloc<float>((size_t)T * s.d);
        hid = alloc<float>((size_t)T * s.f);
        as = alloc<float>(T);
        a = alloc<uint16_t>(wide);
        acc = alloc<int32_t>(wide);
        pos = alloc<int>(T);
        LCK(cudaMemcpy(x, h.x.data(), h.x.size() * 4, cudaMemcpyHostToDevice));
        std::vector<__half> kh(h.k.size()), vh(h.v.size());
        for (size_t i = 0; i < kh.size(); i++) {
            kh[i] = __float2half(h.k[i]);
            vh[i] = __float2half(h.v[i]);
        }
        kc = alloc<__half>(kh.size());
        vc = alloc<__half>(vh.size());
        LCK(cudaMemcpy(kc, kh.data(), kh.size() * 2, cudaMemcpyHostToDevice));
        LCK(cudaMemcpy(vc, vh.data(), vh.size() * 2, cudaMemcpyHostToDevice));
    }

    /* cuBLASLt, column-major: its A = our W (K x N, ld K, transposed), its B
     * = our activations (K x M, ld K), C = N x M (ld N): C^T = (A W^T)^T. */
    plan_t &plan(int M, int N, int K)
    {
        auto key = std::make_tuple(M, N, K);
        auto it = plans.find(key);
        if (it != plans.end())
            return it->second;
        plan_t pl;
        bool i8 = p == L_INT8;
        cudaDataType_t ab = i8 ? CUDA_R_8I : p == L_FP16 ? CUDA_R_16F : CUDA_R_16BF;
        cudaDataType_t ct = i8 ? CUDA_R_32I : CUDA_R_32F;
        LCB(cublasLtMatmulDescCreate(&pl.desc, i8 ? CUBLAS_COMPUTE_32I : CUBLAS_COMPUTE_32F, ct));
        cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
        LCB(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
        LCB(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
        LCB(cublasLtMatrixLayoutCreate(&pl.la, ab, K, N, K));
        LCB(cublasLtMatrixLayoutCreate(&pl.lb, ab, K, M, K));
        LCB(cublasLtMatrixLayoutCreate(&pl.lc, ct, N, M, N));
        cublasLtMatmulPreference_t pref;
        LCB(cublasLtMatmulPreferenceCreate(&pref));
        LCB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                 &workspace_bytes, sizeof workspace_bytes));
        cublasLtMatmulHeuristicResult_t heur;
        int found = 0;
        cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt, pl.desc, pl.la, pl.lb, pl.lc,
                                                           pl.lc, pref, 1, &heur, &found);
        cublasLtMatmulPreferenceDestroy(pref);
        LCB(st);
        if (found < 1) {
            char b[160];
            snprintf(b, sizeof b, "cuBLASLt has no %s algorithm for M=%d N=%d K=%d", LNAME[p],
                     M, N, K);
            throw llm_error(b);
        }
        pl.algo = heur.algo;
        return plans[key] = pl;
    }

    /* out (M x N, FP32) = in (M x K, FP32) . W[k] of layer l ^T */
    void gemm(const float *in, int M, int k, int l, float *out)
    {
        int N, K;
        wdims(s, k, &N, &K);
        size_t mk = (size_t)M * K;
        size_t woff = (size_t)l * wstride[k];
        plan_t &pl = plan(M, N, K);
        if (p == L_INT8) {
            k_quant_rows<<<M, 128, 0, stream>>>(in, (int8_t *)a, as, K);
            int32_t one = 1, zero = 0;
            LCB(cublasLtMatmul(lt, pl.desc, &one, (const int8_t *)w[k] + woff, pl.la, a, pl.lb,
                               &zero, acc, pl.lc, acc, pl.lc, &pl.algo, workspace,
                               workspace_bytes, stream));
            k_dequant<<<blocks_for((size_t)M * N), 256, 0, stream>>>(
                acc, as, ws[k] + (size_t)l * N, out, N, (size_t)M * N);
        } else {
            if (p == L_FP16)
                k_to_half<<<blocks_for(mk), 256, 0, stream>>>(in, (__half *)a, mk);
            else
                k_to_bf16<<<blocks_for(mk), 256, 0, stream>>>(in, (__nv_bfloat16 *)a, mk);
            float one = 1.f, zero = 0.f;
            LCB(cublasLtMatmul(lt, pl.desc, &one, (const uint16_t *)w[k] + woff, pl.la, a, pl.lb,
                               &zero, out, pl.lc, out, pl.lc, &pl.algo, workspace,
                               workspace_bytes, stream));
        }
        LCK(cudaGetLastError());
    }

    /* The positions of a step's rows in the cache (outside any timing). */
    int prepare(const std::vector<chunk_t> &ch)
    {
        std::vector<int> ps;
        for (const chunk_t &c : ch)
            for (int r = 0; r < c.n; r++)
                ps.push_back(c.c + r);
        if ((int)ps.size() > T)
            throw llm_error("a step has more tokens than the net was made for");
        for (int q : ps)
            if (q >= C)
                throw llm_error("a step reads more context than the net was made for");
        LCK(cudaMemcpy(pos, ps.data(), ps.size() * sizeof(int), cudaMemcpyHostToDevice));
        return (int)ps.size();
    }

    void step(int rows)
    {
        size_t td = (size_t)rows * s.d, tf = (size_t)rows * s.f;
        LCK(cudaMemcpyAsync(cur, x, td * 4, cudaMemcpyDeviceToDevice, stream));
        size_t shm = (size_t)(s.dh + C) * sizeof(float);
        for (int l = 0; l < s.L; l++) {
            gemm(cur, rows, WROWS_QKV, l, qkv);
            k_cache_write<<<rows, 128, 0, stream>>>(qkv, pos, kc, vc, s.d, s.dq, s.kvd, s.dh, C);
            k_attention<<<dim3(rows, s.H), 128, shm, stream>>>(
                qkv, pos, kc, vc, att, s.d, s.dq, s.dh, s.H / s.Hkv, C, 1.f / std::sqrt((float)s.dh));
            LCK(cudaGetLastError());
            gemm(att, rows, W_O, l, o);
            k_add<<<blocks_for(td), 256, 0, stream>>>(cur, o, td);
            gemm(cur, rows, W_UP, l, hid);
            k_relu<<<blocks_for(tf), 256, 0, stream>>>(hid, tf);
            gemm(hid, rows, W_DOWN, l, o);
            k_add<<<blocks_for(td), 256, 0, stream>>>(cur, o, td);
        }
        LCK(cudaGetLastError());
    }
};

/* ---- the grid (as rb_llm_grid in llm_step.c) ------------------------------ */

struct grid_step {
    int n_prefill, prefill_n, prefill_c, n_decode, decode_c;
};

std::vector<grid_step> make_grid(const std::vector<int> &pf, const std::vector<int> &dc,
                                 const std::vector<int> &cx)
{
    std::vector<grid_step> g;
    int mid_p = pf[pf.size() / 2], mid_d = dc[dc.size() / 2];
    for (int p : pf)
        g.push_back({1, p, 0, 0, 0});
    for (int c : cx)
        g.push_back({1, mid_p, c, 0, 0});
    for (int c : cx)
        for (int d : dc)
            g.push_back({0, 0, 0, d, c});
    for (int c : cx)
        g.push_back({1, pf[0], 0, mid_d, c});
    return g;
}

std::vector<int> parse_ints(const char *s)
{
    std::vector<int> v;
    while (s && *s) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || x < 1 || x > (1 << 20) || (*end && *end != ','))
            return {};
        if (!v.empty() && x <= v.back())
            return {};
        v.push_back((int)x);
        s = *end ? end + 1 : end;
    }
    return v;
}

void usage(FILE *f)
{
    fprintf(f, "usage: rb_cuda_bench --llm-step --out STEPS.csv [--layers 2] [--d-model 64] "
               "[--d-ff 256]\n"
               "         [--heads 4] [--kv-heads 2] [--precisions fp16,bf16,int8]\n"
               "         [--prefill 16,64,256,1024,2048] [--decode 1,16,64,256] "
               "[--contexts 128,512,2048]\n"
               "         [--reps 20] [--warmup 3] [--seed 42] [--device N]\n");
}

double check_precision(lprec p, const shape_t &s, unsigned long seed)
{
    static const std::vector<chunk_t> a = {{24, 40}, {1, 7}, {1, 70}, {1, 100}},
                                       b = {{1, 64}, {9, 0}};
    host_net h;
    host_init(h, s, 32, 128, seed);
    gpu_net g;
    g.init(p, h);
    double worst = 0;
    for (int k = 0; k < 2; k++) {
        const std::vector<chunk_t> &ch = k ? b : a;
        int rows = g.prepare(ch);
        g.step(rows);
        LCK(cudaStreamSynchronize(g.stream));
        std::vector<float> y((size_t)rows * s.d);
        LCK(cudaMemcpy(y.data(), g.cur, y.size() * 4, cudaMemcpyDeviceToHost));
        std::vector<float> r = ref_step(h, ch);
        double scale = 0, e = 0;
        for (size_t i = 0; i < y.size(); i++) {
            double di = std::fabs((double)y[i] - r[i]);
            scale = std::max(scale, (double)std::fabs(r[i]));
            e = std::isfinite(di) ? std::max(e, di) : INFINITY; /* a NaN fails */
        }
        worst = std::max(worst, scale > 0 ? e / scale : INFINITY);
    }
    return worst;
}

} /* namespace */

int rb_cuda_llm_step_main(int argc, char **argv)
{
    shape_t s = {2, 64, 256, 4, 2, 0, 0, 0};
    std::vector<int> pf = {16, 64, 256, 1024, 2048}, dc = {1, 16, 64, 256}, cx = {128, 512, 2048};
    std::vector<int> precs = {L_FP16, L_BF16, L_INT8};
    int reps = 20, warmup = 3, dev = 0;
    unsigned long seed = 42;
    const char *out = nullptr;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : nullptr;
        if (!strcmp(o, "--llm-step"))
            continue;
        if (!v) {
            usage(stderr);
            return X_USAGE;
        }
        i++;
        int *ip = !strcmp(o, "--layers") ? &s.L : !strcmp(o, "--d-model") ? &s.d
                  : !strcmp(o, "--d-ff") ? &s.f : !strcmp(o, "--heads") ? &s.H
                  : !strcmp(o, "--kv-heads") ? &s.Hkv : !strcmp(o, "--reps") ? &reps
                  : !strcmp(o, "--warmup") ? &warmup : !strcmp(o, "--device") ? &dev : nullptr;
        if (ip) {
            char *end;
            long x = strtol(v, &end, 10);
            if (end == v || *end || x < 0 || x > (1 << 20)) {
                usage(stderr);
                return X_USAGE;
            }
            *ip = (int)x;
        } else if (!strcmp(o, "--out")) {
            out = v;
        } else if (!strcmp(o, "--seed")) {
            seed = strtoul(v, nullptr, 10);
        } else if (!strcmp(o, "--prefill") || !strcmp(o, "--decode") || !strcmp(o, "--contexts")) {
            std::vector<int> l = parse_ints(v);
            if (l.empty()) {
                usage(stderr);
                return X_USAGE;
            }
            (!strcmp(o, "--prefill") ? pf : !strcmp(o, "--decode") ? dc : cx) = l;
        } else if (!strcmp(o, "--precisions")) {
            precs.clear();
            std::string all = v;
            size_t at = 0;
            while (at <= all.size()) {
                size_t e = all.find(',', at);
                std::string name = all.substr(at, e == std::string::npos ? std::string::npos : e - at);
                int k = 0;
                while (k < L_N && name != LNAME[k])
                    k++;
                if (k == L_N) {
                    fprintf(stderr, "rb_cuda_bench --llm-step: precisions are fp16, bf16, int8\n");
                    return X_USAGE;
                }
                precs.push_back(k);
                if (e == std::string::npos)
                    break;
                at = e + 1;
            }
        } else {
            usage(stderr);
            return X_USAGE;
        }
    }
    if (!out || s.L < 1 || s.d < 1 || s.f < 1 || s.H < 1 || s.Hkv < 1 || reps < 1 ||
        s.d % s.H || s.H % s.Hkv) {
        usage(stderr);
        return X_USAGE;
    }
    s.dh = s.d / s.H;
    s.kvd = s.Hkv * s.dh;
    s.dq = s.d + 2 * s.kvd;
    /* IMMA wants every dimension a multiple of 4 */
    bool int8 = std::find(precs.begin(), precs.end(), (int)L_INT8) != precs.end();
    if (int8 && (s.d % 4 || s.f % 4 || s.dq % 4)) {
        fprintf(stderr, "rb_cuda_bench --llm-step: int8 needs d_model, d_ff and d_model + 2 x "
                        "kv_heads x head size multiples of 4\n");
        return X_USAGE;
    }
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev < 1 || dev >= ndev) {
        fprintf(stderr, "rb_cuda_bench --llm-step: no CUDA device\n");
        return X_NODEV;
    }
    std::vector<grid_step> grid = make_grid(pf, dc, cx);
    int max_t = 0, max_c = 0;
    for (const grid_step &g : grid) {
        max_t = std::max(max_t, g.n_prefill * g.prefill_n + g.n_decode);
        max_c = std::max({max_c, g.prefill_c + g.prefill_n, g.decode_c + 1});
    }
    if ((size_t)(s.d / s.H + max_c) * sizeof(float) > 48 * 1024) {
        fprintf(stderr, "rb_cuda_bench --llm-step: contexts up to %d floats of scores fit "
                        "shared memory\n", 48 * 1024 / 4 - s.dh);
        return X_USAGE;
    }
    FILE *csv = fopen(out, "w");
    if (!csv) {
        fprintf(stderr, "%s: cannot write\n", out);
        return X_CUDA;
    }
    int rc = 0;
    try {
        LCK(cudaSetDevice(dev));
        cudaDeviceProp prop;
        LCK(cudaGetDeviceProperties(&prop, dev));
        int drv = 0, rt = 0, clock_khz = 0;
        cudaDriverGetVersion(&drv);
        cudaRuntimeGetVersion(&rt);
        cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, dev);
        fprintf(csv, "# device.kind=\"cuda\"\n# device.name=\"%s\"\n# device.cores_or_sms=%d\n"
                     "# device.clock_mhz=%d\n# device.compute_capability=\"%d.%d\"\n"
                     "# device.cuda=\"%d.%d\"\n# device.cuda_driver_api=\"%d.%d\"\n"
                     "# device.cublaslt=%zu\n",
                prop.name, prop.multiProcessorCount, clock_khz / 1000, prop.major, prop.minor,
                rt / 1000, rt % 1000 / 10, drv / 1000, drv % 1000 / 10, cublasLtGetVersion());
        fprintf(csv, "kind,precision,impl,prefill_tokens,decode_seqs,context_tokens,reps,"
                     "latency_s,prefill_attention_pairs\n");
        for (int pi : precs) {
            lprec p = (lprec)pi;
            double e = check_precision(p, s, seed);
            fprintf(csv, "check,%s,%.6g,%.6g\n", LNAME[p], e, LBOUND[p]);
            fprintf(stderr, "%s: output within %.3g of the FP32 reference's scale (bound %.3g)\n",
                    LNAME[p], e, LBOUND[p]);
            if (!(e <= LBOUND[p])) {
                fprintf(stderr, "rb_cuda_bench --llm-step: %s check failed\n", LNAME[p]);
                rc = X_CHECK;
                break;
            }
            host_net h;
            host_init(h, s, max_t, max_c, seed);
            gpu_net g;
            g.init(p, h);
            cudaEvent_t e0, e1;
            LCK(cudaEventCreate(&e0));
            LCK(cudaEventCreate(&e1));
            for (const grid_step &gs : grid) {
                std::vector<chunk_t> ch;
                double pt = 0, ds = 0, ct = 0, pairs = 0;
                for (int k = 0; k < gs.n_prefill; k++) {
                    ch.push_back({gs.prefill_n, gs.prefill_c});
                    pt += gs.prefill_n;
                    ct += gs.prefill_c;
                    /* causal query-key pairs: n (c + (n + 1) / 2) */
                    pairs += (double)gs.prefill_n * (gs.prefill_c + (gs.prefill_n + 1.0) / 2.0);
                }
                for (int k = 0; k < gs.n_decode; k++) {
                    ch.push_back({1, gs.decode_c});
                    ds += 1;
                    ct += gs.decode_c;
                }
                int rows = g.prepare(ch);
                for (int r = 0; r < warmup; r++)
                    g.step(rows);
                std::vector<double> t;
                for (int r = 0; r < reps; r++) {
                    LCK(cudaEventRecord(e0, g.stream));
                    g.step(rows);
                    LCK(cudaEventRecord(e1, g.stream));
                    LCK(cudaEventSynchronize(e1));
                    float ms = 0;
                    LCK(cudaEventElapsedTime(&ms, e0, e1));
                    t.push_back(ms * 1e-3);
                }
                std::sort(t.begin(), t.end());
                double med = t.size() % 2 ? t[t.size() / 2]
                                          : 0.5 * (t[t.size() / 2 - 1] + t[t.size() / 2]);
                fprintf(csv, "step,%s,%s,%.0f,%.0f,%.0f,%d,%.9g,%.0f\n", LNAME[p], LIMPL[p], pt,
                        ds, ct, reps, med, pairs);
                fprintf(stderr, "  %s prefill %5.0f decode %3.0f context %7.0f: %.6f s\n",
                        LNAME[p], pt, ds, ct, med);
            }
            cudaEventDestroy(e0);
            cudaEventDestroy(e1);
        }
    } catch (const std::exception &ex) {
        fprintf(stderr, "rb_cuda_bench --llm-step: %s\n", ex.what());
        rc = X_CUDA;
    }
    if (fclose(csv) && !rc)
        rc = X_CUDA;
    return rc;
}
