/* bench_gemma3_cpu.c: Gemma 3 prefill and decode on the CPU, with the matrix products' speed set
 * against OpenBLAS sgemm in the same run.
 *
 *   build/bin/bench_gemma3_cpu --model models/gemma-3-270m-q4_k_m.gguf --text data/haystack.txt \
 *       --tokens 8192 [--attention dense|unisparse|...] [--decode 32] [--chunk 256] [--tau T]
 *       [--ch C] [--cq C] [--ck C] [--block S]   (UniSparse pooling: query heads, query tokens, key
 *       tokens; selection block)
 *
 * The prompt is the first --tokens tokens of the text (BOS + text). Reports: prefill tokens/s, the
 * weight products' GFLOP/s during prefill (2 T N K over their wall time, every layer, tiles converted
 * from the stored dtype included) and sgemm's GFLOP/s on the same shapes with f32 weights (a 256-row
 * chunk times each distinct weight shape of the model, timed the same way: the ceiling our tiled
 * product is held to), the global layers' attention time and density, decode tokens/s and peak RSS.
 * One JSON object on stdout. */
#include "blas_env.h"
#include "document.h"
#include "generate.h"
#include "stats.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* sgemm GFLOP/s for y (T, N) = x (T, K) W^T (N, K), median of `repeat`. */
static double sgemm_gflops(int64_t T, int64_t N, int64_t K, int repeat)
{
    float *x = malloc((size_t)(T * K) * 4), *w = malloc((size_t)(N * K) * 4), *y = malloc((size_t)(T * N) * 4);
    for (int64_t i = 0; i < T * K; i++) x[i] = (float)(i % 7) * 0.1f;
    for (int64_t i = 0; i < N * K; i++) w[i] = (float)(i % 5) * 0.1f;
    double *t = malloc((size_t)repeat * sizeof *t);
    for (int r = -1; r < repeat; r++) {
        const double t0 = us_wall_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)T, (int)N, (int)K, 1.0f, x, (int)K, w, (int)K, 0.0f,
                    y, (int)N);
        if (r >= 0) t[r] = us_wall_ms() - t0;
    }
    const double g = 2.0 * (double)T * (double)N * (double)K / (us_median(t, repeat) * 1e6);
    free(x), free(w), free(y), free(t);
    return g;
}

/* Each greedy step's margin: the top logit minus the runner-up. A step with a small margin in the
 * dense run is where any approximation (sparse attention, other weights) is likeliest to flip. */
typedef struct {
    int vocab;
    float margin[1024];
} margins;

static void record_margin(void *user, int step, const float *logits)
{
    margins *mg = user;
    float a = -INFINITY, b = -INFINITY;
    for (int v = 0; v < mg->vocab; v++) {
        if (logits[v] > a) b = a, a = logits[v];
        else if (logits[v] > b) b = logits[v];
    }
    if (step >= 0 && step < 1024) mg->margin[step] = a - b;
}

int main(int argc, char **argv)
{
    us_blas_env_fix(argv);
    const char *model = NULL, *text_path = NULL, *attention = "dense";
    int64_t tokens = 8192;
    int decode = 32, chunk = 0;
    float tau = 0.0f;
    int ch = -1, cq = 0, ck = 0, block = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model")) model = argv[i + 1];
        else if (!strcmp(argv[i], "--text")) text_path = argv[i + 1];
        else if (!strcmp(argv[i], "--tokens")) tokens = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--attention")) attention = argv[i + 1];
        else if (!strcmp(argv[i], "--decode")) decode = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--chunk")) chunk = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--tau")) tau = (float)atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--ch")) ch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cq")) cq = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--ck")) ck = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--block")) block = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "bench_gemma3_cpu: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    const int meth = us_method_parse(attention);
    if (!model || !text_path || tokens < 2 || meth < 0) {
        fprintf(stderr, "usage: bench_gemma3_cpu --model PATH --text FILE [--tokens N] [--attention M] [--decode N] [--chunk N] [--tau T] [--ch C] [--cq C] [--ck C] [--block S]\n");
        return 2;
    }
    us_error err;
    us_llm *llm = NULL;
    us_gemma3_model *m = NULL;
    char *text = NULL;
    size_t len = 0;
    int32_t *ids = NULL;
    int64_t n = 0;
    if (us_document_read(text_path, (size_t)1 << 30, &text, &len, &err) || us_llm_load(model, &llm, &err) ||
        us_llm_encode(llm, text, US_PROMPT_BOS, &ids, &n, &err)) {
        fprintf(stderr, "bench_gemma3_cpu: %s\n", err.msg);
        return 1;
    }
    if (n < tokens) {
        fprintf(stderr, "bench_gemma3_cpu: %s has %lld tokens, fewer than --tokens %lld\n", text_path, (long long)n,
                (long long)tokens);
        return 1;
    }
    us_gemma3_opts mo = us_gemma3_opts_default();
    mo.method = (us_method)meth;
    mo.max_ctx = tokens + decode + 1;
    if (chunk > 0) mo.max_batch = chunk;
    if (tau > 0.0f) mo.params.tau = tau;
    if (ch >= 0) mo.params.ch = ch;
    if (cq > 0) mo.params.cq = cq;
    if (ck > 0) mo.params.ck = ck;
    if (block > 0) mo.params.block = block;
    if (us_gemma3_model_create(llm->w, &mo, &m, &err)) {
        fprintf(stderr, "bench_gemma3_cpu: %s\n", err.msg);
        return 1;
    }
    us_gen_params gp = us_gen_params_default();
    gp.max_tokens = decode;
    if (chunk > 0) gp.prefill_chunk = chunk;
    us_gen_result r;
    margins mg = {.vocab = llm->w->cfg.vocab_size};
    us_gen_hooks hooks = {.user = &mg, .on_logits = record_margin};
    if (us_generate(m, llm, ids, tokens, &gp, &hooks, &r, &err)) {
        fprintf(stderr, "bench_gemma3_cpu: %s\n", err.msg);
        return 1;
    }
    /* the ceiling: sgemm on the model's own shapes, a 256-token chunk (the prefill's), weighted by FLOPs */
    const us_gemma3_config *c = &llm->w->cfg;
    const int64_t C = c->hidden_size, F = c->intermediate_size, Hd = (int64_t)c->num_heads * c->head_dim,
                  Kd = (int64_t)c->num_kv_heads * c->head_dim, T = 256;
    const int64_t shapes[5][2] = {{Hd, C}, {Kd, C}, {C, Hd}, {F, C}, {C, F}}; /* q; k and v; o; gate and up; down */
    const double weight[5] = {1, 2, 1, 2, 1};
    double flop = 0.0, ms = 0.0;
    for (int s = 0; s < 5; s++) {
        const double f = weight[s] * 2.0 * (double)T * (double)shapes[s][0] * (double)shapes[s][1];
        flop += f;
        ms += f / (sgemm_gflops(T, shapes[s][0], shapes[s][1], 9) * 1e6);
    }
    const double sgemm = flop / (ms * 1e6), ours = r.attn.matmul_flop / (r.attn.matmul_ms * 1e6);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"model\":\"%s\",\"attention\":\"%s\",\"threads\":%d,\"prompt_tokens\":%lld,\"prefill_s\":%.2f,"
           "\"prefill_tokens_per_s\":%.1f,\"matmul_s\":%.2f,\"matmul_gflops\":%.1f,\"sgemm_gflops\":%.1f,"
           "\"matmul_share_of_sgemm\":%.3f,\"global_attention_s\":%.2f,\"selection_s\":%.2f,"
           "\"attention_density\":%.4f,\"tau\":%.3f,\"block\":%d,\"ch\":%d,\"cq\":%d,\"ck\":%d,\"chunk\":%d,\"decode_tokens_per_s\":%.2f,\"generated\":%d,\"peak_rss_mib\":%.0f,\"ids\":[",
           model, us_method_name((us_method)meth), omp_get_max_threads(), (long long)tokens, r.prefill_ms / 1e3,
           us_gen_prefill_tps(&r), r.attn.matmul_ms / 1e3, ours, sgemm, ours / sgemm, r.attn.attn_ms / 1e3,
           r.attn.select_ms / 1e3, r.attn.visible_pairs > 0 ? r.attn.kept_pairs / r.attn.visible_pairs : 1.0, (double)mo.params.tau,
           mo.params.block, mo.params.ch, mo.params.cq, mo.params.ck, gp.prefill_chunk,
           us_gen_decode_tps(&r), r.n, (double)ru.ru_maxrss / 1024.0);
    for (int i = 0; i < r.n; i++) printf("%s%d", i ? "," : "", r.ids[i]);
    printf("],\"margins\":[");
    for (int i = 0; i < r.n && i < 1024; i++) printf("%s%.4f", i ? "," : "", (double)mg.margin[i]);
    printf("]}\n");
    us_gen_result_free(&r);
    free(ids), free(text);
    us_gemma3_model_free(&m);
    us_llm_free(&llm);
    return 0;
}
