/* bothsides — checks that one person's calendar says the same thing on the
 * Apple side (CalendarServer's tables) and the Exchange side (the EWS
 * simulator), for the integration tests.
 *
 *   bothsides DSN EWS_URL USER:PASSWORD OWNER_UID SMTP DAYS [DEFAULT_TZ]
 *
 * 1. Free/busy per 30-minute slot over the next DAYS days (from today's
 *    midnight UTC): the Apple answer computed the way CalendarServer's
 *    free/busy query does (the calendars it uses for free/busy, TIME_RANGE
 *    left-joined to the owner's PERUSER row for their transparency and
 *    travel time, FBTYPE busy / tentative / unavailable, floating rows
 *    placed in DEFAULT_TZ), and the Exchange answer asked with
 *    GetUserAvailability (MergedFreeBusy; OOF and WorkingElsewhere are busy
 *    to CalendarServer). The two digit strings must be equal: 0 free,
 *    1 tentative, 2 busy.
 * 2. Occurrences: every UID on either side, expanded over the same window
 *    by libical (Apple text) and by the EWS expander (GetItem of every item
 *    in the mailbox's calendar), must give the same (start, end) list.
 * Prints one line per difference; exit 0 when equal, 1 otherwise, 2 when
 * the check itself could not run.
 */
#include <curl/curl.h>
#include <libical/ical.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../mapping/ews_in.h"
#include "../mapping/ical_in.h"
#include "../mapping/occur.h"
#include "../mapping/sbuf.h"

#define SLOT 1800

typedef struct ctx {
    PGconn *db;
    const char *url, *auth, *owner, *smtp, *tz_name;
    long long from, to;
    tzmap *tz;
    int diffs;
} ctx;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    sbuf_catn(ud, p, size * n);
    return size * n;
}

/* POSTs a SOAP body for smtp; the answer in out. */
static int ews(ctx *c, const char *body, sbuf *out)
{
    sbuf env;
    sbuf_init(&env);
    sbuf_printf(&env, "<?xml version=\"1.0\" encoding=\"utf-8\"?><soap:Envelope xmlns:soap="
                      "\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:t=\"http://schemas."
                      "microsoft.com/exchange/services/2006/types\" xmlns:m=\"http://schemas."
                      "microsoft.com/exchange/services/2006/messages\"><soap:Header>"
                      "<t:RequestServerVersion Version=\"Exchange2016\"/><t:ExchangeImpersonation>"
                      "<t:ConnectingSID><t:PrimarySmtpAddress>%s</t:PrimarySmtpAddress>"
                      "</t:ConnectingSID></t:ExchangeImpersonation></soap:Header><soap:Body>%s"
                      "</soap:Body></soap:Envelope>", c->smtp, body);
    CURL *e = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: text/xml; charset=utf-8");
    curl_easy_setopt(e, CURLOPT_URL, c->url);
    curl_easy_setopt(e, CURLOPT_USERPWD, c->auth);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, env.s);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, out);
    long status = 0;
    CURLcode rc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(e);
    sbuf_free(&env);
    return rc == CURLE_OK && status == 200 ? 0 : -1;
}

static void xs(long long t, char out[32])
{
    time_t tt = (time_t)t;
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S", gmtime(&tt));
}

/* ---- free/busy -------------------------------------------------------- */

static char *apple_freebusy(ctx *c)
{
    char from[32], to[32], tzq[128];
    xs(c->from, from);
    xs(c->to, to);
    snprintf(tzq, sizeof tzq, "%s", c->tz_name);
    const char *p[4] = {c->owner, from, to, tzq};
    /* CalendarServer's own free/busy query (ccs-write-path.md 5.1): the
     * home's calendars used for free/busy (opaque for its owner, not the
     * inbox, trash or a to-do list), TIME_RANGE left-joined to the owner's
     * PERUSER row, whose transparency and travel-adjusted times win;
     * floating rows hold wall time, placed in the asking user's zone. */
    PGresult *r = PQexecParams(c->db,
        "WITH tr AS ("
        "  SELECT CASE WHEN t.FLOATING THEN (COALESCE(u.ADJUSTED_START_DATE, t.START_DATE)"
        "              AT TIME ZONE $4) AT TIME ZONE 'UTC'"
        "              ELSE COALESCE(u.ADJUSTED_START_DATE, t.START_DATE) END s,"
        "         CASE WHEN t.FLOATING THEN (COALESCE(u.ADJUSTED_END_DATE, t.END_DATE)"
        "              AT TIME ZONE $4) AT TIME ZONE 'UTC'"
        "              ELSE COALESCE(u.ADJUSTED_END_DATE, t.END_DATE) END e,"
        "         CASE t.FBTYPE WHEN 4 THEN 1 ELSE 2 END code"
        "    FROM TIME_RANGE t"
        "    LEFT JOIN PERUSER u ON u.TIME_RANGE_INSTANCE_ID = t.INSTANCE_ID AND u.USER_ID = $1"
        "    JOIN CALENDAR_BIND b ON b.CALENDAR_RESOURCE_ID = t.CALENDAR_RESOURCE_ID"
        "         AND (b.BIND_MODE = 0 OR b.BIND_STATUS = 1) AND b.TRANSP = 0"
        "         AND b.CALENDAR_RESOURCE_NAME <> 'inbox'"
        "    JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID"
        "    LEFT JOIN CALENDAR_METADATA m ON m.RESOURCE_ID = t.CALENDAR_RESOURCE_ID"
        "   WHERE h.OWNER_UID = $1 AND NOT COALESCE(u.TRANSPARENT, t.TRANSPARENT)"
        "     AND t.FBTYPE IN (2, 3, 4) AND NOT COALESCE(m.IS_IN_TRASH, false)"
        "     AND (m.SUPPORTED_COMPONENTS IS NULL OR m.SUPPORTED_COMPONENTS LIKE '%VEVENT%'))"
        " SELECT string_agg(code::text, '' ORDER BY slot) FROM ("
        "  SELECT g.slot, COALESCE(MAX(tr.code), 0) code"
        "    FROM generate_series($2::timestamp, $3::timestamp - interval '30 minutes',"
        "                         interval '30 minutes') g(slot)"
        "    LEFT JOIN tr ON tr.s < g.slot + interval '30 minutes' AND tr.e > g.slot"
        "   GROUP BY g.slot) x", 4, NULL, p, NULL, NULL, 0);
    char *out = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    if (!out) fprintf(stderr, "bothsides: %s", PQerrorMessage(c->db));
    PQclear(r);
    return out;
}

static char *exchange_freebusy(ctx *c)
{
    char from[32], to[32];
    xs(c->from, from);
    xs(c->to, to);
    sbuf q, out;
    sbuf_init(&q);
    sbuf_init(&out);
    sbuf_printf(&q, "<m:GetUserAvailabilityRequest><t:TimeZone><t:Bias>0</t:Bias><t:StandardTime>"
                    "<t:Bias>0</t:Bias><t:Time>02:00:00</t:Time><t:DayOrder>5</t:DayOrder>"
                    "<t:Month>10</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime>"
                    "<t:DaylightTime><t:Bias>0</t:Bias><t:Time>02:00:00</t:Time><t:DayOrder>5"
                    "</t:DayOrder><t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek>"
                    "</t:DaylightTime></t:TimeZone><m:MailboxDataArray><t:MailboxData><t:Email>"
                    "<t:Address>%s</t:Address></t:Email><t:AttendeeType>Required</t:AttendeeType>"
                    "</t:MailboxData></m:MailboxDataArray><t:FreeBusyViewOptions><t:TimeWindow>"
                    "<t:StartTime>%s</t:StartTime><t:EndTime>%s</t:EndTime></t:TimeWindow>"
                    "<t:MergedFreeBusyIntervalInMinutes>30</t:MergedFreeBusyIntervalInMinutes>"
                    "<t:RequestedView>MergedOnly</t:RequestedView></t:FreeBusyViewOptions>"
                    "</m:GetUserAvailabilityRequest>", c->smtp, from, to);
    char *digits = NULL;
    if (ews(c, q.s, &out) == 0 && out.s) {
        const char *a = strstr(out.s, "<t:MergedFreeBusy>"), *b = a ? strstr(a, "</t:MergedFreeBusy>") : NULL;
        if (a && b) digits = strndup(a + 18, (size_t)(b - a - 18));
    }
    /* CalendarServer knows free, tentative and busy: Exchange's OOF (3;
     * travel time is an OOF appointment) and WorkingElsewhere (4) are busy
     * there (getFBType reads STATUS only). */
    for (char *d = digits; d && *d; d++)
        if (*d == '3' || *d == '4') *d = '2';
    if (!digits) fprintf(stderr, "bothsides: GetUserAvailability failed: %.300s\n", out.s ? out.s : "");
    sbuf_free(&q);
    sbuf_free(&out);
    return digits;
}

static void compare_freebusy(ctx *c)
{
    char *a = apple_freebusy(c), *x = exchange_freebusy(c);
    if (!a || !x) {
        c->diffs++;
        printf("DIFF %s free/busy: one side could not be read\n", c->smtp);
    } else if (strcmp(a, x)) {
        size_t i = 0;
        while (a[i] && a[i] == x[i]) i++;
        char when[32];
        xs(c->from + (long long)i * SLOT, when);
        c->diffs++;
        printf("DIFF %s free/busy from %sZ: Apple %.12s, Exchange %.12s\n", c->smtp, when, a + i, x + i);
    }
    free(a);
    free(x);
}

/* ---- occurrences ------------------------------------------------------ */

typedef struct side {
    char **uid;
    occur_list *occ;
    size_t n;
} side;

static occur_list *side_for(side *s, const char *uid)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->uid[i], uid)) return &s->occ[i];
    s->uid = realloc(s->uid, (s->n + 1) * sizeof *s->uid);
    s->occ = realloc(s->occ, (s->n + 1) * sizeof *s->occ);
    s->uid[s->n] = strdup(uid);
    memset(&s->occ[s->n], 0, sizeof *s->occ);
    return &s->occ[s->n++];
}

static void side_free(side *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->uid[i]);
        occur_free(&s->occ[i]);
    }
    free(s->uid);
    free(s->occ);
}

static void apple_side(ctx *c, side *s)
{
    const char *p[1] = {c->owner};
    PGresult *r = PQexecParams(c->db,
        "SELECT o.ICALENDAR_TEXT, o.ICALENDAR_UID FROM CALENDAR_OBJECT o"
        "  JOIN CALENDAR_BIND b ON b.CALENDAR_RESOURCE_ID = o.CALENDAR_RESOURCE_ID AND b.BIND_MODE = 0"
        "       AND b.CALENDAR_RESOURCE_NAME <> 'inbox'"
        "  JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID"
        " WHERE h.OWNER_UID = $1", 1, NULL, p, NULL, NULL, 0);
    map_ctx mc = {NULL, c->tz, c->tz_name, 0, (long long)time(NULL), NULL, c->owner};
    for (int i = 0; i < PQntuples(r); i++) {
        icalcomponent *cal = icalparser_parse_string(PQgetvalue(r, i, 0));
        tzdef_cache zones = {0};
        occur_list *l = side_for(s, PQgetvalue(r, i, 1));
        if (cal) occur_ical(cal, PQgetvalue(r, i, 1), &mc, &zones, c->from, c->to, 100000, l, NULL);
        occur_sort(l);
        tzdef_cache_free(&zones);
        if (cal) icalcomponent_free(cal);
    }
    PQclear(r);
}

/* Item ids of the mailbox's calendar, from a SyncFolderItems from scratch. */
static int exchange_side(ctx *c, side *s)
{
    sbuf out;
    sbuf_init(&out);
    if (ews(c, "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
               "<m:SyncFolderId><t:DistinguishedFolderId Id=\"calendar\"/></m:SyncFolderId>"
               "<m:MaxChangesReturned>512</m:MaxChangesReturned></m:SyncFolderItems>", &out))
        return -1;
    sbuf q;
    sbuf_init(&q);
    sbuf_cat(&q, "<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape><m:ItemIds>");
    int n = 0;
    for (const char *p = out.s; (p = strstr(p, "<t:Create>")); p++) {
        const char *id = strstr(p, "Id=\"");
        if (!id) break;
        const char *e = strchr(id + 4, '"');
        sbuf_cat(&q, "<t:ItemId Id=\"");
        sbuf_catn(&q, id + 4, (size_t)(e - id - 4));
        sbuf_cat(&q, "\"/>");
        n++;
    }
    sbuf_cat(&q, "</m:ItemIds></m:GetItem>");
    sbuf items;
    sbuf_init(&items);
    ews_event **ev = NULL;
    size_t nev = 0;
    if (n && ews(c, q.s, &items) == 0 && ews_in_parse(items.s, items.len, c->tz, &ev, &nev, NULL) == CB_OK) {
        for (size_t i = 0; i < nev; i++) {
            occur_list *l = side_for(s, ev[i]->uid);
            tzdef_cache zones = {0};
            occur_ews(ev[i], c->tz, &zones, c->from, c->to, l, NULL);
            occur_sort(l);
            tzdef_cache_free(&zones);
        }
        ews_in_events_free(ev, nev);
    }
    sbuf_free(&out);
    sbuf_free(&q);
    sbuf_free(&items);
    return 0;
}

static void compare_occurrences(ctx *c)
{
    side a = {0}, x = {0};
    apple_side(c, &a);
    if (exchange_side(c, &x)) {
        c->diffs++;
        printf("DIFF %s: the Exchange calendar could not be read\n", c->smtp);
    }
    for (size_t i = 0; i < a.n; i++) {
        occur_list *o = side_for(&x, a.uid[i]);
        char msg[300];
        if (occur_compare(&a.occ[i], o, msg, sizeof msg)) {
            c->diffs++;
            printf("DIFF %s event %s: %s\n", c->smtp, a.uid[i], msg);
        }
    }
    for (size_t i = 0; i < x.n; i++)
        if (x.occ[i].n && !side_for(&a, x.uid[i])->n) {
            c->diffs++;
            printf("DIFF %s event %s: only in Exchange\n", c->smtp, x.uid[i]);
        }
    printf("%s: %zu events compared\n", c->smtp, a.n);
    side_free(&a);
    side_free(&x);
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: bothsides DSN EWS_URL USER:PASSWORD OWNER_UID SMTP DAYS [TZ]\n");
        return 2;
    }
    ctx c = {.url = argv[2], .auth = argv[3], .owner = argv[4], .smtp = argv[5],
             .tz_name = argc > 7 ? argv[7] : "UTC"};
    long long now = (long long)time(NULL);
    c.from = now - now % 86400;
    c.to = c.from + atoll(argv[6]) * 86400;
    cb_err e;
    c.db = PQconnectdb(argv[1]);
    if (PQstatus(c.db) != CONNECTION_OK || tzmap_load(TZMAP_CLDR_PATH, TZMAP_TZDATA_PATH, &c.tz, &e)) {
        fprintf(stderr, "bothsides: cannot start\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    compare_freebusy(&c);
    compare_occurrences(&c);
    PQfinish(c.db);
    tzmap_free(c.tz);
    curl_global_cleanup();
    return c.diffs ? 1 : 0;
}
