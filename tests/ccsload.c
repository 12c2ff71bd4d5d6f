/* ccsload — writes calendar objects into a CalendarServer database the way
 * CalendarServer itself does, for tests and the demo.
 *
 *   ccsload -d DSN home OWNER_UID
 *       the home, its metadata, a default "calendar" and the "inbox"
 *   ccsload -d DSN put OWNER_UID FILE.ics [RESOURCE_NAME]
 *       create or replace; a file holding several UIDs becomes one resource
 *       per UID (CalendarServer stores one UID per resource)
 *   ccsload -d DSN delete OWNER_UID RESOURCE_NAME...  (one transaction)
 *   ccsload -d DSN bulk OWNER_UID COUNT [PREFIX]
 *       COUNT generated one-hour events, committed in batches of 500
 *   ccsload -d DSN homes -    (OWNER_UID ignored: "-")
 *       a home as `home` makes it for each owner UID read from standard
 *       input, one a line, in one transaction; prints "UID CALENDAR_ID"
 *
 * Objects are written by the bridge's own pg_sink (see bridge/pg_sink.h),
 * which writes them as CalendarServer does; this program only plays the
 * Apple client that saves them. CCSLOAD_TZ places floating times (UTC);
 * CCSLOAD_CALENDAR names a calendar by resource id instead of the default
 * one (the writer refuses one that is not in OWNER_UID's own home).
 * CCSLOAD_STRICT=1 refuses what calbridge's mirror refuses (objects over
 * CalendarServer's instance limit); without it, data is stored as found.
 * "%(now)s", "%(now-1)s", "%(now+1)s" in a file become the current year
 * (CalendarServer's own test data is written with these).
 */
#include <libical/ical.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../bridge/apple/pg_sink.h"

static pg_sink *db;

static void check(int rc, const cb_err *e)
{
    if (rc == CB_OK) return;
    fprintf(stderr, "ccsload: %s\n", e->msg);
    exit(1);
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

static void put_one(const char *owner, const char *name, icalcomponent *cal)
{
    char *text = icalcomponent_as_ical_string_r(cal);
    pg_written w;
    cb_err e;
    const char *calendar = getenv("CCSLOAD_CALENDAR");
    int rc = pg_sink_put(db, owner, calendar ? atoll(calendar) : 0, name, text, &w, &e);
    if (rc == CB_EPARSE) fprintf(stderr, "ccsload: %s (skipped)\n", e.msg);
    else check(rc, &e);
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
    cb_err e;
    check(pg_sink_begin(db, &e), &e);
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
        put_one(owner, rname, one);
        icalcomponent_free(one);
        free(uids[i]);
    }
    if (!nuids) {
        /* A VCALENDAR with no component (as in home_bad): CalendarServer
         * refuses it, and so does pg_sink; reported and skipped. */
        put_one(owner, name ? name : base, cal);
    }
    /* CCSLOAD_HOLD=N keeps the transaction open N seconds after its revision
     * was taken, to test commits that land out of revision order. */
    if (getenv("CCSLOAD_HOLD")) sleep((unsigned)atoi(getenv("CCSLOAD_HOLD")));
    check(pg_sink_commit(db, &e), &e);
    icalcomponent_free(cal);
    return 0;
}

/* Every name in one transaction, as a client deleting many events at once. */
static int cmd_delete(const char *owner, char **names, int n)
{
    cb_err e;
    pg_written w;
    int missing = 0;
    check(pg_sink_begin(db, &e), &e);
    for (int i = 0; i < n; i++) {
        int rc = pg_sink_delete(db, owner, 0, names[i], &w, &e);
        if (rc && rc != CB_ENOTFOUND) check(rc, &e);
        if (rc) fprintf(stderr, "ccsload: %s: no such resource\n", names[i]), missing++;
    }
    check(pg_sink_commit(db, &e), &e);
    return missing ? 1 : 0;
}

static int cmd_bulk(const char *owner, int count, const char *prefix)
{
    time_t base = time(NULL) / 3600 * 3600 + 86400;
    for (int i = 0; i < count; i++) {
        cb_err e;
        if (i % 500 == 0) {
            if (i) check(pg_sink_commit(db, &e), &e);
            check(pg_sink_begin(db, &e), &e);
        }
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
        put_one(owner, name, cal);
        icalcomponent_free(cal);
    }
    cb_err e;
    if (count) check(pg_sink_commit(db, &e), &e);
    return 0;
}

static int cmd_homes(void)
{
    cb_err e;
    char line[256];
    check(pg_sink_begin(db, &e), &e);
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!*line) continue;
        long long cal;
        check(pg_sink_home(db, line, &cal, &e), &e);
        printf("%s %lld\n", line, cal);
    }
    check(pg_sink_commit(db, &e), &e);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5 || strcmp(argv[1], "-d")) {
        fprintf(stderr, "usage: ccsload -d DSN home|homes|put|delete|bulk OWNER_UID [ARGS]\n");
        return 2;
    }
    cb_err e;
    tzmap *tz;
    check(tzmap_load(TZMAP_CLDR_PATH, TZMAP_TZDATA_PATH, &tz, &e), &e);
    check(pg_sink_open(argv[2], tz, getenv("CCSLOAD_TZ") ? getenv("CCSLOAD_TZ") : "UTC", &db, &e), &e);
    if (getenv("CCSLOAD_STRICT")) pg_sink_enforce_limits(db, 1);   /* as calbridge's mirror writes */
    const char *cmd = argv[3], *owner = argv[4];
    int rc = 2;
    if (!strcmp(cmd, "home")) {
        long long cal;
        check(pg_sink_begin(db, &e), &e);
        check(pg_sink_home(db, owner, &cal, &e), &e);
        check(pg_sink_commit(db, &e), &e);
        rc = 0;
    } else if (!strcmp(cmd, "put") && argc >= 6) rc = cmd_put(owner, argv[5], argc > 6 ? argv[6] : NULL);
    else if (!strcmp(cmd, "delete") && argc >= 6) rc = cmd_delete(owner, argv + 5, argc - 5);
    else if (!strcmp(cmd, "homes")) rc = cmd_homes();
    else if (!strcmp(cmd, "bulk") && argc >= 6) rc = cmd_bulk(owner, atoi(argv[5]), argc > 6 ? argv[6] : "bulk");
    else fprintf(stderr, "ccsload: bad command\n");
    pg_sink_close(db);
    tzmap_free(tz);
    return rc;
}
