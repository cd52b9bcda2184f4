/* eval_runner.c: see eval_runner.h. */
#include "eval_runner.h"

#include "eval_metrics.h"

#include <stdlib.h>
#include <string.h>

void us_eval_reference_free(us_eval_reference *r)
{
    if (!r) return;
    free(r->seq), free(r->logits);
    memset(r, 0, sizeof *r);
}

void us_eval_answer_free(us_eval_answer *a)
{
    if (!a) return;
    free(a->ids);
    memset(a, 0, sizeof *a);
}

void us_eval_size_model(us_gemma3_opts *o, int64_t n, const us_eval_run_params *p)
{
    o->max_ctx = n + p->max_tokens;
    const int64_t chunk = p->prefill_chunk > 0 && p->prefill_chunk < n ? p->prefill_chunk : n;
    o->max_batch = (int)(chunk > p->image_tokens ? chunk : p->image_tokens);
}

/* State shared with the generation hooks. */
typedef struct {
    const us_eval_run_params *p;
    const us_eval_reference *ref; /* compare ... */
    us_eval_reference *rec;       /* ... or record */
    int kl_vocab;
    double kl_sum;
    int covered; /* reference positions 0 .. covered-1 have their KL */
    bool match;  /* the tokens generated so far equal the reference's */
} run_state;

static void hook_prefill(void *user, int64_t done, int64_t total)
{
    run_state *s = user;
    if (s->p->on_prefill) s->p->on_prefill(s->p->user, done, total);
}

static void hook_logits(void *user, int step, const float *logits)
{
    run_state *s = user;
    if (s->rec) {
        memcpy(s->rec->logits + (size_t)step * (size_t)s->rec->vocab, logits, (size_t)s->rec->vocab * sizeof *logits);
        s->rec->n_seq = step + 1;
    } else if (s->match && step < s->ref->n_seq) {
        s->kl_sum += us_eval_kl_logits(s->ref->logits + (size_t)step * (size_t)s->ref->vocab, logits, s->kl_vocab);
        s->covered = step + 1;
    }
}

static void hook_token(void *user, const int32_t *gen, int n)
{
    run_state *s = user;
    if (s->ref && s->match) s->match = n - 1 < s->ref->n_seq && gen[n - 1] == s->ref->seq[n - 1];
}

us_status us_eval_run(us_gemma3_model *m, const us_llm *llm, const int32_t *prompt, int64_t n, const float *image_rows,
                      int64_t n_image_rows, const us_eval_run_params *p, const us_eval_reference *ref,
                      us_eval_reference *rec, us_eval_answer *out, us_error *err)
{
    memset(out, 0, sizeof *out);
    if (!p || p->max_tokens < 1 || !!ref == !!rec)
        return us_error_set(err, US_ERR_INVALID, "eval run: max_tokens >= 1 and exactly one of ref and rec");
    const int vocab = llm->w->cfg.vocab_size;
    if (ref && (ref->vocab != vocab || ref->n_seq < 1 || ref->n_seq > p->max_tokens))
        return us_error_set(err, US_ERR_INVALID,
                            "eval run: the reference has %d positions of %d logits; the model has %d logits and "
                            "max_tokens %d",
                            ref->n_seq, ref->vocab, vocab, p->max_tokens);
    if (rec) {
        memset(rec, 0, sizeof *rec);
        rec->vocab = vocab;
        rec->logits = malloc((size_t)(p->max_tokens + 1) * (size_t)vocab * sizeof *rec->logits);
        rec->seq = malloc((size_t)(p->max_tokens + 1) * sizeof *rec->seq);
        if (!rec->logits || !rec->seq) {
            us_eval_reference_free(rec);
            return us_error_set(err, US_ERR_NOMEM, "no memory for %d rows of reference logits", p->max_tokens + 1);
        }
    }
    float *logits = NULL;
    us_gen_result res = {0};
    us_status s = US_OK;
    us_gemma3_reset(m);
    us_gen_params gp = us_gen_params_default();
    gp.max_tokens = p->max_tokens;
    gp.prefill_chunk = p->prefill_chunk > 0 ? p->prefill_chunk : (int)(n > 0 ? n : 1);
    /* the KL compares the rows generation may pick: ids the tokenizer can write, below 262144 */
    int kl_vocab = vocab < US_EVAL_KL_VOCAB ? vocab : US_EVAL_KL_VOCAB;
    const int32_t tv = llm->tok ? us_tokenizer_vocab_size(llm->tok) : kl_vocab;
    if (tv > 0 && tv < kl_vocab) kl_vocab = tv;
    run_state st = {p, ref, rec, kl_vocab, 0.0, 0, true};
    us_gen_hooks hooks = {&st, hook_prefill, hook_logits, hook_token};
    if ((s = us_generate_embeds(m, llm, prompt, n, image_rows, n_image_rows, &gp, &hooks, &res, err))) goto fail;

    /* this answer as a sequence: the tokens, then the stop token when it stopped */
    const bool stopped = !strcmp(res.stop, "eos") || !strcmp(res.stop, "end_of_turn");
    int32_t *seq = malloc((size_t)(res.n + 1) * sizeof *seq);
    if (!seq) {
        s = us_error_set(err, US_ERR_NOMEM, "no memory");
        goto fail;
    }
    memcpy(seq, res.ids, (size_t)res.n * sizeof *seq);
    if (stopped) seq[res.n] = !strcmp(res.stop, "eos") ? llm->eos_id : llm->eot_id;
    const int n_seq = res.n + (stopped ? 1 : 0);

    if (rec) {
        memcpy(rec->seq, seq, (size_t)n_seq * sizeof *seq);
        rec->n_seq = n_seq; /* equals the on_logits calls */
        out->agreement = 1.0, out->exact = true, out->kl = 0.0, out->kl_positions = n_seq;
    } else {
        const int c = us_eval_common_prefix(ref->seq, ref->n_seq, seq, n_seq);
        out->agreement = us_eval_agreement(ref->seq, ref->n_seq, seq, n_seq);
        out->exact = c == ref->n_seq && c == n_seq;
        /* teacher forcing from the first position generation did not cover: the cache must hold the
         * prompt and the reference's first covered-1 tokens (which generation fed, being equal) */
        if (st.covered < ref->n_seq) {
            logits = malloc((size_t)vocab * sizeof *logits);
            if (!logits) s = us_error_set(err, US_ERR_NOMEM, "no memory");
            if (!s) s = us_gemma3_truncate(m, n + st.covered - 1, err);
            for (int k = st.covered; !s && k < ref->n_seq; k++) {
                s = us_gemma3_forward(m, &ref->seq[k - 1], 1, 1, logits, err);
                if (!s) st.kl_sum += us_eval_kl_logits(ref->logits + (size_t)k * (size_t)vocab, logits, st.kl_vocab);
                out->forced++;
            }
        }
        out->kl = st.kl_sum / (double)ref->n_seq;
        out->kl_positions = ref->n_seq;
    }
    free(seq);
    if (s) goto fail;
    free(logits);
    out->ids = res.ids;
    out->n = res.n;
    out->stop = res.stop;
    out->prompt_tokens = n;
    out->prefill_ms = res.prefill_ms;
    out->decode_ms = res.decode_ms;
    out->attn_ms = res.attn.attn_ms;
    out->select_ms = res.attn.select_ms;
    out->density = res.attn.visible_pairs > 0 ? res.attn.kept_pairs / res.attn.visible_pairs : 1.0;
    return US_OK;
fail:
    free(logits);
    us_gen_result_free(&res);
    if (rec) us_eval_reference_free(rec);
    memset(out, 0, sizeof *out);
    return s;
}
