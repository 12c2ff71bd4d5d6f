/* cb_err.h — the error convention every calbridge module follows.
 *
 * Functions that can fail return an int: CB_OK (0) on success, a negative
 * CB_E* code otherwise, and fill a caller-provided struct cb_err with a
 * message the caller can print as is ("people.csv:4: kind must be ...").
 * A NULL err is allowed: the code is still returned, the text is dropped.
 */
#ifndef CB_ERR_H
#define CB_ERR_H

#include <stddef.h>

enum {
    CB_OK = 0,
    CB_EINVAL = -1,      /* bad input: configuration, file, event */
    CB_ENOMEM = -2,
    CB_EIO = -3,         /* file, database or network I/O failed */
    CB_EPARSE = -4,      /* malformed iCalendar, XML or CSV */
    CB_ENOTFOUND = -5,
    CB_EUNSUPPORTED = -6,/* valid input the mapping cannot carry yet */
    CB_EREMOTE = -7,     /* the remote side answered with an error */
    CB_EBUSY = -8,       /* throttled: retry later */
    CB_EREJECTED = -9,   /* the remote side refused the request's content */
    CB_EMAILBOX = -10,   /* this one mailbox cannot be used now; others can */
    CB_ELOST = -11,      /* a write whose answer was lost: it may have been applied */
};

typedef struct cb_err {
    int code;
    char msg[512];
} cb_err;

/* Sets err (if not NULL) and returns code, so callers can write
 * `return cb_errf(err, CB_EINVAL, "...")`. */
int cb_errf(cb_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A short name for a code: "invalid input", "I/O error", ... */
const char *cb_strerror(int code);

#endif
