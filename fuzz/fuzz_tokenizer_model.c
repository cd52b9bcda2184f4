/* fuzz_tokenizer_model.c: a raw tokenizer.model (a serialized SentencePiece ModelProto) through
 * us_tokenizer_load, as `unisparse` loads one beside a Hugging Face checkpoint (llm.c): the piece list
 * (sp_model_pieces.c), SentencePiece's own proto parser and model set-up (tokenizer_shim.cc), the
 * special-piece table; then the image soft token is added as for a vision checkpoint and a fixed text
 * is encoded and decoded. */
#include "fuzz_entry.h"

#include "tokenizer.h"

int us_fuzz_tokenizer_model(const uint8_t *data, size_t size)
{
    const char *path = us_fuzz_file_path(data, size);
    if (!path) return US_ERR_IO;
    us_tokenizer *tok = NULL;
    us_error err;
    us_status s = us_tokenizer_load(path, &tok, &err);
    if (s) return s;
    /* llm.c adds it at the config's image_token_id (262144) when the model lacks the piece */
    if (us_tokenizer_piece_to_id(tok, "<image_soft_token>") < 0) {
        const int32_t n = us_tokenizer_vocab_size(tok);
        s = us_tokenizer_add_special(tok, "<image_soft_token>", n <= 262144 ? 262144 : n, &err);
    }
    if (!s) us_fuzz_tokenizer_round_trip(tok);
    us_tokenizer_free(&tok);
    return s;
}
