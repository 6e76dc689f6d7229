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
    std::vector<lt_plan> plans;              /* int8 cuBLASLt: per op, current batch */
    int plan_batch = -1;

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
        for (auto &pl : plans) {
            if (pl.desc) cublasLtMatmulDescDestroy(pl.desc);
            if (pl.la) cublasLtMatrixLayoutDestroy(pl.la);
            if (pl.lb) cublasLtMatrixLayoutDestroy(pl.lb);
            if (pl.lc) cublasLtMatrixLayoutDestroy(pl.lc);
        }
        plans.clear();
        plan_batch = -1;
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
        if (plan_batch == b)
            return;
        free_plans();
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
        plan_batch = b;
    }

    void gemm(size_t i, int b, int r)
    {
        const op_t &o = m->ops[i];
        int g = G(o, b), mm = M(o, b), np = npad[i];
        const void *a = A_of(i, r), *bb = B_of(i, r);
        if (p == P_INT8) {
            make_plans(b);
            int32_t one = 1, zero = 0;
            lt_plan &pl = plans[i];
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
               "       rb_cuda_bench --info\n");
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

int main(int argc, char **argv)
{
    const char *shapes = nullptr, *out = nullptr;
    std::vector<int> batches = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};
    std::vector<int> precs = {P_INT8, P_DP4A, P_FP16, P_BF16, P_TF32, P_FP32};
    int reps = 30, warmup = 5, rotate = 4, samples = 128, dev = 0, bandwidth = 0, info = 0;
    double budget_s = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : nullptr;
        bool has = v != nullptr;
        if (!strcmp(a, "--info")) { info = 1; continue; }
        if (!strcmp(a, "--bandwidth")) { bandwidth = 1; continue; }
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
    if (!info && (!shapes || !out || reps < 1 || warmup < 0 || rotate < 1 || samples < 2)) {
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
