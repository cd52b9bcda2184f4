/* eval_tasks.h: the accuracy tasks of `unisparse eval` and their prompt builders (RULER's synthetic
 * tasks, after RULER's templates and scoring).
 *
 *   const us_eval_task *tasks[8];  int nt;
 *   if (us_eval_tasks_parse("niah_single,vt", tasks, 8, &nt, &err)) puts(err.msg); // names the known ones
 *   us_eval_build_params p = {.max_prompt_tokens = 4096 - tasks[0]->answer_tokens,
 *                             .seed = us_eval_sample_seed(42, tasks[0]->name, 4096, i),
 *                             .depth = us_eval_depth(i, n)};
 *   us_eval_sample s;
 *   tasks[0]->build_text(tasks[0], haystack, &counter, &p, &s, &err);
 *   ... prompt = chat(s.question) + s.answer_prefix; score the answer against s.expected ...
 *   us_eval_sample_free(&s);
 *
 * Text tasks (all 4 hide their facts in a haystack, see eval_haystack.h):
 *   niah_single      one needle "One of the special magic numbers for {key} is: {7 digits}."
 *   niah_multikey    the same plus 3 needles with other keys (distractors)
 *   niah_multivalue  4 needles with 4 values for one key; all 4 are expected
 *   vt               variable tracking: "VAR ABCDE = 12345", "VAR FGHIJ = VAR ABCDE", ... (5 variables);
 *                    expected: every variable that holds the value
 * The queried needle (niah) goes at the requested depth, the others at random depths; the chain of
 * vt at sorted random depths (its first statement's depth is reported). Everything random comes
 * from the sample's seed, so one seed gives the same prompts for every method and every run.
 *
 * Length: the builder puts in the most haystack for which the counted prompt (chat template,
 * question and answer prefix, as the model sees it) has at most max_prompt_tokens tokens; it lands
 * within one haystack unit (a word, or a noise paragraph of about 25 tokens) of the bound.
 *
 * Video task (modality US_EVAL_VIDEO, builder build_video):
 *   video_needle     F frames sampled uniformly from a haystack video, one of them replaced by a frame
 *                    showing a 2-3 digit number (eval_needle.h); expected: the number
 * The builder fixes the number, the frame index the needle replaces (from the depth) and the text;
 * the caller (`unisparse eval`) samples and encodes the frames, draws the needle at the video's frame
 * size and builds the prompt as `unisparse vqa` does (each frame after its timestamp; the needle takes
 * the timestamp of the frame it replaces). --lengths do not apply: the length of a video sample is its
 * realised prompt tokens.
 *
 * Modalities: every task has one, and the builder of its modality. The task list parser, the runner
 * (eval_runner.h: prompt ids and image rows in, answer and fidelity out) and the reports are shared. */
#ifndef UNISPARSE_EVAL_TASKS_H
#define UNISPARSE_EVAL_TASKS_H

#include "eval_haystack.h"

#define US_EVAL_MAX_EXPECTED 8
#define US_EVAL_MAX_NEEDLES  8

typedef enum { US_EVAL_TEXT = 0, US_EVAL_VIDEO } us_eval_modality;

typedef struct {
    char *question;      /* the user turn: instructions, context, question */
    char *answer_prefix; /* starts the model's turn; the generated answer continues it */
    char *expected[US_EVAL_MAX_EXPECTED];
    int n_expected;
    double depth;  /* requested depth of the queried needle (vt: of the chain's first statement) */
    int n_needles; /* needle 0 is the queried one (vt: the chain's first statement) */
    double needle_pos[US_EVAL_MAX_NEEDLES]; /* realised depths, see us_eval_haystack_render */
    int64_t units;                          /* haystack units in the context (video: frames) */
    int64_t tokens;                         /* prompt tokens, as counted (video: 0, the caller counts) */
    int needle_frame;                       /* video: the index of the sampled frame the needle replaces */
} us_eval_sample;                           /* all strings owned: us_eval_sample_free */

void us_eval_sample_free(us_eval_sample *s);

/* Counts the tokens of the prompt the model will see for this question and answer prefix. */
typedef struct {
    void *user;
    us_status (*count)(void *user, const char *question, const char *answer_prefix, int64_t *n, us_error *err);
} us_eval_counter;

typedef struct {
    int64_t max_prompt_tokens;
    uint64_t seed;
    double depth; /* [0, 1] */
} us_eval_build_params;

typedef struct {
    uint64_t seed;
    double depth; /* [0, 1] */
    int n_frames; /* frames sampled from the video (>= 1), the needle's included */
} us_eval_video_params;

typedef struct us_eval_task us_eval_task;
struct us_eval_task {
    const char *name;
    const char *summary;
    us_eval_modality modality;
    int answer_tokens; /* generation budget for the answer: enough for every expected value */
    /* text tasks; NULL for the others */
    us_status (*build_text)(const us_eval_task *t, const us_eval_haystack *h, const us_eval_counter *c,
                            const us_eval_build_params *p, us_eval_sample *out, us_error *err);
    int needles_k, needles_v; /* niah: keys (1 queried) and values per key; vt: chains and hops */
    /* video tasks; NULL for the others. Fills question, answer prefix, expected, depth, needle_frame,
     * needle_pos[0] (needle_frame / (n_frames - 1)) and units (n_frames). */
    us_status (*build_video)(const us_eval_task *t, const us_eval_video_params *p, us_eval_sample *out, us_error *err);
};

int us_eval_task_count(void);
const us_eval_task *us_eval_task_at(int i);
const us_eval_task *us_eval_task_find(const char *name);

/* A comma-separated list of task names into out (at most cap, no repeats). An unknown name is an
 * error that lists the known ones. */
us_status us_eval_tasks_parse(const char *list, const us_eval_task **out, int cap, int *n, us_error *err);

/* A comma-separated list of lengths in tokens: "512", "4k" / "4K" (x1024). Each must lie in
 * [min, max]. */
us_status us_eval_lengths_parse(const char *list, int64_t min, int64_t max, int64_t *out, int cap, int *n,
                                us_error *err);

/* The seed of one sample, mixed from the run's seed, the task, the length and the index, so that a
 * sample does not change when other tasks, lengths or sample counts are asked for. */
uint64_t us_eval_sample_seed(uint64_t seed, const char *task, int64_t length, int index);
/* Depth of sample i of n: evenly spread over [0, 1], ends included (0.5 for a single sample). */
double us_eval_depth(int i, int n);

#endif
