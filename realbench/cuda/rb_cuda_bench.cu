/*
 * rb_cuda_bench.cu - GPU inference kernels timed per model, precision and batch.
 *
 * A standalone program (nvcc, cuBLAS, cuBLASLt; nothing else) so that it builds
 * on a bare GPU machine. It reads a model's GEMM shapes from a plain text file
 * written by `realbench shapes` (format in realbench/README.md), and for each
 * requested precision runs the model's forward pass:
 *   int8       cuBLASLt, int8 x int8 -> int32 (CUBLAS_COMPUTE_32I, IMMA tensor
 *              cores), "TN" layout, output columns padded to a multiple of 4;
 *   int8_dp4a  a hand-written tiled __dp4a kernel, same data and epilogue;
 *   fp16, bf16 cublasGemmEx with FP32 accumulation; tf32 the same in FP32
 *              storage with CUBLAS_COMPUTE_32F_FAST_TF32; fp32 pure FP32.
 * INT8 activations are requantised between layers exactly as the CPU does
 * (rb_quant.h). Before any timing, every op's product at every batch is checked
 * on sampled elements against a CPU reference (exact for INT8, |err| <= tol *
 * sum|a*b| for floating point), and for INT8 the whole forward pass is checked
 * exactly at small batches. Timing: warm-up, then CUDA events around each
 * forward pass, inputs rotated among several buffer sets. Every repetition is
 * written as a CSV row (`# key=value` metadata first); statistics and the
 * profile JSON are made from the CSV by `realbench profile --from-csv` (GSL,
 * cJSON). The median printed to the log uses std::nth_element, for reading only.
 * Exit status: 0 ok, 1 CUDA/cuBLAS error, 2 bad usage, 3 no CUDA device,
 * 4 a correctness check failed.
 */
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../rb_quant.h"

enum { EXIT_CUDA = 1, EXIT_USAGE = 2, EXIT_NODEV = 3, EXIT_CHECK = 4 };

struct cuda_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

static void ck_cuda(cudaError_t e, const char *what, int line)
{
    if (e != cudaSuccess) {
        char b[512];
        snprintf(b, sizeof b, "line %d: %s: %s", line, what, cudaGetErrorString(e));
        throw cuda_error(b);
    }
}
static void ck_blas(cublasStatus_t s, const char *what, int line)
{
    if (s != CUBLAS_STATUS_SUCCESS) {
        char b[512];
        snprintf(b, sizeof b, "line %d: %s: %s", line, what, cublasGetStatusString(s));
        throw cuda_error(b);
    }
}
#define CK(x) ck_cuda((x), #x, __LINE__)
#define CB(x) ck_blas((x), #x, __LINE__)

/* ---- shapes ------------------------------------------------------------- */

struct op_t {
    std::string name;
    int groups, m, n, k, b_weight, shift, a_prev;
    rb_act act;
};
struct model_t {
    std::string name, file;
    std::vector<op_t> ops;
};

static int parse_act(const char *s, rb_act *a)
{
    static const char *names[] = {"none", "relu", "gelu", "sigmoid", "softmax"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *a = (rb_act)i;
            return 0;
        }
    return -1;
}

static int load_shapes(const char *path, model_t *m)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open shapes file\n", path);
        return -1;
    }
    char line[1024];
    int ln = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char a[256], b[64], c[64], d[64];
        op_t o;
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (sscanf(line, "model %255s", a) == 1) {
            m->name = a;
        } else if (sscanf(line, "file %255s", a) == 1) {
            m->file = a;
        } else if (sscanf(line, "op %255s %d %d %d %d %63s %63s %d %63s", a, &o.groups, &o.m,
                          &o.n, &o.k, b, c, &o.shift, d) == 9 &&
                   o.groups > 0 && o.m > 0 && o.n > 0 && o.k > 0 && o.shift > 0 &&
                   (!strcmp(b, "weight") || !strcmp(b, "act")) && !parse_act(c, &o.act) &&
                   (!strcmp(d, "prev") || !strcmp(d, "fresh"))) {
            o.name = a;
            o.b_weight = !strcmp(b, "weight");
            o.a_prev = !strcmp(d, "prev") && !m->ops.empty();
            if (o.b_weight && o.groups != 1) {
                fprintf(stderr, "%s:%d: a weight op must have groups 1\n", path, ln);
                bad = 1;
            }
            m->ops.push_back(o);
        } else {
            fprintf(stderr, "%s:%d: cannot parse: %s", path, ln, line);
            bad = 1;
        }
    }
    fclose(f);
    if (!bad && (m->name.empty() || m->ops.empty())) {
        fprintf(stderr, "%s: no model line or no op lines\n", path);
        bad = 1;
    }
    return bad ? -1 : 0;
}

/* ---- precisions ---------------------------------------------------------- */

enum prec_t { P_INT8, P_DP4A, P_FP16, P_BF16, P_TF32, P_FP32, P_COUNT };
static const char *PREC_NAME[P_COUNT] = {"int8", "int8_dp4a", "fp16", "bf16", "tf32", "fp32"};
static const char *PREC_IMPL[P_COUNT] = {"cublaslt", "dp4a", "cublas", "cublas", "cublas",
                                         "cublas"};
static size_t elem_size(prec_t p)
{
    return p <= P_DP4A ? 1 : (p == P_FP16 || p == P_BF16) ? 2 : 4;
}
static bool is_int8(prec_t p) { return p <= P_DP4A; }

/* ---- device kernels ------------------------------------------------------ */

__constant__ rb_qtables c_tab;

/* C (ldc) int32 -> Q (ld n) int8: requantise + elementwise activation. */
__global__ void k_requant(const int32_t *C, int ldc, int8_t *Q, long long rows, int n, int shift,
                          int act)
{
    long long total = rows * n;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        long long r = i / n;
        int c = (int)(i - r * n);
        Q[i] = rb_act_s8(&c_tab, (rb_act)act, rb_requant(C[r * ldc + c], shift));
    }
}

/* One warp per row: requantise, then the integer softmax of rb_quant.h. */
__global__ void k_requant_softmax(const int32_t *C, int ldc, int8_t *Q, long long rows, int n,
                                  int shift)
{
    long long r = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x & 31;
    if (r >= rows)
        return;
    const int32_t *c = C + r * ldc;
    int8_t *q = Q + r * n;
    int mx = -128;
    for (int j = lane; j < n; j += 32)
        mx = max(mx, (int)rb_requant(c[j], shift));
    for (int o = 16; o; o >>= 1)
        mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    long long sum = 0;
    for (int j = lane; j < n; j += 32)
        sum += c_tab.exp_neg[mx - rb_requant(c[j], shift)];
    for (int o = 16; o; o >>= 1)
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
    for (int j = lane; j < n; j += 32)
        q[j] = (int8_t)((c_tab.exp_neg[mx - rb_requant(c[j], shift)] * 127LL + sum / 2) / sum);
}

template <typename T> __device__ float to_f(T x) { return (float)x; }
template <> __device__ float to_f<__half>(__half x) { return __half2float(x); }
template <> __device__ float to_f<__nv_bfloat16>(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ T from_f(float x) { return (T)x; }
template <> __device__ __half from_f<__half>(float x) { return __float2half(x); }
template <> __device__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

template <typename T> __global__ void k_act(T *Q, long long total, int act)
{
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        float x = to_f(Q[i]);
        if (act == RB_ACT_RELU)
            x = fmaxf(x, 0.f);
        else if (act == RB_ACT_GELU)
            x = 0.5f * x * (1.f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x)));
        else if (act == RB_ACT_SIGMOID)
            x = 1.f / (1.f + __expf(-x));
        Q[i] = from_f<T>(x);
    }
}

template <typename T> __global__ void k_softmax(T *Q, long long rows, int n)
{
    long long r = (blockIdx.x * (long long)blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x & 31;
    if (r >= rows)
        return;
    T *q = Q + r * n;
    float mx = -INFINITY, sum = 0.f;
    for (int j = lane; j < n; j += 32)
        mx = fmaxf(mx, to_f(q[j]));
    for (int o = 16; o; o >>= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    for (int j = lane; j < n; j += 32)
        sum += __expf(to_f(q[j]) - mx);
    for (int o = 16; o; o >>= 1)
        sum += __shfl_xor_sync(0xffffffffu, sum, o);
    for (int j = lane; j < n; j += 32)
        q[j] = from_f<T>(__expf(to_f(q[j]) - mx) / sum);
}

/* C[g][M][ldc] = A[g][M][K] . B[g][N][K]^T with __dp4a; K % 4 == 0, rows of
 * A and B 4-byte aligned. 64 x 64 tile per block of 16 x 16 threads, each
 * thread 4 x 4 outputs; 32 bytes of K per shared-memory stage. */
__global__ void __launch_bounds__(256) k_dp4a(const int8_t *A, const int8_t *B, int32_t *C, int M,
                                              int N, int K, int ldc, long long sA, long long sB,
                                              long long sC)
{
    __shared__ int As[64][9], Bs[64][9];
    int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    int m0 = blockIdx.y * 64, n0 = blockIdx.x * 64;
    const int8_t *a = A + blockIdx.z * sA;
    const int8_t *b = B + blockIdx.z * sB;
    int acc[4][4] = {};
    for (int k0 = 0; k0 < K; k0 += 32) {
        for (int l = 0; l < 2; l++) {
            int idx = tid + 256 * l, row = idx >> 3, w = idx & 7, kk = k0 + 4 * w;
            As[row][w] = (m0 + row < M && kk < K) ? *(const int *)(a + (long long)(m0 + row) * K + kk) : 0;
            Bs[row][w] = (n0 + row < N && kk < K) ? *(const int *)(b + (long long)(n0 + row) * K + kk) : 0;
        }
        __syncthreads();
#pragma unroll
        for (int w = 0; w < 8; w++) {
            int av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                av[i] = As[ty + 16 * i][w];
                bv[i] = Bs[tx + 16 * i][w];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++)
                    acc[i][j] = __dp4a(av[i], bv[j], acc[i][j]);
        }
        __syncthreads();
    }
    int32_t *c = C + blockIdx.z * sC;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            int r = m0 + ty + 16 * i, col = n0 + tx + 16 * j;
            if (r < M && col < N)
                c[(long long)r * ldc + col] = acc[i][j];
        }
}

/* ---- host helpers ---------------------------------------------------------- */

static float h2f(prec_t p, const void *v)
{
    switch (p) {
    case P_FP16:
        return __half2float(*(const __half *)v);
    case P_BF16:
        return __bfloat162float(*(const __nv_bfloat16 *)v);
    case P_TF32:
    case P_FP32:
        return *(const float *)v;
    default:
        return (float)*(const int8_t *)v;
    }
}

static void f2h(prec_t p, float x, void *v)
{
    switch (p) {
    case P_FP16:
        *(__half *)v = __float2half(x);
        break;
    case P_BF16:
        *(__nv_bfloat16 *)v = __float2bfloat16(x);
        break;
    default:
        *(float *)v = x;
    }
}

/* Device buffer of random values: int8 uniform in [-127, 127]; floating
 * point uniform in [-1, 1] times `scale`. Rows >= n_valid of each [rows][k]
 * block of `rows_per_block` rows are zero (INT8 column padding). */
static void *make_buffer(prec_t p, size_t count, std::mt19937_64 &rng, float scale, int k = 0,
                         int rows_per_block = 0, int n_valid = 0)
{
    size_t es = elem_size(p);
    std::vector<unsigned char> h(count * es);
    std::uniform_int_distribution<int> di(-127, 127);
    std::uniform_real_distribution<float> df(-1.f, 1.f);
    for (size_t i = 0; i < count; i++) {
        bool pad = rows_per_block && (int)((i / k) % rows_per_block) >= n_valid;
        if (is_int8(p))
            ((int8_t *)h.data())[i] = pad ? 0 : (int8_t)di(rng);
        else
            f2h(p, pad ? 0.f : df(rng) * scale, h.data() + i * es);
    }
    void *d = nullptr;
    CK(cudaMalloc(&d, count > 0 ? count * es : 1));
    CK(cudaMemcpy(d, h.data(), count * es, cudaMemcpyHostToDevice));
    return d;
}

struct lt_plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t la = nullptr, lb = nullptr, lc = nullptr;
    cublasLtMatmulHeuristicResult_t heur;
};

struct engine {
    prec_t p;
    const model_t *m;
    int max_batch, rotate;
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;
    cublasLtHandle_t lt = nullptr;
    void *workspace = nullptr;
    size_t workspace_bytes = 32u << 20;
    /* per op */
    std::vector<int> npad;                   /* ld of C (int8: N rounded up to 4) */
    std::vector<void *> W;                   /* weights [npad][k], or null */
    std::vector<std::vector<void *>> Afresh; /* [rotate] */
    std::vector<std::vector<void *>> Bact;   /* [rotate] act operands [G][npad][k] */
    std::vector<void *> C;                   /* int8: int32 [G][M][npad]; fp: = Q */
    std::vector<void *> Q;                   /* activated output [G][M][n] */
    /* int8 cuBLASLt: per batch size, per op; kept, so that a serving loop that
     * changes batch size at every dispatch does not rebuild them */
    std::vector<std::vector<lt_plan>> plan_cache;

    ~engine()
    {
        free_plans();
        auto f = [](void *x) { if (x) cudaFree(x); };
        for (void *x : W) f(x);
        for (auto &v : Afresh) for (void *x : v) f(x);
        for (auto &v : Bact) for (void *x : v) f(x);
        for (size_t i = 0; i < C.size(); i++) {
            if (C[i] != Q[i]) f(C[i]);
            f(Q[i]);
        }
        f(workspace);
        if (lt) cublasLtDestroy(lt);
        if (blas) cublasDestroy(blas);
        if (stream) cudaStreamDestroy(stream);
    }

    void free_plans()
    {
        for (auto &plans : plan_cache)
            for (auto &pl : plans) {
                if (pl.desc) cublasLtMatmulDescDestroy(pl.desc);
                if (pl.la) cublasLtMatrixLayoutDestroy(pl.la);
                if (pl.lb) cublasLtMatrixLayoutDestroy(pl.lb);
                if (pl.lc) cublasLtMatrixLayoutDestroy(pl.lc);
            }
        plan_cache.clear();
    }

    static size_t bytes_for(const model_t *m, prec_t p, int b, int rotate)
    {
        size_t es = elem_size(p), tot = 0;
        for (size_t i = 0; i < m->ops.size(); i++) {
            const op_t &o = m->ops[i];
            size_t np = is_int8(p) ? (o.n + 3) / 4 * 4 : o.n;
            size_t gm = (size_t)b * o.groups * o.m;
            tot += gm * o.n * es + (is_int8(p) ? gm * np * 4 : 0);
            tot += o.b_weight ? np * o.k * es : rotate * (size_t)b * o.groups * np * o.k * es;
            if (!o.a_prev)
                tot += rotate * gm * o.k * es;
        }
        return tot;
    }

    void init(prec_t p_, const model_t *m_, int max_batch_, int rotate_, unsigned long seed)
    {
        p = p_;
        m = m_;
        max_batch = max_batch_;
        rotate = rotate_;
        CK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
        CB(cublasCreate(&blas));
        CB(cublasSetStream(blas, stream));
        CB(cublasLtCreate(&lt));
        CK(cudaMalloc(&workspace, workspace_bytes));
        CB(cublasSetWorkspace(blas, workspace, workspace_bytes));
        std::mt19937_64 rng(seed);
        size_t es = elem_size(p);
        for (size_t i = 0; i < m->ops.size(); i++) {
            const op_t &o = m->ops[i];
            if (is_int8(p) && o.k % 4)
                throw std::runtime_error("INT8 needs k % 4 == 0 (op " + o.name + ")");
            int np = is_int8(p) ? (o.n + 3) / 4 * 4 : o.n;
            npad.push_back(np);
            /* FP weights ~ U(-1,1) * sqrt(3/k): unit variance is preserved. */
            float ws = std::sqrt(3.f / o.k);
            size_t gm = (size_t)max_batch * o.groups * o.m;
            W.push_back(o.b_weight ? make_buffer(p, (size_t)np * o.k, rng, ws, o.k, np, o.n)
                                   : nullptr);
            Afresh.emplace_back();
            Bact.emplace_back();
            for (int r = 0; r < rotate; r++) {
                if (!o.a_prev)
                    Afresh.back().push_back(make_buffer(p, gm * o.k, rng, 1.f));
                if (!o.b_weight)
                    Bact.back().push_back(make_buffer(p, (size_t)max_batch * o.groups * np * o.k,
                                                      rng, ws, o.k, np, o.n));
            }
            void *q = nullptr, *c = nullptr;
            CK(cudaMalloc(&q, gm * o.n * es));
            if (is_int8(p))
                CK(cudaMalloc(&c, gm * np * 4));
            else
                c = q;
            Q.push_back(q);
            C.push_back(c);
        }
    }

    int G(const op_t &o, int b) const { return o.b_weight ? 1 : b * o.groups; }
    int M(const op_t &o, int b) const { return o.b_weight ? b * o.m : o.m; }
    const void *A_of(size_t i, int r) const { return m->ops[i].a_prev ? Q[i - 1] : Afresh[i][r % rotate]; }
    const void *B_of(size_t i, int r) const { return m->ops[i].b_weight ? W[i] : Bact[i][r % rotate]; }

    void make_plans(int b)
    {
        if ((int)plan_cache.size() <= b)
            plan_cache.resize((size_t)b + 1);
        if (!plan_cache[b].empty())
            return;
        std::vector<lt_plan> &plans = plan_cache[b];
        plans.resize(m->ops.size());
        for (size_t i = 0; i < m->ops.size(); i++) {
            const op_t &o = m->ops[i];
            lt_plan &pl = plans[i];
            int g = G(o, b), mm = M(o, b), np = npad[i];
            CB(cublasLtMatmulDescCreate(&pl.desc, CUBLAS_COMPUTE_32I, CUDA_R_32I));
            cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
            CB(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
            CB(cublasLtMatmulDescSetAttribute(pl.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
            /* column-major: cuBLAS A = our B (k x npad, ld k, transposed),
             * cuBLAS B = our A (k x M, ld k), C = npad x M (ld npad). */
            CB(cublasLtMatrixLayoutCreate(&pl.la, CUDA_R_8I, o.k, np, o.k));
            CB(cublasLtMatrixLayoutCreate(&pl.lb, CUDA_R_8I, o.k, mm, o.k));
            CB(cublasLtMatrixLayoutCreate(&pl.lc, CUDA_R_32I, np, mm, np));
            if (g > 1) {
                int32_t bc = g;
                int64_t sa = o.b_weight ? 0 : (int64_t)np * o.k, sb = (int64_t)mm * o.k,
                        sc = (int64_t)mm * np;
                cublasLtMatrixLayout_t ls[3] = {pl.la, pl.lb, pl.lc};
                int64_t ss[3] = {sa, sb, sc};
                for (int j = 0; j < 3; j++) {
                    CB(cublasLtMatrixLayoutSetAttribute(ls[j], CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc));
                    CB(cublasLtMatrixLayoutSetAttribute(ls[j], CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &ss[j], sizeof ss[j]));
                }
            }
            cublasLtMatmulPreference_t pref;
            CB(cublasLtMatmulPreferenceCreate(&pref));
            CB(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace_bytes, sizeof workspace_bytes));
            int found = 0;
            cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt, pl.desc, pl.la, pl.lb, pl.lc,
                                                               pl.lc, pref, 1, &pl.heur, &found);
            cublasLtMatmulPreferenceDestroy(pref);
            CB(st);
            if (found < 1 || pl.heur.state != CUBLAS_STATUS_SUCCESS) {
                char msg[256];
                snprintf(msg, sizeof msg, "cuBLASLt has no INT8 algorithm for op %s batch %d "
                         "(m=%d n=%d k=%d batch_count=%d)", o.name.c_str(), b, np, mm, o.k, g);
                throw cuda_error(msg);
            }
        }
    }

    void gemm(size_t i, int b, int r)
    {
        const op_t &o = m->ops[i];
        int g = G(o, b), mm = M(o, b), np = npad[i];
        const void *a = A_of(i, r), *bb = B_of(i, r);
        if (p == P_INT8) {
            make_plans(b);
            int32_t one = 1, zero = 0;
            lt_plan &pl = plan_cache[b][i];
            CB(cublasLtMatmul(lt, pl.desc, &one, bb, pl.la, a, pl.lb, &zero, C[i], pl.lc, C[i],
                              pl.lc, &pl.heur.algo, workspace, workspace_bytes, stream));
        } else if (p == P_DP4A) {
            if (g > 65535)
                throw cuda_error("dp4a: too many groups for one grid");
            dim3 grid((np + 63) / 64, (mm + 63) / 64, g), block(16, 16);
            k_dp4a<<<grid, block, 0, stream>>>((const int8_t *)a, (const int8_t *)bb, (int32_t *)C[i],
                                               mm, np, o.k, np, (long long)mm * o.k,
                                               o.b_weight ? 0 : (long long)np * o.k,
                                               (long long)mm * np);
            CK(cudaGetLastError());
        } else {
            cudaDataType_t t = p == P_FP16 ? CUDA_R_16F : p == P_BF16 ? CUDA_R_16BF : CUDA_R_32F;
            cublasComputeType_t ct = p == P_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
            float one = 1.f, zero = 0.f;
            if (g == 1)
                CB(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, o.n, mm, o.k, &one, bb, t, o.k, a, t,
                                o.k, &zero, C[i], t, o.n, ct, CUBLAS_GEMM_DEFAULT));
            else
                CB(cublasGemmStridedBatchedEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, o.n, mm, o.k, &one, bb,
                                              t, o.k, o.b_weight ? 0 : (long long)o.n * o.k, a, t,
                                              o.k, (long long)mm * o.k, &zero, C[i], t, o.n,
                                              (long long)mm * o.n, g, ct, CUBLAS_GEMM_DEFAULT));
        }
    }

    void epilogue(size_t i, int b)
    {
        const op_t &o = m->ops[i];
        long long rows = (long long)G(o, b) * M(o, b), total = rows * o.n;
        int blocks = (int)std::min<long long>((total + 255) / 256, 65536);
        if (is_int8(p)) {
            if (o.act == RB_ACT_SOFTMAX)
                k_requant_softmax<<<(unsigned)((rows * 32 + 255) / 256), 256, 0, stream>>>(
                    (const int32_t *)C[i], npad[i], (int8_t *)Q[i], rows, o.n, o.shift);
            else
                k_requant<<<blocks, 256, 0, stream>>>((const int32_t *)C[i], npad[i],
                                                      (int8_t *)Q[i], rows, o.n, o.shift, o.act);
        } else if (o.act == RB_ACT_SOFTMAX) {
            unsigned nb = (unsigned)((rows * 32 + 255) / 256);
            if (p == P_FP16) k_softmax<<<nb, 256, 0, stream>>>((__half *)Q[i], rows, o.n);
            else if (p == P_BF16) k_softmax<<<nb, 256, 0, stream>>>((__nv_bfloat16 *)Q[i], rows, o.n);
            else k_softmax<<<nb, 256, 0, stream>>>((float *)Q[i], rows, o.n);
        } else if (o.act != RB_ACT_NONE) {
            if (p == P_FP16) k_act<<<blocks, 256, 0, stream>>>((__half *)Q[i], total, o.act);
            else if (p == P_BF16) k_act<<<blocks, 256, 0, stream>>>((__nv_bfloat16 *)Q[i], total, o.act);
            else k_act<<<blocks, 256, 0, stream>>>((float *)Q[i], total, o.act);
        } else {
            return;
        }
        CK(cudaGetLastError());
    }

    void forward(int b, int r)
    {
        for (size_t i = 0; i < m->ops.size(); i++) {
            gemm(i, b, r);
            epilogue(i, b);
        }
    }
};

/* ---- checks ----------------------------------------------------------------- */

static void d2h(void *dst, const void *src, size_t bytes)
{
    CK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

/* Forward pass up to and including op `upto` at batch b, rotation 0, then
 * sampled check of that op's product (before its epilogue for FP, where the
 * GEMM writes in place, the product is checked before the activation runs). */
static int check_op(engine &e, size_t i, int b, int samples, std::mt19937_64 &rng, FILE *log)
{
    const op_t &o = e.m->ops[i];
    for (size_t j = 0; j < i; j++) {
        e.gemm(j, b, 0);
        e.epilogue(j, b);
    }
    e.gemm(i, b, 0);
    CK(cudaStreamSynchronize(e.stream));
    int g = e.G(o, b), mm = e.M(o, b), np = e.npad[i], ldc = is_int8(e.p) ? np : o.n;
    size_t es = elem_size(e.p), ces = is_int8(e.p) ? 4 : es;
    const char *A = (const char *)e.A_of(i, 0), *B = (const char *)e.B_of(i, 0);
    const char *C = (const char *)e.C[i];
    double tol = e.p == P_FP32 ? 1e-4 : e.p == P_TF32 ? 4e-3 : e.p == P_FP16 ? 8e-3 : 3e-2;
    std::vector<unsigned char> ar(o.k * es), br(o.k * es);
    std::uniform_int_distribution<int> dg(0, g - 1), dm(0, mm - 1), dn(0, o.n - 1);
    int bad = 0;
    for (int s = 0; s < samples; s++) {
        int gg = dg(rng), r = dm(rng), c = dn(rng);
        if (s == 0) gg = 0, r = 0, c = 0;
        if (s == 1) gg = g - 1, r = mm - 1, c = o.n - 1;
        d2h(ar.data(), A + (((size_t)gg * mm + r) * o.k) * es, o.k * es);
        size_t brow = o.b_weight ? (size_t)c : (size_t)gg * np + c;
        d2h(br.data(), B + brow * o.k * es, o.k * es);
        unsigned char got[4];
        d2h(got, C + (((size_t)gg * mm + r) * ldc + c) * ces, ces);
        if (is_int8(e.p)) {
            int64_t ref = 0;
            for (int k = 0; k < o.k; k++)
                ref += (int64_t)((int8_t *)ar.data())[k] * ((int8_t *)br.data())[k];
            int32_t gv;
            memcpy(&gv, got, 4);
            if (gv != ref && bad++ < 5)
                fprintf(log, "  MISMATCH %s op %s batch %d [%d][%d][%d]: got %d want %lld\n",
                        PREC_NAME[e.p], o.name.c_str(), b, gg, r, c, gv, (long long)ref);
        } else {
            double ref = 0, mag = 0;
            for (int k = 0; k < o.k; k++) {
                double x = (double)h2f(e.p, ar.data() + k * es) * h2f(e.p, br.data() + k * es);
                ref += x;
                mag += std::fabs(x);
            }
            double gv = h2f(e.p, got);
            if (!(std::fabs(gv - ref) <= tol * mag + 1e-30) && bad++ < 5)
                fprintf(log, "  MISMATCH %s op %s batch %d [%d][%d][%d]: got %.7g want %.7g (tol %.3g)\n",
                        PREC_NAME[e.p], o.name.c_str(), b, gg, r, c, gv, ref, tol * mag);
        }
    }
    return bad;
}

/* INT8 reference forward pass on the host (threads over rows); inputs are
 * copied back from the device (rotation 0, first b items). */
static int check_int8_forward(engine &e, int b, FILE *log)
{
    rb_qtables tab;
    rb_qtables_init(&tab);
    e.forward(b, 0);
    CK(cudaStreamSynchronize(e.stream));
    std::vector<int8_t> prev;
    unsigned nt = std::max(1u, std::min(16u, std::thread::hardware_concurrency()));
    for (size_t i = 0; i < e.m->ops.size(); i++) {
        const op_t &o = e.m->ops[i];
        int g = e.G(o, b), mm = e.M(o, b), np = e.npad[i];
        std::vector<int8_t> a, bw, q((size_t)g * mm * o.n);
        if (o.a_prev) {
            a.swap(prev);
        } else {
            a.resize((size_t)g * mm * o.k);
            d2h(a.data(), e.A_of(i, 0), a.size());
        }
        bw.resize((o.b_weight ? 1 : (size_t)g) * np * o.k);
        d2h(bw.data(), e.B_of(i, 0), bw.size());
        auto work = [&](unsigned t) {
            for (size_t row = t; row < (size_t)g * mm; row += nt) {
                size_t gg = row / mm;
                const int8_t *ar = &a[row * o.k];
                int8_t *qr = &q[row * o.n];
                for (int c = 0; c < o.n; c++) {
                    const int8_t *br = &bw[((o.b_weight ? 0 : gg * np) + c) * o.k];
                    int32_t acc = 0;
                    for (int k = 0; k < o.k; k++)
                        acc += (int32_t)ar[k] * br[k];
                    qr[c] = rb_requant(acc, o.shift);
                }
                if (o.act == RB_ACT_SOFTMAX)
                    rb_softmax_s8_row(&tab, qr, o.n);
                else
                    for (int c = 0; c < o.n; c++)
                        qr[c] = rb_act_s8(&tab, o.act, qr[c]);
            }
        };
        std::vector<std::thread> th;
        for (unsigned t = 1; t < nt; t++)
            th.emplace_back(work, t);
        work(0);
        for (auto &t : th)
            t.join();
        prev.swap(q);
    }
    const op_t &last = e.m->ops.back();
    std::vector<int8_t> got(prev.size());
    d2h(got.data(), e.Q.back(), got.size());
    size_t diff = 0;
    for (size_t j = 0; j < got.size(); j++)
        diff += got[j] != prev[j];
    fprintf(log, "  %s forward pass batch %d: %zu of %zu outputs differ from the CPU reference (%s)\n",
            PREC_NAME[e.p], b, diff, got.size(), last.name.c_str());
    return diff ? 1 : 0;
}

/* ---- closed loop (--serve) ----------------------------------------------------
 *
 * The serving loop of `realbench serve`, with the INT8 cuBLASLt model on one
 * stream. A generator thread publishes an open-loop Poisson arrival process
 * (exponential gaps, seeded) into a single-producer queue: it waits for each
 * scheduled arrival time (sleeping while the next one is far, spinning the
 * last 200 us, since gaps are microseconds at GPU rates) and then makes the
 * request visible to the worker (an atomic count, release/acquire). The
 * worker is the batcher: when it is free it dispatches as soon as max_batch
 * requests wait, or the oldest has waited max_wait, with what is there; it
 * launches the forward pass and waits for the stream. A request's latency runs
 * from its scheduled arrival to the host seeing its batch complete.
 *
 * Per load L, in this order: (1) the first half of a calibration measured the
 * way the loop runs batches (host clock around launch + stream sync, every
 * batch size 1..max_batch in a shuffled order per round, the worker paced to
 * be busy a fraction L of the time); (2) the loop at L times the capacity that
 * half gives (max_batch / mean latency at max_batch); (3) the second half of
 * the calibration. Written: calib-int8-loadNN.csv (raw format, both halves,
 * settings.center = mean, for `realbench profile --from-csv` and fleetsim) and
 * serve-int8-loadNN.json (fleetsim-serve/1, as `realbench serve` writes). */

static double mono_s()
{
    timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Until the monotonic clock reads t: sleep while more than 300 us are left,
 * then spin (nanosleep overshoots by tens of microseconds). */
static void wait_until(double t)
{
    for (;;) {
        double now = mono_s();
        if (now >= t)
            return;
        if (t - now > 300e-6) {
            double s = t - now - 200e-6;
            timespec ts;
            ts.tv_sec = (time_t)s;
            ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
            nanosleep(&ts, nullptr);
        }
    }
}

/* One batch as the serving worker runs it: launch, wait for the stream. */
static double run_batch(engine &e, int b, int rot)
{
    double t0 = mono_s();
    e.forward(b, rot);
    CK(cudaStreamSynchronize(e.stream));
    return mono_s() - t0;
}

struct calib_row {
    int batch, rep;
    double s;
};

/* Every batch size 1..max_batch once per round, shuffled; `reps` rounds after
 * 3 untimed ones; after each pass a pause that keeps the worker busy a
 * fraction `duty` of the time. Rows get rep numbers from rep0. */
static void calibrate(engine &e, int max_batch, int reps, double duty, int rep0,
                      std::mt19937_64 &rng, std::vector<calib_row> &rows)
{
    std::vector<int> order(max_batch);
    for (int i = 0; i < max_batch; i++)
        order[i] = i + 1;
    int rot = 0;
    for (int r = -3; r < reps; r++) {
        std::shuffle(order.begin(), order.end(), rng);
        for (int b : order) {
            double t = run_batch(e, b, rot++);
            if (r >= 0)
                rows.push_back({b, rep0 + r, t});
            if (duty > 0 && duty < 1)
                wait_until(mono_s() + t * (1 - duty) / duty);
        }
    }
}

static double quantile_sorted(const std::vector<double> &x, double p)
{
    /* GSL's gsl_stats_quantile_from_sorted_data: linear between order statistics */
    if (x.empty())
        return 0;
    double d = p * (double)(x.size() - 1);
    size_t i = (size_t)d;
    if (i + 1 >= x.size())
        return x.back();
    return x[i] + (d - (double)i) * (x[i + 1] - x[i]);
}

struct serve_result {
    size_t generated = 0, measured = 0;
    long batches = 0;
    double wall_s = 0, busy_s = 0, mean_batch = 0;
    int truncated = 0;
    std::vector<double> lat; /* sorted, measured requests */
    std::vector<double> svc_sum;
    std::vector<long> svc_n;
    std::vector<double> bat_start, bat_s; /* per batch: start (s from t0) and service time */
    std::vector<int> bat_n;
    /* service_windows, as realbench serve writes them: per 0.5 s window
     * after the warm-up (at least 10 batches), the mean of each batch's
     * service time over the run's mean at its size */
    std::vector<double> windows;
    double slowest = 0, fastest = 0;
};

static void serve_loop(engine &e, int max_batch, double max_wait_s, double qps, double duration_s,
                       double warmup_s, unsigned long seed, serve_result &res, FILE *lat_csv)
{
    size_t cap = (size_t)(qps * duration_s * 1.3) + 100000;
    std::vector<double> arrival(cap), done(cap, -1.0);
    std::vector<int> bsz(cap, 0);
    std::atomic<size_t> n_gen(0);
    std::atomic<int> gen_done(0);
    std::atomic<int> truncated(0);
    double t0 = mono_s() + 0.05; /* both threads start on the same clock */
    std::thread gen([&] {
        std::mt19937_64 rng(seed);
        std::exponential_distribution<double> gap(qps);
        double t = 0;
        size_t n = 0;
        for (;;) {
            t += gap(rng);
            if (t >= duration_s)
                break;
            if (n == cap) {
                truncated.store(1);
                break;
            }
            arrival[n] = t;
            wait_until(t0 + t);
            n_gen.store(++n, std::memory_order_release);
        }
        gen_done.store(1, std::memory_order_release);
    });
    res.svc_sum.assign((size_t)max_batch + 1, 0.0);
    res.svc_n.assign((size_t)max_batch + 1, 0);
    size_t head = 0;
    int rot = 0;
    try {
        for (;;) {
            size_t avail = n_gen.load(std::memory_order_acquire);
            if (head == avail) {
                if (gen_done.load(std::memory_order_acquire) &&
                    head == n_gen.load(std::memory_order_acquire))
                    break;
                continue; /* spin: the next arrival is microseconds away */
            }
            double deadline = t0 + arrival[head] + max_wait_s;
            for (;;) {
                avail = n_gen.load(std::memory_order_acquire);
                if (avail - head >= (size_t)max_batch || gen_done.load(std::memory_order_acquire) ||
                    mono_s() >= deadline)
                    break;
            }
            avail = n_gen.load(std::memory_order_acquire);
            int n = (int)std::min<size_t>((size_t)max_batch, avail - head);
            double ts = mono_s();
            e.forward(n, rot++);
            CK(cudaStreamSynchronize(e.stream));
            double te = mono_s();
            for (size_t i = head; i < head + (size_t)n; i++) {
                done[i] = te - t0;
                bsz[i] = n;
            }
            head += (size_t)n;
            res.busy_s += te - ts;
            res.batches++;
            res.svc_sum[n] += te - ts;
            res.svc_n[n]++;
            res.bat_start.push_back(ts - t0);
            res.bat_s.push_back(te - ts);
            res.bat_n.push_back(n);
        }
    } catch (...) {
        gen.join(); /* never leave a running thread behind */
        throw;
    }
    gen.join();
    res.wall_s = mono_s() - t0;
    res.generated = n_gen.load();
    res.truncated = truncated.load();
    double bs = 0;
    for (size_t i = 0; i < res.generated; i++)
        if (arrival[i] >= warmup_s && done[i] >= 0) {
            res.lat.push_back(done[i] - arrival[i]);
            bs += bsz[i];
        }
    if (lat_csv) {
        fprintf(lat_csv, "arrival_s,latency_s,batch\n");
        for (size_t i = 0; i < res.generated; i++)
            fprintf(lat_csv, "%.9f,%.9f,%d\n", arrival[i], done[i] - arrival[i], bsz[i]);
    }
    res.measured = res.lat.size();
    res.mean_batch = res.measured ? bs / (double)res.measured : 0;
    std::sort(res.lat.begin(), res.lat.end());
    const double window_s = 0.5;
    size_t nw = (size_t)std::max(0.0, (duration_s - warmup_s) / window_s) + 2;
    std::vector<double> wsum(nw, 0.0);
    std::vector<long> wn(nw, 0);
    for (size_t i = 0; i < res.bat_start.size(); i++) {
        double st = res.bat_start[i];
        int n = res.bat_n[i];
        if (st < warmup_s || res.svc_n[n] == 0)
            continue;
        size_t w = (size_t)((st - warmup_s) / window_s);
        if (w >= nw)
            continue;
        wsum[w] += res.bat_s[i] / (res.svc_sum[n] / (double)res.svc_n[n]);
        wn[w]++;
    }
    for (size_t w = 0; w < nw; w++) {
        if (wn[w] < 10)
            continue;
        double m = wsum[w] / (double)wn[w];
        res.fastest = res.windows.empty() ? m : std::min(res.fastest, m);
        res.slowest = res.windows.empty() ? m : std::max(res.slowest, m);
        res.windows.push_back(m);
    }
}

struct serve_opts {
    std::vector<double> loads{0.5, 0.8};
    double qps = 0, duration_s = 20, warmup_s = 2, max_wait_s = 0.005;
    int max_batch = 16, calib_reps = 30, rotate = 4, latencies = 0;
    unsigned long seed = 1;
    std::string out_dir = ".";
};

static int serve_main(const model_t &model, const serve_opts &so, const cudaDeviceProp &prop,
                      const std::string &meta, FILE *log)
{
    engine e;
    e.init(P_INT8, &model, so.max_batch, so.rotate, 4242);
    /* the model's output must be right before anything is served */
    int bad = 0;
    for (int b : {1, 3, so.max_batch})
        bad += check_int8_forward(e, b, log);
    if (bad) {
        fprintf(log, "serve: the INT8 forward pass differs from the CPU reference; not serving\n");
        return EXIT_CHECK;
    }
    for (int b = 1; b <= so.max_batch; b++) /* plans and caches for every size */
        for (int r = 0; r < 3; r++)
            run_batch(e, b, r);
    std::mt19937_64 rng(so.seed * 7919 + 1);
    int status = 0;
    for (size_t li = 0; li < so.loads.size(); li++) {
        double L = so.loads[li];
        int pct = (int)std::lround(L * 100);
        std::vector<calib_row> rows;
        calibrate(e, so.max_batch, so.calib_reps, L, 0, rng, rows);
        double sum = 0;
        int cnt = 0;
        for (auto &rw : rows)
            if (rw.batch == so.max_batch)
                sum += rw.s, cnt++;
        double lmax = sum / std::max(cnt, 1), capacity = so.max_batch / lmax;
        double qps = so.qps > 0 ? so.qps : L * capacity;
        fprintf(log, "serve: load %d%%: calibration mean at batch %d %.2f us -> capacity %.0f/s; "
                     "serving %.0f QPS for %.0f s\n",
                pct, so.max_batch, lmax * 1e6, capacity, qps, so.duration_s);
        fflush(log);
        FILE *lat = nullptr;
        std::string base = so.out_dir + "/serve-int8-load" + std::to_string(pct);
        if (so.latencies && !(lat = fopen((base + "-latencies.csv").c_str(), "w")))
            fprintf(log, "serve: cannot write %s-latencies.csv\n", base.c_str());
        serve_result res;
        serve_loop(e, so.max_batch, so.max_wait_s, qps, so.duration_s, so.warmup_s,
                   so.seed + li, res, lat);
        if (lat)
            fclose(lat);
        calibrate(e, so.max_batch, so.calib_reps, L, so.calib_reps, rng, rows);
        /* calibration CSV: both halves */
        std::string cpath = so.out_dir + "/calib-int8-load" + std::to_string(pct) + ".csv";
        FILE *c = fopen(cpath.c_str(), "w");
        if (!c) {
            fprintf(log, "serve: cannot write %s\n", cpath.c_str());
            return EXIT_USAGE;
        }
        fprintf(c, "%s# settings.reps=%d\n# settings.warmup=3\n# settings.rotate=%d\n"
                   "# settings.duty=%g\n# settings.order=\"interleaved\"\n# settings.center=\"mean\"\n"
                   "# settings.workers=1\n# settings.timer=\"host clock around launch + stream sync, "
                   "as the serving loop runs a batch; halves before and after the loop\"\n"
                   "# check.int8=\"ok: forward pass bit-exact vs the CPU reference at batches 1, 3, %d\"\n"
                   "precision,impl,batch,rep,latency_s\n",
                meta.c_str(), 2 * so.calib_reps, so.rotate, L, so.max_batch);
        for (auto &rw : rows)
            fprintf(c, "int8,cublaslt,%d,%d,%.9g\n", rw.batch, rw.rep, rw.s);
        if (fclose(c)) {
            fprintf(log, "serve: cannot write %s\n", cpath.c_str());
            return EXIT_USAGE;
        }
        /* results */
        std::string jpath = base + ".json";
        FILE *j = fopen(jpath.c_str(), "w");
        if (!j) {
            fprintf(log, "serve: cannot write %s\n", jpath.c_str());
            return EXIT_USAGE;
        }
        auto q = [&](double p) { return quantile_sorted(res.lat, p); };
        double mean = 0;
        for (double x : res.lat)
            mean += x;
        mean = res.measured ? mean / (double)res.measured : 0;
        fprintf(j, "{\n  \"schema\": \"fleetsim-serve/1\",\n  \"device\": \"%s\",\n"
                   "  \"model\": {\"name\": \"%s\", \"file\": \"%s\"},\n"
                   "  \"precision\": \"int8\",\n  \"impl\": \"cublaslt\",\n"
                   "  \"settings\": {\"qps\": %.3f, \"load\": %g, \"capacity_qps\": %.3f, "
                   "\"duration_s\": %g, \"warmup_s\": %g, \"max_batch\": %d, \"max_wait_s\": %g, "
                   "\"workers\": 1, \"seed\": %lu, \"calibration\": \"%s\", "
                   "\"arrivals\": \"open-loop Poisson, generator thread, spin to each arrival\", "
                   "\"timer\": \"latency from the scheduled arrival to the host seeing the batch done\"},\n"
                   "  \"requests\": {\"generated\": %zu, \"measured\": %zu, \"truncated\": %s},\n"
                   "  \"throughput_qps\": %.3f,\n  \"wall_time_s\": %.6f,\n"
                   "  \"latency_s\": {\"mean\": %.9g, \"p50\": %.9g, \"p90\": %.9g, \"p99\": %.9g, "
                   "\"p999\": %.9g, \"max\": %.9g},\n"
                   "  \"mean_batch_size\": %.4f,\n  \"utilization\": %.4f,\n  \"batches\": %ld,\n",
                prop.name, model.name.c_str(), model.file.c_str(), qps, L, capacity, so.duration_s,
                so.warmup_s, so.max_batch, so.max_wait_s, so.seed + li,
                ("calib-int8-load" + std::to_string(pct) + ".csv").c_str(), res.generated,
                res.measured, res.truncated ? "true" : "false", (double)res.generated / so.duration_s,
                res.wall_s, mean, q(0.5), q(0.9), q(0.99), q(0.999), res.lat.empty() ? 0 : res.lat.back(),
                res.mean_batch, res.wall_s > 0 ? res.busy_s / res.wall_s : 0, res.batches);
        std::string sb, sm, sc;
        for (int b = 1; b <= so.max_batch; b++)
            if (res.svc_n[b]) {
                char x[64];
                sb += (sb.empty() ? "" : ", ") + std::to_string(b);
                snprintf(x, sizeof x, "%.9g", res.svc_sum[b] / res.svc_n[b]);
                sm += (sm.empty() ? "" : ", ") + std::string(x);
                sc += (sc.empty() ? "" : ", ") + std::to_string(res.svc_n[b]);
            }
        std::string sw;
        for (double m : res.windows) {
            char x[32];
            snprintf(x, sizeof x, "%.6g", m);
            sw += (sw.empty() ? "" : ", ") + std::string(x);
        }
        fprintf(j, "  \"service_s\": {\"batch\": [%s], \"mean\": [%s], \"count\": [%s]},\n"
                   "  \"service_windows\": {\"window_s\": 0.5, \"relative\": [%s], "
                   "\"slowest\": %s, \"fastest\": %s}\n}\n",
                sb.c_str(), sm.c_str(), sc.c_str(), sw.c_str(),
                res.windows.empty() ? "null" : std::to_string(res.slowest).c_str(),
                res.windows.empty() ? "null" : std::to_string(res.fastest).c_str());
        if (fclose(j)) {
            fprintf(log, "serve: cannot write %s\n", jpath.c_str());
            return EXIT_USAGE;
        }
        fprintf(log, "serve: load %d%%: %zu requests (%zu measured), mean batch %.2f, utilisation %.2f; "
                     "latency us: p50 %.1f p90 %.1f p99 %.1f max %.1f; speed over 0.5 s windows: "
                     "slowest %+.1f%%, fastest %+.1f%%%s\n",
                pct, res.generated, res.measured, res.mean_batch,
                res.wall_s > 0 ? res.busy_s / res.wall_s : 0, q(0.5) * 1e6, q(0.9) * 1e6,
                q(0.99) * 1e6, res.lat.empty() ? 0 : res.lat.back() * 1e6,
                (res.slowest - 1) * 100, (res.fastest - 1) * 100,
                res.truncated ? " (arrivals truncated: more than the buffer)" : "");
        fflush(log);
        if (res.truncated)
            status = EXIT_CUDA;
    }
    return status;
}

/* ---- main -------------------------------------------------------------------- */

static double median_of(std::vector<double> v)
{
    if (v.empty())
        return 0;
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
}

static std::vector<int> parse_list(const char *s)
{
    std::vector<int> v;
    char *end;
    while (*s) {
        long x = strtol(s, &end, 10);
        if (end == s || x < 1 || x > 1 << 20)
            return {};
        v.push_back((int)x);
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',')
            return {};
    }
    return v;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: rb_cuda_bench --shapes FILE --out CSV [--precisions int8,int8_dp4a,fp16,bf16,tf32,fp32]\n"
               "         [--batches 1,2,4,...] [--reps 30] [--warmup 5] [--rotate 4] [--samples 128]\n"
               "         [--budget-s S] [--bandwidth] [--device N]\n"
               "       rb_cuda_bench --shapes FILE --serve [--loads 0.5,0.8 | --qps Q] [--duration-s 20]\n"
               "         [--warmup-s 2] [--max-batch 16] [--max-wait-ms 5] [--calib-reps 30] [--seed 1]\n"
               "         [--serve-out DIR] [--latencies] [--device N]\n"
               "       rb_cuda_bench --llm-step --out STEPS.csv [--layers 2] [--d-model 64] ... (see\n"
               "         rb_cuda_llm_step.cu: LLM scheduler steps, fp16/bf16/int8)\n"
               "       rb_cuda_bench --info\n"
               "  --serve: the closed loop with the INT8 model (a calibration in the loop's\n"
               "  conditions, then open-loop Poisson load at each fraction of the capacity it\n"
               "  gives); writes DIR/serve-int8-loadNN.json and DIR/calib-int8-loadNN.csv.\n");
}

static std::string driver_version()
{
    FILE *f = fopen("/proc/driver/nvidia/version", "r");
    char line[512];
    std::string v;
    if (f) {
        if (fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "Kernel Module");
            if (p) {
                char ver[64];
                /* "Kernel Module  550.54.15 ..." or "Kernel Module for x86_64  570.124.06 ..." */
                if (sscanf(p, "Kernel Module for %*s %63s", ver) == 1 ||
                    sscanf(p, "Kernel Module %63s", ver) == 1)
                    v = ver;
            }
        }
        fclose(f);
    }
    return v;
}

/* rb_cuda_llm_step.cu: the LLM scheduler steps of `realbench cuda-llm-step`. */
int rb_cuda_llm_step_main(int argc, char **argv);

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--llm-step"))
            return rb_cuda_llm_step_main(argc, argv);
    const char *shapes = nullptr, *out = nullptr;
    std::vector<int> batches = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
    std::vector<int> precs = {P_INT8, P_DP4A, P_FP16, P_BF16, P_TF32, P_FP32};
    int reps = 30, warmup = 5, rotate = 4, samples = 128, dev = 0, bandwidth = 0, info = 0;
    double budget_s = 0;
    int serve = 0;
    serve_opts so;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : nullptr;
        bool has = v != nullptr;
        if (!strcmp(a, "--info")) { info = 1; continue; }
        if (!strcmp(a, "--bandwidth")) { bandwidth = 1; continue; }
        if (!strcmp(a, "--serve")) { serve = 1; continue; }
        if (!strcmp(a, "--latencies")) { so.latencies = 1; continue; }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return 0; }
        if (!has) { usage(stderr); return EXIT_USAGE; }
        i++;
        if (!strcmp(a, "--shapes")) shapes = v;
        else if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--reps")) reps = atoi(v);
        else if (!strcmp(a, "--warmup")) warmup = atoi(v);
        else if (!strcmp(a, "--rotate")) rotate = atoi(v);
        else if (!strcmp(a, "--samples")) samples = atoi(v);
        else if (!strcmp(a, "--device")) dev = atoi(v);
        else if (!strcmp(a, "--budget-s")) budget_s = atof(v);
        else if (!strcmp(a, "--qps")) so.qps = atof(v);
        else if (!strcmp(a, "--duration-s")) so.duration_s = atof(v);
        else if (!strcmp(a, "--warmup-s")) so.warmup_s = atof(v);
        else if (!strcmp(a, "--max-batch")) so.max_batch = atoi(v);
        else if (!strcmp(a, "--max-wait-ms")) so.max_wait_s = atof(v) / 1e3;
        else if (!strcmp(a, "--calib-reps")) so.calib_reps = atoi(v);
        else if (!strcmp(a, "--seed")) so.seed = strtoul(v, nullptr, 10);
        else if (!strcmp(a, "--serve-out")) so.out_dir = v;
        else if (!strcmp(a, "--loads")) {
            so.loads.clear();
            char *end;
            const char *x = v;
            while (*x) {
                double l = strtod(x, &end);
                if (end == x || !(l > 0 && l <= 1.5)) { so.loads.clear(); break; }
                so.loads.push_back(l);
                x = *end == ',' ? end + 1 : end;
                if (*end && *end != ',') { so.loads.clear(); break; }
            }
            if (so.loads.empty()) { fprintf(stderr, "bad --loads '%s'\n", v); return EXIT_USAGE; }
        }
        else if (!strcmp(a, "--batches")) {
            batches = parse_list(v);
            if (batches.empty()) { fprintf(stderr, "bad --batches '%s'\n", v); return EXIT_USAGE; }
        } else if (!strcmp(a, "--precisions")) {
            precs.clear();
            std::string s = v;
            size_t pos = 0;
            while (pos <= s.size()) {
                size_t c = s.find(',', pos);
                std::string t = s.substr(pos, c == std::string::npos ? std::string::npos : c - pos);
                int f = -1;
                for (int k = 0; k < P_COUNT; k++)
                    if (t == PREC_NAME[k]) f = k;
                if (f < 0) { fprintf(stderr, "unknown precision '%s'\n", t.c_str()); return EXIT_USAGE; }
                precs.push_back(f);
                if (c == std::string::npos) break;
                pos = c + 1;
            }
        } else { fprintf(stderr, "unknown option %s\n", a); usage(stderr); return EXIT_USAGE; }
    }
    if (serve && (!shapes || so.max_batch < 1 || so.max_batch > 4096 || so.calib_reps < 3 ||
                  !(so.duration_s > 0) || so.warmup_s < 0 || so.warmup_s >= so.duration_s ||
                  so.max_wait_s < 0 || so.qps < 0 || so.qps * so.duration_s > 5e8)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!info && !serve && (!shapes || !out || reps < 1 || warmup < 0 || rotate < 1 || samples < 2)) {
        usage(stderr);
        return EXIT_USAGE;
    }
    int ndev = 0;
    cudaError_t de = cudaGetDeviceCount(&ndev);
    if (de != cudaSuccess || ndev == 0) {
        fprintf(stderr, "rb_cuda_bench: no CUDA device (%s)\n",
                de != cudaSuccess ? cudaGetErrorString(de) : "device count is 0");
        return EXIT_NODEV;
    }
    model_t model;
    if (!info && load_shapes(shapes, &model))
        return EXIT_USAGE;
    FILE *log = stdout;
    FILE *csv = nullptr;
    int status = 0;
    auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    try {
        CK(cudaSetDevice(dev));
        if (serve) { /* the worker waits for its stream by spinning, as a latency-bound server would */
            cudaError_t fe = cudaSetDeviceFlags(cudaDeviceScheduleSpin);
            if (fe == cudaErrorSetOnActiveProcess) { /* the context exists: keep its default */
                (void)cudaGetLastError();
                fprintf(log, "serve: note: device flags already set; stream waits use the default (auto)\n");
            } else {
                CK(fe);
            }
        }
        cudaDeviceProp prop;
        CK(cudaGetDeviceProperties(&prop, dev));
        int clk = 0, mclk = 0, drv = 0, rt = 0;
        CK(cudaDeviceGetAttribute(&clk, cudaDevAttrClockRate, dev));
        CK(cudaDeviceGetAttribute(&mclk, cudaDevAttrMemoryClockRate, dev));
        CK(cudaDriverGetVersion(&drv));
        CK(cudaRuntimeGetVersion(&rt));
        size_t ltv = cublasLtGetVersion();
        std::string dv = driver_version();
        char created[32];
        time_t now = time(nullptr);
        strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        fprintf(log, "device %d: %s, %d SMs, %d MHz, memory %d MHz, %.1f GiB, cc %d.%d, driver %s "
                     "(API %d.%d), runtime %d.%d, cuBLASLt %zu\n",
                dev, prop.name, prop.multiProcessorCount, clk / 1000, mclk / 1000,
                prop.totalGlobalMem / 1073741824.0, prop.major, prop.minor, dv.c_str(), drv / 1000,
                drv % 1000 / 10, rt / 1000, rt % 1000 / 10, ltv);
        if (info)
            return 0;
        if (serve) {
            rb_qtables tab;
            rb_qtables_init(&tab);
            CK(cudaMemcpyToSymbol(c_tab, &tab, sizeof tab));
            char meta[4096];
            snprintf(meta, sizeof meta,
                     "# fleetsim-realbench-raw/1\n# device.kind=\"cuda\"\n# device.name=\"%s\"\n"
                     "# device.cores_or_sms=%d\n# device.clock_mhz=%d\n# device.mem_clock_mhz=%d\n"
                     "# device.memory_bytes=%zu\n# device.compute_capability=\"%d.%d\"\n"
                     "# device.driver=\"%s\"\n# device.cuda=\"%d.%d\"\n# device.cublaslt=%zu\n"
                     "# created=\"%s\"\n# model.name=\"%s\"\n# model.file=\"%s\"\n",
                     prop.name, prop.multiProcessorCount, clk / 1000, mclk / 1000,
                     prop.totalGlobalMem, prop.major, prop.minor, dv.empty() ? "unknown" : dv.c_str(),
                     rt / 1000, rt % 1000 / 10, ltv, created, model.name.c_str(), model.file.c_str());
            status = serve_main(model, so, prop, meta, log);
            fprintf(log, "rb_cuda_bench: done in %.1f s, status %d\n", elapsed(), status);
            return status;
        }
        csv = fopen(out, "w");
        if (!csv) {
            fprintf(stderr, "%s: cannot write\n", out);
            return EXIT_USAGE;
        }
        fprintf(csv, "# fleetsim-realbench-raw/1\n# device.kind=\"cuda\"\n# device.name=\"%s\"\n"
                     "# device.cores_or_sms=%d\n# device.clock_mhz=%d\n# device.mem_clock_mhz=%d\n"
                     "# device.memory_bytes=%zu\n# device.compute_capability=\"%d.%d\"\n"
                     "# device.driver=\"%s\"\n# device.cuda=\"%d.%d\"\n# device.cuda_driver_api=\"%d.%d\"\n"
                     "# device.cublaslt=%zu\n# created=\"%s\"\n# model.name=\"%s\"\n# model.file=\"%s\"\n"
                     "# settings.reps=%d\n# settings.warmup=%d\n# settings.rotate=%d\n"
                     "# settings.timer=\"cuda events around each forward pass\"\n",
                prop.name, prop.multiProcessorCount, clk / 1000, mclk / 1000, prop.totalGlobalMem,
                prop.major, prop.minor, dv.empty() ? "unknown" : dv.c_str(), rt / 1000,
                rt % 1000 / 10, drv / 1000, drv % 1000 / 10, ltv, created, model.name.c_str(),
                model.file.c_str(), reps, warmup, rotate);
        if (bandwidth) {
            size_t fr = 0, tot = 0;
            CK(cudaMemGetInfo(&fr, &tot));
            size_t bytes = std::min<size_t>((size_t)1 << 30, fr / 4);
            void *x, *y;
            cudaEvent_t a, b;
            CK(cudaMalloc(&x, bytes));
            CK(cudaMalloc(&y, bytes));
            CK(cudaMemset(x, 1, bytes));
            CK(cudaEventCreate(&a));
            CK(cudaEventCreate(&b));
            std::vector<double> t;
            for (int r = 0; r < 3 + std::max(reps, 30); r++) {
                CK(cudaEventRecord(a));
                CK(cudaMemcpyAsync(r % 2 ? x : y, r % 2 ? y : x, bytes, cudaMemcpyDeviceToDevice));
                CK(cudaEventRecord(b));
                CK(cudaEventSynchronize(b));
                float ms;
                CK(cudaEventElapsedTime(&ms, a, b));
                if (r >= 3)
                    t.push_back(ms / 1e3);
            }
            double med = median_of(t);
            fprintf(csv, "# bandwidth.d2d_bytes=%zu\n# bandwidth.d2d_median_s=%.9g\n"
                         "# bandwidth.d2d_GBps=%.1f\n# bandwidth.note=\"read + write bytes / median copy time\"\n",
                    bytes, med, 2.0 * bytes / med / 1e9);
            fprintf(log, "device-to-device copy of %zu MiB: median %.3f ms, %.1f GB/s (read + write)\n",
                    bytes >> 20, med * 1e3, 2.0 * bytes / med / 1e9);
            cudaEventDestroy(a);
            cudaEventDestroy(b);
            CK(cudaFree(x));
            CK(cudaFree(y));
        }
        fprintf(csv, "precision,impl,batch,rep,latency_s\n");
        fflush(csv);
        rb_qtables tab;
        rb_qtables_init(&tab);
        CK(cudaMemcpyToSymbol(c_tab, &tab, sizeof tab));
        std::mt19937_64 rng(12345);
        for (int pi : precs) {
            prec_t p = (prec_t)pi;
            /* largest batch that fits in 80% of free memory */
            size_t fr = 0, tot = 0;
            CK(cudaMemGetInfo(&fr, &tot));
            std::vector<int> bs;
            for (int b : batches)
                if (engine::bytes_for(&model, p, b, rotate) < fr * 0.8)
                    bs.push_back(b);
                else
                    fprintf(csv, "# skipped.%s.batch_%d=\"does not fit in device memory\"\n", PREC_NAME[p], b);
            if (bs.empty())
                continue;
            engine e;
            e.init(p, &model, *std::max_element(bs.begin(), bs.end()), rotate, 1000 + pi);
            cudaEvent_t ev0, ev1;
            CK(cudaEventCreate(&ev0));
            CK(cudaEventCreate(&ev1));
            int bad = 0;
            if (is_int8(p)) {
                int cb[2] = {1, 3};
                for (int c : cb)
                    if (c <= e.max_batch)
                        bad += check_int8_forward(e, c, log);
                if (bad) {
                    fprintf(csv, "# check.%s=\"FAIL: forward pass differs from the CPU reference\"\n", PREC_NAME[p]);
                    fprintf(log, "%s: forward pass differs from the CPU reference; not timed\n", PREC_NAME[p]);
                    status = EXIT_CHECK;
                    cudaEventDestroy(ev0);
                    cudaEventDestroy(ev1);
                    continue;
                }
            }
            fprintf(log, "%-10s %5s %12s %12s %12s  %s\n", PREC_NAME[p], "batch", "median_ms",
                    "min_ms", "per_item_us", "check");
            for (int b : bs) {
                if (budget_s > 0 && elapsed() > budget_s) {
                    fprintf(csv, "# skipped.%s.batch_%d=\"time budget of %.0f s spent\"\n", PREC_NAME[p], b, budget_s);
                    fprintf(log, "  time budget spent, skipping %s batch %d\n", PREC_NAME[p], b);
                    continue;
                }
                int ob = 0;
                for (size_t i = 0; i < model.ops.size(); i++)
                    ob += check_op(e, i, b, samples, rng, log);
                bad += ob;
                if (ob) {
                    fprintf(csv, "# check_failed.%s.batch_%d=\"sampled products differ from the CPU reference\"\n", PREC_NAME[p], b);
                    continue; /* never time a wrong kernel */
                }
                for (int r = 0; r < warmup; r++)
                    e.forward(b, r);
                std::vector<double> t;
                for (int r = 0; r < reps; r++) {
                    CK(cudaEventRecord(ev0, e.stream));
                    e.forward(b, r + warmup);
                    CK(cudaEventRecord(ev1, e.stream));
                    CK(cudaEventSynchronize(ev1));
                    float ms;
                    CK(cudaEventElapsedTime(&ms, ev0, ev1));
                    t.push_back(ms / 1e3);
                }
                for (int r = 0; r < reps; r++)
                    fprintf(csv, "%s,%s,%d,%d,%.9g\n", PREC_NAME[p], PREC_IMPL[p], b, r, t[r]);
                fflush(csv);
                double med = median_of(t);
                fprintf(log, "%-10s %5d %12.4f %12.4f %12.3f  ok\n", PREC_NAME[p], b, med * 1e3,
                        *std::min_element(t.begin(), t.end()) * 1e3, med / b * 1e6);
            }
            fprintf(csv, "# check.%s=\"%s\"\n", PREC_NAME[p], bad ? "FAIL" : "ok: sampled products at every batch, INT8 forward pass exact");
            fflush(csv);
            cudaEventDestroy(ev0);
            cudaEventDestroy(ev1);
            if (bad) {
                fprintf(log, "%s: %d correctness failures; its timings are not recorded\n", PREC_NAME[p], bad);
                status = EXIT_CHECK;
            }
        }
    } catch (const std::exception &ex) {
        fprintf(stderr, "rb_cuda_bench: %s\n", ex.what());
        if (csv)
            fprintf(csv, "# error=\"%s\"\n", ex.what());
        status = EXIT_CUDA;
    }
    if (csv)
        fclose(csv);
    fprintf(log, "rb_cuda_bench: done in %.1f s, status %d\n", elapsed(), status);
    return status;
}
