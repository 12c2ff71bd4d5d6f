/* peruser.h — CalendarServer's per-user data (X-CALENDARSERVER-PERUSER).
 *
 * CalendarServer keeps what belongs to one user rather than to the event —
 * TRANSP, VALARMs and every X- property but X-CALENDARSERVER-HIDDEN-INSTANCE
 * (travel time included) — out of the shared components, in one block per
 * user (twistedcaldav/datafilters/peruserdata.py):
 *
 *   BEGIN:X-CALENDARSERVER-PERUSER
 *   UID:<the event's UID>
 *   X-CALENDARSERVER-PERUSER-UID:<the user's principal UID>
 *   BEGIN:X-CALENDARSERVER-PERINSTANCE      the master's (no RECURRENCE-ID)
 *   TRANSP:OPAQUE
 *   BEGIN:VALARM ... END:VALARM
 *   END:X-CALENDARSERVER-PERINSTANCE
 *   BEGIN:X-CALENDARSERVER-PERINSTANCE      an instance whose data differs
 *   RECURRENCE-ID;TZID=...:...
 *   ...
 *   END:X-CALENDARSERVER-PERINSTANCE
 *   END:X-CALENDARSERVER-PERUSER
 *
 * A user sees the shared data with their own block merged back; their
 * free/busy follows their own TRANSP and travel time (PERUSER rows). The
 * blocks are handled as text: libical 3.0 drops X- components when it
 * writes a calendar out.
 */
#ifndef PERUSER_H
#define PERUSER_H

#include <libical/ical.h>

#include "ews_item.h"

/* ics parsed as user sees it (CalendarServer's PerUserDataFilter.filter):
 * the shared components with user's block merged back, every other block
 * left out; without a block of user's, CalendarServer's default (an
 * all-day event without TRANSP is transparent). user NULL: nobody's block.
 * NULL when ics is not iCalendar. Per-user data of an instance the shared
 * data does not override is not carried (CalendarServer derives one). */
icalcomponent *peruser_parse(const char *ics, const char *user, const map_ctx *ctx);

/* Moves user's per-user data out of the components of cal (which then
 * holds the shared data the index is built from) and returns the text to
 * store: cal, user's block, and every other user's block carried over from
 * old (the stored text; NULL for a new object) for the instances the new
 * data still has (mergePerUserData). cal must not hold blocks (see
 * peruser_has_blocks). NULL and err set on failure. */
char *peruser_store(icalcomponent *cal, const char *user, const char *old, const map_ctx *ctx,
                    cb_err *err);

/* Whether ics is already in per-user form (blocks of its own): text
 * CalendarServer wrote, to be stored as it is (libical cannot write the
 * blocks back out). */
int peruser_has_blocks(const char *ics);

/* One PERUSER row: a user ("." for the shared data) whose view of an
 * instance differs from its TIME_RANGE row. before/after: travel seconds
 * (ADJUSTED_START/END_DATE), -1 when none. */
typedef struct peruser_row {
    const char *user;
    int transparent;
    long long before, after;
} peruser_row;

typedef struct peruser_index peruser_index;

/* Every user's view per instance, from the stored text and its shared
 * data (cal after peruser_store). NULL only when out of memory. */
peruser_index *peruser_index_new(const char *text, icalcomponent *cal, const map_ctx *ctx);
/* The rows of the instance whose original start is orig (UTC seconds),
 * given by comp (an override, or the master), whose TIME_RANGE row says
 * transparent: as _addInstanceDetails writes them, at most max. Their
 * names are the index's. */
size_t peruser_index_rows(const peruser_index *ix, icalcomponent *comp, long long orig,
                          int transparent, peruser_row *out, size_t max);
void peruser_index_free(peruser_index *ix);

#endif
