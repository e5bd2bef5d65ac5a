/* The LSTM's loops through time, forward and backward, for `LSTMSteps` (rnn.py) in float32 on a CPU.

   Built on first use by native.py with the machine's C compiler (`cc -O3 -ffp-contract=off
   -fno-trapping-math -shared -fPIC`, and -march=native where the compiler takes it) and called through
   ctypes; without a compiler the same loops run in Python, operation by operation. They compute the
   same equations on the same buffers:

     a_t = W_h h_{t-1} + (W_x x_t + b)        gate rows in the order o, i, f, g (H rows each)
     o_t, i_t, f_t = sigmoid(a_o, a_i, a_f),  g_t = tanh(a_g)
     c_t = f_t c_{t-1} + i_t g_t,             h_t = o_t tanh(c_t)

   Every tensor is feature-major and contiguous: a step's block is (rows, B), one column per sequence,
   so each inner loop runs over the batch and the compiler vectorises it. -fno-trapping-math lets it
   turn the comparisons of exp_f and tanh_f into selects (without it GCC leaves those loops scalar on
   x86-64: 14 against 6 us a forward step for 6 units and batch 32, measured). No threads of its own:
   a small layer's step is a few microseconds; the products W_h h go to torch's sgemm (use_sgemm). */

#include <stddef.h>
#include <string.h>
#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
/* Denormal numbers flushed to zero while a loop runs, the caller's setting restored after it: gradients
   fading back through time reach them, and each operation on one takes about a hundred times as long on
   x86 (one training step of a 16-unit LSTM over 1000 steps, batch 32: the backward loop 28 ms with them,
   8 ms without, measured). */
#define FLUSH_DENORMALS unsigned int saved_csr = _mm_getcsr(); _mm_setcsr(saved_csr | 0x8040)
#define RESTORE_DENORMALS _mm_setcsr(saved_csr)
#else
#define FLUSH_DENORMALS
#define RESTORE_DENORMALS
#endif

/* exp(x): x = n ln2 + r with |r| <= ln2 / 2, exp(r) by a polynomial of degree 6 (the coefficients of
   S. L. Moshier's Cephes expf), times 2^n written into the exponent bits. Inputs are clamped to
   [-87, 88], where the result stays a normal float; about 1 ulp from the exact value. */
static inline float exp_f(float x) {
    x = x > 88.0f ? 88.0f : x;
    x = x < -87.0f ? -87.0f : x;
    const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f; /* round(x / ln 2): 1.5 * 2^23 */
    const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;          /* ln 2 in two parts */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { float f; int i; } scale;
    scale.i = ((int)n + 127) << 23;
    return p * scale.f;
}

static inline float sigmoid_f(float x) { return 1.0f / (1.0f + exp_f(-x)); }

/* tanh(x): below |x| = 0.625 an odd polynomial (Cephes tanhf's coefficients), where 1 - 2 / (e^{2|x|} + 1)
   would lose digits to cancellation; above it that formula, with the sign of x. */
static inline float tanh_f(float x) {
    const float ax = x < 0.0f ? -x : x, z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    const float small = p * z * x + x;
    float big = 1.0f - 2.0f / (exp_f(2.0f * ax) + 1.0f);
    big = x < 0.0f ? -big : big;
    return ax < 0.625f ? small : big;
}

/* The two products of a step go to BLAS's sgemm where the caller gave one (use_sgemm: the one in torch's
   own library, MKL on x86), even the smallest (6 units: 16.0 against the loops' own 18.6 us a training
   step, measured); else to the loops below.
   Sizes are passed as 64-bit integers, which a BLAS with 32-bit ones reads correctly too (their low half
   comes first in little-endian memory, the only order this is used in). */
typedef void (*sgemm_fn)(const char *, const char *, const long long *, const long long *, const long long *, const float *,
                         const float *, const long long *, const float *, const long long *, const float *, float *,
                         const long long *, size_t, size_t);
static sgemm_fn sgemm = NULL;

void use_sgemm(void *f) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    sgemm = (sgemm_fn)f;
#else
    (void)f;
#endif
}

/* The two products of a step, a block of BLOCK columns at a time: one output row's block is summed in
   registers over the whole inner dimension, then stored (not loaded and stored again for every term). */
#define BLOCK 16

/* a (R x B) += W (R x K) @ x (K x B) */
static void mul_add(float *restrict a, const float *restrict w, const float *restrict x, int R, int K, int B) {
    if (sgemm) { /* column-major: a^T (B x R) += x^T (B x K) w^T (K x R) */
        const long long m = B, n = R, k = K;
        const float one = 1.0f;
        sgemm("N", "N", &m, &n, &k, &one, x, &m, w, &k, &one, a, &m, 1, 1);
        return;
    }
    int b0 = 0;
    for (; b0 + BLOCK <= B; b0 += BLOCK)
        for (int r = 0; r < R; r++) {
            float acc[BLOCK];
            float *restrict ar = a + (size_t)r * B + b0;
            for (int j = 0; j < BLOCK; j++) acc[j] = ar[j];
            for (int k = 0; k < K; k++) {
                const float wrk = w[(size_t)r * K + k];
                const float *restrict xk = x + (size_t)k * B + b0;
                for (int j = 0; j < BLOCK; j++) acc[j] += wrk * xk[j];
            }
            for (int j = 0; j < BLOCK; j++) ar[j] = acc[j];
        }
    for (int r = 0; r < R; r++) /* the last columns, fewer than BLOCK */
        for (int b = b0; b < B; b++) {
            float sum = a[(size_t)r * B + b];
            for (int k = 0; k < K; k++) sum += w[(size_t)r * K + k] * x[(size_t)k * B + b];
            a[(size_t)r * B + b] = sum;
        }
}

/* a (K x B) += W^T @ d, with W (R x K) and d (R x B) whose rows lie ldd floats apart */
static void mul_t_add(float *restrict a, const float *restrict w, const float *restrict d, size_t ldd, int R, int K, int B) {
    if (sgemm) { /* column-major: a^T (B x K) += d^T (B x R) w (R x K) */
        const long long m = B, n = K, k = R, ld = (long long)ldd;
        const float one = 1.0f;
        sgemm("N", "T", &m, &n, &k, &one, d, &ld, w, &n, &one, a, &m, 1, 1);
        return;
    }
    int b0 = 0;
    for (; b0 + BLOCK <= B; b0 += BLOCK)
        for (int k = 0; k < K; k++) {
            float acc[BLOCK];
            float *restrict ak = a + (size_t)k * B + b0;
            for (int j = 0; j < BLOCK; j++) acc[j] = ak[j];
            for (int r = 0; r < R; r++) {
                const float wrk = w[(size_t)r * K + k];
                const float *restrict dr = d + (size_t)r * ldd + b0;
                for (int j = 0; j < BLOCK; j++) acc[j] += wrk * dr[j];
            }
            for (int j = 0; j < BLOCK; j++) ak[j] = acc[j];
        }
    for (int k = 0; k < K; k++)
        for (int b = b0; b < B; b++) {
            float sum = a[(size_t)k * B + b];
            for (int r = 0; r < R; r++) sum += w[(size_t)r * K + k] * d[(size_t)r * ldd + b];
            a[(size_t)k * B + b] = sum;
        }
}

/* Forward through T steps. w (4H, H); acts (T, 4H, B): W_x x_t + b on entry, the gates' values o, i, f, g
   on return; cs (T+1, H, B) with c_0 in cs[0]; tanh_cs, hs (T, H, B) written. h_in0 (H, B) is what W_h
   multiplies at step 1 (h_0, or h_0 * mask). With a recurrent-dropout mask (H, B) (else NULL), h_t * mask
   goes to h_ins (T, H, B) and feeds the next step. */
void lstm_forward(int T, int H, int B, const float *w, float *acts, float *cs, float *tanh_cs, float *hs,
                  const float *h_in0, const float *mask, float *h_ins) {
    const size_t HB = (size_t)H * B;
    FLUSH_DENORMALS;
    for (int t = 0; t < T; t++) {
        const float *h_in = t == 0 ? h_in0 : (mask ? h_ins : hs) + (size_t)(t - 1) * HB;
        float *restrict a = acts + (size_t)t * 4 * HB;
        mul_add(a, w, h_in, 4 * H, H, B);
        for (size_t e = 0; e < 3 * HB; e++) a[e] = sigmoid_f(a[e]); /* o, i, f */
        float *restrict g = a + 3 * HB;
        for (size_t e = 0; e < HB; e++) g[e] = tanh_f(g[e]);
        const float *restrict o = a, *restrict i = a + HB, *restrict f = a + 2 * HB, *restrict c_prev = cs + (size_t)t * HB;
        float *restrict c = cs + (size_t)(t + 1) * HB, *restrict tanh_c = tanh_cs + (size_t)t * HB, *restrict h = hs + (size_t)t * HB;
        for (size_t e = 0; e < HB; e++) c[e] = f[e] * c_prev[e] + i[e] * g[e];
        for (size_t e = 0; e < HB; e++) tanh_c[e] = tanh_f(c[e]);
        for (size_t e = 0; e < HB; e++) h[e] = o[e] * tanh_c[e];
        if (mask) {
            float *restrict h_in_next = h_ins + (size_t)t * HB;
            for (size_t e = 0; e < HB; e++) h_in_next[e] = h[e] * mask[e];
        }
    }
    RESTORE_DENORMALS;
}

/* Backward from step T to 1, from the forward's buffers: acts (T, 4H, B) the gates' values o, i, f, g;
   cs (T+1, H, B) c_0..c_T; tanh_cs (T, H, B). dh (T, H, B): dL/dh_t from above on entry, the total dL/dh_t
   on return; dc (T, H, B) written; da (4H, T, B) written: dL/da_t, gate rows o, i, f, g, laid out as the
   input projection it is the gradient of (row r of step t at r T B + t B). dc_last (H, B) = dL/dc_T; mask
   (H, B) or NULL; tmp (H, B) scratch. Each step's gate derivatives are computed as it goes:
     dc_t = dh_t o_t (1 - tanh^2 c_t) + dc_{t+1} f_{t+1}
     da_o = dh_t tanh(c_t) o_t (1 - o_t)      da_i = dc_t g_t i_t (1 - i_t)
     da_f = dc_t c_{t-1} f_t (1 - f_t)        da_g = dc_t i_t (1 - g_t^2)
     dh_{t-1} += W_h^T da_t  (times the mask) */
void lstm_backward(int T, int H, int B, const float *w, const float *acts, const float *cs, const float *tanh_cs,
                   float *dh, float *dc, float *da, const float *dc_last, const float *mask, float *tmp) {
    const size_t HB = (size_t)H * B, TB = (size_t)T * B;
    FLUSH_DENORMALS;
    for (int t = T - 1; t >= 0; t--) {
        const float *restrict o = acts + (size_t)t * 4 * HB, *restrict i = o + HB, *restrict f = o + 2 * HB, *restrict g = o + 3 * HB;
        const float *restrict c_prev = cs + (size_t)t * HB, *restrict tanh_c = tanh_cs + (size_t)t * HB;
        float *restrict dh_t = dh + (size_t)t * HB, *restrict dc_t = dc + (size_t)t * HB, *restrict da_t = da + (size_t)t * B;
        if (t == T - 1) {
            for (size_t e = 0; e < HB; e++) dc_t[e] = dh_t[e] * (o[e] * (1.0f - tanh_c[e] * tanh_c[e])) + dc_last[e];
        } else {
            const float *restrict f_next = acts + (size_t)(t + 1) * 4 * HB + 2 * HB, *restrict dc_next = dc_t + HB;
            if (mask) { /* dh_t += (W_h^T da_{t+1}) * mask */
                memset(tmp, 0, HB * sizeof(float));
                mul_t_add(tmp, w, da_t + B, TB, 4 * H, H, B);
                for (size_t e = 0; e < HB; e++) dh_t[e] += tmp[e] * mask[e];
            } else {
                mul_t_add(dh_t, w, da_t + B, TB, 4 * H, H, B); /* dh_t += W_h^T da_{t+1} */
            }
            for (size_t e = 0; e < HB; e++) dc_t[e] = dh_t[e] * (o[e] * (1.0f - tanh_c[e] * tanh_c[e])) + dc_next[e] * f_next[e];
        }
        for (int u = 0; u < H; u++) {
            const size_t e0 = (size_t)u * B;
            float *restrict da_o = da_t + (size_t)u * TB, *restrict da_i = da_o + (size_t)H * TB, *restrict da_f = da_i + (size_t)H * TB, *restrict da_g = da_f + (size_t)H * TB;
            for (int b = 0; b < B; b++) {
                const size_t e = e0 + b;
                da_o[b] = dh_t[e] * (tanh_c[e] * (o[e] - o[e] * o[e]));
                da_i[b] = dc_t[e] * (g[e] * (i[e] - i[e] * i[e]));
                da_f[b] = dc_t[e] * (c_prev[e] * (f[e] - f[e] * f[e]));
                da_g[b] = dc_t[e] * ((1.0f - g[e] * g[e]) * i[e]);
            }
        }
    }
    RESTORE_DENORMALS;
}

/* For the tests: the activations above over n values, and a (R x B) += W (R x K) @ x (K x B). */
void sigmoid_values(int n, const float *x, float *y) { for (int e = 0; e < n; e++) y[e] = sigmoid_f(x[e]); }
void tanh_values(int n, const float *x, float *y) { for (int e = 0; e < n; e++) y[e] = tanh_f(x[e]); }
void product(int R, int K, int B, const float *w, const float *x, float *a) { mul_add(a, w, x, R, K, B); }
