/* side_apple.h — CalendarServer's tables as a calendar side (side.h).
 *
 *   read      a poll of CALENDAR_OBJECT_REVISIONS from the stored cursor,
 *             or a scan of every live object when there is no cursor or
 *             CalendarServer has trimmed the revisions it needs (a full
 *             read); one page; each object's iCalendar mapped to the
 *             neutral event (objects over MaxResourceSize are reported,
 *             not read; resources without a VEVENT are skipped);
 *   fetch     the current state of objects by source key;
 *   apply     writes through pg_sink as CalendarServer writes, each object
 *             under its own savepoint in one transaction per batch (one
 *             refused object fails alone; a lost connection fails them all);
 *   find_tag  never finds: writes here are idempotent by source key, so a
 *             create whose outcome is unknown is simply written again;
 *   place     the person's default calendar, and a resource name from the
 *             UID as CalendarServer's clients name them;
 *             After each batch commits, CalendarServer is told of the
 *             calendars it wrote (ccs_notify), so that clients hear now;
 *   check     the writer role's privileges (pg_sink_check_privileges), and
 *             those queueing CalendarServer's push needs.
 * There are no change signals: the engine polls.
 */
#ifndef SIDE_APPLE_H
#define SIDE_APPLE_H

#include "../../mapping/tzmap.h"
#include "../side.h"
#include "ccs_notify.h"

/* read_dsn is read only (a copy of the database will do); write_dsn writes
 * the homes of people whose authority is Exchange; notify says how
 * CalendarServer hears of those writes after each batch (ccs_notify.h). */
int side_apple_open(const char *read_dsn, const char *write_dsn, const people *people,
                    const tzmap *tz, const char *default_tz, const ccs_notify_opts *notify,
                    side **out, cb_err *err);

#endif
