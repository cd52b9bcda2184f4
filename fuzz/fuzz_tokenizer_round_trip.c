/* fuzz_tokenizer_round_trip.c: us_fuzz_tokenizer_round_trip (fuzz_entry.h), shared by the targets
 * that build a tokenizer (fuzz_sp_from_gguf.c, fuzz_tokenizer_model.c), so that every tokenizer an
 * input yields goes through the same text: special pieces, whitespace, multi-byte and invalid UTF-8. */
#include "fuzz_entry.h"

#include "tokenizer.h"

#include <stdlib.h>

static const char k_text[] = "Hello <start_of_turn>user\nWorld  123 caf\xC3\xA9 \xF0\x9F\x98\x80<end_of_turn>\n"
                             "<image_soft_token>\xFF<bos>";

void us_fuzz_tokenizer_round_trip(const us_tokenizer *tok)
{
    us_error err;
    size_t n = 0;
    if (us_tokenizer_encode(tok, k_text, sizeof k_text - 1, NULL, 0, &n, &err)) return;
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return;
    size_t got = 0;
    if (!us_tokenizer_encode(tok, k_text, sizeof k_text - 1, ids, n, &got, &err) && got == n) {
        for (unsigned flags = 0; flags < 2; flags++) {
            char *text = NULL;
            size_t len = 0;
            if (!us_tokenizer_decode(tok, ids, n, flags, &text, &len, &err)) free(text);
        }
    }
    free(ids);
    for (int32_t id = -1; id <= us_tokenizer_vocab_size(tok) && id < 64; id++) {
        const char *piece = us_tokenizer_id_to_piece(tok, id);
        if (piece) (void)us_tokenizer_piece_to_id(tok, piece);
        (void)us_tokenizer_piece_type(tok, id);
    }
}
