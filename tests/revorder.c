/* revorder — shows whether a mirror write can land behind an Apple client's
 * sync token (ccs-write-path.md 6.9). It writes one object with pg_sink in
 * a batch that stays open while "CalendarServer" (a second connection)
 * commits a change to the same calendar and a client takes its sync token
 * (the calendar's highest revision); then the batch commits. The write is
 * seen by the client's next sync only if its revision is above that token.
 *
 *   revorder DSN OWNER_UID [--immediate]
 * prints "seen" (exit 0) or "missed" (exit 1); --immediate takes the
 * revision with the write, as calbridge did before (and as CalendarServer
 * does inside its own short transactions).
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bridge/apple/pg_sink.h"

static long long one(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    long long v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "revorder: %s", PQresultErrorMessage(r));
    PQclear(r);
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: revorder DSN OWNER_UID [--immediate]\n");
        return 2;
    }
    const char *ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calbridge test//EN\r\n"
                      "BEGIN:VEVENT\r\nUID:revorder-1\r\nDTSTAMP:20300101T000000Z\r\n"
                      "DTSTART:20300301T090000Z\r\nDTEND:20300301T100000Z\r\nSUMMARY:Mirrored\r\n"
                      "END:VEVENT\r\nEND:VCALENDAR\r\n";
    pg_sink *s;
    cb_err e = {0};
    long long cal = 0;
    pg_written w;
    if (pg_sink_open(argv[1], NULL, "UTC", &s, &e) || pg_sink_begin(s, &e) ||
        pg_sink_home(s, argv[2], &cal, &e) || pg_sink_commit(s, &e)) {
        fprintf(stderr, "revorder: %s\n", e.msg);
        return 2;
    }
    pg_sink_defer_revisions(s, argc < 4 || strcmp(argv[3], "--immediate"));
    if (pg_sink_begin(s, &e) || pg_sink_put(s, argv[2], cal, "revorder.ics", ics, &w, &e)) {
        fprintf(stderr, "revorder: %s\n", e.msg);
        return 2;
    }
    /* Meanwhile CalendarServer stores another change to that calendar, and
     * a client syncs. */
    PGconn *ccs = PQconnectdb(argv[1]);
    char sql[512];
    snprintf(sql, sizeof sql, "INSERT INTO CALENDAR_OBJECT_REVISIONS (CALENDAR_HOME_RESOURCE_ID, "
             "CALENDAR_RESOURCE_ID, RESOURCE_NAME, DELETED) SELECT CALENDAR_HOME_RESOURCE_ID, "
             "%lld, 'ccs-' || nextval('REVISION_SEQ') || '.ics', false FROM CALENDAR_BIND "
             "WHERE CALENDAR_RESOURCE_ID = %lld AND BIND_MODE = 0", cal, cal);
    one(ccs, sql);
    snprintf(sql, sizeof sql, "SELECT max(REVISION) FROM CALENDAR_OBJECT_REVISIONS "
             "WHERE CALENDAR_RESOURCE_ID = %lld", cal);
    long long token = one(ccs, sql);
    if (pg_sink_commit(s, &e)) {
        fprintf(stderr, "revorder: %s\n", e.msg);
        return 2;
    }
    snprintf(sql, sizeof sql, "SELECT REVISION FROM CALENDAR_OBJECT_REVISIONS WHERE "
             "CALENDAR_RESOURCE_ID = %lld AND RESOURCE_NAME = 'revorder.ics'", cal);
    long long rev = one(ccs, sql);
    PQfinish(ccs);
    pg_sink_close(s);
    printf("%s (revision %lld, client token %lld)\n", rev > token ? "seen" : "missed", rev, token);
    return rev > token ? 0 : 1;
}
