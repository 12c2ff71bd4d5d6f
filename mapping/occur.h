/* occur.h — the occurrences of an event, on either side, in UTC.
 *
 * occur_ical() expands the iCalendar source with libical's recurrence
 * iterator under RFC 5545's rules (DTSTART counts, RDATE adds, EXDATE
 * removes, RECURRENCE-ID overrides replace). occur_ews() expands what the
 * Exchange items say with the project's own EWS expander (recur.h). Two
 * independent expansions: the tests require them to agree, which is the
 * check that a mapping kept its meaning. ical_in.c also uses occur_ical()
 * to turn repeats Exchange cannot express into single items.
 */
#ifndef OCCUR_H
#define OCCUR_H

#include <libical/ical.h>

#include "ews_item.h"

typedef struct occur {
    long long orig;         /* original start (RECURRENCE-ID), UTC seconds */
    long long start, end;   /* UTC seconds */
    int all_day;
    icalcomponent *comp;    /* occur_ical: the VEVENT giving its content */
} occur;

typedef struct occur_list {
    occur *v;
    size_t n, cap;
} occur_list;

/* Occurrences of uid in cal whose original start is in [from, to). Stops
 * with CB_EUNSUPPORTED past max occurrences. */
int occur_ical(icalcomponent *cal, const char *uid, const map_ctx *ctx, tzdef_cache *zones,
               long long from, long long to, size_t max, occur_list *out, cb_err *err);
/* Occurrences of ev's main and single items (not travel) in [from, to). */
int occur_ews(const ews_event *ev, const tzmap *m, tzdef_cache *zones, long long from,
              long long to, occur_list *out, cb_err *err);

void occur_sort(occur_list *l);
/* 0 when a and b (sorted) hold the same (start, end) pairs; otherwise -1
 * and the first difference described in msg. */
int occur_compare(const occur_list *a, const occur_list *b, char *msg, size_t len);
void occur_free(occur_list *l);

/* 1 when libical cannot be trusted to step rule in bounded time: a
 * SECONDLY or MINUTELY rule narrowed by day, week, month or position
 * (one step may walk every second of a month: minutes of CPU, found by
 * fuzzing). No calendar client writes one; such a rule is refused. */
int occur_rule_too_costly(const struct icalrecurrencetype *rule);

/* UTC seconds as "2024-01-02T10:00:00Z". */
void occur_format_xs(long long t, char out[32]);
/* "2024-01-02T10:00:00Z" (or floating, read in zone) as UTC seconds. */
int occur_parse_xs(const char *s, icaltimezone *zone, long long *out);

#endif
