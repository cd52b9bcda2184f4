/* chat_template.c: renders Gemma 3 chat turns into the prompt string (see chat_template.h).
 *
 * Two passes over the same writer: the first only measures, the second fills one allocation.
 */
#include "chat_template.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;   /* NULL while measuring */
    size_t len;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (w->p) memcpy(w->p + w->len, s, n);
    w->len += n;
}

static void puts_(writer *w, const char *s) { put(w, s, strlen(s)); }

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Writes s without leading and trailing whitespace. */
static void put_trimmed(writer *w, const char *s)
{
    size_t a = 0, b = strlen(s);
    while (a < b && is_space(s[a])) a++;
    while (b > a && is_space(s[b - 1])) b--;
    put(w, s + a, b - a);
}

static void render(const us_chat_turn *turns, int n, bool add_bos, bool add_generation_prompt, writer *w)
{
    if (add_bos) puts_(w, "<bos>");
    int first = 0;
    const char *system = NULL;
    if (n > 0 && strcmp(turns[0].role, "system") == 0) {
        system = turns[0].text;
        first = 1;
    }
    for (int i = first; i < n; i++) {
        bool user = strcmp(turns[i].role, "user") == 0;
        puts_(w, "<start_of_turn>");
        puts_(w, user ? "user" : "model");
        puts_(w, "\n");
        if (i == first && system) {
            put_trimmed(w, system);
            puts_(w, "\n\n");
        }
        put_trimmed(w, turns[i].text);
        puts_(w, "<end_of_turn>\n");
    }
    if (add_generation_prompt) puts_(w, "<start_of_turn>model\n");
}

us_status us_gemma3_chat_render(const us_chat_turn *turns, int n, bool add_bos, bool add_generation_prompt,
                                char **out, us_error *err)
{
    if (!out) return us_error_set(err, US_ERR_INVALID, "chat template: out is required");
    *out = NULL;
    if (n < 0 || (n > 0 && !turns)) return us_error_set(err, US_ERR_INVALID, "chat template: %d turns", n);
    int first = n > 0 && turns[0].role && strcmp(turns[0].role, "system") == 0;
    for (int i = 0; i < n; i++) {
        const char *r = turns[i].role;
        if (!r || !turns[i].text)
            return us_error_set(err, US_ERR_INVALID, "chat template: turn %d has no role or no text", i);
        bool want_user = (i - first) % 2 == 0;
        bool is_user = strcmp(r, "user") == 0;
        bool is_model = strcmp(r, "model") == 0 || strcmp(r, "assistant") == 0;
        if (i < first) continue;
        if (!is_user && !is_model)
            return us_error_set(err, US_ERR_INVALID,
                                "chat template: turn %d has role '%s'; expected user, model or assistant "
                                "(system only first)", i, r);
        if (is_user != want_user)
            return us_error_set(err, US_ERR_INVALID,
                                "chat template: turn %d is '%s'; roles must alternate user/model, user first", i, r);
    }
    writer w = {NULL, 0};
    render(turns, n, add_bos, add_generation_prompt, &w);
    w.p = malloc(w.len + 1);
    if (!w.p) return us_error_set(err, US_ERR_NOMEM, "chat template: no memory for %zu bytes", w.len);
    w.len = 0;
    render(turns, n, add_bos, add_generation_prompt, &w);
    w.p[w.len] = '\0';
    *out = w.p;
    return US_OK;
}
