/* The simulator's own recurrence expansion (tests/ewssim/sim_recur.c),
 * checked against dates worked out by hand from Microsoft's description of
 * each pattern — not against calbridge's mapping, which it exists to check.
 * Needs CLDR's windowsZones.xml (Debian's unicode-cldr-core). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../ewssim/sim_recur.h"

#define ZONES "/usr/share/unicode/cldr/common/supplemental/windowsZones.xml"

static sim_zones *zones;

/* The starts of an item's occurrences, "YYYY-MM-DDThh:mm:ssZ" joined by spaces. */
static const char *starts(const char *start, const char *end, const char *recurrence,
                          const char *tz)
{
    static char out[1024];
    sim_span v[16];
    sim_times t = {start, end, recurrence, tz, NULL};
    size_t n = sim_recur_expand(zones, &t, 4102444800LL /* 2100 */, 16, v);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char s[32];
        sim_xs_format(v[i].start, s);
        strcat(strcat(out, i ? " " : ""), s);
    }
    return out;
}

#define UTC "<t:StartTimeZone Id=\"UTC\"/>"
#define RANGE(n, d) "<t:NumberedRecurrence><t:StartDate>" d "</t:StartDate>" \
                    "<t:NumberOfOccurrences>" #n "</t:NumberOfOccurrences></t:NumberedRecurrence>"

static void patterns(void **st)
{
    (void)st;
    /* Every other week on Monday and Wednesday, weeks from Monday: the
     * Monday before StartDate is not one. */
    assert_string_equal(
        starts("<t:Start>2030-01-02T09:00:00Z</t:Start>", "<t:End>2030-01-02T10:00:00Z</t:End>",
               "<t:Recurrence><t:WeeklyRecurrence><t:Interval>2</t:Interval><t:DaysOfWeek>Monday "
               "Wednesday</t:DaysOfWeek><t:FirstDayOfWeek>Monday</t:FirstDayOfWeek>"
               "</t:WeeklyRecurrence>" RANGE(4, "2030-01-02") "</t:Recurrence>", UTC),
        "2030-01-02T09:00:00Z 2030-01-14T09:00:00Z 2030-01-16T09:00:00Z 2030-01-28T09:00:00Z");
    /* Day 31 of every month: the last day where a month is shorter. */
    assert_string_equal(
        starts("<t:Start>2030-01-31T09:00:00Z</t:Start>", "<t:End>2030-01-31T10:00:00Z</t:End>",
               "<t:Recurrence><t:AbsoluteMonthlyRecurrence><t:Interval>1</t:Interval>"
               "<t:DayOfMonth>31</t:DayOfMonth></t:AbsoluteMonthlyRecurrence>"
               RANGE(4, "2030-01-31") "</t:Recurrence>", UTC),
        "2030-01-31T09:00:00Z 2030-02-28T09:00:00Z 2030-03-31T09:00:00Z 2030-04-30T09:00:00Z");
    /* Apple's "first weekend day of the month". */
    assert_string_equal(
        starts("<t:Start>2030-01-05T10:00:00Z</t:Start>", "<t:End>2030-01-05T11:00:00Z</t:End>",
               "<t:Recurrence><t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval>"
               "<t:DaysOfWeek>WeekendDay</t:DaysOfWeek><t:DayOfWeekIndex>First</t:DayOfWeekIndex>"
               "</t:RelativeMonthlyRecurrence>" RANGE(3, "2030-01-01") "</t:Recurrence>", UTC),
        "2030-01-05T10:00:00Z 2030-02-02T10:00:00Z 2030-03-02T10:00:00Z");
    /* The last Friday of November. */
    assert_string_equal(
        starts("<t:Start>2030-11-29T15:00:00Z</t:Start>", "<t:End>2030-11-29T16:00:00Z</t:End>",
               "<t:Recurrence><t:RelativeYearlyRecurrence><t:DaysOfWeek>Friday</t:DaysOfWeek>"
               "<t:DayOfWeekIndex>Last</t:DayOfWeekIndex><t:Month>November</t:Month>"
               "</t:RelativeYearlyRecurrence>" RANGE(2, "2030-11-29") "</t:Recurrence>", UTC),
        "2030-11-29T15:00:00Z 2031-11-28T15:00:00Z");
    /* EndDate is the last day that may hold one. */
    assert_string_equal(
        starts("<t:Start>2030-01-01T09:00:00Z</t:Start>", "<t:End>2030-01-01T10:00:00Z</t:End>",
               "<t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence>"
               "<t:EndDateRecurrence><t:StartDate>2030-01-01</t:StartDate><t:EndDate>2030-01-03"
               "</t:EndDate></t:EndDateRecurrence></t:Recurrence>", UTC),
        "2030-01-01T09:00:00Z 2030-01-02T09:00:00Z 2030-01-03T09:00:00Z");
}

static void time_zones(void **st)
{
    (void)st;
    if (!zones) {
        skip();   /* no CLDR: only TimeZoneDefinitions are known */
        return;
    }
    /* 09:00 in Berlin stays 09:00 across the change to summer time. */
    assert_string_equal(
        starts("<t:Start>2030-03-30T08:00:00Z</t:Start>", "<t:End>2030-03-30T09:00:00Z</t:End>",
               "<t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence>"
               RANGE(2, "2030-03-30") "</t:Recurrence>",
               "<t:StartTimeZone Id=\"W. Europe Standard Time\"/>"),
        "2030-03-30T08:00:00Z 2030-03-31T07:00:00Z");
    /* A zone given by its own definition: US Eastern's rules. */
    assert_string_equal(
        starts("<t:Start>2030-03-09T14:00:00Z</t:Start>", "<t:End>2030-03-09T15:00:00Z</t:End>",
               "<t:Recurrence><t:DailyRecurrence><t:Interval>1</t:Interval></t:DailyRecurrence>"
               RANGE(2, "2030-03-09") "</t:Recurrence>",
               "<t:StartTimeZone Id=\"Lotus Eastern\" Name=\"Lotus Eastern\"><t:Periods>"
               "<t:Period Bias=\"P0DT5H0M0.0S\" Name=\"Standard\" Id=\"Std\"/>"
               "<t:Period Bias=\"P0DT4H0M0.0S\" Name=\"Daylight\" Id=\"Dlt\"/></t:Periods>"
               "<t:TransitionsGroups><t:TransitionsGroup Id=\"0\"><t:RecurringDayTransition>"
               "<t:To Kind=\"Period\">Dlt</t:To><t:TimeOffset>P0DT2H0M0.0S</t:TimeOffset>"
               "<t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek><t:Occurrence>2</t:Occurrence>"
               "</t:RecurringDayTransition><t:RecurringDayTransition><t:To Kind=\"Period\">Std"
               "</t:To><t:TimeOffset>P0DT2H0M0.0S</t:TimeOffset><t:Month>11</t:Month><t:DayOfWeek>"
               "Sunday</t:DayOfWeek><t:Occurrence>1</t:Occurrence></t:RecurringDayTransition>"
               "</t:TransitionsGroup></t:TransitionsGroups><t:Transitions><t:Transition>"
               "<t:To Kind=\"Group\">0</t:To></t:Transition></t:Transitions></t:StartTimeZone>"),
        "2030-03-09T14:00:00Z 2030-03-10T13:00:00Z");
    /* A Start without an offset is wall time in the StartTimeZone. */
    assert_string_equal(starts("<t:Start>2030-06-01T00:00:00</t:Start>",
                               "<t:End>2030-06-02T00:00:00</t:End>", NULL,
                               "<t:StartTimeZone Id=\"W. Europe Standard Time\"/>"),
                        "2030-05-31T22:00:00Z");
}

int main(void)
{
    zones = sim_zones_load(ZONES);
    if (!zones) fprintf(stderr, "test_sim_recur: %s missing: Windows zone Ids untested\n", ZONES);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(patterns),
        cmocka_unit_test(time_zones),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sim_zones_free(zones);
    return rc;
}
