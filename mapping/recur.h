/* recur.h — Exchange recurrences: from an RRULE, to XML, back to an RRULE,
 * and expanded into dates the way Exchange expands them.
 *
 * An ews_recurrence is one EWS pattern plus one range (XSD RecurrenceType).
 * Dates are local to the series' time zone; the time of day and the zone
 * belong to the item, not to the recurrence.
 *
 * recur_from_rrule() accepts only rules whose occurrences Exchange would
 * produce exactly: the same dates, no more, no fewer. Anything else is
 * refused with a reason, and the caller expands the event into single items.
 * recur_dates() is the project's own EWS expander; the tests compare it with
 * libical's expansion of the source, so a mapping that changes meaning fails.
 */
#ifndef RECUR_H
#define RECUR_H

#include <libical/ical.h>
#include <stddef.h>

#include "sbuf.h"

typedef enum {
    RECUR_DAILY = 1, RECUR_WEEKLY, RECUR_ABS_MONTHLY, RECUR_REL_MONTHLY,
    RECUR_ABS_YEARLY, RECUR_REL_YEARLY
} recur_kind;

typedef enum { RANGE_NOEND, RANGE_END_DATE, RANGE_NUMBERED } recur_range;

/* DaysOfWeek values beyond the seven days (0 = Sunday ... 6 = Saturday). */
enum { DOW_DAY = 7, DOW_WEEKDAY = 8, DOW_WEEKENDDAY = 9 };

typedef struct recur_date {
    int y, m, d;
} recur_date;

typedef struct ews_recurrence {
    recur_kind kind;
    int interval;
    unsigned days;          /* Weekly: bit 0 = Sunday ... bit 6 = Saturday */
    int day_of_week;        /* Relative*: 0..6, or DOW_* */
    int week_index;         /* Relative*: 1..4, 5 = Last */
    int day_of_month;       /* Absolute*: 1..31 */
    int month;              /* *Yearly: 1..12 */
    int first_day_of_week;  /* Weekly: 0..6 */
    recur_range range;
    recur_date start;       /* StartDate, in the series' zone */
    recur_date end;         /* EndDate (RANGE_END_DATE) */
    int count;              /* NumberOfOccurrences (RANGE_NUMBERED) */
} ews_recurrence;

/* Maps rule r of a series whose first occurrence is local_start (local time
 * in the series' zone; UNTIL is converted with zone, which may be NULL for
 * floating and all-day series). 0 on success; -1 with why filled when
 * Exchange cannot express the rule exactly. */
int recur_from_rrule(const struct icalrecurrencetype *r, struct icaltimetype local_start,
                     icaltimezone *zone, ews_recurrence *o, char *why, size_t why_len);

/* <t:Recurrence>...</t:Recurrence> */
void recur_write(const ews_recurrence *r, sbuf *b);

/* The RRULE value (without "RRULE:") with the same occurrences. UNTIL is
 * computed from EndDate at the end of that day in zone (NULL: a DATE). */
void recur_to_rrule(const ews_recurrence *r, icaltimezone *zone, sbuf *b);

/* The series' dates in order, up to and including through, at most max.
 * Returns how many were written. */
size_t recur_dates(const ews_recurrence *r, recur_date through, recur_date *out,
                   size_t max);

/* 1-based InstanceIndex of date d in the series, or 0 when d is not one. */
int recur_index_of(const ews_recurrence *r, recur_date d);

/* Name tables shared with the XML reader. */
extern const char *const RECUR_DAY_NAMES[10];   /* Sunday..Saturday, Day, ... */
extern const char *const RECUR_MONTH_NAMES[12];
extern const char *const RECUR_WEEK_INDEX[6];   /* "", First .. Fourth, Last */
extern const char *const RECUR_ICAL_DAYS[7];    /* SU .. SA */

/* The week_index-th (1..4, 5 = last) day of month y-m that is in the
 * DaysOfWeek value set (0..6 or DOW_*), or 0. */
int recur_nth_day(int y, int m, int set, int week_index);

/* Date helpers: days since 1970-01-01, and back; day of week (0 = Sunday). */
long recur_days(recur_date d);
recur_date recur_from_days(long n);
int recur_dow(recur_date d);
int recur_cmp(recur_date a, recur_date b);

#endif
