/* ccs_notify.h — telling CalendarServer that calbridge wrote a calendar,
 * so that Apple clients hear of it now rather than on their next poll.
 *
 * CalendarServer caches a home's PROPFIND answer for 30 minutes and sends
 * push notifications only for changes made through its own code
 * (ccs-write-path.md 2.2, 3): a direct write is seen by a client polling
 * with PROPFIND up to ~45 minutes late, and never pushed. After each batch
 * commits, for every calendar the batch wrote:
 *
 *   caldav  one PROPPATCH of a private property ({urn:x-calbridge:}mirrored)
 *           on the calendar, through CalendarServer, as a principal it
 *           lists in AdminPrincipals. Its property store then runs the
 *           calendar's notifyChanged: MODIFIED bumped, the home's and the
 *           calendar's cache tokens rotated, push queued for the owner and
 *           every sharee. Recommended.
 *   queue   where calbridge has no CalDAV access: the calendar's MODIFIED
 *           and CalendarServer's own PUSH_NOTIFICATION_WORK jobs, written
 *           into its database (pg_sink_queue_push). Push works; a
 *           PROPFIND-polling client may still see the cached answer for up
 *           to 30 minutes.
 *   none    nothing: clients see changes on their next poll.
 *
 * The data is committed before anything is sent, so a failure loses no
 * event, only the news of it: the calendars not reached are kept and tried
 * again after the next batch, and each failure is reported once per
 * calendar on standard error.
 */
#ifndef CCS_NOTIFY_H
#define CCS_NOTIFY_H

#include "../../mapping/cb_err.h"
#include "pg_sink.h"

typedef enum { CCS_NOTIFY_NONE, CCS_NOTIFY_CALDAV, CCS_NOTIFY_QUEUE } ccs_notify_mode;

typedef struct ccs_notify_opts {
    ccs_notify_mode mode;
    const char *url;        /* caldav: CalendarServer's base URL */
    const char *user;       /* caldav: an AdminPrincipals member */
    const char *password;
    int tls_verify;
    long timeout_ms;
    const char *host;       /* queue: CalendarServer's ServerHostName */
} ccs_notify_opts;

typedef struct ccs_notify ccs_notify;

/* Copies what it needs of o. */
int ccs_notify_open(const ccs_notify_opts *o, ccs_notify **out, cb_err *err);
void ccs_notify_close(ccs_notify *n);

/* After sink's batch committed: CalendarServer told of every calendar it
 * wrote, and of those not reached before. The number of calendars still
 * not told in *pending; CB_OK unless out of memory. */
int ccs_notify_send(ccs_notify *n, pg_sink *sink, size_t *pending, cb_err *err);

#endif
