/* status.c: error codes and messages. The library never prints; callers print err->msg. */
#include "unisparse/attention.h"

#include <stdarg.h>
#include <stdio.h>

us_status us_error_set(us_error *err, us_status code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *us_status_name(us_status code)
{
    switch (code) {
    case US_OK: return "ok";
    case US_ERR_INVALID: return "invalid argument";
    case US_ERR_NOMEM: return "out of memory";
    case US_ERR_IO: return "i/o error";
    case US_ERR_FORMAT: return "malformed input";
    case US_ERR_UNSUPPORTED: return "unsupported";
    case US_ERR_DEVICE: return "device error";
    }
    return "unknown error";
}
