/* The mapping's meaning, checked two independent ways: libical's expansion
 * of the source against the project's EWS expander on the mapped items,
 * and again after EWS -> iCalendar -> EWS. Every request the mapping writes
 * is validated against Microsoft's EWS schema. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../bridge/exchange/ews_xml.h"
#include "../../mapping/ews_in.h"
#include "../../mapping/ical_in.h"
#include "../../mapping/ical_out.h"
#include "../../mapping/occur.h"

#define SHARED "../shared"
#define SCHEMA SHARED "/ews/schema/libxml2/ews.xsd"
#define ICS_DIR SHARED "/ccs/ics"
#define TWO_YEARS (730LL * 86400)

static tzmap *tz;
static people *ppl;
static xmlSchemaPtr schema;

static int setup(void **st)
{
    (void)st;
    cb_err e;
    if (tzmap_load(TZMAP_CLDR_PATH, TZMAP_TZDATA_PATH, &tz, &e)) return -1;
    if (people_parse("U-ALICE,alice@example.org,1,user\nR-ROOM,room1@example.org,1,room\n",
                     "p", &ppl, &e))
        return -1;
    xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(SCHEMA);
    if (pc) {
        xmlSchemaSetParserErrors(pc, NULL, NULL, NULL);
        schema = xmlSchemaParse(pc);
        xmlSchemaFreeParserCtxt(pc);
    }
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    tzmap_free(tz);
    people_free(ppl);
    if (schema) xmlSchemaFree(schema);
    return 0;
}

static map_ctx ctx(void)
{
    return (map_ctx){ppl, tz, "Europe/Berlin", 730, 0, NULL, NULL};
}

/* ---- schema validation of one operation --------------------------------- */

static char *schema_error;

static void collect_error(void *arg, const char *fmt, ...)
{
    (void)arg;
    if (schema_error) return;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&schema_error, fmt, ap) < 0) schema_error = NULL;
    va_end(ap);
}

/* Validates the first element of the envelope's Body; NULL when valid. */
static char *validate_op(const char *op_xml)
{
    if (!schema) return NULL;
    sbuf env;
    sbuf_init(&env);
    ews_xml_envelope(&env, "Exchange2016", NULL, op_xml);
    xmlDoc *doc = xmlReadMemory(env.s, (int)env.len, NULL, NULL, XML_PARSE_NONET);
    sbuf_free(&env);
    if (!doc) return strdup("not well-formed");
    xmlNode *n = xmlDocGetRootElement(doc)->children;
    while (n && (n->type != XML_ELEMENT_NODE || xmlStrcmp(n->name, BAD_CAST "Body"))) n = n->next;
    n = n ? n->children : NULL;
    while (n && n->type != XML_ELEMENT_NODE) n = n->next;
    xmlDoc *body = xmlNewDoc(BAD_CAST "1.0");
    xmlDocSetRootElement(body, xmlDocCopyNode(n, body, 1));
    xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(schema);
    free(schema_error);
    schema_error = NULL;
    xmlSchemaSetValidErrors(vc, collect_error, collect_error, NULL);
    int rc = xmlSchemaValidateDoc(vc, body);
    xmlSchemaFreeValidCtxt(vc);
    xmlFreeDoc(body);
    xmlFreeDoc(doc);
    if (rc == 0) return NULL;
    char *e = schema_error ? schema_error : strdup("invalid");
    schema_error = NULL;
    return e;
}

static void assert_valid_requests(const ews_event *ev)
{
    sbuf op;
    sbuf_init(&op);
    sbuf_cat(&op, "<m:CreateItem SendMeetingInvitations=\"SendToNone\"><m:Items>");
    for (size_t i = 0; i < ev->n; i++) ews_item_write_create(ev->items[i], "k", "t", &op);
    sbuf_cat(&op, "</m:Items></m:CreateItem>");
    char *bad = validate_op(op.s);
    if (bad) fail_msg("event %s: CreateItem invalid: %s", ev->uid, bad);
    sbuf_free(&op);
    for (size_t i = 0; i < ev->n; i++) {
        sbuf del, upd, x;
        sbuf_init(&del), sbuf_init(&upd), sbuf_init(&x);
        ews_item_write_update(ev->items[i], "ID", "CK", &upd);
        ews_item_write_occurrences(ev->items[i], "MASTER", &del, &upd);
        sbuf_printf(&x, "<m:UpdateItem ConflictResolution=\"AlwaysOverwrite\" "
                        "SendMeetingInvitationsOrCancellations=\"SendToNone\"><m:ItemChanges>%s"
                        "</m:ItemChanges></m:UpdateItem>", upd.s);
        if ((bad = validate_op(x.s))) fail_msg("event %s: UpdateItem invalid: %s", ev->uid, bad);
        if (del.len) {
            sbuf_free(&x);
            sbuf_init(&x);
            sbuf_printf(&x, "<m:DeleteItem DeleteType=\"MoveToDeletedItems\"><m:ItemIds>%s"
                            "</m:ItemIds></m:DeleteItem>", del.s);
            if ((bad = validate_op(x.s))) fail_msg("event %s: DeleteItem invalid: %s", ev->uid, bad);
        }
        sbuf_free(&del), sbuf_free(&upd), sbuf_free(&x);
    }
}

/* ---- occurrences both ways ---------------------------------------------- */

static long long first_start(const ews_event *ev)
{
    long long first = 1LL << 62;
    tzdef_cache c = {0};
    for (size_t i = 0; i < ev->n; i++) {
        long long t;
        if (!occur_parse_xs(ev->items[i]->start, ews_item_zone(ev->items[i], tz, &c), &t) &&
            t < first)
            first = t;
    }
    tzdef_cache_free(&c);
    return first;
}

static void ews_side(ews_event *const *ev, size_t n, long long from, long long to, occur_list *l)
{
    tzdef_cache c = {0};
    cb_err e;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(occur_ews(ev[i], tz, &c, from, to, l, &e), CB_OK);
    tzdef_cache_free(&c);
    occur_sort(l);
}

/* ical -> EWS stored form -> ews_in -> iCalendar -> ical_in: the events the
 * Apple side would get back, mapped again. */
static char *round_trip(const ews_event *ev, const map_ctx *mc)
{
    sbuf x;
    sbuf_init(&x);
    sbuf_cat(&x, "<m:Items xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" "
                 "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">");
    for (size_t i = 0; i < ev->n; i++) {
        char id[32];
        snprintf(id, sizeof id, "ID%zu", i);
        ews_item_write_stored(ev->items[i], id, &x);
    }
    sbuf_cat(&x, "</m:Items>");
    ews_event **back = NULL;
    size_t n = 0;
    cb_err e;
    int rc = ews_in_parse(x.s, x.len, tz, &back, &n, &e);
    sbuf_free(&x);
    if (rc) fail_msg("event %s: reading the stored form back: %s", ev->uid, e.msg);
    char *ics = ical_out_calendar(back, n, mc, &e);
    ews_in_events_free(back, n);
    assert_non_null(ics);
    return ics;
}

/* Checks one mapped event; returns its number of occurrences. */
static size_t check_event(icalcomponent *cal, const ews_event *ev, const map_ctx *mc)
{
    assert_valid_requests(ev);
    long long from = first_start(ev), to = from + TWO_YEARS;
    occur_list src = {0}, dst = {0}, again = {0};
    tzdef_cache c = {0};
    cb_err e;
    assert_int_equal(occur_ical(cal, ev->uid, mc, &c, from, to, 100000, &src, &e), CB_OK);
    tzdef_cache_free(&c);
    occur_sort(&src);
    ews_side((ews_event *const *)&ev, 1, from, to, &dst);
    char diff[300];
    if (occur_compare(&src, &dst, diff, sizeof diff))
        fail_msg("event %s: source and Exchange differ: %s", ev->uid, diff);
    char *ics = round_trip(ev, mc);
    ical_in_result *r = NULL;
    size_t n = 0;
    assert_int_equal(ical_in_map_all(ics, mc, &r, &n, &e), CB_OK);
    for (size_t i = 0; i < n; i++) {
        if (!r[i].ev) fail_msg("event %s: mapping back failed: %s\n%s", ev->uid, r[i].err.msg, ics);
        ews_side(&r[i].ev, 1, from, to, &again);
    }
    occur_sort(&again);
    if (occur_compare(&src, &again, diff, sizeof diff))
        fail_msg("event %s: differs after EWS -> iCalendar -> EWS: %s\n%s", ev->uid, diff, ics);
    size_t count = src.n;
    ical_in_results_free(r, n);
    free(ics);
    occur_free(&src), occur_free(&dst), occur_free(&again);
    return count;
}

static size_t check_text(const char *ics, const map_ctx *mc, const char *name)
{
    ical_in_result *r = NULL;
    size_t n = 0, total = 0;
    cb_err e;
    assert_int_equal(ical_in_map_all(ics, mc, &r, &n, &e), CB_OK);
    icalcomponent *cal = icalparser_parse_string(ics);
    for (size_t i = 0; i < n; i++) {
        if (!r[i].ev) {
            printf("    refused %s: %s\n", name, r[i].err.msg);
            assert_non_null(strstr(r[i].err.msg, r[i].uid));
            continue;
        }
        size_t k = check_event(cal, r[i].ev, mc);
        printf("    ok      %s: %s: %zu occurrences agree%s%s\n", name, r[i].uid, k,
               r[i].ev->warnings ? "; reported: " : "", r[i].ev->warnings ? r[i].ev->warnings : "");
        total++;
    }
    icalcomponent_free(cal);
    ical_in_results_free(r, n);
    return total;
}

/* ---- table: one row per RRULE shape ------------------------------------ */

typedef struct row {
    const char *name, *props;
    const char *pattern;    /* expected pattern element, NULL = expanded */
} row;

static const row ROWS[] = {
    {"daily every 3 days", "DTSTART;TZID=Europe/Berlin:20240301T090000\r\nRRULE:FREQ=DAILY;INTERVAL=3;COUNT=40\r\n", "DailyRecurrence"},
    {"weekdays by DAILY;BYDAY", "DTSTART;TZID=Europe/Berlin:20240304T090000\r\nRRULE:FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR\r\n", "WeeklyRecurrence"},
    {"every 2 weeks, WKST=SU", "DTSTART;TZID=America/New_York:19970902T090000\r\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;WKST=SU;COUNT=8\r\n", "WeeklyRecurrence"},
    {"every 2 weeks, WKST=MO", "DTSTART;TZID=America/New_York:19970902T090000\r\nRRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,SU;WKST=MO;COUNT=8\r\n", "WeeklyRecurrence"},
    {"monthly on the 15th", "DTSTART;TZID=Europe/Berlin:20240115T100000\r\nRRULE:FREQ=MONTHLY\r\n", "AbsoluteMonthlyRecurrence"},
    {"monthly on the 31st (skips short months)", "DTSTART;TZID=Europe/Berlin:20240131T100000\r\nRRULE:FREQ=MONTHLY\r\n", NULL},
    {"monthly on the last of 28..31", "DTSTART;TZID=Europe/Berlin:20240131T100000\r\nRRULE:FREQ=MONTHLY;BYMONTHDAY=28,29,30,31;BYSETPOS=-1\r\n", "AbsoluteMonthlyRecurrence"},
    {"second Tuesday", "DTSTART;TZID=Europe/Berlin:20240109T100000\r\nRRULE:FREQ=MONTHLY;BYDAY=2TU\r\n", "RelativeMonthlyRecurrence"},
    {"first weekend day (Apple)", "DTSTART;TZID=Europe/Berlin:20240106T100000\r\nRRULE:FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=1\r\n", "RelativeMonthlyRecurrence"},
    {"last weekday", "DTSTART;TZID=Europe/Berlin:20240131T170000\r\nRRULE:FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1\r\n", "RelativeMonthlyRecurrence"},
    {"last Friday", "DTSTART;TZID=Europe/Berlin:20240126T170000\r\nRRULE:FREQ=MONTHLY;BYDAY=-1FR\r\n", "RelativeMonthlyRecurrence"},
    {"fifth Monday (no Exchange form)", "DTSTART;TZID=Europe/Berlin:20240129T100000\r\nRRULE:FREQ=MONTHLY;BYDAY=5MO\r\n", NULL},
    {"last day of the month", "DTSTART;VALUE=DATE:20240131\r\nRRULE:FREQ=MONTHLY;BYMONTHDAY=-1\r\n", "RelativeMonthlyRecurrence"},
    {"yearly on a date", "DTSTART;TZID=Europe/Berlin:20240704T120000\r\nRRULE:FREQ=YEARLY;COUNT=3\r\n", "AbsoluteYearlyRecurrence"},
    {"yearly last Sunday of March", "DTSTART;TZID=Europe/Berlin:20240331T120000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n", "RelativeYearlyRecurrence"},
    {"every 2 years", "DTSTART;TZID=Europe/Berlin:20240704T120000\r\nRRULE:FREQ=YEARLY;INTERVAL=2\r\n", "AbsoluteMonthlyRecurrence"},
    {"Feb 29 (skips years)", "DTSTART;VALUE=DATE:20240229\r\nRRULE:FREQ=YEARLY\r\n", NULL},
    {"UNTIL in another zone", "DTSTART;TZID=Asia/Tokyo:20240301T080000\r\nRRULE:FREQ=DAILY;UNTIL=20240309T230000Z\r\n", "DailyRecurrence"},
    {"UNTIL earlier in the day than the start", "DTSTART;TZID=America/New_York:20240301T180000\r\nRRULE:FREQ=DAILY;UNTIL=20240309T120000Z\r\n", "DailyRecurrence"},
    {"across DST, floating", "DTSTART:20240320T093000\r\nRRULE:FREQ=WEEKLY;COUNT=6\r\n", "WeeklyRecurrence"},
    {"BYHOUR (no Exchange form)", "DTSTART;TZID=Europe/Berlin:20240301T090000\r\nRRULE:FREQ=DAILY;BYHOUR=9,15;COUNT=6\r\n", NULL},
    {"RDATE", "DTSTART;TZID=Europe/Berlin:20240301T090000\r\nRRULE:FREQ=WEEKLY;COUNT=4\r\nRDATE;TZID=Europe/Berlin:20240304T140000\r\n", NULL},
    {"all-day with exceptions", "DTSTART;VALUE=DATE:20240304\r\nDTEND;VALUE=DATE:20240305\r\nRRULE:FREQ=WEEKLY;COUNT=10\r\nEXDATE;VALUE=DATE:20240311\r\n", "WeeklyRecurrence"},
};

#define HEAD "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:row\r\nDTSTAMP:20240101T000000Z\r\nSUMMARY:Row\r\n"
#define TAIL "END:VEVENT\r\n"

static void rrule_shapes(void **st)
{
    (void)st;
    map_ctx mc = ctx();
    for (size_t i = 0; i < sizeof ROWS / sizeof ROWS[0]; i++) {
        char ics[2048];
        snprintf(ics, sizeof ics, HEAD "%s%s" TAIL "END:VCALENDAR\r\n", ROWS[i].props,
                 strstr(ROWS[i].props, "VALUE=DATE") ? "" : "DURATION:PT1H\r\n");
        ews_event *ev = NULL;
        cb_err e;
        if (ical_in_map(ics, &mc, &ev, &e) != CB_OK) fail_msg("%s: %s", ROWS[i].name, e.msg);
        sbuf b;
        sbuf_init(&b);
        ews_item_write_create(ev->items[0], NULL, NULL, &b);
        if (ROWS[i].pattern) {
            if (ev->expanded || !strstr(b.s, ROWS[i].pattern))
                fail_msg("%s: expected %s in %s", ROWS[i].name, ROWS[i].pattern, b.s);
        } else if (!ev->expanded) {
            fail_msg("%s: expected single items, got %s", ROWS[i].name, b.s);
        }
        sbuf_free(&b);
        icalcomponent *cal = icalparser_parse_string(ics);
        size_t k = check_event(cal, ev, &mc);
        printf("    ok      %-42s %3zu occurrences agree%s\n", ROWS[i].name, k,
               ev->expanded ? " (as single items)" : "");
        icalcomponent_free(cal);
        ews_event_free(ev);
    }
}

static void weekend_day_rule_is_relative_monthly(void **st)
{
    (void)st;
    map_ctx mc = ctx();
    ews_event *ev = NULL;
    cb_err e;
    assert_int_equal(ical_in_map(HEAD "DTSTART;TZID=Europe/Berlin:20240106T100000\r\n"
                                 "DURATION:PT1H\r\nRRULE:FREQ=MONTHLY;BYDAY=SA,SU;BYSETPOS=1\r\n"
                                 TAIL "END:VCALENDAR\r\n", &mc, &ev, &e), CB_OK);
    sbuf b;
    sbuf_init(&b);
    ews_item_write_create(ev->items[0], NULL, NULL, &b);
    assert_non_null(strstr(b.s, "<t:RelativeMonthlyRecurrence><t:Interval>1</t:Interval>"
                                "<t:DaysOfWeek>WeekendDay</t:DaysOfWeek>"
                                "<t:DayOfWeekIndex>First</t:DayOfWeekIndex>"));
    assert_non_null(strstr(b.s, "<t:StartTimeZone Id=\"W. Europe Standard Time\"/>"));
    sbuf_free(&b);
    ews_event_free(ev);
}

static void exceptions_and_travel_on_a_series(void **st)
{
    (void)st;
    map_ctx mc = ctx();
    const char *ics =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
        "BEGIN:VEVENT\r\nUID:tr\r\nDTSTAMP:20240101T000000Z\r\nSUMMARY:Client visit\r\n"
        "DTSTART;TZID=Europe/Berlin:20240304T100000\r\nDTEND;TZID=Europe/Berlin:20240304T110000\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=6\r\nEXDATE;TZID=Europe/Berlin:20240311T100000\r\n"
        "X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT30M\r\n"
        "X-APPLE-TRAVEL-RETURN-DURATION;VALUE=DURATION:PT15M\r\n"
        "ORGANIZER:urn:x-uid:U-ALICE\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED;CN=Bob:mailto:bob@ext.example\r\n"
        "ATTENDEE;CUTYPE=ROOM:urn:x-uid:R-ROOM\r\n"
        "X-CALENDARSERVER-PRIVATE-COMMENT:bring the slides\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:tr\r\nDTSTAMP:20240101T000000Z\r\nSUMMARY:Client visit (moved)\r\n"
        "RECURRENCE-ID;TZID=Europe/Berlin:20240318T100000\r\n"
        "DTSTART;TZID=Europe/Berlin:20240318T140000\r\nDTEND;TZID=Europe/Berlin:20240318T150000\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n";
    ews_event *ev = NULL;
    cb_err e;
    assert_int_equal(ical_in_map(ics, &mc, &ev, &e), CB_OK);
    assert_int_equal(ev->n, 3);
    const ews_item *m = ev->items[0], *t = ev->items[1], *r = ev->items[2];
    assert_int_equal(m->nocc, 2);
    assert_int_equal(m->occ[0].index, 2);
    assert_null(m->occ[0].item);
    assert_int_equal(m->occ[1].index, 3);
    assert_string_equal(m->occ[1].item->start, "2024-03-18T13:00:00Z");
    assert_string_equal(m->organizer, "alice@example.org");
    assert_string_equal(m->required.v[0].response, "Accept");
    assert_string_equal(m->resources.v[0].email, "room1@example.org");
    assert_non_null(strstr(m->body, "Private comment: bring the slides"));
    assert_int_equal(t->role, ROLE_TRAVEL);
    assert_string_equal(t->busy, "OOF");
    assert_string_equal(t->subject, "Travel time: Client visit");
    assert_string_equal(t->start, "2024-03-04T08:30:00Z");
    assert_string_equal(t->end, "2024-03-04T09:00:00Z");
    assert_true(t->has_recurrence);
    assert_int_equal(t->nocc, 2);
    assert_string_equal(t->occ[1].item->end, "2024-03-18T13:00:00Z");
    assert_int_equal(r->role, ROLE_RETURN);
    assert_string_equal(r->start, "2024-03-04T10:00:00Z");
    assert_string_equal(r->end, "2024-03-04T10:15:00Z");
    icalcomponent *cal = icalparser_parse_string(ics);
    assert_int_equal(check_event(cal, ev, &mc), 5);
    icalcomponent_free(cal);
    /* the way back restores travel time and the comment */
    char *back = round_trip(ev, &mc);
    assert_non_null(strstr(back, "X-APPLE-TRAVEL-DURATION;VALUE=DURATION:PT30M"));
    assert_non_null(strstr(back, "X-CALENDARSERVER-PRIVATE-COMMENT:bring the slides"));
    assert_non_null(strstr(back, "ORGANIZER:urn:x-uid:U-ALICE"));
    assert_non_null(strstr(back, "RECURRENCE-ID;TZID=Europe/Berlin:20240318T100000"));
    free(back);
    ews_event_free(ev);
}

/* ---- every fixture ------------------------------------------------------ */

static char *read_fixture(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    sbuf b;
    sbuf_init(&b);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sbuf_catn(&b, buf, n);
    fclose(f);
    /* CalendarServer's test data writes %(now)s for the current year */
    char year[8];
    time_t now = time(NULL);
    strftime(year, sizeof year, "%Y", gmtime(&now));
    sbuf out;
    sbuf_init(&out);
    for (const char *s = b.s, *at; s && *s; s = at + 7) {
        if (!(at = strstr(s, "%(now)s"))) {
            sbuf_cat(&out, s);
            break;
        }
        sbuf_catn(&out, s, (size_t)(at - s));
        sbuf_cat(&out, year);
    }
    sbuf_free(&b);
    return sbuf_take(&out);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static void every_fixture(void **st)
{
    (void)st;
    struct dirent **ents;
    int n = scandir(ICS_DIR, &ents, NULL, by_name);
    if (n < 0 || !schema) {
        printf("    skipped: %s or its EWS schema is absent\n", ICS_DIR);
        skip();
    }
    map_ctx mc = ctx();
    size_t files = 0, mapped = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        size_t len = strlen(name);
        if (len > 4 && !strcmp(name + len - 4, ".ics")) {
            char path[1024];
            snprintf(path, sizeof path, "%s/%s", ICS_DIR, name);
            char *ics = read_fixture(path);
            assert_non_null(ics);
            mapped += check_text(ics, &mc, name);
            files++;
            free(ics);
        }
        free(ents[i]);
    }
    free(ents);
    printf("    %zu fixture files, %zu events mapped with equal occurrences\n", files, mapped);
    assert_true(files >= 20);
    assert_true(mapped >= 50);
}

/* What the fuzzers found, each pinned (ASan/UBSan make the first two fail
 * loudly on the old code: an out-of-bounds read, a float->int overflow). */
static void fuzz_findings_stay_fixed(void **st)
{
    (void)st;
    /* days_in_month(month 0) read dim[-1]: a month from a transition that
     * names an unknown period. */
    assert_int_equal(recur_nth_day(2030, 0, 1 << 1, 1), 0);
    assert_int_equal(recur_nth_day(2030, 13, 1 << 1, 5), 0);
    int secs = 0;
    assert_int_equal(tzdef_parse_duration("-PT5H", &secs), 0);
    assert_int_equal(secs, -18000);
    assert_int_equal(tzdef_parse_duration("PT99999999999999999999H", &secs), -1);
    assert_int_equal(tzdef_parse_duration("PT1e308H", &secs), -1);
    assert_int_equal(tzdef_parse_duration("PTnanH", &secs), -1);
    /* A custom VTIMEZONE resolved, then DTEND before DTSTART: the zone was
     * leaked (LeakSanitizer in unit-asan sees it). */
    const char *ics =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTIMEZONE\r\nTZID:Lotus Eastern\r\n"
        "BEGIN:STANDARD\r\nDTSTART:19701101T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\n"
        "TZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\n"
        "DTSTART:19700308T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nTZOFFSETFROM:-0500\r\n"
        "TZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\nBEGIN:VEVENT\r\nUID:leak\r\n"
        "DTSTART;TZID=Lotus Eastern:20300101T100000\r\nDTEND;TZID=Lotus Eastern:20300101T090000\r\n"
        "SUMMARY:backwards\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    map_ctx mc = ctx();
    ews_event *ev = NULL;
    cb_err e = {0};
    assert_int_equal(ical_in_map(ics, &mc, &ev, &e), CB_EPARSE);
    assert_non_null(strstr(e.msg, "DTEND is before DTSTART"));
    /* A SECONDLY rule narrowed to the 31st: one libical step walked every
     * second of a month (a stall). Refused at once, named. */
    const char *slow =
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:slow\r\n"
        "DTSTART:20300101T000000Z\r\nDURATION:PT1S\r\nRRULE:FREQ=SECONDLY;BYMONTHDAY=-31\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n";
    assert_int_equal(ical_in_map(slow, &mc, &ev, &e), CB_EUNSUPPORTED);
    assert_non_null(strstr(e.msg, "by the second or minute"));
    /* Invalid UTF-8 and control characters never make ill-formed XML. */
    sbuf b;
    sbuf_init(&b);
    sbuf_cat(&b, "<a>");
    sbuf_xml(&b, "ok \xff\xfe \xc0\xaf \xed\xa0\x80 \x01 caf\xc3\xa9 \xf0\x9f\x93\x85");
    sbuf_cat(&b, "</a>");
    assert_true(sbuf_utf8_valid(b.s));
    assert_string_equal(b.s, "<a>ok \xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd "
                             "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd  caf\xc3\xa9 \xf0\x9f\x93\x85</a>");
    xmlDoc *doc = xmlReadMemory(b.s, (int)b.len, NULL, NULL, XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    assert_non_null(doc);
    xmlFreeDoc(doc);
    sbuf_free(&b);
}

/* A series made in Exchange by a client that set no UID (Exchange's own
 * answer then has none in our property set): its deleted occurrence must
 * still become an EXDATE. The simulator's own expansion found this one,
 * where the old simulator, sharing this parser, agreed with the loss. */
static void deleted_occurrence_of_a_series_without_uid(void **st)
{
    (void)st;
    const char *xml =
        "<m:GetItemResponse xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" "
        "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"><m:ResponseMessages>"
        "<m:GetItemResponseMessage ResponseClass=\"Success\"><m:ResponseCode>NoError</m:ResponseCode>"
        "<m:Items><t:CalendarItem><t:ItemId Id=\"AAMk1\" ChangeKey=\"CK1\"/>"
        "<t:Subject>Exchange series</t:Subject><t:Start>2026-12-17T07:00:00Z</t:Start>"
        "<t:End>2026-12-17T08:00:00Z</t:End><t:LegacyFreeBusyStatus>Busy</t:LegacyFreeBusyStatus>"
        "<t:CalendarItemType>RecurringMaster</t:CalendarItemType><t:Recurrence><t:DailyRecurrence>"
        "<t:Interval>2</t:Interval></t:DailyRecurrence><t:NumberedRecurrence>"
        "<t:StartDate>2026-12-17</t:StartDate><t:NumberOfOccurrences>5</t:NumberOfOccurrences>"
        "</t:NumberedRecurrence></t:Recurrence><t:DeletedOccurrences><t:DeletedOccurrence>"
        "<t:Start>2026-12-19T07:00:00Z</t:Start></t:DeletedOccurrence></t:DeletedOccurrences>"
        "<t:StartTimeZone Id=\"UTC\"/><t:EndTimeZone Id=\"UTC\"/></t:CalendarItem></m:Items>"
        "</m:GetItemResponseMessage></m:ResponseMessages></m:GetItemResponse>";
    ews_event **ev = NULL;
    size_t n = 0;
    cb_err e = {0};
    assert_int_equal(ews_in_parse(xml, strlen(xml), tz, &ev, &n, &e), CB_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ev[0]->items[0]->nocc, 1);
    assert_int_equal(ev[0]->items[0]->occ[0].index, 2);
    assert_null(ev[0]->items[0]->occ[0].item);
    map_ctx mc = ctx();
    char *ics = ical_out_calendar(ev, n, &mc, &e);
    assert_non_null(ics);
    assert_non_null(strstr(ics, "EXDATE:20261219T070000Z"));
    free(ics);
    ews_in_events_free(ev, n);
    /* The same item twice in one answer (its ItemId asked for twice): each
     * copy keeps its deleted occurrence. */
    const char *item = strstr(xml, "<t:CalendarItem>"), *end = strstr(xml, "</m:Items>");
    char twice[4096];
    snprintf(twice, sizeof twice, "%.*s%.*s%s", (int)(end - xml), xml, (int)(end - item), item, end);
    assert_int_equal(ews_in_parse(twice, strlen(twice), tz, &ev, &n, &e), CB_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ev[0]->items[0]->nocc, 1);
    assert_int_equal(ev[1]->items[0]->nocc, 1);
    ews_in_events_free(ev, n);
}

/* Exchange lists a master's exceptions by time and ItemId only; the second
 * GetItem of those ids brings their own fields, joined by UID. */
static void exceptions_read_from_their_own_answer(void **st)
{
    (void)st;
    const char *ns = "xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\"";
    char master[2048], exc[1024];
    snprintf(master, sizeof master,
             "<Items %s><t:CalendarItem><t:ItemId Id=\"M1\" ChangeKey=\"c\"/><t:Subject>Daily"
             "</t:Subject><t:UID>u-1</t:UID><t:Start>2030-09-02T07:00:00Z</t:Start>"
             "<t:End>2030-09-02T07:30:00Z</t:End><t:Recurrence><t:DailyRecurrence><t:Interval>1"
             "</t:Interval></t:DailyRecurrence><t:NumberedRecurrence><t:StartDate>2030-09-02Z"
             "</t:StartDate><t:NumberOfOccurrences>4</t:NumberOfOccurrences></t:NumberedRecurrence>"
             "</t:Recurrence><t:ModifiedOccurrences><t:Occurrence><t:ItemId Id=\"M1_occ3\"/>"
             "<t:Start>2030-09-04T08:00:00Z</t:Start><t:End>2030-09-04T08:30:00Z</t:End>"
             "<t:OriginalStart>2030-09-04T07:00:00Z</t:OriginalStart></t:Occurrence>"
             "</t:ModifiedOccurrences><t:CalendarItemType>RecurringMaster</t:CalendarItemType>"
             "</t:CalendarItem></Items>", ns);
    snprintf(exc, sizeof exc,
             "<Items %s><t:CalendarItem><t:ItemId Id=\"M1_occ3\" ChangeKey=\"c\"/><t:Subject>Board"
             "</t:Subject><t:UID>u-1</t:UID><t:RecurrenceId>2030-09-04T07:00:00Z</t:RecurrenceId>"
             "<t:Start>2030-09-04T08:00:00Z</t:Start><t:End>2030-09-04T08:30:00Z</t:End>"
             "<t:Location>Room</t:Location><t:CalendarItemType>Exception</t:CalendarItemType>"
             "</t:CalendarItem></Items>", ns);
    char **ids;
    size_t nids;
    assert_int_equal(ews_in_modified_ids(master, strlen(master), &ids, &nids, NULL), CB_OK);
    assert_int_equal(nids, 1);
    assert_string_equal(ids[0], "M1_occ3");
    free(ids[0]);
    free(ids);
    const char *docs[2] = {master, exc};
    size_t lens[2] = {strlen(master), strlen(exc)};
    for (size_t ndocs = 1; ndocs <= 2; ndocs++) {
        ews_event **ev;
        size_t n;
        cb_err e;
        assert_int_equal(ews_in_parse_many(docs, lens, ndocs, NULL, &ev, &n, &e), CB_OK);
        assert_int_equal(n, 1);
        const ews_item *m = ev[0]->items[0];
        assert_int_equal(m->nocc, 1);
        assert_int_equal(m->occ[0].index, 3);
        assert_non_null(m->occ[0].item);
        /* Without the second answer an exception has the master's fields. */
        assert_string_equal(m->occ[0].item->subject, ndocs == 2 ? "Board" : "Daily");
        if (ndocs == 2) assert_string_equal(m->occ[0].item->location, "Room");
        ews_in_events_free(ev, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(deleted_occurrence_of_a_series_without_uid),
        cmocka_unit_test(weekend_day_rule_is_relative_monthly),
        cmocka_unit_test(rrule_shapes),
        cmocka_unit_test(exceptions_and_travel_on_a_series),
        cmocka_unit_test(every_fixture),
        cmocka_unit_test(fuzz_findings_stay_fixed),
        cmocka_unit_test(exceptions_read_from_their_own_answer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
