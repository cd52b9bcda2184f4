/* test_tokenizer.c: the SentencePiece tokenizer, its ModelProto writer and the Gemma 3 chat template.
 *
 * The fixture (assets/tokenizer/, made by scripts/make-tokenizer-fixture.py) is a tiny BPE model with
 * Gemma 3's settings and the ids Python's sentencepiece gives for multilingual texts with whitespace
 * runs, digits, emoji (byte fallback) and special pieces. The C side must give exactly those ids both
 * from the .model file and from a ModelProto it writes itself from the (piece, score, type) arrays,
 * as it will from a GGUF vocabulary. Bad inputs must give errors naming the file.
 */
#include "chat_template.h"
#include "sp_model_proto.h"
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* assets/tokenizer/<name>: from $US_ASSETS (ctest sets it), else next to this source file. */
static void asset_path(char *out, size_t cap, const char *name)
{
    const char *env = getenv("US_ASSETS");
    if (env && env[0]) {
        snprintf(out, cap, "%s/tokenizer/%s", env, name);
        return;
    }
    const char *src = __FILE__;
    const char *tail = strstr(src, "tests/test_tokenizer.c");
    int root = tail ? (int)(tail - src) : 0;
    snprintf(out, cap, "%.*sassets/tokenizer/%s", root, src, name);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static cJSON *load_fixture(void)
{
    char path[1024];
    asset_path(path, sizeof path, "tiny.json");
    char *text = read_text(path);
    cJSON *j = cJSON_Parse(text);
    free(text);
    cr_assert_not_null(j, "%s: not JSON", path);
    return j;
}

static us_tokenizer *load_model(void)
{
    char path[1024];
    asset_path(path, sizeof path, "tiny.model");
    us_tokenizer *tok = NULL;
    us_error err = {0};
    cr_assert_eq(us_tokenizer_load(path, &tok, &err), US_OK, "%s", err.msg);
    return tok;
}

/* Every case of the fixture: the exact ids, the count-only mode, and the decoded text. */
static void check_cases(const us_tokenizer *tok, const cJSON *fixture)
{
    const cJSON *cases = cJSON_GetObjectItem(fixture, "cases");
    int n_cases = cJSON_GetArraySize(cases), n_ids = 0;
    cr_assert_geq(n_cases, 8);
    for (int c = 0; c < n_cases; c++) {
        const cJSON *cs = cJSON_GetArrayItem(cases, c);
        const char *text = cJSON_GetObjectItem(cs, "text")->valuestring;
        const cJSON *want = cJSON_GetObjectItem(cs, "ids");
        size_t nw = (size_t)cJSON_GetArraySize(want);
        int32_t ids[256];
        size_t n = 0, counted = 0;
        us_error err = {0};
        cr_assert_eq(us_tokenizer_encode(tok, text, strlen(text), ids, 256, &n, &err), US_OK, "%s", err.msg);
        cr_assert_eq(n, nw, "case %d: %zu ids, Python gives %zu", c, n, nw);
        for (size_t i = 0; i < n; i++)
            cr_assert_eq(ids[i], cJSON_GetArrayItem(want, (int)i)->valueint, "case %d id %zu: %d vs Python %d", c, i,
                         ids[i], cJSON_GetArrayItem(want, (int)i)->valueint);
        cr_assert_eq(us_tokenizer_encode(tok, text, strlen(text), NULL, 0, &counted, &err), US_OK);
        cr_assert_eq(counted, n);
        char *dec = NULL;
        size_t dl = 0;
        cr_assert_eq(us_tokenizer_decode(tok, ids, n, 0, &dec, &dl, &err), US_OK, "%s", err.msg);
        cr_assert_str_eq(dec, cJSON_GetObjectItem(cs, "decoded")->valuestring, "case %d", c);
        cr_assert_eq(dl, strlen(dec));
        free(dec);
        n_ids += (int)n;
    }
    cr_assert_gt(n_ids, 150);
}

Test(tokenizer, model_file_matches_python)
{
    cJSON *fx = load_fixture();
    us_tokenizer *tok = load_model();
    cr_assert_eq(us_tokenizer_vocab_size(tok), cJSON_GetArraySize(cJSON_GetObjectItem(fx, "pieces")));
    cr_assert_eq(us_tokenizer_piece_to_id(tok, "<bos>"), 2);
    cr_assert_eq(us_tokenizer_piece_to_id(tok, "<eos>"), 1);
    cr_assert_eq(us_tokenizer_piece_to_id(tok, "<end_of_turn>"), 6);
    cr_assert_eq(us_tokenizer_piece_to_id(tok, "no such piece"), -1);
    cr_assert_eq(us_tokenizer_piece_type(tok, 3), US_SP_UNKNOWN);
    cr_assert_eq(us_tokenizer_piece_type(tok, 5), US_SP_USER_DEFINED);
    cr_assert_eq(us_tokenizer_piece_type(tok, 9), US_SP_BYTE);
    cr_assert_str_eq(us_tokenizer_id_to_piece(tok, 9), "<0x00>");
    cr_assert_null(us_tokenizer_id_to_piece(tok, 100000));
    check_cases(tok, fx);
    us_tokenizer_free(&tok);
    cr_assert_null(tok);
    cJSON_Delete(fx);
}

/* The fixture's settings are Gemma 3's: us_sp_settings_gemma must agree with what Python wrote. */
static void check_settings(const cJSON *s, const us_sp_settings *g)
{
    cr_assert_eq(cJSON_GetObjectItem(s, "model_type")->valueint, (int)g->model_type);
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(s, "byte_fallback")), g->byte_fallback);
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(s, "split_digits")), g->split_digits);
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(s, "allow_whitespace_only_pieces")), g->allow_whitespace_only_pieces);
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(s, "add_dummy_prefix")), g->add_dummy_prefix);
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(s, "remove_extra_whitespaces")), g->remove_extra_whitespaces);
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(s, "escape_whitespaces")), g->escape_whitespaces);
    cr_assert_str_eq(cJSON_GetObjectItem(s, "normalizer")->valuestring, g->normalizer_name);
    cr_assert_eq(cJSON_GetObjectItem(s, "unk_id")->valueint, g->unk_id);
    cr_assert_eq(cJSON_GetObjectItem(s, "bos_id")->valueint, g->bos_id);
    cr_assert_eq(cJSON_GetObjectItem(s, "eos_id")->valueint, g->eos_id);
    cr_assert_eq(cJSON_GetObjectItem(s, "pad_id")->valueint, g->pad_id);
}

Test(tokenizer, proto_built_from_arrays_matches_python)
{
    cJSON *fx = load_fixture();
    us_sp_settings s = us_sp_settings_gemma();
    check_settings(cJSON_GetObjectItem(fx, "settings"), &s);
    const cJSON *jp = cJSON_GetObjectItem(fx, "pieces");
    int n = cJSON_GetArraySize(jp);
    const char **pieces = calloc((size_t)n, sizeof *pieces);
    float *scores = calloc((size_t)n, sizeof *scores);
    int *types = calloc((size_t)n, sizeof *types);
    for (int i = 0; i < n; i++) {
        const cJSON *e = cJSON_GetArrayItem(jp, i);
        pieces[i] = cJSON_GetArrayItem(e, 0)->valuestring;
        scores[i] = (float)cJSON_GetArrayItem(e, 1)->valuedouble;
        types[i] = cJSON_GetArrayItem(e, 2)->valueint;
    }
    uint8_t *proto = NULL;
    size_t len = 0;
    us_error err = {0};
    cr_assert_eq(us_sp_model_proto_build(pieces, scores, types, n, &s, &proto, &len, &err), US_OK, "%s", err.msg);

    us_sp_pieces back;
    cr_assert_eq(us_sp_pieces_read(proto, len, "built", &back, &err), US_OK, "%s", err.msg);
    cr_assert_eq(back.n, n);
    for (int i = 0; i < n; i++) {
        cr_assert_str_eq(back.pieces[i], pieces[i]);
        cr_assert_eq(back.scores[i], scores[i]);
        cr_assert_eq(back.types[i], types[i]);
    }
    us_sp_pieces_free(&back);

    us_tokenizer *tok = NULL;
    cr_assert_eq(us_tokenizer_create_from_proto(proto, len, &tok, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_tokenizer_vocab_size(tok), n);
    check_cases(tok, fx);
    us_tokenizer_free(&tok);
    free(proto);
    free(pieces);
    free(scores);
    free(types);
    cJSON_Delete(fx);
}

static size_t encode(const us_tokenizer *tok, const char *text, int32_t *ids, size_t cap)
{
    size_t n = 0;
    us_error err = {0};
    cr_assert_eq(us_tokenizer_encode(tok, text, strlen(text), ids, cap, &n, &err), US_OK, "%s", err.msg);
    return n;
}

Test(tokenizer, special_pieces_are_split_out)
{
    us_tokenizer *tok = load_model();
    int32_t ids[64];
    /* CONTROL pieces: SentencePiece alone would spell them out; here they become their ids. */
    size_t n = encode(tok, "<bos><start_of_turn>user\n", ids, 64);
    cr_assert_eq(ids[0], 2);
    cr_assert_eq(ids[1], 5);
    cr_assert_gt(n, 2);
    n = encode(tok, "a<eos>", ids, 64);
    cr_assert_eq(ids[n - 1], 1);
    /* A partial special is plain text. */
    n = encode(tok, "<start_of_tur", ids, 64);
    for (size_t i = 0; i < n; i++) cr_assert_neq(ids[i], 5);

    /* Added specials outside the vocabulary (Gemma 3's <image_soft_token> is id 262144). */
    us_error err = {0};
    cr_assert_eq(us_tokenizer_add_special(tok, "<image_soft_token>", 420, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_tokenizer_add_special(tok, "<start_of_turn>user", 421, &err), US_OK, "%s", err.msg);
    cr_assert_eq(us_tokenizer_add_special(tok, "<x>", 7, &err), US_ERR_INVALID);
    cr_assert_eq(us_tokenizer_add_special(tok, "<y>", 420, &err), US_ERR_INVALID);
    cr_assert_eq(us_tokenizer_add_special(tok, "<bos>", 500, &err), US_ERR_INVALID);
    cr_assert_eq(us_tokenizer_piece_to_id(tok, "<image_soft_token>"), 420);
    cr_assert_eq(us_tokenizer_piece_type(tok, 420), US_SP_CONTROL);
    n = encode(tok, "<start_of_image><image_soft_token><image_soft_token><end_of_image>", ids, 64);
    cr_assert_eq(n, 4);
    cr_assert_eq(ids[0], 7);
    cr_assert_eq(ids[1], 420);
    cr_assert_eq(ids[2], 420);
    cr_assert_eq(ids[3], 8);
    /* Longest match wins at one position. */
    n = encode(tok, "<start_of_turn>user<start_of_turn>", ids, 64);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[0], 421);
    cr_assert_eq(ids[1], 5);

    /* Decoding: CONTROL pieces dropped by default, written with US_TOK_DECODE_CONTROL. */
    int32_t seq[] = {2, 5, 420, 1};
    char *s = NULL;
    cr_assert_eq(us_tokenizer_decode(tok, seq, 4, 0, &s, NULL, &err), US_OK, "%s", err.msg);
    cr_assert_str_eq(s, "<start_of_turn>");
    free(s);
    cr_assert_eq(us_tokenizer_decode(tok, seq, 4, US_TOK_DECODE_CONTROL, &s, NULL, &err), US_OK, "%s", err.msg);
    cr_assert_str_eq(s, "<bos><start_of_turn><image_soft_token><eos>");
    free(s);
    int32_t bad[] = {5, 9999};
    cr_assert_eq(us_tokenizer_decode(tok, bad, 2, 0, &s, NULL, &err), US_ERR_INVALID);
    cr_assert_null(s);
    cr_assert(strstr(err.msg, "9999"), "%s", err.msg);
    us_tokenizer_free(&tok);
}

Test(tokenizer, capacity_and_arguments)
{
    us_tokenizer *tok = load_model();
    const char *text = "Grüße, Привет, 你好世界";
    int32_t ids[4];
    size_t n = 0, need = 0;
    us_error err = {0};
    cr_assert_eq(us_tokenizer_encode(tok, text, strlen(text), NULL, 0, &need, &err), US_OK);
    cr_assert_gt(need, 4);
    cr_assert_eq(us_tokenizer_encode(tok, text, strlen(text), ids, 4, &n, &err), US_ERR_INVALID);
    cr_assert_eq(n, need);
    cr_assert(strstr(err.msg, "capacity"), "%s", err.msg);
    cr_assert_eq(us_tokenizer_encode(tok, "", 0, ids, 4, &n, &err), US_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(us_tokenizer_encode(NULL, "a", 1, ids, 4, &n, &err), US_ERR_INVALID);
    cr_assert_eq(us_tokenizer_encode(tok, "a", 1, NULL, 4, &n, &err), US_ERR_INVALID);
    us_tokenizer_free(&tok);
    us_tokenizer_free(&tok); /* freeing twice is harmless */
}

Test(chat_template, gemma3_strings)
{
    us_error err = {0};
    char *s = NULL;
    us_chat_turn one[] = {{"user", "  Hello there!\n"}};
    cr_assert_eq(us_gemma3_chat_render(one, 1, true, true, &s, &err), US_OK, "%s", err.msg);
    cr_assert_str_eq(s, "<bos><start_of_turn>user\nHello there!<end_of_turn>\n<start_of_turn>model\n");
    free(s);

    us_chat_turn conv[] = {{"system", "Be brief."},
                           {"user", "What is 2+2?"},
                           {"assistant", "4"},
                           {"user", "And 3+3?"}};
    cr_assert_eq(us_gemma3_chat_render(conv, 4, true, true, &s, &err), US_OK, "%s", err.msg);
    cr_assert_str_eq(s, "<bos><start_of_turn>user\nBe brief.\n\nWhat is 2+2?<end_of_turn>\n"
                        "<start_of_turn>model\n4<end_of_turn>\n"
                        "<start_of_turn>user\nAnd 3+3?<end_of_turn>\n"
                        "<start_of_turn>model\n");
    free(s);
    cr_assert_eq(us_gemma3_chat_render(conv + 1, 2, false, false, &s, &err), US_OK, "%s", err.msg);
    cr_assert_str_eq(s, "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>\n");
    free(s);

    us_chat_turn twice[] = {{"user", "a"}, {"user", "b"}};
    cr_assert_eq(us_gemma3_chat_render(twice, 2, true, true, &s, &err), US_ERR_INVALID);
    cr_assert_null(s);
    us_chat_turn model_first[] = {{"model", "a"}};
    cr_assert_eq(us_gemma3_chat_render(model_first, 1, true, true, &s, &err), US_ERR_INVALID);
    us_chat_turn late_system[] = {{"user", "a"}, {"system", "b"}};
    cr_assert_eq(us_gemma3_chat_render(late_system, 2, true, true, &s, &err), US_ERR_INVALID);
    cr_assert(strstr(err.msg, "system"), "%s", err.msg);
}

/* The rendered prompt, encoded: BOS exactly once, at the start, and the turn markers as single ids. */
Test(chat_template, encodes_with_one_bos)
{
    us_tokenizer *tok = load_model();
    us_error err = {0};
    char *s = NULL;
    us_chat_turn t[] = {{"user", "Grüße 🙂"}};
    cr_assert_eq(us_gemma3_chat_render(t, 1, true, true, &s, &err), US_OK, "%s", err.msg);
    int32_t ids[128];
    size_t n = encode(tok, s, ids, 128);
    cr_assert_eq(ids[0], 2);
    cr_assert_eq(ids[1], 5);
    int bos = 0, sot = 0, eot = 0;
    for (size_t i = 0; i < n; i++) {
        bos += ids[i] == 2;
        sot += ids[i] == 5;
        eot += ids[i] == 6;
    }
    cr_assert_eq(bos, 1);
    cr_assert_eq(sot, 2);
    cr_assert_eq(eot, 1);
    char *dec = NULL;
    cr_assert_eq(us_tokenizer_decode(tok, ids, n, US_TOK_DECODE_CONTROL, &dec, NULL, &err), US_OK, "%s", err.msg);
    cr_assert_str_eq(dec, s);
    free(dec);
    free(s);
    us_tokenizer_free(&tok);
}

/* ---- bad inputs ------------------------------------------------------------------------------ */

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void expect_load_error(const char *path, us_status want)
{
    us_tokenizer *tok = (us_tokenizer *)1;
    us_error err = {0};
    cr_assert_eq(us_tokenizer_load(path, &tok, &err), want, "%s: %s", path, err.msg);
    cr_assert_null(tok);
    cr_assert(strstr(err.msg, path), "message does not name the file: %s", err.msg);
}

Test(tokenizer, bad_files_name_the_file)
{
    expect_load_error("/nonexistent/dir/tokenizer.model", US_ERR_IO);

    char dir[] = "/tmp/us_tok_test_XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char garbage[512], empty[512], truncated[512];
    snprintf(garbage, sizeof garbage, "%s/garbage.model", dir);
    snprintf(empty, sizeof empty, "%s/empty.model", dir);
    snprintf(truncated, sizeof truncated, "%s/truncated.model", dir);

    const char junk[] = "\xff\xff\xff\xff this is not a protobuf \x07\x08";
    write_file(garbage, junk, sizeof junk - 1);
    expect_load_error(garbage, US_ERR_FORMAT);
    write_file(empty, "", 0);
    expect_load_error(empty, US_ERR_FORMAT);
    char model[1024];
    asset_path(model, sizeof model, "tiny.model");
    char *bytes = read_text(model);
    write_file(truncated, bytes, 3001);
    expect_load_error(truncated, US_ERR_FORMAT);
    free(bytes);
    unlink(garbage);
    unlink(empty);
    unlink(truncated);
    rmdir(dir);

    us_tokenizer *tok = NULL;
    us_error err = {0};
    cr_assert_eq(us_tokenizer_create_from_proto(junk, sizeof junk - 1, &tok, &err), US_ERR_FORMAT);
    cr_assert_null(tok);
    cr_assert(strstr(err.msg, "model proto"), "%s", err.msg);
    /* A well-formed protobuf that SentencePiece refuses: pieces without an UNKNOWN piece. */
    const uint8_t no_unk[] = {0x0a, 0x07, 0x0a, 0x01, 'a', 0x15, 0, 0, 0, 0};
    cr_assert_eq(us_tokenizer_create_from_proto(no_unk, sizeof no_unk, &tok, &err), US_ERR_FORMAT);
    cr_assert_null(tok);
}

Test(sp_model_proto, rejects_bad_arrays)
{
    us_sp_settings s = us_sp_settings_gemma();
    const char *pieces[] = {"<pad>", "<eos>", "<bos>", "<unk>", "a"};
    float scores[] = {0, 0, 0, 0, -1};
    int types[] = {3, 3, 3, 2, 1};
    uint8_t *p = NULL;
    size_t len = 0;
    us_error err = {0};
    cr_assert_eq(us_sp_model_proto_build(pieces, scores, types, 5, &s, &p, &len, &err), US_OK, "%s", err.msg);
    free(p);
    int bad_type[] = {3, 3, 3, 2, 9};
    cr_assert_eq(us_sp_model_proto_build(pieces, scores, bad_type, 5, &s, &p, &len, &err), US_ERR_INVALID);
    cr_assert(strstr(err.msg, "piece 4"), "%s", err.msg);
    int no_unk[] = {3, 3, 3, 1, 1};
    cr_assert_eq(us_sp_model_proto_build(pieces, scores, no_unk, 5, &s, &p, &len, &err), US_ERR_INVALID);
    cr_assert_null(p);
    us_sp_settings far = s;
    far.bos_id = 5;
    cr_assert_eq(us_sp_model_proto_build(pieces, scores, types, 5, &far, &p, &len, &err), US_ERR_INVALID);
    cr_assert(strstr(err.msg, "bos_id"), "%s", err.msg);
    cr_assert_eq(us_sp_model_proto_build(pieces, scores, types, 0, &s, &p, &len, &err), US_ERR_INVALID);
}
