/* ical_in.h — iCalendar (as CalendarServer stores it) to Exchange items.
 *
 * Pure: text in, ews_event out, no I/O. One calendar object resource holds
 * one UID (a master and its overrides); a file may hold several, and
 * ical_in_map_all() maps each on its own so that one bad event does not
 * stop the others. What an event has that is not carried is named in
 * ev->warnings; what cannot be carried at all fails that UID with a reason.
 */
#ifndef ICAL_IN_H
#define ICAL_IN_H

#include "ews_item.h"

/* How many single items an unexpressible series may become. */
#define ICAL_IN_MAX_SINGLES 1000
#define ICAL_IN_DEFAULT_HORIZON 730

/* Maps the (first) UID of one resource. CB_EPARSE for malformed data,
 * CB_EUNSUPPORTED when there is nothing Exchange can hold; err names the
 * UID and the reason. */
int ical_in_map(const char *ics, const map_ctx *ctx, ews_event **out, cb_err *err);

typedef struct ical_in_result {
    char *uid;
    ews_event *ev;      /* NULL when mapping failed */
    cb_err err;
} ical_in_result;

/* Maps every UID in ics, in file order. CB_EPARSE only when ics is not
 * iCalendar at all; per-UID failures are in the results. */
int ical_in_map_all(const char *ics, const map_ctx *ctx, ical_in_result **out, size_t *n,
                    cb_err *err);
void ical_in_results_free(ical_in_result *r, size_t n);

#endif
