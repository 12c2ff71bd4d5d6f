/* ccsload — writes calendar objects into a CalendarServer database the way
 * CalendarServer itself does, for tests and the demo.
 *
 *   ccsload -d DSN home OWNER_UID
 *       the home, its metadata, a default "calendar" and the "inbox"
 *   ccsload -d DSN put OWNER_UID FILE.ics [RESOURCE_NAME]
 *       create or replace; a file holding several UIDs becomes one resource
 *       per UID (CalendarServer stores one UID per resource)
 *   ccsload -d DSN delete OWNER_UID RESOURCE_NAME
 *   ccsload -d DSN bulk OWNER_UID COUNT [PREFIX]
 *       COUNT generated one-hour events, committed in batches of 500
 *
 * Per object, as CalendarServer's txdav/caldav/datastore/sql.py does: the
 * CALENDAR_OBJECT row (text, UID, type, organizer, MD5, recurrence range),
 * its TIME_RANGE rows (one per instance up to a year ahead, with FBTYPE and
 * TRANSPARENT), and the CALENDAR_OBJECT_REVISIONS row given a new REVISION
 * from REVISION_SEQ (DELETED on removal) — all in one transaction.
 * "%(now)s", "%(now-1)s", "%(now+1)s" in a file become the current year
 * (CalendarServer's own test data is written with these).
 */
#include <libical/ical.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static PGconn *db;

static void die(const char *what)
{
    fprintf(stderr, "ccsload: %s: %s\n", what, PQerrorMessage(db));
    exit(1);
}

static PGresult *q(const char *sql, int n, const char *const *params)
{
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) die(sql);
    return r;
}

static void exec1(const char *sql)
{
    PQclear(q(sql, 0, NULL));
}

static char *val(PGresult *r)
{
    char *v = PQntuples(r) ? strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return v;
}

/* Returns the home id, creating the home and its two calendars if needed. */
static char *ensure_home(const char *owner)
{
    const char *p[1] = {owner};
    char *home = val(q("SELECT RESOURCE_ID FROM CALENDAR_HOME WHERE OWNER_UID = $1 AND STATUS = 0", 1, p));
    if (home) return home;
    home = val(q("INSERT INTO CALENDAR_HOME (OWNER_UID) VALUES ($1) RETURNING RESOURCE_ID", 1, p));
    char *cal = val(q("INSERT INTO CALENDAR DEFAULT VALUES RETURNING RESOURCE_ID", 0, NULL));
    char *inbox = val(q("INSERT INTO CALENDAR DEFAULT VALUES RETURNING RESOURCE_ID", 0, NULL));
    const char *pm[2] = {home, cal};
    PQclear(q("INSERT INTO CALENDAR_HOME_METADATA (RESOURCE_ID, DEFAULT_EVENTS) VALUES ($1, $2)", 2, pm));
    const char *c1[3] = {home, cal, "calendar"}, *c2[3] = {home, inbox, "inbox"};
    const char *bind = "INSERT INTO CALENDAR_BIND (CALENDAR_HOME_RESOURCE_ID, CALENDAR_RESOURCE_ID,"
                       " CALENDAR_RESOURCE_NAME, BIND_MODE, BIND_STATUS) VALUES ($1, $2, $3, 0, 1)";
    PQclear(q(bind, 3, c1));
    PQclear(q(bind, 3, c2));
    const char *meta = "INSERT INTO CALENDAR_METADATA (RESOURCE_ID, SUPPORTED_COMPONENTS) VALUES ($1, $2)";
    const char *m1[2] = {cal, "VEVENT"}, *m2[2] = {inbox, NULL};
    PQclear(q(meta, 2, m1));
    PQclear(q(meta, 2, m2));
    const char *rev = "INSERT INTO CALENDAR_OBJECT_REVISIONS (CALENDAR_HOME_RESOURCE_ID,"
                      " CALENDAR_RESOURCE_ID, CALENDAR_NAME, RESOURCE_NAME, DELETED)"
                      " VALUES ($1, $2, $3, NULL, false)";
    PQclear(q(rev, 3, c1));
    PQclear(q(rev, 3, c2));
    free(cal);
    free(inbox);
    return home;
}

static char *default_calendar(const char *home)
{
    const char *p[1] = {home};
    return val(q("SELECT CALENDAR_RESOURCE_ID FROM CALENDAR_BIND WHERE CALENDAR_HOME_RESOURCE_ID = $1"
                 " AND CALENDAR_RESOURCE_NAME = 'calendar'", 1, p));
}

static void bump_revision(const char *home, const char *cal, const char *name, int deleted)
{
    const char *p[4] = {home, cal, name, deleted ? "true" : "false"};
    PGresult *r = q("UPDATE CALENDAR_OBJECT_REVISIONS SET REVISION = nextval('REVISION_SEQ'),"
                    " DELETED = $4, MODIFIED = timezone('UTC', CURRENT_TIMESTAMP)"
                    " WHERE CALENDAR_HOME_RESOURCE_ID = $1 AND CALENDAR_RESOURCE_ID = $2"
                    " AND RESOURCE_NAME = $3", 4, p);
    int updated = atoi(PQcmdTuples(r));
    PQclear(r);
    if (!updated)
        PQclear(q("INSERT INTO CALENDAR_OBJECT_REVISIONS (CALENDAR_HOME_RESOURCE_ID,"
                  " CALENDAR_RESOURCE_ID, RESOURCE_NAME, DELETED) VALUES ($1, $2, $3, $4)", 4, p));
}

typedef struct tr_ctx {
    const char *cal, *obj;
    int fbtype, transparent, floating, count;
} tr_ctx;

static void fmt_ts(struct icaltimetype t, char *out, size_t n)
{
    if (!t.is_date && t.zone) t = icaltime_convert_to_zone(t, icaltimezone_get_utc_timezone());
    snprintf(out, n, "%04d-%02d-%02d %02d:%02d:%02d", t.year, t.month, t.day,
             t.is_date ? 0 : t.hour, t.is_date ? 0 : t.minute, t.is_date ? 0 : t.second);
}

static void add_range(icalcomponent *comp, struct icaltime_span *span, void *ud)
{
    (void)comp;
    tr_ctx *c = ud;
    if (c->count++ > 1000) return;
    char s[32], e[32], fb[4];
    struct icaltimetype ts = icaltime_from_timet_with_zone(span->start, 0, icaltimezone_get_utc_timezone());
    struct icaltimetype te = icaltime_from_timet_with_zone(span->end, 0, icaltimezone_get_utc_timezone());
    fmt_ts(ts, s, sizeof s);
    fmt_ts(te, e, sizeof e);
    snprintf(fb, sizeof fb, "%d", c->fbtype);
    const char *p[6] = {c->cal, c->obj, c->floating ? "true" : "false", s, e, fb};
    char tr[8];
    snprintf(tr, sizeof tr, "%s", c->transparent ? "true" : "false");
    const char *pp[7] = {p[0], p[1], p[2], p[3], p[4], p[5], tr};
    PQclear(q("INSERT INTO TIME_RANGE (CALENDAR_RESOURCE_ID, CALENDAR_OBJECT_RESOURCE_ID, FLOATING,"
              " START_DATE, END_DATE, FBTYPE, TRANSPARENT) VALUES ($1, $2, $3, $4, $5, $6, $7)", 7, pp));
}

/* The free/busy index: every instance of every VEVENT up to a year ahead. */
static void index_time_ranges(icalcomponent *cal, const char *cal_id, const char *obj_id)
{
    time_t now = time(NULL);
    struct icaltimetype from = icaltime_from_timet_with_zone(0, 0, icaltimezone_get_utc_timezone());
    struct icaltimetype to = icaltime_from_timet_with_zone(now + 366 * 86400, 0, icaltimezone_get_utc_timezone());
    for (icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT); ev;
         ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
        if (icalcomponent_get_first_property(ev, ICAL_RECURRENCEID_PROPERTY)) continue;
        icalproperty *tp = icalcomponent_get_first_property(ev, ICAL_TRANSP_PROPERTY);
        struct icaltimetype st = icalcomponent_get_dtstart(ev);
        tr_ctx c = {cal_id, obj_id, 2, tp && icalproperty_get_transp(tp) == ICAL_TRANSP_TRANSPARENT,
                    !st.zone && !icaltime_is_utc(st), 0};
        if (icalcomponent_get_status(ev) == ICAL_STATUS_TENTATIVE) c.fbtype = 4;
        icalcomponent_foreach_recurrence(ev, from, to, add_range, &c);
    }
}

static char *substitute_years(const char *text)
{
    time_t now = time(NULL);
    int year = localtime(&now)->tm_year + 1900;
    size_t n = strlen(text);
    char *out = malloc(n + 1), *o = out;
    for (const char *c = text; *c;) {
        int delta = 0, len = 0;
        if (!strncmp(c, "%(now)s", 7)) len = 7;
        else if (sscanf(c, "%%(now%d)s%n", &delta, &len) != 1 || len < 9) len = 0;
        if (len) {
            o += sprintf(o, "%04d", year + delta);
            c += len;
        } else {
            *o++ = *c++;
        }
    }
    *o = '\0';
    return out;
}

static void put_one(const char *home, const char *cal_id, const char *name, icalcomponent *cal)
{
    char *text = icalcomponent_as_ical_string_r(cal);
    icalcomponent *first = icalcomponent_get_first_real_component(cal);
    const char *uid = first ? icalcomponent_get_uid(first) : "";
    const char *type = first ? icalcomponent_kind_to_string(icalcomponent_isa(first)) : "VEVENT";
    icalproperty *op = first ? icalcomponent_get_first_property(first, ICAL_ORGANIZER_PROPERTY) : NULL;
    const char *org = op ? icalproperty_get_organizer(op) : "";
    const char *p[6] = {cal_id, name, text, uid ? uid : "", type, org};
    char *obj = val(q("INSERT INTO CALENDAR_OBJECT (CALENDAR_RESOURCE_ID, RESOURCE_NAME, ICALENDAR_TEXT,"
                      " ICALENDAR_UID, ICALENDAR_TYPE, ORGANIZER, MD5, RECURRANCE_MAX, DATAVERSION)"
                      " VALUES ($1, $2, $3, $4, $5, $6, md5($3),"
                      "         (CURRENT_DATE + 365), 6)"
                      " ON CONFLICT (CALENDAR_RESOURCE_ID, RESOURCE_NAME) DO UPDATE SET"
                      "   ICALENDAR_TEXT = $3, ICALENDAR_UID = $4, ICALENDAR_TYPE = $5,"
                      "   ORGANIZER = $6, MD5 = md5($3), MODIFIED = timezone('UTC', CURRENT_TIMESTAMP)"
                      " RETURNING RESOURCE_ID", 6, p));
    const char *pd[1] = {obj};
    PQclear(q("DELETE FROM TIME_RANGE WHERE CALENDAR_OBJECT_RESOURCE_ID = $1", 1, pd));
    index_time_ranges(cal, cal_id, obj);
    bump_revision(home, cal_id, name, 0);
    free(obj);
    free(text);
}

/* One resource per UID, each with the file's VTIMEZONEs. */
static int cmd_put(const char *owner, const char *path, const char *name)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fprintf(stderr, "ccsload: %s: cannot open\n", path), 1;
    static char buf[8 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *text = substitute_years(buf);
    icalcomponent *cal = icalparser_parse_string(text);
    free(text);
    if (!cal) return fprintf(stderr, "ccsload: %s: not iCalendar\n", path), 1;
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    exec1("BEGIN");
    char *home = ensure_home(owner), *cal_id = default_calendar(home);
    char *uids[512];
    int nuids = 0;
    for (icalcomponent *c = icalcomponent_get_first_real_component(cal); c;
         c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
        if (icalcomponent_isa(c) == ICAL_VTIMEZONE_COMPONENT) continue;
        const char *uid = icalcomponent_get_uid(c);
        int seen = 0;
        for (int i = 0; i < nuids; i++) seen |= uid && !strcmp(uids[i], uid);
        if (!seen && uid && nuids < 512) uids[nuids++] = strdup(uid);
    }
    for (int i = 0; i < nuids; i++) {
        icalcomponent *one = icalcomponent_new(ICAL_VCALENDAR_COMPONENT);
        for (icalproperty *p = icalcomponent_get_first_property(cal, ICAL_ANY_PROPERTY); p;
             p = icalcomponent_get_next_property(cal, ICAL_ANY_PROPERTY))
            if (icalproperty_isa(p) != ICAL_METHOD_PROPERTY)
                icalcomponent_add_property(one, icalproperty_new_clone(p));
        for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
             c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT)) {
            const char *uid = icalcomponent_get_uid(c);
            if (icalcomponent_isa(c) == ICAL_VTIMEZONE_COMPONENT || (uid && !strcmp(uid, uids[i])))
                icalcomponent_add_component(one, icalcomponent_new_clone(c));
        }
        char rname[512];
        if (name && nuids == 1) snprintf(rname, sizeof rname, "%s", name);
        else if (nuids == 1) snprintf(rname, sizeof rname, "%s", base);
        else snprintf(rname, sizeof rname, "%s-%d.ics", name ? name : base, i + 1);
        put_one(home, cal_id, rname, one);
        icalcomponent_free(one);
        free(uids[i]);
    }
    if (!nuids) {
        /* A VCALENDAR with no component (as in home_bad): stored as it is,
         * so the bridge meets the malformed data real databases hold. */
        put_one(home, cal_id, name ? name : base, cal);
    }
    /* CCSLOAD_HOLD=N keeps the transaction open N seconds after its revision
     * was taken, to test commits that land out of revision order. */
    if (getenv("CCSLOAD_HOLD")) sleep((unsigned)atoi(getenv("CCSLOAD_HOLD")));
    exec1("COMMIT");
    free(home);
    free(cal_id);
    icalcomponent_free(cal);
    return 0;
}

static int cmd_delete(const char *owner, const char *name)
{
    exec1("BEGIN");
    char *home = ensure_home(owner), *cal = default_calendar(home);
    const char *p[2] = {cal, name};
    PGresult *r = q("DELETE FROM CALENDAR_OBJECT WHERE CALENDAR_RESOURCE_ID = $1 AND RESOURCE_NAME = $2", 2, p);
    int n = atoi(PQcmdTuples(r));
    PQclear(r);
    if (n) bump_revision(home, cal, name, 1);
    exec1("COMMIT");
    free(home);
    free(cal);
    if (!n) fprintf(stderr, "ccsload: %s: no such resource\n", name);
    return n ? 0 : 1;
}

static int cmd_bulk(const char *owner, int count, const char *prefix)
{
    time_t base = time(NULL) / 3600 * 3600 + 86400;
    for (int i = 0; i < count; i++) {
        if (i % 500 == 0) {
            if (i) exec1("COMMIT");
            exec1("BEGIN");
        }
        char *home = ensure_home(owner), *cal_id = default_calendar(home);
        struct tm tm;
        time_t t = base + (time_t)(i % 2000) * 3600 * 5;
        gmtime_r(&t, &tm);
        char ics[1024], name[128];
        snprintf(name, sizeof name, "%s-%05d.ics", prefix, i);
        snprintf(ics, sizeof ics,
                 "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calbridge//ccsload//EN\r\n"
                 "BEGIN:VEVENT\r\nUID:%s-%05d@%s\r\nDTSTAMP:20260101T000000Z\r\n"
                 "DTSTART:%04d%02d%02dT%02d0000Z\r\nDURATION:PT1H\r\nSUMMARY:%s event %d\r\n"
                 "END:VEVENT\r\nEND:VCALENDAR\r\n",
                 prefix, i, owner, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, prefix, i);
        icalcomponent *cal = icalparser_parse_string(ics);
        put_one(home, cal_id, name, cal);
        icalcomponent_free(cal);
        free(home);
        free(cal_id);
    }
    if (count) exec1("COMMIT");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[1], "-d")) {
        fprintf(stderr, "usage: ccsload -d DSN home|put|delete|bulk OWNER_UID [ARGS]\n");
        return 2;
    }
    db = PQconnectdb(argv[2]);
    if (PQstatus(db) != CONNECTION_OK) die("connect");
    PQclear(PQexec(db, "SET client_min_messages = warning"));
    const char *cmd = argv[3], *owner = argv[4];
    int rc = 2;
    if (!strcmp(cmd, "home")) {
        exec1("BEGIN");
        free(ensure_home(owner));
        exec1("COMMIT");
        rc = 0;
    } else if (!strcmp(cmd, "put") && argc >= 6) rc = cmd_put(owner, argv[5], argc > 6 ? argv[6] : NULL);
    else if (!strcmp(cmd, "delete") && argc >= 6) rc = cmd_delete(owner, argv[5]);
    else if (!strcmp(cmd, "bulk") && argc >= 6) rc = cmd_bulk(owner, atoi(argv[5]), argc > 6 ? argv[6] : "bulk");
    else fprintf(stderr, "ccsload: bad command\n");
    PQfinish(db);
    return rc;
}
