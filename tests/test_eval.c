/* test_eval.c: the evaluation library (pipeline/eval/): metrics on cases with known answers, the task
 * list and length parsers, the haystack renderer and the task builders (with the tiny SentencePiece
 * fixture, assets/tokenizer/tiny.model, as the token counter), the video needle (its frame, its place
 * among the frames, its rows spliced into the frames'), the runner's teacher-forced KL on the tiny
 * Gemma 3 (assets/gemma3-tiny), the aggregate table and its reports, and the plot's PNG. */
#include "eval_canvas.h"
#include "eval_haystack.h"
#include "eval_metrics.h"
#include "eval_needle.h"
#include "eval_plot.h"
#include "eval_report.h"
#include "eval_runner.h"
#include "eval_tasks.h"
#include "gemma3_weights.h"
#include "tokenizer.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void asset(char *out, size_t cap, const char *rel)
{
    const char *env = getenv("US_ASSETS");
    if (env && env[0]) {
        snprintf(out, cap, "%s/%s", env, rel);
        return;
    }
    const char *src = __FILE__, *tail = strstr(src, "tests/test_eval.c");
    snprintf(out, cap, "%.*sassets/%s", tail ? (int)(tail - src) : 0, src, rel);
}

/* ---- metrics -------------------------------------------------------------------------------- */

Test(eval_metrics, string_match_all_as_ruler)
{
    const char *two[] = {"1234567", "7654321"}, *half[] = {"1234567", "1111111"}, *word[] = {"abcde"};
    cr_expect_eq(us_eval_score_all("The numbers are 1234567 and 7654321.", two, 2), 1.0);
    cr_expect_eq(us_eval_score_all("The numbers are 1234567 and 7654321.", half, 2), 0.5);
    cr_expect_eq(us_eval_score_all("they are: ABCDE, FGHIJ", word, 1), 1.0); /* case ignored */
    cr_expect_eq(us_eval_score_all("", two, 2), 0.0);
    cr_expect_eq(us_eval_score_all("123456", two, 2), 0.0); /* a part of a value is not the value */
    cr_expect_eq(us_eval_score_all("anything", NULL, 0), 1.0);
}

Test(eval_metrics, token_agreement)
{
    const int32_t ref[] = {5, 6, 7, 1}, same[] = {5, 6, 7, 1}, early[] = {5, 6, 9}, none[] = {2};
    cr_expect_eq(us_eval_agreement(ref, 4, same, 4), 1.0);
    cr_expect_eq(us_eval_agreement(ref, 4, early, 3), 0.5);
    cr_expect_eq(us_eval_agreement(ref, 4, none, 1), 0.0);
    cr_expect_eq(us_eval_agreement(ref, 4, ref, 2), 0.5); /* stopped early */
    cr_expect_eq(us_eval_agreement(NULL, 0, NULL, 0), 1.0);
    cr_expect_eq(us_eval_agreement(NULL, 0, none, 1), 0.0);
    cr_expect_eq(us_eval_common_prefix(ref, 4, early, 3), 2);
}

Test(eval_metrics, kl_by_hand)
{
    /* P = (1/2, 1/2), Q = (3/4, 1/4): KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3) */
    const float p[2] = {0.0f, 0.0f}, q[2] = {logf(3.0f), 0.0f}, q_shift[2] = {logf(3.0f) + 100.0f, 100.0f};
    const double want = 0.5 * log(4.0 / 3.0);
    cr_expect(fabs(us_eval_kl_logits(p, q, 2) - want) < 1e-7, "KL %.9f, want %.9f", us_eval_kl_logits(p, q, 2), want);
    cr_expect(fabs(us_eval_kl_logits(p, q_shift, 2) - want) < 1e-6, "softmax is shift invariant");
    /* KL(Q || P) = 3/4 ln(3/2) + 1/4 ln(1/2) */
    const double back = 0.75 * log(1.5) + 0.25 * log(0.5);
    cr_expect(fabs(us_eval_kl_logits(q, p, 2) - back) < 1e-7);
    /* a masked row where P is 0 contributes nothing */
    const float pm[3] = {0.0f, 0.0f, -INFINITY}, qm[3] = {logf(3.0f), 0.0f, 5.0f};
    const double wm = 0.5 * log(0.5 / (3.0 / (4.0 + expf(5.0f)))) + 0.5 * log(0.5 / (1.0 / (4.0 + expf(5.0f))));
    cr_expect(fabs(us_eval_kl_logits(pm, qm, 3) - wm) < 1e-6, "%.9f vs %.9f", us_eval_kl_logits(pm, qm, 3), wm);
}

Test(eval_metrics, kl_of_identical_is_exactly_zero)
{
    const int64_t n = US_EVAL_KL_VOCAB;
    float *x = malloc((size_t)n * sizeof *x);
    uint32_t s = 12345;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) * 0x1.0p-24f * 30.0f - 15.0f;
    }
    cr_expect_eq(us_eval_kl_logits(x, x, n), 0.0);
    x[7] += 1.0f;
    float *y = malloc((size_t)n * sizeof *y);
    memcpy(y, x, (size_t)n * sizeof *y);
    y[7] -= 1.0f;
    cr_expect_gt(us_eval_kl_logits(x, y, n), 0.0);
    free(x), free(y);
}

/* ---- parsers -------------------------------------------------------------------------------- */

Test(eval_tasks, list_parsing_names_the_known_tasks)
{
    const us_eval_task *t[8];
    int n = 0;
    us_error err = {0};
    cr_assert_eq(us_eval_tasks_parse("vt,niah_single", t, 8, &n, &err), US_OK, "%s", err.msg);
    cr_expect_eq(n, 2);
    cr_expect_str_eq(t[0]->name, "vt");
    cr_expect_str_eq(t[1]->name, "niah_single");
    cr_expect_eq(us_eval_tasks_parse("niah_single,bogus", t, 8, &n, &err), US_ERR_INVALID);
    cr_expect(strstr(err.msg, "bogus") && strstr(err.msg, "niah_multikey") && strstr(err.msg, "vt"), "%s", err.msg);
    cr_expect_eq(us_eval_tasks_parse("vt,vt", t, 8, &n, &err), US_ERR_INVALID);
    cr_expect_eq(us_eval_tasks_parse("vt,", t, 8, &n, &err), US_ERR_INVALID);
    for (int i = 0; i < us_eval_task_count(); i++) {
        const us_eval_task *k = us_eval_task_at(i);
        cr_expect(k->modality != US_EVAL_TEXT || k->build_text, "%s: a text task needs a builder", k->name);
        cr_expect(k->modality != US_EVAL_VIDEO || k->build_video, "%s: a video task needs a builder", k->name);
        cr_expect_gt(k->answer_tokens, 0);
    }
}

Test(eval_tasks, lengths)
{
    int64_t v[8];
    int n = 0;
    us_error err = {0};
    cr_assert_eq(us_eval_lengths_parse("512,4k,16K", 64, 1 << 20, v, 8, &n, &err), US_OK, "%s", err.msg);
    cr_expect(n == 3 && v[0] == 512 && v[1] == 4096 && v[2] == 16384);
    cr_expect_eq(us_eval_lengths_parse("4x", 64, 1 << 20, v, 8, &n, &err), US_ERR_INVALID);
    cr_expect_eq(us_eval_lengths_parse("32", 64, 1 << 20, v, 8, &n, &err), US_ERR_INVALID);
    cr_expect_eq(us_eval_lengths_parse("4k,4096", 64, 1 << 20, v, 8, &n, &err), US_ERR_INVALID);
    cr_expect_eq(us_eval_lengths_parse("", 64, 1 << 20, v, 8, &n, &err), US_ERR_INVALID);
}

Test(eval_tasks, seeds_and_depths)
{
    cr_expect_eq(us_eval_sample_seed(1, "vt", 4096, 0), us_eval_sample_seed(1, "vt", 4096, 0));
    cr_expect_neq(us_eval_sample_seed(1, "vt", 4096, 0), us_eval_sample_seed(1, "vt", 4096, 1));
    cr_expect_neq(us_eval_sample_seed(1, "vt", 4096, 0), us_eval_sample_seed(1, "niah_single", 4096, 0));
    cr_expect_neq(us_eval_sample_seed(1, "vt", 4096, 0), us_eval_sample_seed(2, "vt", 4096, 0));
    cr_expect_eq(us_eval_depth(0, 5), 0.0);
    cr_expect_eq(us_eval_depth(2, 5), 0.5);
    cr_expect_eq(us_eval_depth(4, 5), 1.0);
    cr_expect_eq(us_eval_depth(0, 1), 0.5);
}

/* ---- haystack ------------------------------------------------------------------------------- */

Test(eval_haystack, noise_depths)
{
    us_eval_haystack *h = NULL;
    us_error err = {0};
    cr_assert_eq(us_eval_haystack_load("noise", &h, &err), US_OK);
    const us_eval_needle nd[3] = {{"NEEDLE-A.", 0.0}, {"NEEDLE-B.", 1.0}, {"NEEDLE-C.", 0.5}};
    us_strbuf b = {0};
    double pos[3];
    cr_assert_eq(us_eval_haystack_render(h, 0, 40, nd, 3, &b, pos, &err), US_OK);
    cr_expect(!strncmp(b.s, "NEEDLE-A.\n", 10), "depth 0 opens the context");
    cr_expect(!strcmp(b.s + b.len - 9, "NEEDLE-B."), "depth 1 closes it");
    cr_expect_eq(pos[0], 0.0);
    cr_expect(fabs(pos[2] - 0.5) < 0.03, "depth 0.5 at %.3f", pos[2]);
    cr_expect(strstr(b.s, "\nNEEDLE-C.\n") != NULL, "a needle is a line of its own");
    free(b.s);
    us_eval_haystack_free(&h);
}

/* A text of n sentences "Word<i> is sentence number <i>." */
static char *sentences(int n)
{
    us_strbuf b = {0};
    for (int i = 0; i < n; i++)
        us_strbuf_printf(&b, "Word%d is  sentence\nnumber %d. ", i, i);
    return us_strbuf_take(&b);
}

Test(eval_haystack, text_needles_go_between_sentences)
{
    char *text = sentences(100);
    us_eval_haystack *h = NULL;
    us_error err = {0};
    cr_assert_eq(us_eval_haystack_from_text(text, strlen(text), "synthetic", &h, &err), US_OK, "%s", err.msg);
    cr_expect_eq(us_eval_haystack_words(h), 500);
    const us_eval_needle nd = {"THE NEEDLE.", 0.3};
    us_strbuf b = {0};
    double pos;
    cr_assert_eq(us_eval_haystack_render(h, 0, 500, &nd, 1, &b, &pos, &err), US_OK);
    const char *at = strstr(b.s, "THE NEEDLE.");
    cr_assert_not_null(at);
    cr_expect(at > b.s && !strncmp(at - 2, ". ", 2), "the needle follows a sentence's end: '%.20s'", at - 10);
    cr_expect(!strncmp(at, "THE NEEDLE. Word30 ", 19), "and comes before sentence 30 of 100: '%.30s'", at);
    cr_expect(fabs(pos - 0.3) < 0.02, "depth %.3f", pos);
    cr_expect(strstr(b.s, "  ") == NULL && strchr(b.s, '\n') == NULL, "whitespace runs collapse to one space");
    /* wrapping around from the last word */
    us_strbuf_clear(&b);
    cr_assert_eq(us_eval_haystack_render(h, 495, 10, NULL, 0, &b, NULL, &err), US_OK);
    cr_expect_str_eq(b.s, "Word99 is sentence number 99. Word0 is sentence number 0.");
    free(b.s), free(text);
    us_eval_haystack_free(&h);
}

/* ---- builders ------------------------------------------------------------------------------- */

static us_tokenizer *g_tok;

static void tok_setup(void)
{
    char p[1024];
    asset(p, sizeof p, "tokenizer/tiny.model");
    us_error err;
    cr_assert_eq(us_tokenizer_load(p, &g_tok, &err), US_OK, "%s", err.msg);
}

static void tok_teardown(void)
{
    us_tokenizer_free(&g_tok);
}

static us_status count_tiny(void *user, const char *question, const char *prefix, int64_t *n, us_error *err)
{
    size_t a = 0, b = 0;
    us_status s = us_tokenizer_encode(user, question, strlen(question), NULL, 0, &a, err);
    if (!s) s = us_tokenizer_encode(user, prefix, strlen(prefix), NULL, 0, &b, err);
    *n = (int64_t)(a + b);
    return s;
}

/* Builds task at the budget and checks the common promises; returns the sample. */
static us_eval_sample build(const char *task, const us_eval_haystack *h, int64_t budget, uint64_t seed, double depth)
{
    const us_eval_task *t = us_eval_task_find(task);
    cr_assert_not_null(t);
    us_eval_counter c = {g_tok, count_tiny};
    us_eval_build_params p = {budget, seed, depth};
    us_eval_sample s;
    us_error err = {0};
    cr_assert_eq(t->build_text(t, h, &c, &p, &s, &err), US_OK, "%s: %s", task, err.msg);
    int64_t counted = 0;
    cr_assert_eq(count_tiny(g_tok, s.question, s.answer_prefix, &counted, &err), US_OK);
    cr_expect_eq(counted, s.tokens, "%s: the sample reports the tokens it has", task);
    cr_expect_leq(s.tokens, budget, "%s: %lld tokens over the budget %lld", task, (long long)s.tokens,
                  (long long)budget);
    /* one haystack unit short at most: a noise paragraph is ~40 tiny-tokenizer tokens, a word a few */
    const int64_t slack = us_eval_haystack_is_noise(h) ? 64 : 16;
    cr_expect_geq(s.tokens, budget - slack, "%s: %lld tokens, budget %lld", task, (long long)s.tokens,
                  (long long)budget);
    cr_expect_gt(s.n_expected, 0);
    for (int i = 0; i < s.n_expected; i++)
        cr_expect(strstr(s.question, s.expected[i]) != NULL, "%s: expected '%s' is in the prompt", task, s.expected[i]);
    return s;
}

TestSuite(eval_build, .init = tok_setup, .fini = tok_teardown);

Test(eval_build, niah_single_depth_and_length)
{
    us_eval_haystack *h = NULL;
    us_error err = {0};
    cr_assert_eq(us_eval_haystack_load("noise", &h, &err), US_OK);
    const double depths[] = {0.0, 0.25, 0.5, 1.0};
    for (int i = 0; i < 4; i++) {
        us_eval_sample s = build("niah_single", h, 1500, 7 + (uint64_t)i, depths[i]);
        cr_expect_eq(s.n_expected, 1);
        cr_expect_eq(s.n_needles, 1);
        cr_expect(fabs(s.needle_pos[0] - depths[i]) < 0.05, "needle at %.3f for depth %.2f", s.needle_pos[0],
                  depths[i]);
        cr_expect(strlen(s.expected[0]) == 7 && s.expected[0][0] != '0', "7-digit value '%s'", s.expected[0]);
        char needle[128];
        snprintf(needle, sizeof needle, "is: %s.", s.expected[0]);
        cr_expect(strstr(s.question, needle) != NULL, "the needle sentence states the value");
        cr_expect(!strncmp(s.question, "A special magic number is hidden", 32), "singular RULER wording");
        cr_expect(strstr(s.answer_prefix, "mentioned in the provided text is") != NULL, "%s", s.answer_prefix);
        us_eval_sample_free(&s);
    }
    us_eval_haystack_free(&h);
}

Test(eval_build, deterministic_from_the_seed)
{
    char *text = sentences(3000);
    us_eval_haystack *h = NULL;
    us_error err = {0};
    cr_assert_eq(us_eval_haystack_from_text(text, strlen(text), "synthetic", &h, &err), US_OK);
    us_eval_sample a = build("niah_multikey", h, 900, 99, 0.4), b = build("niah_multikey", h, 900, 99, 0.4),
                   c = build("niah_multikey", h, 900, 100, 0.4);
    cr_expect_str_eq(a.question, b.question);
    cr_expect_str_neq(a.question, c.question);
    cr_expect(fabs(a.needle_pos[0] - 0.4) < 0.05, "queried needle at %.3f", a.needle_pos[0]);
    cr_expect_eq(a.n_needles, 4);
    int needles = 0;
    for (const char *p = a.question; (p = strstr(p, "One of the special magic numbers for ")); p++)
        needles++;
    cr_expect_eq(needles, 4, "1 queried + 3 distractor needles");
    us_eval_sample_free(&a), us_eval_sample_free(&b), us_eval_sample_free(&c);
    us_eval_haystack_free(&h);
    free(text);
}

Test(eval_build, multivalue_and_vt)
{
    us_eval_haystack *h = NULL;
    us_error err = {0};
    cr_assert_eq(us_eval_haystack_load("noise", &h, &err), US_OK);
    us_eval_sample mv = build("niah_multivalue", h, 2000, 5, 0.8);
    cr_expect_eq(mv.n_expected, 4);
    cr_expect(!strncmp(mv.question, "Some special magic numbers are hidden", 37));
    cr_expect(strstr(mv.answer_prefix, "are") != NULL);
    us_eval_sample vt = build("vt", h, 2000, 5, 0.0);
    cr_expect_eq(vt.n_expected, 5);
    /* the chain reads in order: VAR v1 = VAR v0 comes after VAR v0 = value */
    const char *prev = vt.question;
    for (int i = 0; i < 5; i++) {
        char stmt[64];
        if (i == 0)
            snprintf(stmt, sizeof stmt, "VAR %s = ", vt.expected[0]);
        else
            snprintf(stmt, sizeof stmt, "VAR %s = VAR %s", vt.expected[i], vt.expected[i - 1]);
        const char *at = strstr(vt.question, stmt);
        cr_expect(at != NULL && at >= prev, "statement %d '%s' in order", i, stmt);
        if (at) prev = at;
        cr_expect(strlen(vt.expected[i]) == 5);
    }
    cr_expect(strstr(vt.answer_prefix, "5 variables are assigned the value") != NULL, "%s", vt.answer_prefix);
    us_eval_sample_free(&mv), us_eval_sample_free(&vt);
    /* a budget below the template alone is a usage error, not a crash */
    const us_eval_task *t = us_eval_task_find("niah_single");
    us_eval_counter c = {g_tok, count_tiny};
    us_eval_build_params p = {20, 1, 0.5};
    us_eval_sample s;
    cr_expect_eq(t->build_text(t, h, &c, &p, &s, &err), US_ERR_INVALID);
    cr_expect(strstr(err.msg, "without any haystack") != NULL, "%s", err.msg);
    us_eval_haystack_free(&h);
}

/* ---- video needle ---------------------------------------------------------------------------- */

static bool is_ink(const uint8_t *px)
{
    return px[0] == US_EVAL_NEEDLE_INK && px[1] == US_EVAL_NEEDLE_INK && px[2] == US_EVAL_NEEDLE_INK;
}

static bool is_background(const uint8_t *px)
{
    return px[0] == US_EVAL_NEEDLE_BG_R && px[1] == US_EVAL_NEEDLE_BG_G && px[2] == US_EVAL_NEEDLE_BG_B;
}

Test(eval_needle, frame_draws_the_digits_dark_on_bright)
{
    enum { W = 96, H = 64 }; /* the size of tests/cli_eval_video.sh's clip */
    static uint8_t a[H][W][3], b[H][W][3];
    int box[4], box_b[4];
    us_error err = {0};
    cr_assert_eq(us_eval_needle_frame("17", W, H, &a[0][0][0], box, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_eval_needle_frame("83", W, H, &b[0][0][0], box_b, &err), US_OK, "%s", err.msg);
    cr_expect(memcmp(a, b, sizeof a) != 0, "two numbers, two images");
    cr_expect(memcmp(box, box_b, sizeof box) == 0, "the layout depends on the digit count only");
    cr_assert(0 <= box[0] && box[0] < box[2] && box[2] <= W && 0 <= box[1] && box[1] < box[3] && box[3] <= H);
    cr_expect(box[2] - box[0] >= W / 2, "large: %d of %d px wide", box[2] - box[0], W);
    int ink = 0, inside = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const bool in = x >= box[0] && x < box[2] && y >= box[1] && y < box[3];
            cr_assert(is_ink(a[y][x]) || is_background(a[y][x]), "only two colours, at (%d, %d)", x, y);
            if (!in) cr_assert(is_background(a[y][x]), "ink outside the text box at (%d, %d)", x, y);
            inside += in, ink += in && is_ink(a[y][x]);
        }
    cr_expect(ink > inside / 10 && ink < inside / 2, "%d of %d text-box pixels dark", ink, inside);
    /* the glyphs themselves: "1" starts with an empty top-left font pixel and ends in a full bottom bar;
     * "8" has round corners and a waist (its middle row is empty at the left edge) */
    const int s = (box[3] - box[1]) / 7; /* font pixel size */
    cr_expect(is_background(a[box[1]][box[0]]), "1: top-left corner");
    cr_expect(is_ink(a[box[1]][box[0] + 2 * s]), "1: the stem's top");
    cr_expect(is_ink(a[box[3] - 1][box[0] + s]) && is_ink(a[box[3] - 1][box[0] + 3 * s]), "1: the foot");
    cr_expect(is_background(b[box[1]][box[0]]) && is_ink(b[box[1] + s][box[0]]) && is_ink(b[box[1]][box[0] + s]),
              "8: round top");
    cr_expect(is_background(b[box[1] + 3 * s][box[0]]) && is_ink(b[box[1] + 3 * s][box[0] + s]), "8: the waist");

    cr_expect_eq(us_eval_needle_frame("417", 12, 5, &a[0][0][0], NULL, &err), US_ERR_INVALID);
    cr_expect(strstr(err.msg, "12x5") != NULL, "%s", err.msg);
    cr_expect_eq(us_eval_needle_frame("4a", W, H, &a[0][0][0], NULL, &err), US_ERR_INVALID);
}

Test(eval_needle, lands_where_the_depth_asks)
{
    cr_expect_eq(us_eval_needle_index(0.0, 16), 0);
    cr_expect_eq(us_eval_needle_index(1.0, 16), 15);
    cr_expect_eq(us_eval_needle_index(0.5, 5), 2);
    cr_expect_eq(us_eval_needle_index(0.49, 16), 7); /* nearest of 7.35 */
    cr_expect_eq(us_eval_needle_index(0.7, 1), 0);

    /* the builder: depths spread over the samples put the needle on every frame in turn */
    const us_eval_task *t = us_eval_task_find("video_needle");
    cr_assert(t && t->modality == US_EVAL_VIDEO && t->build_video && !t->build_text);
    us_error err = {0};
    char first[8] = "";
    bool differs = false;
    for (int i = 0; i < 4; i++) {
        us_eval_video_params p = {us_eval_sample_seed(42, t->name, 4, i), us_eval_depth(i, 4), 4};
        us_eval_sample s;
        cr_assert_eq(t->build_video(t, &p, &s, &err), US_OK, "%s", err.msg);
        cr_expect_eq(s.needle_frame, i, "depth %g: frame %d", p.depth, s.needle_frame);
        cr_expect(fabs(s.needle_pos[0] - i / 3.0) < 1e-12 && s.depth == p.depth && s.units == 4);
        cr_assert_eq(s.n_expected, 1);
        const size_t len = strlen(s.expected[0]);
        cr_expect(len >= 2 && len <= 3 && strspn(s.expected[0], "0123456789") == len && s.expected[0][0] != '0', "'%s'",
                  s.expected[0]);
        cr_expect(strstr(s.question, "number") && s.answer_prefix && s.answer_prefix[0]);
        if (i == 0) snprintf(first, sizeof first, "%s", s.expected[0]);
        differs |= strcmp(first, s.expected[0]) != 0;
        us_eval_sample again;
        cr_assert_eq(t->build_video(t, &p, &again, &err), US_OK);
        cr_expect_str_eq(again.expected[0], s.expected[0], "one seed, one number");
        us_eval_sample_free(&s), us_eval_sample_free(&again);
    }
    cr_expect(differs, "four seeds gave one number");

    /* the rows: the needle's block replaces exactly the frame at its index */
    enum { F = 4, B = 6 };
    float hay[F * B], needle[B], out[F * B];
    for (int i = 0; i < F * B; i++)
        hay[i] = (float)(i / B);
    for (int i = 0; i < B; i++)
        needle[i] = -1.0f;
    us_eval_needle_splice(hay, F, needle, B, 2, out);
    for (int i = 0; i < F * B; i++)
        cr_expect_eq(out[i], i / B == 2 ? -1.0f : (float)(i / B), "row float %d", i);
}

/* ---- runner: teacher-forced KL on the tiny model ------------------------------------------- */

static us_gemma3_weights *g_w;
static us_llm g_llm;

/* The tiny model with the tiny tokenizer as its us_llm: generation takes the stop ids and the
 * number of pickable ids (420 of the model's 512 rows) from it. */
static void model_setup(void)
{
    char p[1024];
    asset(p, sizeof p, "gemma3-tiny");
    us_error err;
    cr_assert_eq(us_gemma3_weights_load(p, &g_w, &err), US_OK, "%s", err.msg);
    tok_setup();
    g_llm = (us_llm){.w = g_w, .tok = g_tok, .eos_id = g_w->cfg.eos_id, .eot_id = -1};
}

static void model_teardown(void)
{
    us_gemma3_weights_free(&g_w);
    tok_teardown();
}

TestSuite(eval_runner, .init = model_setup, .fini = model_teardown);

static us_gemma3_model *model_for(int64_t n, const us_eval_run_params *p)
{
    us_gemma3_opts o = us_gemma3_opts_default();
    o.threads = 2;
    us_eval_size_model(&o, n, p);
    cr_assert_eq(o.max_ctx, n + p->max_tokens);
    us_gemma3_model *m = NULL;
    us_error err;
    cr_assert_eq(us_gemma3_model_create(g_w, &o, &m, &err), US_OK, "%s", err.msg);
    return m;
}

Test(eval_runner, dense_against_itself)
{
    int32_t prompt[24];
    for (int i = 0; i < 24; i++)
        prompt[i] = 3 + (i * 37) % 500;
    us_eval_run_params p = {.max_tokens = 10};
    us_gemma3_model *m = model_for(24, &p);
    us_eval_reference ref;
    us_eval_answer a, b;
    us_error err = {0};
    cr_assert_eq(us_eval_run(m, &g_llm, prompt, 24, NULL, 0, &p, NULL, &ref, &a, &err), US_OK, "%s", err.msg);
    cr_expect_eq(ref.n_seq, a.n + (strcmp(a.stop, "max_tokens") ? 1 : 0));
    cr_expect(a.agreement == 1.0 && a.exact && a.kl == 0.0);
    cr_assert_eq(us_eval_run(m, &g_llm, prompt, 24, NULL, 0, &p, &ref, NULL, &b, &err), US_OK, "%s", err.msg);
    cr_expect_eq(b.kl, 0.0, "the same model on the same prompt: KL %g", b.kl);
    cr_expect(b.agreement == 1.0 && b.exact && b.forced == 0);
    cr_expect_eq(b.n, a.n);
    cr_expect_eq(memcmp(a.ids, b.ids, (size_t)a.n * sizeof *a.ids), 0);
    us_eval_answer_free(&a), us_eval_answer_free(&b);
    us_eval_reference_free(&ref);
    us_gemma3_model_free(&m);
}

/* A reference that departs from the model's greedy answer after its first token: the runner must
 * take position 0 and 1 from generation and teacher-force the rest after cutting the cache back to
 * prompt + first token. The reference logits come from feeding the same tokens by hand, so every
 * position's KL is exactly 0 unless a position is misaligned. */
Test(eval_runner, teacher_forcing_after_a_divergence)
{
    const int64_t n = 20;
    int32_t prompt[20];
    for (int i = 0; i < n; i++)
        prompt[i] = 5 + (i * 53) % 480;
    us_eval_run_params p = {.max_tokens = 8};
    us_gemma3_model *m = model_for(n, &p);
    us_error err = {0};
    us_eval_reference greedy;
    us_eval_answer g;
    cr_assert_eq(us_eval_run(m, &g_llm, prompt, n, NULL, 0, &p, NULL, &greedy, &g, &err), US_OK, "%s", err.msg);
    cr_assert_geq(g.n, 2, "the tiny model should not stop at once");

    const int V = g_w->cfg.vocab_size, len = 6;
    us_eval_reference ref = {malloc(len * sizeof(int32_t)), len, malloc((size_t)len * V * sizeof(float)), V};
    ref.seq[0] = g.ids[0];
    for (int k = 1; k < len; k++) {
        ref.seq[k] = 7 + 11 * k; /* not the greedy continuation */
        if (ref.seq[k] == g.ids[k < g.n ? k : 0] || ref.seq[k] == g_llm.eos_id) ref.seq[k]++;
    }
    us_gemma3_reset(m);
    cr_assert_eq(us_gemma3_forward(m, prompt, n, 1, ref.logits, &err), US_OK, "%s", err.msg);
    for (int k = 1; k < len; k++)
        cr_assert_eq(us_gemma3_forward(m, &ref.seq[k - 1], 1, 1, ref.logits + (size_t)k * V, &err), US_OK);

    us_eval_answer a;
    cr_assert_eq(us_eval_run(m, &g_llm, prompt, n, NULL, 0, &p, &ref, NULL, &a, &err), US_OK, "%s", err.msg);
    cr_expect_eq(a.kl, 0.0, "misaligned teacher forcing: KL %g", a.kl);
    cr_expect_eq(a.forced, len - 2, "positions 0 and 1 from generation, %d forced", a.forced);
    cr_expect_eq(a.kl_positions, len);
    cr_expect(fabs(a.agreement - 1.0 / len) < 1e-12 && !a.exact, "agreement %g", a.agreement);

    /* a wrong reference row shows up as a positive KL */
    ref.logits[(size_t)3 * V + 1] += 5.0f;
    us_eval_answer b;
    cr_assert_eq(us_eval_run(m, &g_llm, prompt, n, NULL, 0, &p, &ref, NULL, &b, &err), US_OK);
    cr_expect_gt(b.kl, 0.0);

    us_eval_answer_free(&a), us_eval_answer_free(&b), us_eval_answer_free(&g);
    us_eval_reference_free(&ref), us_eval_reference_free(&greedy);
    us_gemma3_model_free(&m);
}

/* ---- aggregate, reports, plot --------------------------------------------------------------- */

static us_eval_record rec(const char *task, us_method m, int index, double score, double kl, double density)
{
    us_eval_record r;
    memset(&r, 0, sizeof r);
    r.task = task, r.length = 512, r.index = index, r.method = m, r.score = score;
    r.a.kl = kl, r.a.density = density, r.a.agreement = score, r.a.exact = score == 1.0, r.a.prefill_ms = 1000.0;
    return r;
}

Test(eval_report, aggregate_relative_and_all_rows)
{
    us_eval_record r[] = {
        rec("niah_single", US_METHOD_DENSE, 0, 1.0, 0.0, 1.0),
        rec("niah_single", US_METHOD_UNISPARSE, 0, 0.5, 0.2, 0.4),
        rec("niah_single", US_METHOD_DENSE, 1, 0.5, 0.0, 1.0),
        rec("niah_single", US_METHOD_UNISPARSE, 1, 0.5, 0.4, 0.2),
        rec("vt", US_METHOD_DENSE, 0, 0.0, 0.0, 1.0),
        rec("vt", US_METHOD_UNISPARSE, 0, 0.0, 0.1, 0.3),
    };
    us_eval_row *rows = NULL;
    int n = 0;
    us_error err = {0};
    cr_assert_eq(us_eval_aggregate(r, 6, &rows, &n, &err), US_OK);
    cr_assert_eq(n, 6, "2 tasks + all, 2 methods");
    cr_expect_str_eq(rows[0].task, "niah_single");
    cr_expect(rows[0].method == US_METHOD_DENSE && rows[0].n == 2 && rows[0].accuracy == 0.75 &&
              rows[0].relative == 1.0);
    cr_expect(rows[1].accuracy == 0.5 && fabs(rows[1].relative - 0.5 / 0.75) < 1e-12);
    cr_expect(fabs(rows[1].kl - 0.3) < 1e-12 && fabs(rows[1].density - 0.3) < 1e-12 && rows[1].exact == 0.0);
    cr_expect_str_eq(rows[2].task, "vt");
    cr_expect(rows[2].relative == 1.0, "dense is 1 even when it scored 0");
    cr_expect(isnan(rows[3].relative), "undefined against a dense score of 0");
    cr_expect_str_eq(rows[4].task, "all");
    cr_expect(rows[4].n == 3 && fabs(rows[4].accuracy - 0.5) < 1e-12);
    cr_expect(fabs(rows[5].relative - (1.0 / 3.0) / 0.5) < 1e-12);

    us_eval_meta meta = {"model.gguf",      "noise", 42, 2,    0,  2,    "niah_single,vt",
                         "dense,unisparse", "512",   0,  true, 0.95f, 64, NULL, 0};
    char *json = us_eval_results_json(&meta, r, 6, rows, n), *md = us_eval_results_md(&meta, rows, n);
    cr_assert(json && md);
    cr_expect(strstr(json, "\"relative_accuracy\":\tnull") || strstr(json, "\"relative_accuracy\": null"),
              "NaN is null in JSON");
    cr_expect(strstr(json, "\"samples\"") && strstr(json, "\"aggregate\"") && strstr(json, "\"definitions\""));
    cr_expect(strstr(md, "| task | length | method | accuracy | rel. to dense |") != NULL);
    cr_expect(strstr(md, "UniSparse tau 0.95;") != NULL, "the run's tau is in the header");
    cr_expect(strstr(json, "\"unisparse_tau\"") != NULL);
    cr_expect(strstr(md, "selection block 64)") != NULL, "the run's selection block is in the header");
    cr_expect(strstr(json, "\"block\"") != NULL);
    cr_expect(strstr(md, "| vt | 512 | unisparse | 0.000 | n/a |") != NULL, "%s", md);
    unsigned char *png = NULL;
    size_t len = 0;
    us_status s = us_eval_plot_png(rows, n, &png, &len, &err);
    if (s == US_ERR_UNSUPPORTED) {
        cr_log_warn("plot: %s", err.msg);
    } else {
        cr_assert_eq(s, US_OK, "%s", err.msg);
        cr_expect(len > 1000 && !memcmp(png, "\x89PNG\r\n\x1a\n", 8), "a PNG file");
    }
    free(png), free(json), free(md), free(rows);
}

Test(eval_canvas, primitives_stay_inside)
{
    us_canvas c;
    us_error err;
    cr_assert_eq(us_canvas_init(&c, 40, 30, US_WHITE, &err), US_OK);
    us_canvas_line(&c, -10, -10, 100, 100, 3.0f, US_BLACK); /* clipped, no crash */
    us_canvas_disc(&c, 20, 15, 4, (us_rgb){255, 0, 0});
    const unsigned char *mid = c.px + (15 * 40 + 20) * 3;
    cr_expect(mid[0] == 255 && mid[1] == 0 && mid[2] == 0);
    cr_expect(c.px[0] == 0, "the line passes the corner");
    us_canvas_rect(&c, 30, 0, 99, 5, (us_rgb){0, 0, 255});
    cr_expect(c.px[(2 * 40 + 39) * 3 + 2] == 255);
    us_canvas_free(&c);
}
