/* test_prompt_assembly.c: our prompts with images and video frames against transformers' Gemma3Processor.
 *
 * assets/prompt/prompt.safetensors (scripts/make-prompt-fixture.py) holds pictures (RGB8, as decoded
 * frames are) and what Gemma3Processor, built from the test tokenizer (assets/tokenizer/tiny.model, with
 * <image_soft_token> at the tiny VLM's image_token_index) and the tiny VLM's image settings, makes of
 * them: input_ids, token_type_ids and pixel_values, for
 *   a  a chat turn: one image, then a question (Gemma 3's chat template, then the processor),
 *   b  `unisparse vqa`'s layout: three frames, each after "Frame i at mm:ss.s:", then a question,
 *   c  a plain prompt "<start_of_image>..." with the tokenizer's BOS.
 * Our side goes through the code the CLIs use: us_llm_load of the tiny VLM checkpoint (config, weights,
 * tokenizer.model), us_visual_prompt_add_image / us_visual_prompt_encode, and for b video_prompt.h's
 * text with the prefix and the question encoded apart, as cmd_vqa.c does. The ids must be identical,
 * the image soft tokens exactly where token_type_ids is 1, and us_image_preprocess's pixels equal to the
 * processor's (max |diff| <= 1e-6; they are expected identical). */
#include "gemma3_vision.h"
#include "image_preprocess.h"
#include "llm.h"
#include "safetensors.h"
#include "video_prompt.h"
#include "visual_prompt.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static us_safetensors *g_fx;
static us_llm *g_llm;
static us_visual_prompt *g_vp;
static char g_tmp[64];
static const char *const FILES[3][2] = {{"gemma3-tiny-vlm/config.json", "config.json"},
                                        {"gemma3-tiny-vlm/model.safetensors", "model.safetensors"},
                                        {"tokenizer/tiny.model", "tokenizer.model"}};

static void setup(void)
{
    const char *assets = getenv("US_ASSETS");
    if (!assets) assets = "assets";
    char p[1024], q[1024];
    snprintf(p, sizeof p, "%s/prompt/prompt.safetensors", assets);
    us_error err;
    cr_assert_eq(us_safetensors_open(p, &g_fx, &err), US_OK, "%s", err.msg);
    /* the tiny VLM as a checkpoint directory, as tests/cli_vqa.sh makes it */
    snprintf(g_tmp, sizeof g_tmp, "/tmp/us_prompt_XXXXXX");
    cr_assert_not_null(mkdtemp(g_tmp), "mkdtemp: %s", strerror(errno));
    char cwd[512] = "";
    if (assets[0] != '/') cr_assert_not_null(getcwd(cwd, sizeof cwd), "getcwd: %s", strerror(errno));
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s%s/%s", cwd, cwd[0] ? "/" : "", assets, FILES[i][0]);
        snprintf(q, sizeof q, "%s/%s", g_tmp, FILES[i][1]);
        cr_assert_eq(symlink(p, q), 0, "symlink %s: %s", p, strerror(errno));
    }
    cr_assert_eq(us_llm_load(g_tmp, &g_llm, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_visual_prompt_create(g_llm, 1, &g_vp, &err), US_OK, "%s", err.msg);
}

static void teardown(void)
{
    us_visual_prompt_free(&g_vp);
    us_llm_free(&g_llm);
    us_safetensors_close(&g_fx);
    char q[1024];
    for (int i = 0; i < 3; i++) {
        snprintf(q, sizeof q, "%s/%s", g_tmp, FILES[i][1]);
        unlink(q);
    }
    rmdir(g_tmp);
}

TestSuite(prompt_assembly, .init = setup, .fini = teardown);

static const us_st_tensor *tensor(const char *name, const char *dtype)
{
    const us_st_tensor *t = us_safetensors_find(g_fx, name);
    cr_assert(t && !strcmp(t->dtype_name, dtype), "fixture lacks %s %s", dtype, name);
    return t;
}

static const char *meta(const char *key)
{
    const char *v = us_safetensors_metadata(g_fx, key);
    cr_assert_not_null(v, "fixture metadata lacks %s", key);
    return v;
}

static int64_t ref_id(const us_st_tensor *t, int64_t i)
{
    int64_t v;
    memcpy(&v, (const char *)t->data + i * 8, 8);
    return v;
}

/* ours vs the processor's input_ids and token_type_ids, every position */
static void check_ids(const int32_t *ids, int64_t n, const char *ids_name, const char *types_name)
{
    const us_st_tensor *want = tensor(ids_name, "I64"), *types = tensor(types_name, "I64");
    cr_assert_eq(want->ndim, 1);
    cr_assert_eq(types->shape[0], want->shape[0]);
    const int64_t T = want->shape[0];
    int64_t first = -1;
    for (int64_t i = 0; i < n && i < T && first < 0; i++)
        if (ids[i] != ref_id(want, i)) first = i;
    cr_assert(first < 0 && n == T, "%s: %lld ids, transformers %lld; first difference at %lld: %d vs %lld", ids_name,
              (long long)n, (long long)T, (long long)first, first >= 0 ? ids[first] : 0,
              first >= 0 ? (long long)ref_id(want, first) : 0LL);
    const int32_t img = g_llm->w->cfg.image_token_id;
    cr_assert_eq(img, atoi(meta("image_token_id")));
    int64_t soft = 0;
    for (int64_t i = 0; i < T; i++) {
        cr_assert_eq(ids[i] == img, ref_id(types, i) == 1, "%s position %lld: image soft token %d, token type %lld",
                     ids_name, (long long)i, ids[i] == img, (long long)ref_id(types, i));
        soft += ids[i] == img;
    }
    cr_assert_eq(soft, (int64_t)us_visual_prompt_n_images(g_vp) * g_llm->w->cfg.mm_tokens_per_image);
}

/* rgb_name (U8 [h, w, 3]) through us_visual_prompt_add_image; its us_image_preprocess pixels vs image
 * k of pixels_name (F32 [n, 3, S, S]) */
static void add_image(const char *rgb_name, const char *pixels_name, int k)
{
    const us_st_tensor *rgb = tensor(rgb_name, "U8"), *px = tensor(pixels_name, "F32");
    cr_assert(rgb->ndim == 3 && rgb->shape[2] == 3 && px->ndim == 4 && k < px->shape[0] && px->shape[1] == 3);
    const int w = (int)rgb->shape[1], h = (int)rgb->shape[0], S = (int)px->shape[2];
    cr_assert_eq(S, g_llm->w->vision->tower.cfg.image_size);
    const size_t n = (size_t)3 * S * S;
    float *ours = malloc(n * sizeof *ours);
    cr_assert_not_null(ours);
    us_error err;
    cr_assert_eq(us_image_preprocess(rgb->data, w, h, S, ours, &err), US_OK, "%s", err.msg);
    const float *want = (const float *)px->data + (size_t)k * n;
    double md = 0.0;
    size_t same = 0;
    for (size_t i = 0; i < n; i++) {
        md = fmax(md, fabs((double)ours[i] - want[i]));
        same += ours[i] == want[i];
    }
    printf("%s (%dx%d) -> %s[%d]: max |diff| %.3g, %zu of %zu values identical\n", rgb_name, w, h, pixels_name, k, md,
           same, n);
    cr_assert_leq(md, 1e-6, "%s: pixels differ from the processor's by %g", rgb_name, md);
    free(ours);
    cr_assert_eq(us_visual_prompt_add_image(g_vp, rgb->data, w, h, &err), US_OK, "%s", err.msg);
}

Test(prompt_assembly, chat_one_image)
{
    add_image("rgb_a", "pixels_a", 0);
    const char *user = meta("user_a");
    cr_assert_str_eq(user, "<start_of_image>What is shown in this picture?");
    int32_t *ids = NULL;
    int64_t n = 0;
    us_error err;
    cr_assert_eq(us_visual_prompt_encode(g_vp, user, US_PROMPT_CHAT, &ids, &n, &err), US_OK, "%s", err.msg);
    check_ids(ids, n, "ids_a", "types_a");
    /* the turn opens "user\n" and the image's own "\n\n" follows, as the template renders it first */
    const char *text = meta("text_a");
    cr_assert(strstr(text, "<start_of_turn>user\n<start_of_image>What"), "%s", text);
    free(ids);
}

Test(prompt_assembly, plain_prompt_with_bos)
{
    add_image("rgb_a", "pixels_a", 0);
    int32_t *ids = NULL;
    int64_t n = 0;
    us_error err;
    cr_assert_eq(us_visual_prompt_encode(g_vp, meta("user_c"), US_PROMPT_BOS, &ids, &n, &err), US_OK, "%s",
                 err.msg);
    check_ids(ids, n, "ids_c", "types_c");
    free(ids);
}

Test(prompt_assembly, vqa_frames)
{
    /* the frames' times and the question, as cmd_vqa has them */
    double t[8];
    int nf = 0;
    char times[256];
    snprintf(times, sizeof times, "%s", meta("times_b"));
    for (char *save = NULL, *tok = strtok_r(times, ",", &save); tok && nf < 8; tok = strtok_r(NULL, ",", &save))
        t[nf++] = strtod(tok, NULL);
    cr_assert_eq(nf, 3);
    static const char *const RGB[3] = {"rgb_b0", "rgb_b1", "rgb_b2"};
    for (int i = 0; i < nf; i++) add_image(RGB[i], "pixels_b", i);

    char *prefix = NULL, *turn = NULL;
    us_error err;
    cr_assert_eq(us_video_prompt_prefix(t, nf, &prefix, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_video_prompt_question(meta("question_b"), &turn, &err), US_OK, "%s", err.msg);
    /* the text is what Gemma 3's chat template rendered for the same interleaved content */
    const char *text = meta("text_b");
    const size_t lp = strlen(prefix);
    cr_assert(!strncmp(text, prefix, lp) && !strcmp(text + lp, turn), "ours:\n%s%s\ntransformers:\n%s", prefix, turn,
              text);

    int32_t *pids = NULL, *qids = NULL;
    int64_t np = 0, nq = 0;
    cr_assert_eq(us_visual_prompt_encode(g_vp, prefix, US_PROMPT_RAW, &pids, &np, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_llm_encode(g_llm, turn, US_PROMPT_RAW, &qids, &nq, &err), US_OK, "%s", err.msg);
    int32_t *ids = malloc((size_t)(np + nq) * sizeof *ids);
    cr_assert_not_null(ids);
    memcpy(ids, pids, (size_t)np * sizeof *ids), memcpy(ids + np, qids, (size_t)nq * sizeof *ids);
    check_ids(ids, np + nq, "ids_b", "types_b");
    /* the KV-cache prefix ends with the last image's eoi and its "\n\n" */
    const int32_t eoi = us_tokenizer_piece_to_id(g_llm->tok, "<end_of_image>");
    const int32_t nl = us_tokenizer_piece_to_id(g_llm->tok, "<0x0A>"); /* "\n": bytes in the tiny vocabulary */
    cr_assert(np > 3 && pids[np - 3] == eoi && pids[np - 2] == nl && pids[np - 1] == nl);
    free(ids), free(pids), free(qids), free(prefix), free(turn);
}

Test(prompt_assembly, video_labels)
{
    char b[US_VIDEO_PROMPT_LABEL_MAX];
    static const struct {
        int64_t i;
        double t;
        const char *want;
    } cases[] = {
        {0, 0.0, "Frame 1 at 00:00.0:"},       {1, 3.2, "Frame 2 at 00:03.2:"},
        {2, 72.0, "Frame 3 at 01:12.0:"},      {9, 75.3, "Frame 10 at 01:15.3:"},
        {0, 59.94, "Frame 1 at 00:59.9:"},     {0, 59.96, "Frame 1 at 01:00.0:"}, /* not "00:60.0" */
        {0, 119.99, "Frame 1 at 02:00.0:"},    {99, 3600.04, "Frame 100 at 60:00.0:"},
        {0, 6000.0, "Frame 1 at 100:00.0:"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const int n = us_video_prompt_label(cases[k].i, cases[k].t, b);
        cr_assert_str_eq(b, cases[k].want, "t = %g", cases[k].t);
        cr_assert_eq(n, (int)strlen(cases[k].want));
    }
    char *s = NULL;
    us_error err;
    cr_assert_eq(us_video_prompt_question(" \tWho is it?\n ", &s, &err), US_OK, "%s", err.msg);
    cr_assert_str_eq(s, "Who is it?<end_of_turn>\n<start_of_turn>model\n");
    free(s);
    cr_assert_eq(us_video_prompt_prefix(NULL, 0, &s, &err), US_OK, "%s", err.msg);
    cr_assert_str_eq(s, "<bos><start_of_turn>user\n");
    free(s);
    const double bad[2] = {1.0, NAN};
    cr_assert_eq(us_video_prompt_prefix(bad, 2, &s, &err), US_ERR_INVALID);
    cr_assert(strstr(err.msg, "frame 2"), "%s", err.msg);
    cr_assert_null(s);
    const double neg = -0.5;
    cr_assert_eq(us_video_prompt_prefix(&neg, 1, &s, &err), US_ERR_INVALID);
    cr_assert_eq(us_video_prompt_question(NULL, &s, &err), US_ERR_INVALID);
}

Test(prompt_assembly, markers_must_match_images)
{
    add_image("rgb_a", "pixels_a", 0);
    int32_t *ids = NULL;
    int64_t n = 0;
    us_error err;
    cr_assert_eq(us_visual_prompt_encode(g_vp, "<start_of_image><start_of_image>x", US_PROMPT_CHAT, &ids, &n, &err),
                 US_ERR_INVALID);
    cr_assert(strstr(err.msg, "2 images") && strstr(err.msg, "1 were given"), "%s", err.msg);
    cr_assert_null(ids);
}
