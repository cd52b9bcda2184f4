/* test_gemma3_vlm.c: Gemma 3's image path (SigLIP tower, projector, image soft tokens in the decoder)
 * against transformers.
 *
 * assets/gemma3-tiny-vlm (scripts/make-gemma3-vlm-fixture.py) is a random-weight fp32
 * Gemma3ForConditionalGeneration: the text fixture's decoder (sliding window 8, one global layer) with a
 * SigLIP tower of 8 x 8 patches and a projector to 16 tokens per image, two input images, the tower's and
 * the projector's outputs, and the logits of every position of a prompt with one image and of one with
 * two (token_type_ids given, so transformers applies the bidirectional image mask). Every output must
 * match within 1e-4 relative (max abs diff / max abs reference), in one call, in chunks cut by the caller
 * or by max_batch, and token by token after the images. The image span must be bidirectional (a later
 * soft token changes an earlier image position, never the text before it). Bad inputs must give errors
 * naming the tensor, field or limit. */
#include "gemma3_config.h"
#include "gemma3_model.h"
#include "gemma3_vision.h"
#include "gemma3_weights.h"
#include "image_prompt.h"
#include "mm_projector.h"
#include "safetensors.h"
#include "siglip.h"
#include "tokenizer.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_model[1024], g_tmp[64];
static us_gemma3_weights *g_w;
static us_safetensors *g_ref;
static int64_t g_V, g_C, g_N; /* vocab, text hidden, tokens per image */

typedef struct {
    int32_t ids[256];
    int64_t T;
    const float *logits; /* (T, V) */
} prompt;
static prompt g_p1, g_p2;

static const float *ref(const char *name, int64_t rows, int64_t cols)
{
    const us_st_tensor *t = us_safetensors_find(g_ref, name);
    cr_assert(t && t->dtype == US_F32, "reference lacks F32 %s", name);
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    cr_assert_eq(n, rows * cols, "reference %s has %lld values, expected %lld", name, (long long)n,
                 (long long)(rows * cols));
    return t->data;
}

static void load_prompt(prompt *p, const char *ids_name, const char *logits_name)
{
    const us_st_tensor *ids = us_safetensors_find(g_ref, ids_name);
    cr_assert(ids && !strcmp(ids->dtype_name, "I64") && ids->ndim == 1 && ids->shape[0] <= 256);
    p->T = ids->shape[0];
    for (int64_t t = 0; t < p->T; t++) {
        int64_t v;
        memcpy(&v, (const char *)ids->data + t * 8, 8);
        p->ids[t] = (int32_t)v;
    }
    p->logits = ref(logits_name, p->T, g_V);
}

static void setup(void)
{
    const char *assets = getenv("US_ASSETS");
    snprintf(g_model, sizeof g_model, "%s/gemma3-tiny-vlm", assets ? assets : "assets");
    us_error err;
    cr_assert_eq(us_gemma3_weights_load(g_model, &g_w, &err), US_OK, "%s", err.msg);
    cr_assert_not_null(g_w->vision, "the fixture's vision tower was not loaded");
    g_V = g_w->cfg.vocab_size;
    g_C = g_w->cfg.hidden_size;
    g_N = g_w->cfg.mm_tokens_per_image;
    char p[1200];
    snprintf(p, sizeof p, "%s/reference.safetensors", g_model);
    cr_assert_eq(us_safetensors_open(p, &g_ref, &err), US_OK, "%s", err.msg);
    load_prompt(&g_p1, "ids1", "logits1");
    load_prompt(&g_p2, "ids2", "logits2");
    snprintf(g_tmp, sizeof g_tmp, "/tmp/us_gemma3_vlm_XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp), "mkdtemp: %s", strerror(errno));
}

static void teardown(void)
{
    us_gemma3_weights_free(&g_w);
    us_safetensors_close(&g_ref);
    DIR *d = opendir(g_tmp);
    if (!d) return;
    char p[512];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", g_tmp, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(g_tmp);
}

TestSuite(gemma3_vlm, .init = setup, .fini = teardown);

/* max |got - ref| / max |ref| over n values, printed and checked against tol */
static double compare(const float *got, const float *want, int64_t n, const char *what, double tol)
{
    double md = 0.0, mr = 0.0;
    for (int64_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)got[i] - want[i]));
        mr = fmax(mr, fabs((double)want[i]));
    }
    const double rel = md / mr;
    fprintf(stderr, "gemma3-tiny-vlm %-30s max rel error %.3g (max abs %.3g of %.3g)\n", what, rel, md, mr);
    cr_expect(rel <= tol, "%s: relative error %g > %g", what, rel, tol);
    return rel;
}

/* logits against the prompt's reference, plus the argmax of every row */
static void compare_logits(const float *got, const prompt *p, const char *what)
{
    compare(got, p->logits, p->T * g_V, what, 1e-4);
    int bad = 0;
    for (int64_t t = 0; t < p->T; t++) {
        const float *a = got + t * g_V, *r = p->logits + t * g_V;
        int64_t ia = 0, ir = 0;
        for (int64_t i = 0; i < g_V; i++) {
            if (a[i] > a[ia]) ia = i;
            if (r[i] > r[ir]) ir = i;
        }
        bad += ia != ir;
    }
    cr_expect_eq(bad, 0, "%s: argmax differs at %d of %lld positions", what, bad, (long long)p->T);
}

static us_gemma3_model *make(const us_gemma3_weights *w, int max_batch)
{
    us_gemma3_opts o = us_gemma3_opts_default();
    o.max_batch = max_batch;
    o.params.block = 64;
    us_gemma3_model *m = NULL;
    us_error err;
    cr_assert_eq(us_gemma3_model_create(w, &o, &m, &err), US_OK, "%s", err.msg);
    return m;
}

/* The image rows of a prompt: the C encoder's output for pixels (and pixels2), (n_images * N, C). */
static float *encode(const us_gemma3_weights *w, int n_images)
{
    us_gemma3_image_encoder *e = NULL;
    us_error err;
    cr_assert_eq(us_gemma3_image_encoder_create(w, 0, &e, &err), US_OK, "%s", err.msg);
    const us_siglip_config *vc = &w->vision->tower.cfg;
    const int64_t S = vc->image_size;
    float *emb = malloc((size_t)(n_images * g_N * g_C) * sizeof *emb);
    const char *names[2] = {"pixels", "pixels2"};
    for (int i = 0; i < n_images; i++)
        cr_assert_eq(us_gemma3_encode_image(e, ref(names[i], 3 * S, S), emb + i * g_N * g_C, &err), US_OK, "%s",
                     err.msg);
    us_gemma3_image_encoder_free(&e);
    return emb;
}

static int64_t count_images(const prompt *p)
{
    int64_t n = 0;
    for (int64_t t = 0; t < p->T; t++) n += p->ids[t] == g_w->cfg.image_token_id;
    return n;
}

/* ---- configuration ----------------------------------------------------------------------------- */

Test(gemma3_vlm, config_matches_fixture)
{
    const us_gemma3_config *c = &g_w->cfg;
    const us_siglip_config *v = &g_w->vision->tower.cfg;
    cr_expect_eq(c->num_layers, 3);
    cr_expect_eq(c->sliding_window, 8);
    cr_expect_eq(c->image_token_id, 262144);
    cr_expect_eq(c->boi_id, 500);
    cr_expect_eq(c->eoi_id, 501);
    cr_expect_eq(c->mm_tokens_per_image, 16);
    cr_expect(v->image_size == 48 && v->patch_size == 6 && v->hidden_size == 32 && v->intermediate_size == 80 &&
              v->num_layers == 2 && v->num_heads == 2 && v->num_channels == 3);
    cr_expect(v->layer_norm_eps == 1e-5f, "layer_norm_eps %g", (double)v->layer_norm_eps);
    cr_expect_eq(g_w->vision->projector.patches_per_side, 8);
    cr_expect_eq(g_w->vision->projector.tokens_per_side, 4);
    cr_expect(g_N > c->sliding_window, "an image must be wider than the sliding window");
    cr_expect_eq(count_images(&g_p1), g_N);
    cr_expect_eq(count_images(&g_p2), 2 * g_N);
}

Test(gemma3_vlm, config_forms)
{
    us_gemma3_config c;
    us_siglip_config v;
    int present = -1;
    us_error err;
    /* a text-only config: no vision, the image ids take Gemma3Config's defaults */
    cr_assert_eq(us_gemma3_config_parse("{\"hidden_size\": 640}", "t.json", &c, &err), US_OK, "%s", err.msg);
    cr_expect(c.image_token_id == 262144 && c.boi_id == 255999 && c.eoi_id == 256000 && c.mm_tokens_per_image == 256);
    cr_assert_eq(us_gemma3_vision_config_parse("{\"hidden_size\": 640}", "t.json", &present, &v, &err), US_OK);
    cr_expect_eq(present, 0);
    /* a Hub 4B-style config: minimal vision_config, the rest SiglipVisionConfig's defaults; the ids by
     * their attribute_map names */
    const char *hub = "{\"model_type\": \"gemma3\", \"image_token_id\": 7, \"boi_token_id\": 5, \"eoi_token_id\": 6, "
                      "\"mm_tokens_per_image\": 64, \"text_config\": {\"hidden_size\": 2560}, \"vision_config\": "
                      "{\"hidden_size\": 1152, \"image_size\": [896, 896], \"intermediate_size\": 4304, "
                      "\"model_type\": \"siglip_vision_model\", \"num_attention_heads\": 16, "
                      "\"num_hidden_layers\": 27, \"patch_size\": 14, \"vision_use_head\": false}}";
    cr_assert_eq(us_gemma3_config_parse(hub, "hub.json", &c, &err), US_OK, "%s", err.msg);
    cr_expect(c.image_token_id == 7 && c.boi_id == 5 && c.eoi_id == 6 && c.mm_tokens_per_image == 64);
    cr_assert_eq(us_gemma3_vision_config_parse(hub, "hub.json", &present, &v, &err), US_OK, "%s", err.msg);
    cr_expect_eq(present, 1);
    cr_expect(v.image_size == 896 && v.patch_size == 14 && v.hidden_size == 1152 && v.num_heads == 16 &&
              v.num_layers == 27 && v.intermediate_size == 4304 && v.num_channels == 3 && v.layer_norm_eps == 1e-6f);
    cr_expect_eq(us_siglip_num_patches(&v), 4096);

    struct { const char *json, *field; } bad[] = {
        {"{\"vision_config\": {\"hidden_act\": \"relu\"}}", "vision_config.hidden_act"},
        {"{\"vision_config\": {\"hidden_size\": 36, \"num_attention_heads\": 3}}", "head dim"},
        {"{\"vision_config\": {\"hidden_size\": 30, \"num_attention_heads\": 4}}", "vision_config.hidden_size"},
        {"{\"vision_config\": {\"image_size\": [224, 112]}}", "vision_config.image_size"},
        {"{\"vision_config\": {\"patch_size\": \"big\"}}", "vision_config.patch_size"},
        {"{\"vision_config\": {\"num_hidden_layers\": 0}}", "vision_config.num_hidden_layers"},
        {"{\"vision_config\": {\"model_type\": \"clip_vision_model\"}}", "vision_config.model_type"},
        {"{\"vision_config\": 3}", "vision_config"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err.msg[0] = '\0';
        cr_expect_neq(us_gemma3_vision_config_parse(bad[i].json, "bad.json", &present, &v, &err), US_OK,
                      "%s should fail", bad[i].json);
        cr_expect(strstr(err.msg, bad[i].field) && strstr(err.msg, "bad.json"), "message \"%s\" should name %s",
                  err.msg, bad[i].field);
    }
    err.msg[0] = '\0';
    cr_expect_neq(us_gemma3_config_parse("{\"mm_tokens_per_image\": 0}", "bad.json", &c, &err), US_OK);
    cr_expect(strstr(err.msg, "mm_tokens_per_image") != NULL, "message: %s", err.msg);
}

/* ---- the tower and the projector ----------------------------------------------------------------- */

Test(gemma3_vlm, vision_tower)
{
    const us_siglip_config *vc = &g_w->vision->tower.cfg;
    const int64_t P = us_siglip_num_patches(vc), Cv = vc->hidden_size, S = vc->image_size;
    us_siglip *s = NULL;
    us_error err;
    cr_assert_eq(us_siglip_create(&g_w->vision->tower, 0, &s, &err), US_OK, "%s", err.msg);
    float *out = malloc((size_t)(P * Cv) * sizeof *out);
    cr_assert_eq(us_siglip_forward(s, ref("pixels", 3 * S, S), out, &err), US_OK, "%s", err.msg);
    compare(out, ref("vision", P, Cv), P * Cv, "vision tower", 1e-4);
    /* a non-finite pixel is refused, naming it */
    float *bad = malloc((size_t)(3 * S * S) * sizeof *bad);
    memcpy(bad, ref("pixels", 3 * S, S), (size_t)(3 * S * S) * sizeof *bad);
    bad[S * S + 2 * S + 5] = NAN;
    cr_expect_neq(us_siglip_forward(s, bad, out, &err), US_OK);
    cr_expect(strstr(err.msg, "channel 1, row 2, column 5") != NULL, "message: %s", err.msg);
    free(bad), free(out);
    us_siglip_free(&s);
}

Test(gemma3_vlm, projector)
{
    const us_mm_projector *p = &g_w->vision->projector;
    const int64_t P = (int64_t)p->patches_per_side * p->patches_per_side, Cv = p->proj.rows;
    float *scratch = malloc((size_t)us_mm_projector_scratch(p, 2) * sizeof *scratch);
    float *out = malloc((size_t)(g_N * g_C) * sizeof *out);
    us_error err;
    /* the projector alone, on transformers' tower output */
    cr_assert_eq(us_mm_projector_forward(p, ref("vision", P, Cv), out, scratch, 2, &err), US_OK, "%s", err.msg);
    compare(out, ref("projected", g_N, g_C), g_N * g_C, "projector", 1e-4);
    free(scratch), free(out);
    /* the image encoder end to end, both images */
    float *emb = encode(g_w, 2);
    compare(emb, ref("projected", g_N, g_C), g_N * g_C, "image encoder (image 1)", 1e-4);
    compare(emb + g_N * g_C, ref("projected2", g_N, g_C), g_N * g_C, "image encoder (image 2)", 1e-4);
    free(emb);
}

/* ---- image soft tokens in the decoder ----------------------------------------------------------- */

Test(gemma3_vlm, one_image_logits)
{
    us_gemma3_model *m = make(g_w, 0);
    float *out = malloc((size_t)(g_p1.T * g_V) * sizeof *out);
    us_error err;
    /* transformers' projector rows: the decoder alone */
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p1.ids, g_p1.T, ref("projected", g_N, g_C), g_N, g_p1.T, out, &err),
                 US_OK, "%s", err.msg);
    compare_logits(out, &g_p1, "logits, one image (ref rows)");
    /* the C encoder's rows: the whole path */
    float *emb = encode(g_w, 1);
    us_gemma3_reset(m);
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p1.ids, g_p1.T, emb, g_N, g_p1.T, out, &err), US_OK, "%s", err.msg);
    compare_logits(out, &g_p1, "logits, one image");
    int n = 0;
    const us_span *sp = us_gemma3_image_spans(m, &n);
    cr_assert_eq(n, 1);
    cr_expect(sp[0].end - sp[0].start == g_N && g_p1.ids[sp[0].start] == g_w->cfg.image_token_id &&
              g_p1.ids[sp[0].start - 1] == g_w->cfg.boi_id && g_p1.ids[sp[0].end] == g_w->cfg.eoi_id);
    free(emb), free(out);
    us_gemma3_model_free(&m);
}

Test(gemma3_vlm, two_image_logits)
{
    us_gemma3_model *m = make(g_w, 0);
    float *out = malloc((size_t)(g_p2.T * g_V) * sizeof *out);
    float *emb = encode(g_w, 2);
    us_error err;
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p2.ids, g_p2.T, emb, 2 * g_N, g_p2.T, out, &err), US_OK, "%s",
                 err.msg);
    compare_logits(out, &g_p2, "logits, two images");
    int n = 0;
    const us_span *sp = us_gemma3_image_spans(m, &n);
    cr_assert_eq(n, 2, "two images, two spans (never merged across the text between them)");
    cr_expect(sp[0].end - sp[0].start == g_N && sp[1].end - sp[1].start == g_N && sp[1].start > sp[0].end);
    /* UniSparse on the global layer gives the same (the prompt is shorter than a block: dense) */
    us_gemma3_opts o = us_gemma3_opts_default();
    o.method = US_METHOD_UNISPARSE;
    o.params.block = 64;
    us_gemma3_model *mu = NULL;
    cr_assert_eq(us_gemma3_model_create(g_w, &o, &mu, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_gemma3_forward_embeds(mu, g_p2.ids, g_p2.T, emb, 2 * g_N, g_p2.T, out, &err), US_OK, "%s",
                 err.msg);
    compare_logits(out, &g_p2, "logits, two images, unisparse");
    us_gemma3_model_free(&mu);
    free(emb), free(out);
    us_gemma3_model_free(&m);
}

/* index of the first image token of p, and the rows of image i in the order of the prompt */
static int64_t first_image(const prompt *p)
{
    for (int64_t t = 0; t < p->T; t++)
        if (p->ids[t] == g_w->cfg.image_token_id) return t;
    return -1;
}

Test(gemma3_vlm, chunked_prefill)
{
    float *emb = encode(g_w, 2);
    float *one = malloc((size_t)(g_p2.T * g_V) * sizeof *one), *out = malloc((size_t)(g_p2.T * g_V) * sizeof *out);
    us_error err;
    us_gemma3_model *m = make(g_w, 0);
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p2.ids, g_p2.T, emb, 2 * g_N, g_p2.T, one, &err), US_OK, "%s",
                 err.msg);
    us_gemma3_model_free(&m);

    /* max_batch cuts the call: 16 (exactly one image), 17, 20 and 23 all land inside an image at
     * least once and must back off to its start */
    const int batches[] = {16, 17, 20, 23};
    for (size_t i = 0; i < sizeof batches / sizeof *batches; i++) {
        m = make(g_w, batches[i]);
        memset(out, 0, (size_t)(g_p2.T * g_V) * sizeof *out);
        cr_assert_eq(us_gemma3_forward_embeds(m, g_p2.ids, g_p2.T, emb, 2 * g_N, g_p2.T, out, &err), US_OK, "%s",
                     err.msg);
        char what[64];
        snprintf(what, sizeof what, "logits, max_batch %d", batches[i]);
        compare_logits(out, &g_p2, what);
        compare(out, one, g_p2.T * g_V, "  ... vs one call", 1e-5);
        us_gemma3_model_free(&m);
    }

    /* the caller's chunks: text up to the first image, then image 1 with the text after it, then the rest
     * token by token (image 2 in one call of its own, decode steps after it) */
    m = make(g_w, 0);
    const int64_t a = first_image(&g_p2), b = a + g_N + 4;
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p2.ids, a, NULL, 0, a, out, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p2.ids + a, b - a, emb, g_N, b - a, out + a * g_V, &err), US_OK, "%s",
                 err.msg);
    int64_t row = g_N;
    for (int64_t t = b; t < g_p2.T;) {
        int64_t n = 1;
        if (g_p2.ids[t] == g_w->cfg.image_token_id) n = g_N;
        cr_assert_eq(us_gemma3_forward_embeds(m, g_p2.ids + t, n, n > 1 ? emb + row * g_C : NULL, n > 1 ? n : 0, n,
                                              out + t * g_V, &err),
                     US_OK, "at %lld: %s", (long long)t, err.msg);
        row += n > 1 ? n : 0;
        t += n;
    }
    compare_logits(out, &g_p2, "logits, caller's chunks");
    us_gemma3_model_free(&m);
    free(one), free(out), free(emb);
}

Test(gemma3_vlm, image_span_is_bidirectional)
{
    /* change the embedding of the image's 11th soft token: the logits at its 4th soft token (earlier)
     * must change, those of every token before the image must not */
    float *emb = encode(g_w, 1);
    float *base = malloc((size_t)(g_p1.T * g_V) * sizeof *base), *alt = malloc((size_t)(g_p1.T * g_V) * sizeof *alt);
    us_error err;
    us_gemma3_model *m = make(g_w, 0);
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p1.ids, g_p1.T, emb, g_N, g_p1.T, base, &err), US_OK, "%s", err.msg);
    for (int64_t i = 0; i < g_C; i++) emb[10 * g_C + i] = -emb[10 * g_C + i] + 0.5f;
    us_gemma3_reset(m);
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p1.ids, g_p1.T, emb, g_N, g_p1.T, alt, &err), US_OK, "%s", err.msg);
    const int64_t a = first_image(&g_p1);
    cr_expect_eq(memcmp(base, alt, (size_t)(a * g_V) * sizeof *base), 0, "the text before the image changed");
    double d = 0.0;
    for (int64_t i = 0; i < g_V; i++) d = fmax(d, fabs((double)base[(a + 3) * g_V + i] - alt[(a + 3) * g_V + i]));
    fprintf(stderr, "gemma3-tiny-vlm soft token 11 changed: max |d logits| at soft token 4 = %.3g\n", d);
    cr_expect(d > 1e-3, "soft token 4 does not see soft token 11 (max logit change %g)", d);
    free(base), free(alt), free(emb);
    us_gemma3_model_free(&m);
}

Test(gemma3_vlm, truncate_drops_images)
{
    float *emb = encode(g_w, 2);
    float *out = malloc((size_t)(g_p2.T * g_V) * sizeof *out), *again = malloc((size_t)(g_p2.T * g_V) * sizeof *again);
    us_error err;
    us_gemma3_model *m = make(g_w, 0);
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p2.ids, g_p2.T, emb, 2 * g_N, g_p2.T, out, &err), US_OK, "%s",
                 err.msg);
    /* keep the first image and the text after it, then run the rest again */
    const int64_t keep = first_image(&g_p2) + g_N + 3;
    cr_assert_eq(us_gemma3_truncate(m, keep, &err), US_OK, "%s", err.msg);
    int n = 0;
    us_gemma3_image_spans(m, &n);
    cr_expect_eq(n, 1);
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p2.ids + keep, g_p2.T - keep, emb + g_N * g_C, g_N, g_p2.T - keep,
                                          again, &err),
                 US_OK, "%s", err.msg);
    compare(again, out + keep * g_V, (g_p2.T - keep) * g_V, "logits after truncate vs one call", 1e-5);
    us_gemma3_reset(m);
    us_gemma3_image_spans(m, &n);
    cr_expect_eq(n, 0);
    free(out), free(again), free(emb);
    us_gemma3_model_free(&m);
}

Test(gemma3_vlm, bad_calls)
{
    float *emb = encode(g_w, 2);
    us_error err = {0};
    us_gemma3_model *m = make(g_w, 0);
    /* rows and soft tokens must agree */
    cr_expect_neq(us_gemma3_forward_embeds(m, g_p1.ids, g_p1.T, emb, g_N - 1, 0, NULL, &err), US_OK);
    cr_expect(strstr(err.msg, "image embedding rows") != NULL, "message: %s", err.msg);
    cr_expect_neq(us_gemma3_forward_embeds(m, g_p1.ids, g_p1.T, NULL, 0, 0, NULL, &err), US_OK);
    cr_expect_neq(us_gemma3_forward_embeds(m, g_p1.ids, g_p1.T, NULL, g_N, 0, NULL, &err), US_OK);
    cr_expect(strstr(err.msg, "NULL") != NULL, "message: %s", err.msg);
    /* the image id is outside the tiny vocabulary: plain text forward refuses it */
    cr_expect_neq(us_gemma3_forward(m, g_p1.ids, g_p1.T, 0, NULL, &err), US_OK);
    cr_expect(strstr(err.msg, "vocab_size") != NULL, "message: %s", err.msg);
    cr_expect_eq(us_gemma3_n_past(m), 0);
    /* an image split across two calls */
    const int64_t a = first_image(&g_p1);
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p1.ids, a + 5, emb, 5, 0, NULL, &err), US_OK, "%s", err.msg);
    cr_expect_neq(us_gemma3_forward_embeds(m, g_p1.ids + a + 5, 3, emb + 5 * g_C, 3, 0, NULL, &err), US_OK);
    cr_expect(strstr(err.msg, "one call") != NULL, "message: %s", err.msg);
    us_gemma3_model_free(&m);
    /* an image longer than max_batch */
    m = make(g_w, 12);
    cr_expect_neq(us_gemma3_forward_embeds(m, g_p1.ids, g_p1.T, emb, g_N, 0, NULL, &err), US_OK);
    cr_expect(strstr(err.msg, "max_batch = 12") != NULL, "message: %s", err.msg);
    cr_expect_eq(us_gemma3_n_past(m), 0);
    us_gemma3_model_free(&m);
    /* images into a text-only checkpoint */
    us_gemma3_image_encoder *e = NULL;
    us_gemma3_weights text = *g_w;
    text.vision = NULL;
    cr_expect_neq(us_gemma3_image_encoder_create(&text, 0, &e, &err), US_OK);
    cr_expect(strstr(err.msg, "vision") != NULL, "message: %s", err.msg);
    free(emb);
}

/* ---- checkpoints: prefixes, dtypes, bad tensors --------------------------------------------------- */

static void copy_config(void)
{
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/config.json", g_model);
    snprintf(b, sizeof b, "%s/config.json", g_tmp);
    FILE *f = fopen(a, "rb"), *g = fopen(b, "wb");
    cr_assert(f && g);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, g);
    fclose(f), fclose(g);
}

typedef void (*edit_fn)(us_st_tensor *t, void **owned);

/* Writes the fixture's tensors, each passed through edit, as g_tmp/model.safetensors with config.json. */
static void write_edited(edit_fn edit)
{
    copy_config();
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s/model.safetensors", g_model);
    us_safetensors *st = NULL;
    us_error err;
    cr_assert_eq(us_safetensors_open(a, &st, &err), US_OK, "%s", err.msg);
    const int n = us_safetensors_count(st);
    us_st_tensor *ts = calloc((size_t)n, sizeof *ts);
    void **owned = calloc((size_t)n, sizeof *owned);
    for (int i = 0; i < n; i++) {
        ts[i] = *us_safetensors_at(st, i);
        edit(&ts[i], &owned[i]);
    }
    snprintf(b, sizeof b, "%s/model.safetensors", g_tmp);
    cr_assert_eq(us_safetensors_write(b, ts, n, NULL, 0, &err), US_OK, "%s", err.msg);
    for (int i = 0; i < n; i++) free(owned[i]);
    free(owned), free(ts);
    us_safetensors_close(&st);
}

/* the newer layout: model.language_model.*, model.vision_tower.vision_model.*, model.multi_modal_projector.* */
static void to_new_layout(us_st_tensor *t, void **owned)
{
    const char *const from[] = {"language_model.model.", "vision_tower.", "multi_modal_projector."};
    const char *const to[] = {"model.language_model.", "model.vision_tower.vision_model.",
                              "model.multi_modal_projector."};
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(from[i]);
        if (!strncmp(t->name, from[i], n)) {
            char rest[256];
            snprintf(rest, sizeof rest, "%s", t->name + n);
            snprintf(t->name, sizeof t->name, "%s%.200s", to[i], rest);
            return;
        }
    }
    (void)owned;
}

Test(gemma3_vlm, newer_prefixes)
{
    write_edited(to_new_layout);
    us_gemma3_weights *w = NULL;
    us_error err;
    cr_assert_eq(us_gemma3_weights_load(g_tmp, &w, &err), US_OK, "%s", err.msg);
    cr_assert_not_null(w->vision);
    float *a = encode(g_w, 2), *b = encode(w, 2);
    cr_expect_eq(memcmp(a, b, (size_t)(2 * g_N * g_C) * sizeof *a), 0, "the image rows differ");
    us_gemma3_model *m = make(w, 0);
    float *out = malloc((size_t)(g_p2.T * g_V) * sizeof *out);
    cr_assert_eq(us_gemma3_forward_embeds(m, g_p2.ids, g_p2.T, b, 2 * g_N, g_p2.T, out, &err), US_OK, "%s", err.msg);
    compare_logits(out, &g_p2, "logits, newer prefixes");
    free(out), free(a), free(b);
    us_gemma3_model_free(&m);
    us_gemma3_weights_free(&w);
}

static int g_round_bf16; /* 1: store bf16; 0: store the bf16-rounded values as f32 */

static void round_vision(us_st_tensor *t, void **owned)
{
    if (strncmp(t->name, "vision_tower.", 13) && strncmp(t->name, "multi_modal_projector.", 22)) return;
    const size_t cnt = t->nbytes / 4;
    const float *src = t->data;
    if (g_round_bf16) {
        uint16_t *dst = malloc(cnt * sizeof *dst);
        for (size_t j = 0; j < cnt; j++) dst[j] = us_f32_to_bf16(src[j]);
        snprintf(t->dtype_name, sizeof t->dtype_name, "BF16");
        t->dtype = US_BF16;
        t->elem_size = 2;
        t->nbytes = cnt * 2;
        *owned = dst;
    } else {
        float *dst = malloc(cnt * sizeof *dst);
        for (size_t j = 0; j < cnt; j++) dst[j] = us_bf16_to_f32(us_f32_to_bf16(src[j]));
        *owned = dst;
    }
    t->data = *owned;
}

static float *encode_rounded(int bf16)
{
    g_round_bf16 = bf16;
    write_edited(round_vision);
    us_gemma3_weights *w = NULL;
    us_error err;
    cr_assert_eq(us_gemma3_weights_load(g_tmp, &w, &err), US_OK, "%s", err.msg);
    cr_assert_eq((int)w->vision->tower.layers[1].fc1.dtype, bf16 ? (int)US_BF16 : (int)US_F32);
    cr_assert_eq((int)w->vision->projector.proj.dtype, bf16 ? (int)US_BF16 : (int)US_F32);
    float *emb = encode(w, 1);
    us_gemma3_weights_free(&w);
    return emb;
}

Test(gemma3_vlm, bf16_vision_weights)
{
    /* bf16 tower and projector weights, converted per tile, give what the same values stored as f32 give */
    float *ref32 = encode_rounded(0), *got = encode_rounded(1);
    compare(got, ref32, g_N * g_C, "bf16 vision weights vs f32", 1e-6);
    free(ref32), free(got);
}

static const char *g_victim;
static int g_drop;

static void transpose_victim(us_st_tensor *t, void **owned)
{
    (void)owned;
    if (strcmp(t->name, g_victim)) return;
    if (g_drop) { /* rename it out of the way */
        snprintf(t->name, sizeof t->name, "unused.%s", g_victim);
        return;
    }
    int64_t r = t->shape[0]; /* same bytes, wrong shape */
    t->shape[0] = t->shape[t->ndim - 1];
    t->shape[t->ndim - 1] = r;
}

static void expect_load_error(const char *victim, int drop, const char *must)
{
    g_victim = victim;
    g_drop = drop;
    write_edited(transpose_victim);
    us_gemma3_weights *w = NULL;
    us_error err = {0};
    cr_expect_neq(us_gemma3_weights_load(g_tmp, &w, &err), US_OK, "loading with %s %s should fail", victim,
                  drop ? "missing" : "transposed");
    cr_expect_null(w);
    cr_expect(strstr(err.msg, must) != NULL, "message \"%s\" should name %s", err.msg, must);
    if (!drop) cr_expect(strstr(err.msg, "model.safetensors") != NULL, "message \"%s\" should name the file", err.msg);
}

Test(gemma3_vlm, bad_vision_tensors)
{
    const char *fc1 = "vision_tower.encoder.layers.1.mlp.fc1.weight";
    expect_load_error(fc1, 0, fc1);
    expect_load_error("multi_modal_projector.mm_input_projection_weight", 0,
                      "multi_modal_projector.mm_input_projection_weight");
    expect_load_error("vision_tower.embeddings.patch_embedding.weight", 0, "patch_embedding");
    expect_load_error("vision_tower.post_layernorm.bias", 1, "post_layernorm.bias");
    expect_load_error("multi_modal_projector.mm_soft_emb_norm.weight", 1, "mm_soft_emb_norm.weight");
}

Test(gemma3_vlm, non_square_tokens)
{
    /* mm_tokens_per_image must be a square whose root divides the patches per side (8 here) */
    write_edited(to_new_layout);
    char p[1200];
    snprintf(p, sizeof p, "%s/config.json", g_tmp);
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *at = strstr(buf, "\"mm_tokens_per_image\": 16");
    cr_assert_not_null(at, "the fixture's config.json lacks mm_tokens_per_image");
    memcpy(at, "\"mm_tokens_per_image\": 9 ", 25);
    f = fopen(p, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
    us_gemma3_weights *w = NULL;
    us_error err = {0};
    cr_expect_neq(us_gemma3_weights_load(g_tmp, &w, &err), US_OK);
    cr_expect(strstr(err.msg, "mm_tokens_per_image") != NULL, "message: %s", err.msg);
}

/* ---- the prompt -------------------------------------------------------------------------------- */

Test(gemma3_vlm, chunk_len)
{
    /* where a caller may cut a prompt into forward calls: never inside a run of image tokens */
    const us_gemma3_config *c = &g_w->cfg;
    const int32_t I = c->image_token_id;
    const int32_t ids[] = {2, 5, 500, I, I, I, I, 501, 7, 500, I, I, 501};
    const int64_t T = sizeof ids / sizeof *ids;
    cr_expect_eq(us_gemma3_chunk_len(c, ids, T, 100), T);
    cr_expect_eq(us_gemma3_chunk_len(c, ids, T, 3), 3);  /* cut before the image */
    cr_expect_eq(us_gemma3_chunk_len(c, ids, T, 5), 3);  /* inside: back to its start */
    cr_expect_eq(us_gemma3_chunk_len(c, ids, T, 7), 7);  /* right after it */
    cr_expect_eq(us_gemma3_chunk_len(c, ids, T, 11), 10);
    cr_expect_eq(us_gemma3_chunk_len(c, ids + 3, T - 3, 2), 4); /* an image from the start: all of it */
    cr_expect_eq(us_gemma3_chunk_len(c, ids, T, 0), 1);
}

Test(gemma3_vlm, image_prompt)
{
    char *s = NULL;
    int n = -1;
    us_error err;
    cr_assert_eq(us_gemma3_expand_images("<start_of_turn>user\n<start_of_image>Describe<start_of_image>", 3, &s, &n,
                                         &err),
                 US_OK, "%s", err.msg);
    cr_expect_eq(n, 2);
    cr_expect_str_eq(s, "<start_of_turn>user\n\n\n<start_of_image><image_soft_token><image_soft_token>"
                        "<image_soft_token><end_of_image>\n\nDescribe\n\n<start_of_image><image_soft_token>"
                        "<image_soft_token><image_soft_token><end_of_image>\n\n");
    /* encoded with a tokenizer that knows the image token: boi, 3 x image, eoi, twice */
    char path[1200];
    const char *assets = getenv("US_ASSETS");
    snprintf(path, sizeof path, "%s/tokenizer/tiny.model", assets ? assets : "assets");
    us_tokenizer *tok = NULL;
    cr_assert_eq(us_tokenizer_load(path, &tok, &err), US_OK, "%s", err.msg);
    const int32_t img = us_tokenizer_vocab_size(tok) + 10, boi = us_tokenizer_piece_to_id(tok, "<start_of_image>"),
                  eoi = us_tokenizer_piece_to_id(tok, "<end_of_image>");
    cr_assert(boi >= 0 && eoi >= 0);
    cr_assert_eq(us_tokenizer_add_special(tok, US_GEMMA3_IMAGE_TOKEN_TEXT, img, &err), US_OK, "%s", err.msg);
    int32_t ids[256];
    size_t len = 0;
    cr_assert_eq(us_tokenizer_encode(tok, s, strlen(s), ids, 256, &len, &err), US_OK, "%s", err.msg);
    int images = 0;
    for (size_t i = 0; i + 4 < len; i++)
        if (ids[i] == boi) {
            cr_expect(ids[i + 1] == img && ids[i + 2] == img && ids[i + 3] == img && ids[i + 4] == eoi,
                      "image %d is not boi, 3 x image, eoi", images);
            images++;
        }
    cr_expect_eq(images, 2);
    us_tokenizer_free(&tok);
    free(s);
    /* no placeholder: the text as is */
    cr_assert_eq(us_gemma3_expand_images("plain", 256, &s, &n, &err), US_OK, "%s", err.msg);
    cr_expect_str_eq(s, "plain");
    cr_expect_eq(n, 0);
    free(s);
    cr_expect_neq(us_gemma3_expand_images("x", 0, &s, NULL, &err), US_OK);
}

/* The vectorisable GELU (and the exp2 it uses) against float64, over [-20, 20] in steps of 1/1024 and
 * down to the exp2's clamp: relative error within 1e-6 (about 8 float ulps) plus what rounding
 * e^(-2|u|)'s argument to float costs (|2u| 2^-22), or an absolute 1e-30 where the value underflows
 * towards 0. The reference writes 0.5 x (1 + tanh(u)) as x / (1 + e^(-2u)): in the tanh form even
 * float64 cancels for x below about -6 (1 + tanh(u) under its ulp). */
Test(gemma3_vlm, gelu_tanh_matches_float64)
{
    double worst = 0.0, worst_x = 0.0;
    for (int i = -20 * 1024; i <= 20 * 1024; i++) {
        const double x = i / 1024.0;
        const double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
        const double ref = x / (1.0 + exp(-2.0 * u));
        const double got = us_vit_gelu_tanh((float)x);
        const double err = fabs(got - ref) / fmax(fabs(ref), 1e-30 / 1e-6) / (1e-6 + fabs(2.0 * u) * 0x1p-22);
        if (err > worst) worst = err, worst_x = x;
    }
    cr_assert(worst <= 1.0, "GELU error %.3g of the bound at x = %g", worst, worst_x);
    const float xs[] = {-126.0f, -87.0f, -50.0f, -1.0f, -1e-3f, 0.0f};
    for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) {
        const double ref = exp2((double)xs[i]), got = us_exp2f(xs[i]);
        cr_assert(fabs(got - ref) <= 4e-7 * ref, "exp2(%g) = %.9g, float64 %.9g", xs[i], got, ref);
    }
    cr_assert(fabsf(us_vit_gelu_tanh(-1000.0f)) <= 1e-30f, "GELU(-1000) = %g", us_vit_gelu_tanh(-1000.0f));
    cr_assert_eq(us_vit_gelu_tanh(1000.0f), 1000.0f, "GELU(1000) = %g", us_vit_gelu_tanh(1000.0f));
}
