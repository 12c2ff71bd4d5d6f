/* ical_in: field by field, the unit tests the mapping had before it grew
 * occurrences (test_mapping.c checks meaning across whole fixtures). Two
 * expectations changed with issue 3 on purpose: an UNTIL earlier in the day
 * than the series' start ends it the day before (2024-12-15, not -16), and
 * rules Exchange would shift (Feb 29, several BYMONTHDAY, BYWEEKNO, 2TU,4TU)
 * are carried as single items and reported instead of refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../mapping/ical_in.h"

static tzmap *tz;
static people *ppl;

static int setup(void **st)
{
    (void)st;
    cb_err e;
    if (tzmap_load(TZMAP_CLDR_PATH, TZMAP_TZDATA_PATH, &tz, &e)) return -1;
    return people_parse("U-ALICE,alice@example.org,1,user\nR-ROOM,room1@example.org,1,room\n",
                        "p", &ppl, &e);
}

static int teardown(void **st)
{
    (void)st;
    tzmap_free(tz);
    people_free(ppl);
    return 0;
}

#define HEAD "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:u1\r\nDTSTAMP:20240101T000000Z\r\n"
#define TAIL "END:VEVENT\r\nEND:VCALENDAR\r\n"

static ews_event *map(const char *body, int expect_rc, cb_err *e)
{
    char ics[4096];
    snprintf(ics, sizeof ics, HEAD "%s" TAIL, body);
    map_ctx c = {ppl, tz, "Europe/Berlin", 730, 0, NULL, NULL};
    ews_event *ev = NULL;
    assert_int_equal(ical_in_map(ics, &c, &ev, e), expect_rc);
    return ev;
}

static void windows_zones_come_from_cldr(void **st)
{
    (void)st;
    assert_string_equal(tzmap_windows(tz, "Europe/Berlin"), "W. Europe Standard Time");
    assert_string_equal(tzmap_windows(tz, "US/Pacific"), "Pacific Standard Time");
    assert_string_equal(tzmap_windows(tz, "/mozilla.org/20050126_1/America/New_York"),
                        "Eastern Standard Time");
    assert_null(tzmap_windows(tz, "Mars/Olympus"));
    assert_string_equal(tzmap_iana(tz, "W. Europe Standard Time"), "Europe/Berlin");
}

static void timed_event_in_a_zone(void **st)
{
    (void)st;
    cb_err e;
    ews_event *ev = map("DTSTART;TZID=America/New_York:20240710T090000\r\n"
                       "DTEND;TZID=America/New_York:20240710T100000\r\nSUMMARY:Plan <&>\r\n"
                       "LOCATION:Room 1\r\nCLASS:PRIVATE\r\nTRANSP:TRANSPARENT\r\n"
                       "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n", CB_OK, &e);
    const ews_item *it = ev->items[0];
    assert_string_equal(it->start, "2024-07-10T13:00:00Z");   /* EDT is UTC-4 */
    assert_string_equal(it->end, "2024-07-10T14:00:00Z");
    assert_string_equal(it->tz, "Eastern Standard Time");
    assert_string_equal(it->sensitivity, "Private");
    assert_string_equal(it->busy, "Free");
    assert_int_equal(it->reminder, 15);
    sbuf b;
    sbuf_init(&b);
    ews_item_write_create(it, "k/1/a.ics", "tag1", &b);
    assert_non_null(strstr(b.s, "<t:Subject>Plan &lt;&amp;&gt;</t:Subject>"));
    assert_non_null(strstr(b.s, "<t:StartTimeZone Id=\"Eastern Standard Time\"/>"));
    /* ItemType children precede UID, as the schema demands */
    assert_true(strstr(b.s, "calbridge-tag") < strstr(b.s, "<t:UID>"));
    sbuf_free(&b);
    ews_event_free(ev);
}

static void all_day_is_midnight_to_midnight(void **st)
{
    (void)st;
    cb_err e;
    ews_event *ev = map("DTSTART;VALUE=DATE:20240301\r\nDTEND;VALUE=DATE:20240302\r\n", CB_OK, &e);
    const ews_item *it = ev->items[0];
    assert_true(it->all_day);
    assert_string_equal(it->start, "2024-03-01T00:00:00");
    assert_string_equal(it->end, "2024-03-02T00:00:00");
    assert_string_equal(it->tz, "W. Europe Standard Time");
    ews_event_free(ev);
}

static void attendees_through_the_people_map(void **st)
{
    (void)st;
    cb_err e;
    ews_event *ev = map("DTSTART:20240101T100000Z\r\nORGANIZER:urn:uuid:U-ALICE\r\n"
                       "ATTENDEE;CN=Alice:urn:uuid:U-ALICE\r\nATTENDEE;ROLE=OPT-PARTICIPANT:mailto:bob@ext.com\r\n"
                       "ATTENDEE;CUTYPE=ROOM:urn:uuid:R-ROOM\r\nATTENDEE:mailto:carol@ext.com\r\n"
                       "ATTENDEE:urn:uuid:UNKNOWN\r\n", CB_OK, &e);
    const ews_item *it = ev->items[0];
    assert_int_equal(it->required.n, 1);
    assert_string_equal(it->required.v[0].email, "carol@ext.com");
    assert_int_equal(it->optional.n, 1);
    assert_int_equal(it->resources.n, 1);
    assert_string_equal(it->resources.v[0].email, "room1@example.org");
    assert_string_equal(it->organizer, "alice@example.org");
    assert_non_null(strstr(ev->warnings, "unmapped principal"));
    ews_event_free(ev);
}

typedef struct rrow {
    const char *rrule;
    const char *dtstart;
    const char *expect;     /* substring of the Recurrence XML; EXPANDED = carried as
                               single items and reported; NULL = refused */
} rrow;

static const char EXPANDED[] = "(single items)";

static void rrule_table(void **st)
{
    (void)st;
    const rrow rows[] = {
        {"FREQ=DAILY;INTERVAL=3;COUNT=5", ":20240102T090000Z",
         "<t:DailyRecurrence><t:Interval>3</t:Interval></t:DailyRecurrence><t:NumberedRecurrence>"
         "<t:StartDate>2024-01-02</t:StartDate><t:NumberOfOccurrences>5</t:NumberOfOccurrences>"},
        {"FREQ=WEEKLY;BYDAY=MO,WE;WKST=SU", ":20240101T090000Z",
         "<t:DaysOfWeek>Monday Wednesday</t:DaysOfWeek><t:FirstDayOfWeek>Sunday</t:FirstDayOfWeek>"},
        {"FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=1", ":20240106T090000Z",
         "<t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval><t:DaysOfWeek>WeekendDay"
         "</t:DaysOfWeek><t:DayOfWeekIndex>First</t:DayOfWeekIndex>"},
        {"FREQ=MONTHLY;BYDAY=-1FR", ":20240126T090000Z",
         "<t:DaysOfWeek>Friday</t:DaysOfWeek><t:DayOfWeekIndex>Last</t:DayOfWeekIndex>"},
        {"FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", ":20240131T090000Z",
         "<t:DaysOfWeek>Weekday</t:DaysOfWeek><t:DayOfWeekIndex>Last</t:DayOfWeekIndex>"},
        {"FREQ=MONTHLY;BYMONTHDAY=15;UNTIL=20241215T230000Z", ";TZID=Europe/Berlin:20240115T090000",
         "<t:DayOfMonth>15</t:DayOfMonth></t:AbsoluteMonthlyRecurrence><t:EndDateRecurrence>"
         "<t:StartDate>2024-01-15</t:StartDate><t:EndDate>2024-12-15</t:EndDate>"},
        {"FREQ=YEARLY;BYMONTH=11;BYDAY=4TH", ":20241128T090000Z",
         "<t:DaysOfWeek>Thursday</t:DaysOfWeek><t:DayOfWeekIndex>Fourth</t:DayOfWeekIndex>"
         "<t:Month>November</t:Month>"},
        {"FREQ=YEARLY", ":20240229T090000Z", EXPANDED},
        {"FREQ=YEARLY;INTERVAL=2", ":20240310T090000Z",
         "<t:AbsoluteMonthlyRecurrence><t:Interval>24</t:Interval><t:DayOfMonth>10</t:DayOfMonth>"},
        {"FREQ=MONTHLY;BYMONTHDAY=1,15", ":20240101T090000Z", EXPANDED},
        {"FREQ=HOURLY", ":20240101T090000Z", NULL},
        {"FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO", ":20240101T090000Z", EXPANDED},
        {"FREQ=MONTHLY;BYDAY=2TU,4TU", ":20240101T090000Z", EXPANDED},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char body[512];
        snprintf(body, sizeof body, "DTSTART%s\r\nRRULE:%s\r\n", rows[i].dtstart, rows[i].rrule);
        cb_err e = {0};
        ews_event *ev = map(body, rows[i].expect ? CB_OK : CB_EUNSUPPORTED, &e);
        if (!rows[i].expect) {
            assert_non_null(strstr(e.msg, "event u1: RRULE"));
            continue;
        }
        if (rows[i].expect == EXPANDED) {
            if (!ev->expanded || ev->items[0]->has_recurrence || !strstr(ev->warnings, "RRULE"))
                fail_msg("%s: expected single items and a report", rows[i].rrule);
            ews_event_free(ev);
            continue;
        }
        sbuf b;
        sbuf_init(&b);
        ews_item_write_create(ev->items[0], NULL, NULL, &b);
        if (!strstr(b.s, rows[i].expect)) fail_msg("%s:\n%s\nlacks\n%s", rows[i].rrule, b.s, rows[i].expect);
        sbuf_free(&b);
        ews_event_free(ev);
    }
}

static void bad_input_fails_alone_with_a_reason(void **st)
{
    (void)st;
    cb_err e;
    ews_event *ev = NULL;
    map_ctx c = {ppl, tz, "UTC", 730, 0, NULL, NULL};
    assert_int_equal(ical_in_map("garbage", &c, &ev, &e), CB_EPARSE);
    assert_int_equal(ical_in_map("BEGIN:VCALENDAR\r\nBEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\n"
                                 "END:VCALENDAR\r\n", &c, &ev, &e), CB_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "VTODO"));
    map("SUMMARY:no start\r\n", CB_EPARSE, &e);
    assert_non_null(strstr(e.msg, "event u1: no valid DTSTART"));
    map("DTSTART:20240102T100000Z\r\nDTEND:20240101T100000Z\r\n", CB_EPARSE, &e);
    assert_non_null(strstr(e.msg, "DTEND is before DTSTART"));
}

static void update_sets_and_deletes_in_place(void **st)
{
    (void)st;
    cb_err e;
    ews_event *ea = map("DTSTART:20240101T100000Z\r\nSUMMARY:A\r\nLOCATION:here\r\n", CB_OK, &e);
    ews_event *eb = map("DTSTART:20240101T100000Z\r\nSUMMARY:B\r\n", CB_OK, &e);
    const ews_item *a = ea->items[0], *b = eb->items[0];
    char fa[17], fb[17];
    ews_item_fingerprint(a, fa);
    ews_item_fingerprint(b, fb);
    assert_string_not_equal(fa, fb);
    sbuf x;
    sbuf_init(&x);
    ews_item_write_update(b, "ID&1", NULL, &x);
    assert_non_null(strstr(x.s, "<t:ItemId Id=\"ID&amp;1\"/>"));
    assert_non_null(strstr(x.s, "<t:DeleteItemField><t:FieldURI FieldURI=\"calendar:Location\"/>"));
    assert_non_null(strstr(x.s, "<t:FieldURI FieldURI=\"item:Subject\"/><t:CalendarItem><t:Subject>B"));
    assert_null(strstr(x.s, "<t:UID>"));
    sbuf_free(&x);
    ews_event_free(ea);
    ews_event_free(eb);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(windows_zones_come_from_cldr),
        cmocka_unit_test(timed_event_in_a_zone),
        cmocka_unit_test(all_day_is_midnight_to_midnight),
        cmocka_unit_test(attendees_through_the_people_map),
        cmocka_unit_test(rrule_table),
        cmocka_unit_test(bad_input_fails_alone_with_a_reason),
        cmocka_unit_test(update_sets_and_deletes_in_place),
    };
    return cmocka_run_group_tests(t, setup, teardown);
}
