/* peruser: CalendarServer's per-user form, written as its PerUserDataFilter
 * writes it (split, merge with the stored text), read back as one user sees
 * it, and the PERUSER rows its index holds (ccs-write-path.md 1.1 step 7,
 * 1.3). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../mapping/peruser.h"

static tzmap *tz;

static int setup(void **st)
{
    (void)st;
    cb_err e;
    return tzmap_load(TZMAP_CLDR_PATH, TZMAP_TZDATA_PATH, &tz, &e);
}

static int teardown(void **st)
{
    (void)st;
    tzmap_free(tz);
    return 0;
}

static map_ctx ctx(void)
{
    return (map_ctx){NULL, tz, "Europe/Berlin", 730, 0, NULL, NULL};
}

#define CAL(body) "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n" \
                  "X-CALENDARSERVER-ACCESS:CONFIDENTIAL\r\n" body "END:VCALENDAR\r\n"
#define ALARM(t) "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:r\r\nTRIGGER:" t "\r\nEND:VALARM\r\n"
#define SINGLE "BEGIN:VEVENT\r\nUID:e1\r\nDTSTAMP:20240101T000000Z\r\n"      \
               "DTSTART:20300107T100000Z\r\nDTEND:20300107T110000Z\r\nSUMMARY:s\r\n" \
               "TRANSP:TRANSPARENT\r\nX-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT30M\r\n" \
               "X-MICROSOFT-CDO-BUSYSTATUS:FREE\r\n" ALARM("-PT15M") "END:VEVENT\r\n"

/* The text between BEGIN and END of the VEVENT (the shared data). */
static char *shared_event(const char *text)
{
    const char *a = strstr(text, "BEGIN:VEVENT"), *b = a ? strstr(a, "END:VEVENT") : NULL;
    return a && b ? strndup(a, (size_t)(b - a)) : strdup("");
}

static char *store(const char *ics, const char *user, const char *old)
{
    map_ctx c = ctx();
    icalcomponent *cal = icalparser_parse_string(ics);
    assert_non_null(cal);
    cb_err e = {0};
    char *text = peruser_store(cal, user, old, &c, &e);
    assert_non_null(text);
    icalcomponent_free(cal);
    return text;
}

static void the_writers_data_goes_into_their_block(void **st)
{
    (void)st;
    char *text = store(CAL(SINGLE), "owner-1", NULL);
    char *ev = shared_event(text);
    assert_null(strstr(ev, "TRANSP"));
    assert_null(strstr(ev, "VALARM"));
    assert_null(strstr(ev, "X-APPLE-TRAVEL"));
    assert_null(strstr(ev, "X-MICROSOFT-CDO"));
    assert_non_null(strstr(ev, "SUMMARY:s"));
    const char *blk = strstr(text, "BEGIN:X-CALENDARSERVER-PERUSER\r\nUID:e1\r\n"
                                   "X-CALENDARSERVER-PERUSER-UID:owner-1\r\n"
                                   "BEGIN:X-CALENDARSERVER-PERINSTANCE\r\n");
    assert_non_null(blk);
    assert_non_null(strstr(blk, "TRANSP:TRANSPARENT\r\n"));
    assert_non_null(strstr(blk, "X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT30M\r\n"));
    assert_non_null(strstr(blk, "TRIGGER:-PT15M"));
    /* The calendar's own X- properties are not anybody's. */
    assert_true(strstr(text, "X-CALENDARSERVER-ACCESS:CONFIDENTIAL") < strstr(text, "BEGIN:VEVENT"));
    assert_non_null(strstr(text, "END:X-CALENDARSERVER-PERUSER\r\nEND:VCALENDAR\r\n"));
    free(ev);
    free(text);
}

static void an_all_day_events_implied_opaque_is_made_explicit(void **st)
{
    (void)st;
    char *text = store(CAL("BEGIN:VEVENT\r\nUID:d1\r\nDTSTAMP:20240101T000000Z\r\n"
                           "DTSTART;VALUE=DATE:20300107\r\nDTEND;VALUE=DATE:20300108\r\n"
                           "SUMMARY:day\r\nEND:VEVENT\r\n"), "owner-1", NULL);
    const char *blk = strstr(text, "X-CALENDARSERVER-PERUSER-UID:owner-1");
    assert_non_null(blk);
    assert_non_null(strstr(blk, "TRANSP:OPAQUE"));
    free(text);
}

#define OLD_BLOCK(user, body) "BEGIN:X-CALENDARSERVER-PERUSER\r\nUID:e1\r\n"            \
                              "X-CALENDARSERVER-PERUSER-UID:" user "\r\n" body          \
                              "END:X-CALENDARSERVER-PERUSER\r\n"
#define INST(body) "BEGIN:X-CALENDARSERVER-PERINSTANCE\r\n" body "END:X-CALENDARSERVER-PERINSTANCE\r\n"

static void other_users_blocks_survive_an_update_and_the_writers_is_replaced(void **st)
{
    (void)st;
    const char *old = CAL("BEGIN:VEVENT\r\nUID:e1\r\nDTSTART:20300107T100000Z\r\n"
                          "DTEND:20300107T110000Z\r\nSUMMARY:old\r\nEND:VEVENT\r\n"
                          OLD_BLOCK("owner-1", INST("TRANSP:OPAQUE\r\n" ALARM("-PT99M")))
                          OLD_BLOCK("sharee-2", INST("TRANSP:TRANSPARENT\r\n" ALARM("-PT5M"))));
    char *text = store(CAL(SINGLE), "owner-1", old);
    assert_null(strstr(text, "-PT99M"));   /* the owner's old alarm is gone */
    const char *sharee = strstr(text, "X-CALENDARSERVER-PERUSER-UID:sharee-2");
    assert_non_null(sharee);
    assert_non_null(strstr(sharee, "TRIGGER:-PT5M"));
    assert_non_null(strstr(text, "X-CALENDARSERVER-PERUSER-UID:owner-1"));
    free(text);
}

#define SERIES(extra) "BEGIN:VEVENT\r\nUID:e1\r\nDTSTAMP:20240101T000000Z\r\n"            \
                      "DTSTART;TZID=Europe/Berlin:20300107T100000\r\n"                    \
                      "DTEND;TZID=Europe/Berlin:20300107T110000\r\n"                      \
                      "RRULE:FREQ=WEEKLY;COUNT=5\r\nSUMMARY:weekly\r\n" ALARM("-PT15M")  \
                      "END:VEVENT\r\n" extra

static void a_sharees_instances_stay_only_where_the_series_still_has_them(void **st)
{
    (void)st;
    const char *old = CAL(SERIES("") OLD_BLOCK("sharee-2",
        INST(ALARM("-PT1M"))
        INST("RECURRENCE-ID;TZID=Europe/Berlin:20300114T100000\r\n" ALARM("-PT2M"))
        INST("RECURRENCE-ID;TZID=Europe/Berlin:20300115T100000\r\n" ALARM("-PT3M"))));
    char *text = store(CAL(SERIES("")), "owner-1", old);
    assert_non_null(strstr(text, "TRIGGER:-PT1M"));   /* the master's */
    assert_non_null(strstr(text, "TRIGGER:-PT2M"));   /* a Monday: an instance */
    assert_null(strstr(text, "TRIGGER:-PT3M"));       /* a Tuesday: none */
    free(text);
    /* The series became a single event: only the master's data stays. */
    text = store(CAL(SINGLE), "owner-1", old);
    assert_non_null(strstr(text, "TRIGGER:-PT1M"));
    assert_null(strstr(text, "TRIGGER:-PT2M"));
    free(text);
}

static void an_override_keeps_its_own_data_when_it_differs(void **st)
{
    (void)st;
    char *text = store(CAL(SERIES("BEGIN:VEVENT\r\nUID:e1\r\nDTSTAMP:20240101T000000Z\r\n"
                                  "RECURRENCE-ID;TZID=Europe/Berlin:20300114T100000\r\n"
                                  "DTSTART;TZID=Europe/Berlin:20300114T120000\r\n"
                                  "DTEND;TZID=Europe/Berlin:20300114T130000\r\n"
                                  "SUMMARY:moved\r\n" ALARM("-PT45M") "END:VEVENT\r\n")),
                       "owner-1", NULL);
    const char *blk = strstr(text, "X-CALENDARSERVER-PERUSER-UID:owner-1");
    assert_non_null(blk);
    const char *inst = strstr(blk, "RECURRENCE-ID;TZID=Europe/Berlin:20300114T100000");
    assert_non_null(inst);
    assert_non_null(strstr(inst, "TRIGGER:-PT45M"));
    /* Read back as the owner: each component has its own alarm again. */
    map_ctx c = ctx();
    icalcomponent *cal = peruser_parse(text, "owner-1", &c);
    assert_non_null(cal);
    int alarms = 0;
    for (icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT); ev;
         ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
        icalcomponent *a = icalcomponent_get_first_component(ev, ICAL_VALARM_COMPONENT);
        assert_non_null(a);
        struct icaltriggertype t = icalproperty_get_trigger(
            icalcomponent_get_first_property(a, ICAL_TRIGGER_PROPERTY));
        int mins = icaldurationtype_as_int(t.duration) / 60;
        assert_int_equal(mins, icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY)
                                   ? -45 : -15);
        alarms++;
    }
    assert_int_equal(alarms, 2);
    icalcomponent_free(cal);
    free(text);
}

static void each_user_reads_their_own_data(void **st)
{
    (void)st;
    const char *stored = CAL("BEGIN:VEVENT\r\nUID:e1\r\nDTSTART:20300107T100000Z\r\n"
                             "DTEND:20300107T110000Z\r\nSUMMARY:x\r\nEND:VEVENT\r\n"
                             OLD_BLOCK("owner-1", INST("TRANSP:TRANSPARENT\r\n"
                                       "X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT1H\r\n"))
                             OLD_BLOCK("sharee-2", INST(ALARM("-PT5M"))));
    map_ctx c = ctx();
    icalcomponent *cal = peruser_parse(stored, "owner-1", &c);
    icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
    assert_int_equal(icalproperty_get_transp(icalcomponent_get_first_property(ev, ICAL_TRANSP_PROPERTY)),
                     ICAL_TRANSP_TRANSPARENT);
    assert_non_null(icalcomponent_get_first_property(ev, ICAL_X_PROPERTY));
    assert_null(icalcomponent_get_first_component(ev, ICAL_VALARM_COMPONENT));
    icalcomponent_free(cal);
    cal = peruser_parse(stored, "sharee-2", &c);
    ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
    assert_non_null(icalcomponent_get_first_component(ev, ICAL_VALARM_COMPONENT));
    assert_null(icalcomponent_get_first_property(ev, ICAL_TRANSP_PROPERTY));
    icalcomponent_free(cal);
    /* Nobody's block: CalendarServer's default makes an all-day event free. */
    cal = peruser_parse(CAL("BEGIN:VEVENT\r\nUID:d\r\nDTSTART;VALUE=DATE:20300107\r\n"
                            "DTEND;VALUE=DATE:20300108\r\nEND:VEVENT\r\n"), "owner-1", &c);
    ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
    assert_int_equal(icalproperty_get_transp(icalcomponent_get_first_property(ev, ICAL_TRANSP_PROPERTY)),
                     ICAL_TRANSP_TRANSPARENT);
    icalcomponent_free(cal);
}

static size_t rows_for(const char *ics, const char *user, int transparent, peruser_row *out,
                       char **keep, icalcomponent **calp)
{
    map_ctx c = ctx();
    icalcomponent *cal = icalparser_parse_string(ics);
    cb_err e = {0};
    char *text = peruser_store(cal, user, NULL, &c, &e);
    peruser_index *ix = peruser_index_new(text, cal, &c);
    assert_non_null(ix);
    icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
    size_t n = peruser_index_rows(ix, ev, 1893924000LL, transparent, out, 8);
    static char users[8][64];   /* the rows' names live as long as the index */
    for (size_t i = 0; i < n; i++) {
        snprintf(users[i], sizeof users[i], "%s", out[i].user);
        out[i].user = users[i];
    }
    peruser_index_free(ix);
    *keep = text;
    *calp = cal;
    return n;
}

static void the_index_rows_say_who_sees_what(void **st)
{
    (void)st;
    peruser_row r[8];
    char *text;
    icalcomponent *cal;
    /* Free for its owner, with travel time: one row, theirs. */
    size_t n = rows_for(CAL(SINGLE), "owner-1", 0, r, &text, &cal);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].user, "owner-1");
    assert_int_equal(r[0].transparent, 1);
    assert_int_equal(r[0].before, 1800);
    assert_int_equal(r[0].after, -1);
    free(text);
    icalcomponent_free(cal);
    /* An all-day event the owner keeps busy: TIME_RANGE says transparent
     * (adjustedTransp of the shared data), the owner and "." say opaque. */
    n = rows_for(CAL("BEGIN:VEVENT\r\nUID:d1\r\nDTSTART;VALUE=DATE:20300107\r\n"
                     "DTEND;VALUE=DATE:20300108\r\nEND:VEVENT\r\n"), "owner-1", 1, r, &text, &cal);
    assert_int_equal(n, 2);
    assert_string_equal(r[0].user, ".");
    assert_int_equal(r[0].transparent, 0);
    assert_string_equal(r[1].user, "owner-1");
    assert_int_equal(r[1].transparent, 0);
    free(text);
    icalcomponent_free(cal);
    /* A plain busy event: nobody differs, no row. */
    n = rows_for(CAL("BEGIN:VEVENT\r\nUID:b\r\nDTSTART:20300107T100000Z\r\n"
                     "DTEND:20300107T110000Z\r\nTRANSP:OPAQUE\r\nEND:VEVENT\r\n"), "owner-1", 0, r,
                 &text, &cal);
    assert_int_equal(n, 0);
    free(text);
    icalcomponent_free(cal);
}

static void broken_blocks_do_not_crash(void **st)
{
    (void)st;
    map_ctx c = ctx();
    const char *bad[] = {
        CAL("BEGIN:X-CALENDARSERVER-PERUSER\r\nBEGIN:X-CALENDARSERVER-PERINSTANCE\r\n"),
        CAL("BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20300107T100000Z\r\nEND:VEVENT\r\n"
            "BEGIN:X-CALENDARSERVER-PERUSER\r\nX-CALENDARSERVER-PERUSER-UID:o\r\n"
            "BEGIN:X-CALENDARSERVER-PERINSTANCE\r\nRECURRENCE-ID:garbage\r\n"
            "X-APPLE-TRAVEL-DURATION:notaduration\r\nBEGIN:VALARM\r\n"
            "END:X-CALENDARSERVER-PERUSER\r\n"),
        "BEGIN:X-CALENDARSERVER-PERUSER\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        icalcomponent *cal = peruser_parse(bad[i], "o", &c);
        if (cal) icalcomponent_free(cal);
    }
    char *text = store(CAL(SINGLE), "owner-1", bad[1]);
    assert_non_null(strstr(text, "X-CALENDARSERVER-PERUSER-UID:owner-1"));
    free(text);
}

/* Text inside values is never taken for structure: a summary holding the
 * calendar's last line, a description holding a block's first. */
static void values_are_not_structure(void **st)
{
    (void)st;
    char *text = store(CAL("BEGIN:VEVENT\r\nUID:v\r\nDTSTART:20300107T100000Z\r\n"
                           "SUMMARY:see END:VCALENDAR here\r\nTRANSP:OPAQUE\r\nEND:VEVENT\r\n"),
                       "owner-1", NULL);
    assert_non_null(strstr(text, "SUMMARY:see END:VCALENDAR here"));
    assert_non_null(strstr(text, "X-CALENDARSERVER-PERUSER-UID:owner-1"));
    assert_non_null(strstr(text, "END:X-CALENDARSERVER-PERUSER\r\nEND:VCALENDAR\r\n"));
    free(text);
    assert_false(peruser_has_blocks(CAL("BEGIN:VEVENT\r\nUID:v\r\nDESCRIPTION:a\r\n"
                                        " BEGIN:X-CALENDARSERVER-PERUSER\r\n x\r\nEND:VEVENT\r\n")));
    assert_false(peruser_has_blocks("DESCRIPTION:BEGIN:X-CALENDARSERVER-PERUSER\r\n"));
    assert_true(peruser_has_blocks(CAL(OLD_BLOCK("u", ""))));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_writers_data_goes_into_their_block),
        cmocka_unit_test(an_all_day_events_implied_opaque_is_made_explicit),
        cmocka_unit_test(other_users_blocks_survive_an_update_and_the_writers_is_replaced),
        cmocka_unit_test(a_sharees_instances_stay_only_where_the_series_still_has_them),
        cmocka_unit_test(an_override_keeps_its_own_data_when_it_differs),
        cmocka_unit_test(each_user_reads_their_own_data),
        cmocka_unit_test(the_index_rows_say_who_sees_what),
        cmocka_unit_test(broken_blocks_do_not_crash),
        cmocka_unit_test(values_are_not_structure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
