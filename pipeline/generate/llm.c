/* llm.c: checkpoint + tokenizer loading and prompt encoding for generation. */
#include "llm.h"

#include "chat_template.h"
#include "gemma3_gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void us_llm_free(us_llm **pl)
{
    if (!pl || !*pl) return;
    us_tokenizer_free(&(*pl)->tok);
    us_gemma3_weights_free(&(*pl)->w);
    free(*pl);
    *pl = NULL;
}

static bool file_mentions(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static bool has_chat_template(const us_llm *l, const char *path)
{
    const us_gguf *g = us_gemma3_weights_gguf(l->w);
    if (g) return us_gguf_find_kv(g, "tokenizer.chat_template") != NULL;
    char p[1100];
    snprintf(p, sizeof p, "%s/chat_template.jinja", path);
    if (access(p, R_OK) == 0) return true;
    snprintf(p, sizeof p, "%s/chat_template.json", path);
    if (access(p, R_OK) == 0) return true;
    snprintf(p, sizeof p, "%s/tokenizer_config.json", path);
    return file_mentions(p, "\"chat_template\"");
}

us_status us_llm_load(const char *path, us_llm **out, us_error *err)
{
    *out = NULL;
    struct stat sb;
    if (!path || stat(path, &sb) != 0)
        return us_error_set(err, US_ERR_IO, "model %s: %s", path ? path : "(null)", strerror(errno));
    us_llm *l = calloc(1, sizeof *l);
    if (!l) return us_error_set(err, US_ERR_NOMEM, "no memory");
    snprintf(l->path, sizeof l->path, "%s", path);
    us_status s = us_gemma3_weights_load(path, &l->w, err);
    if (!s) {
        if (us_gemma3_weights_gguf(l->w)) {
            s = us_gemma3_tokenizer_from_gguf(us_gemma3_weights_gguf(l->w), &l->tok, err);
        } else {
            char tp[1100];
            snprintf(tp, sizeof tp, "%s/tokenizer.model", path);
            s = us_tokenizer_load(tp, &l->tok, err);
            /* tokenizer.model lacks the image soft token that a vision checkpoint's prompts carry */
            if (!s && l->w->vision && us_tokenizer_piece_to_id(l->tok, "<image_soft_token>") < 0)
                s = us_tokenizer_add_special(l->tok, "<image_soft_token>", l->w->cfg.image_token_id, err);
        }
    }
    if (s) {
        us_llm_free(&l);
        return s;
    }
    l->eos_id = l->w->cfg.eos_id;
    l->instruction_tuned = has_chat_template(l, path);
    l->eot_id = us_tokenizer_piece_to_id(l->tok, "<end_of_turn>");
    *out = l;
    return US_OK;
}

us_status us_llm_encode(const us_llm *l, const char *text, us_prompt_style style, int32_t **ids, int64_t *n,
                        us_error *err)
{
    *ids = NULL, *n = 0;
    char *rendered = NULL;
    if (style == US_PROMPT_CHAT) {
        us_chat_turn turn = {"user", text};
        us_status s = us_gemma3_chat_render(&turn, 1, true, true, &rendered, err);
        if (s) return s;
        text = rendered;
    }
    const size_t len = strlen(text), n_bos = style == US_PROMPT_BOS ? 1 : 0;
    size_t need = 0, got = 0;
    us_status s = us_tokenizer_encode(l->tok, text, len, NULL, 0, &need, err);
    int32_t *buf = s ? NULL : malloc((need + 1) * sizeof *buf);
    if (!s && !buf) s = us_error_set(err, US_ERR_NOMEM, "no memory for %zu prompt tokens", need);
    if (!s) s = us_tokenizer_encode(l->tok, text, len, buf + n_bos, need, &got, err);
    free(rendered);
    if (s) {
        free(buf);
        return s;
    }
    if (n_bos) buf[0] = l->w->cfg.bos_id;
    *ids = buf;
    *n = (int64_t)(got + n_bos);
    return US_OK;
}

us_status us_llm_decode(const us_llm *l, const int32_t *ids, int64_t n, char **text, us_error *err)
{
    size_t len = 0;
    return us_tokenizer_decode(l->tok, ids, (size_t)n, 0, text, &len, err);
}
