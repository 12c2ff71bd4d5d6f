/* pg_sink.h — writing calendar objects into CalendarServer's tables the way
 * CalendarServer itself writes them (txdav/caldav/datastore/sql.py), so
 * that it serves them, counts them in free/busy and clients' sync tokens
 * see them. Used for people whose authority is Exchange, and by the test
 * loader that plays an Apple client.
 *
 * Per object, inside the caller's transaction (pg_sink_begin/commit):
 *   CALENDAR_OBJECT  text in CalendarServer's per-user form (the owner's
 *                    alarms, TRANSP and X- properties in their
 *                    X-CALENDARSERVER-PERUSER block, other users' blocks
 *                    kept from the stored text: peruser.h), UID, component
 *                    type, organizer, MD5 of the text,
 *                    attachment mode, private-comments flag, RECURRANCE_MIN/
 *                    MAX (how far the index was expanded), MODIFIED;
 *   TIME_RANGE       one row per instance from a year back to a year ahead
 *                    (CalendarServer's FreeBusyIndexLowerLimitDays and
 *                    FreeBusyIndexExpandAheadDays defaults; bounded series
 *                    are indexed whole), FBTYPE from STATUS, TRANSPARENT
 *                    as adjustedTransp, FLOATING times stored as wall time,
 *                    and the 1901 / 2100 marker rows CalendarServer adds
 *                    for a truncated or unbounded expansion;
 *   PERUSER          where a user's view of an instance differs: their
 *                    transparency, travel time as ADJUSTED_START/END;
 *   CALENDAR_OBJECT_REVISIONS  a fresh REVISION from REVISION_SEQ (DELETED
 *                    on removal) — what sync tokens and the bridge's own
 *                    poll read;
 *   ACCESS           from X-CALENDARSERVER-ACCESS, as CalendarServer derives it;
 *   SCHEDULE_TAG/_ETAGS  renewed on every write (a client's conditional PUT
 *                    against data it never saw fails);
 *   RESOURCE_PROPERTY  the object's rows removed with it.
 * QUOTA_USED_BYTES is left alone: CalendarServer counts attachments there,
 * never calendar text.
 * Nothing is written to the scheduling inbox and no iTIP is generated.
 */
#ifndef PG_SINK_H
#define PG_SINK_H

#include "../../mapping/cb_err.h"
#include "../../mapping/tzmap.h"

typedef struct pg_sink pg_sink;

typedef struct pg_written {
    long long calendar_id;   /* the home's default events calendar */
    long long revision;      /* the revision this write took (0 when deferred) */
    long long instances;     /* TIME_RANGE rows written */
} pg_written;

/* default_tz places floating and all-day instances (IANA name). */
int pg_sink_open(const char *dsn, const tzmap *tz, const char *default_tz, pg_sink **out,
                 cb_err *err);
void pg_sink_close(pg_sink *s);

/* Whether the writer's role holds every privilege a mirror write needs
 * (README, "Least privilege"): CB_EINVAL naming each one missing. Checked
 * at start and before a cutover flips anyone, so that a read-only role is
 * found before people depend on it, not after. */
int pg_sink_check_privileges(pg_sink *s, cb_err *err);

/* on: each object's new REVISION is taken when the batch commits, in a
 * short transaction after the data's (ccs-write-path.md 6.9: a revision
 * taken early in a long batch can land below a client's sync token and
 * never be reported); pg_written.revision is then 0 and
 * pg_sink_revision tells it after pg_sink_commit. off (the default, as
 * CalendarServer itself does): taken with the write. */
void pg_sink_defer_revisions(pg_sink *s, int on);

/* on: an object CalendarServer would refuse for its instances (over its
 * MaxAllowedInstances in the indexed window, or too many to count), or
 * whose UID another object of the home already has, is refused (CB_EINVAL)
 * instead of stored, and each write takes CalendarServer's UID lock; what
 * calbridge writes must be what CalendarServer can serve. off (the
 * default, for data already in the database): stored as found. */
void pg_sink_enforce_limits(pg_sink *s, int on);

int pg_sink_begin(pg_sink *s, cb_err *err);
/* Commits the data, then (deferred) the revisions; an error after the data
 * committed leaves it without its revision: write it again. */
int pg_sink_commit(pg_sink *s, cb_err *err);
/* After pg_sink_commit: the revision resource name of calendar_id took in
 * the batch; CB_ENOTFOUND if it was not written in it. */
int pg_sink_revision(pg_sink *s, long long calendar_id, const char *name, long long *rev);
void pg_sink_rollback(pg_sink *s);
/* Inside a transaction: mark where one object's writes begin, and undo
 * back to the mark when that object fails, keeping the rest of the batch.
 * pg_sink_undo fails (CB_EIO) only when the connection itself is gone. */
int pg_sink_mark(pg_sink *s, cb_err *err);
int pg_sink_undo(pg_sink *s, cb_err *err);

/* A calendar a batch wrote: its owner's UID and its name in their home,
 * which name it in CalendarServer's URLs and push keys. */
typedef struct pg_calendar {
    char owner[256];
    char name[256];
} pg_calendar;

/* After pg_sink_commit: the calendars the batch wrote (*out the caller's,
 * free()). */
int pg_sink_touched(pg_sink *s, pg_calendar **out, size_t *n, cb_err *err);

/* CalendarServer's own news of a change, where calbridge cannot reach it
 * over CalDAV (ccs-write-path.md 3, option A): in a short transaction, the
 * calendar's MODIFIED bumped and PUSH_NOTIFICATION_WORK jobs queued for the
 * calendar and its home, as its notifier queues them; host is its
 * ServerHostName. Its PROPFIND cache is not reached this way. */
int pg_sink_queue_push(pg_sink *s, const char *host, const pg_calendar *c, size_t n,
                       cb_err *err);

/* The privileges pg_sink_queue_push needs besides the writer's: CB_EINVAL
 * naming each one missing. */
int pg_sink_check_push_privileges(pg_sink *s, cb_err *err);

/* The home of owner and its default calendar and inbox, created as
 * CalendarServer provisions them when missing; *calendar_id is the default
 * events calendar. */
int pg_sink_home(pg_sink *s, const char *owner, long long *calendar_id, cb_err *err);

/* Creates or replaces resource name (one iCalendar UID) in owner's
 * calendar calendar_id (0: the default one). CB_EINVAL when calendar_id is
 * not bound to owner's own home (never written); CB_EPARSE for text that is
 * not one VCALENDAR; a recurrence that cannot be expanded is stored with
 * no index rows. */
int pg_sink_put(pg_sink *s, const char *owner, long long calendar_id, const char *name,
                const char *ics, pg_written *out, cb_err *err);

/* Removes resource name from owner's calendar calendar_id (0: the default
 * one). CB_ENOTFOUND when it is not there; CB_EINVAL when the calendar is
 * not owner's own. */
int pg_sink_delete(pg_sink *s, const char *owner, long long calendar_id, const char *name,
                   pg_written *out, cb_err *err);

/* The object of owner's home (not the inbox) holding uid: its calendar
 * and resource name; CB_ENOTFOUND when there is none. */
int pg_sink_find_uid(pg_sink *s, const char *owner, const char *uid, long long *calendar_id,
                     char *name, size_t size, cb_err *err);

/* A resource name CalendarServer clients would use for uid: the UID itself
 * when it is made of safe characters, else a hash of it, plus ".ics". */
void pg_sink_resource_name(const char *uid, char *out, size_t size);

#endif
