/* sim_recur.h — the simulator's own calendar arithmetic, written from
 * Microsoft's documentation of EWS, not from calbridge's mapping (which it
 * exists to check):
 *   - xs:dateTime values, read and written in UTC;
 *   - time zones: a StartTimeZone Id that is a Windows time zone is the
 *     IANA zone CLDR's windowsZones.xml names for it (territory 001), its
 *     local time from the C library's zoneinfo; any other Id is read from
 *     the element's own TimeZoneDefinition (Periods with their Bias, a
 *     TransitionsGroup of RecurringDayTransitions) — "TimeZoneDefinitionType"
 *     in the EWS reference;
 *   - a CalendarItem's Recurrence expanded the way the EWS reference
 *     describes each pattern (DailyRecurrence, WeeklyRecurrence with
 *     FirstDayOfWeek, AbsoluteMonthlyRecurrence, RelativeMonthlyRecurrence
 *     with DaysOfWeek Day/Weekday/WeekendDay and DayOfWeekIndex,
 *     AbsoluteYearlyRecurrence, RelativeYearlyRecurrence) and range
 *     (NoEndRecurrence, EndDateRecurrence inclusive, NumberedRecurrence),
 *     every occurrence at the master's local start time in its
 *     StartTimeZone, with the master's duration. A DayOfMonth past the end
 *     of a month falls on its last day ([MS-OXOCAL] 2.2.1.44.1, the
 *     recurrence blob's monthly pattern). Occurrences are numbered from 1 in
 *     order: the InstanceIndex of OccurrenceItemId.
 */
#ifndef SIM_RECUR_H
#define SIM_RECUR_H

#include <stddef.h>

typedef struct sim_zones sim_zones;

/* Reads CLDR's windowsZones.xml; NULL when it cannot (then only UTC and
 * TimeZoneDefinitions are known). */
sim_zones *sim_zones_load(const char *windows_zones_path);
void sim_zones_free(sim_zones *z);

/* "2024-01-02T03:04:05Z" (an offset instead of Z is applied) -> UTC
 * seconds; -1 when it is not one. */
int sim_xs_parse(const char *s, long long *out);
void sim_xs_format(long long t, char out[32]);

/* What the expansion reads of a stored CalendarItem: each the element's
 * serialised XML with t: prefixes, or NULL when the item has none. */
typedef struct sim_times {
    const char *start, *end, *recurrence, *start_tz, *all_day;
} sim_times;

/* A Start or End as Exchange stores it: UTC. xml is the element; one
 * without an offset is wall time in the StartTimeZone start_tz (NULL: UTC).
 * -1 when it holds no dateTime. */
int sim_recur_utc(const sim_zones *z, const char *start_tz, const char *xml, long long *out);

typedef struct sim_span {
    long long start, end;
} sim_span;

/* The item's occurrences in order, at most max and none starting after
 * until: one for a single item. Returns how many were written to out. */
size_t sim_recur_expand(const sim_zones *z, const sim_times *t, long long until, size_t max,
                        sim_span *out);

#endif
