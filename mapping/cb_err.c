#include "cb_err.h"

#include <stdarg.h>
#include <stdio.h>

int cb_errf(cb_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

const char *cb_strerror(int code)
{
    switch (code) {
    case CB_OK: return "success";
    case CB_EINVAL: return "invalid input";
    case CB_ENOMEM: return "out of memory";
    case CB_EIO: return "I/O error";
    case CB_EPARSE: return "parse error";
    case CB_ENOTFOUND: return "not found";
    case CB_EUNSUPPORTED: return "not supported";
    case CB_EREMOTE: return "remote error";
    case CB_EBUSY: return "busy";
    case CB_EREJECTED: return "refused by the server";
    case CB_EMAILBOX: return "mailbox unusable";
    case CB_ELOST: return "answer lost";
    default: return "unknown error";
    }
}
