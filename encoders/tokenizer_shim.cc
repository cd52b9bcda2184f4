// tokenizer_shim.cc: extern "C" forwarding to sentencepiece::SentencePieceProcessor (see sp_shim.h).
//
// The project's only C++. No exception may cross into C: every entry point catches and reports
// through us_error. Nothing here reads files or knows about special pieces; tokenizer.c does that.
#include "sp_shim.h"

#include <sentencepiece_processor.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

struct us_sp_proc {
    sentencepiece::SentencePieceProcessor sp;
};

extern "C" us_status us_sp_proc_create(const void *bytes, size_t len, const char *what, us_sp_proc **out,
                                       us_error *err)
{
    if (!out) return us_error_set(err, US_ERR_INVALID, "sp_proc_create: out is required");
    *out = nullptr;
    if (!bytes || len == 0) return us_error_set(err, US_ERR_FORMAT, "%s: empty model", what);
    us_sp_proc *p = nullptr;
    try {
        p = new us_sp_proc;
        auto st = p->sp.LoadFromSerializedProto(std::string_view(static_cast<const char *>(bytes), len));
        if (!st.ok()) {
            us_status code = us_error_set(err, US_ERR_FORMAT, "%s: SentencePiece rejects the model: %s", what,
                                          st.ToString().c_str());
            delete p;
            return code;
        }
    } catch (const std::exception &e) {
        delete p;
        return us_error_set(err, US_ERR_NOMEM, "%s: loading the model failed: %s", what, e.what());
    }
    *out = p;
    return US_OK;
}

extern "C" void us_sp_proc_free(us_sp_proc *p) { delete p; }

extern "C" int32_t us_sp_proc_size(const us_sp_proc *p) { return p ? p->sp.GetPieceSize() : 0; }

extern "C" int32_t us_sp_proc_piece_to_id(const us_sp_proc *p, const char *piece)
{
    return p->sp.PieceToId(piece);
}

extern "C" us_status us_sp_proc_encode(const us_sp_proc *p, const char *text, size_t len, int32_t *ids,
                                       size_t cap, size_t *n, us_error *err)
{
    try {
        std::vector<int> v;
        auto st = p->sp.Encode(std::string_view(text, len), &v);
        if (!st.ok())
            return us_error_set(err, US_ERR_INVALID, "tokenizer: encoding failed: %s", st.ToString().c_str());
        for (int id : v) {
            if (*n < cap) ids[*n] = id;
            ++*n;
        }
    } catch (const std::exception &e) {
        return us_error_set(err, US_ERR_NOMEM, "tokenizer: encoding failed: %s", e.what());
    }
    return US_OK;
}

extern "C" us_status us_sp_proc_decode(const us_sp_proc *p, const int32_t *ids, size_t n, char **out,
                                       size_t *out_len, us_error *err)
{
    *out = nullptr;
    *out_len = 0;
    try {
        std::vector<int> v(ids, ids + n);
        std::string s;
        auto st = p->sp.Decode(v, &s);
        if (!st.ok())
            return us_error_set(err, US_ERR_INVALID, "tokenizer: decoding failed: %s", st.ToString().c_str());
        char *c = static_cast<char *>(std::malloc(s.size() + 1));
        if (!c) return us_error_set(err, US_ERR_NOMEM, "tokenizer: no memory for %zu decoded bytes", s.size());
        std::memcpy(c, s.data(), s.size());
        c[s.size()] = '\0';
        *out = c;
        *out_len = s.size();
    } catch (const std::exception &e) {
        return us_error_set(err, US_ERR_NOMEM, "tokenizer: decoding failed: %s", e.what());
    }
    return US_OK;
}
