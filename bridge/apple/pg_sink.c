#include "pg_sink.h"

#include <libical/ical.h>
#include <libpq-fe.h>
#include <stdint.h>
#include <sys/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../mapping/ews_item.h"
#include "../../mapping/hash.h"
#include "../../mapping/occur.h"
#include "../../mapping/peruser.h"
#include "../../mapping/sbuf.h"
#include "pg_source.h"

/* CalendarServer's defaults (twistedcaldav/stdconfig.py). */
#define LOWER_LIMIT_DAYS 365
#define EXPAND_AHEAD_DAYS 365
#define MAX_INSTANCES 20000
#define MAX_ALLOWED_INSTANCES 3000   /* CalendarServer's MaxAllowedInstances */
#define MAX_ATTENDEES 100            /* its MaxAttendeesPerInstance */

enum { FB_FREE = 1, FB_BUSY = 2, FB_TENTATIVE = 4 };   /* icalfbtype_to_indexfbtype */

typedef struct bump {
    char cal[32];
    char *name;
    int deleted;
    long long rev;           /* once committed */
} bump;

struct pg_sink {
    PGconn *conn;
    const tzmap *tz;
    char *default_tz;
    char owned_owner[256];   /* the last calendar found in its owner's home */
    long long owned_cal;
    int defer;               /* revisions taken after the data commit */
    int strict;              /* CalendarServer's instance limit refuses */
    bump *bumps;             /* this batch's, in order */
    size_t nbumps, mark;     /* mark: where the current object's begin */
    long long *touched;      /* the calendars this batch wrote */
    size_t ntouched;
};

static int db_err(pg_sink *s, cb_err *err, const char *what)
{
    return cb_errf(err, CB_EIO, "Apple database (%s): %s", what, PQerrorMessage(s->conn));
}

/* Runs sql; *res (when wanted) is the caller's. */
static int run(pg_sink *s, const char *sql, int n, const char *const *p, PGresult **res,
               cb_err *err)
{
    PGresult *r = PQexecParams(s->conn, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        cb_errf(err, CB_EIO, "Apple database: %s", PQresultErrorMessage(r));
        PQclear(r);
        return CB_EIO;
    }
    if (res) *res = r;
    else PQclear(r);
    return CB_OK;
}

static long long first_ll(PGresult *r)
{
    long long v = PQntuples(r) && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : 0;
    PQclear(r);
    return v;
}

int pg_sink_open(const char *dsn, const tzmap *tz, const char *default_tz, pg_sink **out,
                 cb_err *err)
{
    *out = NULL;
    pg_sink *s = calloc(1, sizeof *s);
    if (!s || !(s->default_tz = strdup(default_tz ? default_tz : "UTC"))) {
        free(s);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    s->tz = tz;
    s->conn = PQconnectdb(dsn);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        db_err(s, err, "connect");
        pg_sink_close(s);
        return CB_EIO;
    }
    PQclear(PQexec(s->conn, "SET client_min_messages = warning"));
    *out = s;
    return CB_OK;
}

/* What pg_sink's statements do, table by table (CalendarServer's names). */
static const char *const NEEDED[][2] = {
    {"calendar_home", "SELECT,INSERT"},
    {"calendar_home_metadata", "SELECT,INSERT"},
    {"calendar", "SELECT,INSERT"},
    {"calendar_bind", "SELECT,INSERT"},
    {"calendar_metadata", "INSERT"},
    {"calendar_object", "SELECT,INSERT,UPDATE,DELETE"},
    {"calendar_object_revisions", "SELECT,INSERT,UPDATE"},
    {"time_range", "SELECT,INSERT,DELETE"},
    {"peruser", "INSERT"},
    {"resource_property", "SELECT,DELETE"},
    {"revision_seq", "USAGE"},
    {"resource_id_seq", "USAGE"},
    {"instance_id_seq", "USAGE"},
};

/* What pg_sink_queue_push adds. */
static const char *const PUSH_NEEDED[][2] = {
    {"job", "INSERT"},
    {"push_notification_work", "INSERT"},
    {"calendar_metadata", "UPDATE"},
    {"job_seq", "USAGE"},
    {"workitem_seq", "USAGE"},
};

static int check_list(pg_sink *s, const char *const (*need)[2], size_t n, char *missing,
                      size_t size, cb_err *err)
{
    for (size_t i = 0; i < n; i++) {
        char list[64];
        snprintf(list, sizeof list, "%s", need[i][1]);
        for (char *save = NULL, *priv = strtok_r(list, ",", &save); priv;
             priv = strtok_r(NULL, ",", &save)) {
            const char *p[2] = {need[i][0], priv};
            PGresult *r;
            int rc = run(s, strcmp(priv, "USAGE")
                                ? "SELECT has_table_privilege($1, $2)"
                                : "SELECT has_sequence_privilege($1, $2)", 2, p, &r, err);
            if (rc) return rc;
            int ok = PQntuples(r) && PQgetvalue(r, 0, 0)[0] == 't';
            PQclear(r);
            if (!ok && strlen(missing) + 60 < size)
                snprintf(missing + strlen(missing), size - strlen(missing), "%s%s on %s",
                         *missing ? ", " : "", priv, need[i][0]);
        }
    }
    return CB_OK;
}

int pg_sink_check_privileges(pg_sink *s, cb_err *err)
{
    char missing[400] = "";
    int rc = check_list(s, NEEDED, sizeof NEEDED / sizeof *NEEDED, missing, sizeof missing, err);
    if (rc || !*missing) return rc;
    return cb_errf(err, CB_EINVAL, "the Apple writer's role (%s) lacks %s: mirroring into "
                   "CalendarServer would fail; grant them ([apple] write_dsn)",
                   PQuser(s->conn), missing);
}

int pg_sink_check_push_privileges(pg_sink *s, cb_err *err)
{
    char missing[400] = "";
    int rc = check_list(s, PUSH_NEEDED, sizeof PUSH_NEEDED / sizeof *PUSH_NEEDED, missing,
                        sizeof missing, err);
    if (rc || !*missing) return rc;
    return cb_errf(err, CB_EINVAL, "the Apple writer's role (%s) lacks %s: CalendarServer's "
                   "push cannot be queued ([apple] notify = queue)", PQuser(s->conn), missing);
}

static int touch(pg_sink *s, long long cal, cb_err *err)
{
    for (size_t i = 0; i < s->ntouched; i++)
        if (s->touched[i] == cal) return CB_OK;
    long long *v = realloc(s->touched, (s->ntouched + 1) * sizeof *v);
    if (!v) return cb_errf(err, CB_ENOMEM, "out of memory");
    s->touched = v;
    v[s->ntouched++] = cal;
    return CB_OK;
}

int pg_sink_touched(pg_sink *s, pg_calendar **out, size_t *n, cb_err *err)
{
    *out = NULL;
    *n = 0;
    if (!s->ntouched) return CB_OK;
    sbuf ids;
    sbuf_init(&ids);
    sbuf_cat(&ids, "{");
    for (size_t i = 0; i < s->ntouched; i++) sbuf_printf(&ids, "%s%lld", i ? "," : "", s->touched[i]);
    sbuf_cat(&ids, "}");
    const char *p[1] = {ids.s};
    PGresult *r;
    int rc = sbuf_failed(&ids) ? cb_errf(err, CB_ENOMEM, "out of memory")
             : run(s, "SELECT h.OWNER_UID, b.CALENDAR_RESOURCE_NAME FROM CALENDAR_BIND b"
                      " JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID"
                      " WHERE b.CALENDAR_RESOURCE_ID = ANY($1::bigint[]) AND b.BIND_MODE = 0",
                   1, p, &r, err);
    sbuf_free(&ids);
    if (rc) return rc;
    int rows = PQntuples(r);
    if (rows && !(*out = calloc((size_t)rows, sizeof **out))) rc = cb_errf(err, CB_ENOMEM, "out of memory");
    for (int i = 0; rc == CB_OK && i < rows; i++) {
        snprintf((*out)[i].owner, sizeof (*out)[i].owner, "%s", PQgetvalue(r, i, 0));
        snprintf((*out)[i].name, sizeof (*out)[i].name, "%s", PQgetvalue(r, i, 1));
    }
    if (rc == CB_OK) *n = (size_t)rows;
    PQclear(r);
    return rc;
}

/* One push job, as twext's makeJob and CalendarServer's notifier write it:
 * WORK_PRIORITY_HIGH (2), weight 1, a few seconds ahead for coalescing;
 * PUSH_PRIORITY high (10). The column defaults fit v58's JOB and v66's. */
static int queue_one(pg_sink *s, const char *id, cb_err *err)
{
    const char *p[1] = {id};
    return run(s, "WITH j AS (INSERT INTO JOB (WORK_TYPE, PRIORITY, WEIGHT, NOT_BEFORE)"
                  " VALUES ('PUSH_NOTIFICATION_WORK', 2, 1,"
                  "         timezone('UTC', CURRENT_TIMESTAMP) + interval '3 seconds')"
                  " RETURNING JOB_ID)"
                  " INSERT INTO PUSH_NOTIFICATION_WORK (JOB_ID, PUSH_ID, PUSH_PRIORITY)"
                  " SELECT JOB_ID, $1, 10 FROM j", 1, p, NULL, err);
}

int pg_sink_queue_push(pg_sink *s, const char *host, const pg_calendar *c, size_t n,
                       cb_err *err)
{
    int rc = run(s, "BEGIN", 0, NULL, NULL, err);
    for (size_t i = 0; rc == CB_OK && i < n; i++) {
        char id[800];
        const char *p[2] = {c[i].owner, c[i].name};
        rc = run(s, "UPDATE CALENDAR_METADATA SET MODIFIED = timezone('UTC', CURRENT_TIMESTAMP)"
                    " WHERE RESOURCE_ID = (SELECT b.CALENDAR_RESOURCE_ID FROM CALENDAR_BIND b"
                    "  JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID"
                    "  WHERE h.OWNER_UID = $1 AND b.CALENDAR_RESOURCE_NAME = $2"
                    "    AND b.BIND_MODE = 0)", 2, p, NULL, err);
        /* A sharee's device listens on the calendar's key, the owner's on
         * the home's (calendarserver/push/notifier.py). */
        snprintf(id, sizeof id, "/CalDAV/%s/%s/%s/", host, c[i].owner, c[i].name);
        if (rc == CB_OK) rc = queue_one(s, id, err);
        snprintf(id, sizeof id, "/CalDAV/%s/%s/", host, c[i].owner);
        if (rc == CB_OK) rc = queue_one(s, id, err);
    }
    if (rc == CB_OK) return run(s, "COMMIT", 0, NULL, NULL, err);
    PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc;
}

static void bumps_clear(pg_sink *s, size_t from)
{
    for (size_t i = from; i < s->nbumps; i++) free(s->bumps[i].name);
    s->nbumps = from;
    if (s->mark > from) s->mark = from;
}

void pg_sink_close(pg_sink *s)
{
    if (!s) return;
    bumps_clear(s, 0);
    free(s->bumps);
    free(s->touched);
    PQfinish(s->conn);
    free(s->default_tz);
    free(s);
}

/* A dropped connection (PostgreSQL restarted) is re-opened once here, at a
 * transaction boundary, where nothing of the batch has been written yet. */
void pg_sink_defer_revisions(pg_sink *s, int on)
{
    s->defer = on;
}

void pg_sink_enforce_limits(pg_sink *s, int on)
{
    s->strict = on;
}

int pg_sink_begin(pg_sink *s, cb_err *err)
{
    bumps_clear(s, 0);
    s->ntouched = 0;
    if (PQstatus(s->conn) != CONNECTION_OK) PQreset(s->conn);
    if (run(s, "BEGIN", 0, NULL, NULL, err) == CB_OK) return CB_OK;
    PQreset(s->conn);
    return run(s, "BEGIN", 0, NULL, NULL, err);
}

static int change_revision(pg_sink *s, const char *cal, const char *name, int deleted,
                           long long *rev, cb_err *err);

/* The data first, then every revision of the batch in one short
 * transaction of its own: a revision taken early in a long batch could
 * commit below a sync token a client took meanwhile, and never be
 * reported to it (ccs-write-path.md, 6.9). A crash in between leaves the
 * data without its revision, and the write is made again (the caller's
 * intent is still open). */
int pg_sink_commit(pg_sink *s, cb_err *err)
{
    int rc = run(s, "COMMIT", 0, NULL, NULL, err);
    if (rc || !s->nbumps) return rc;
    rc = run(s, "BEGIN", 0, NULL, NULL, err);
    for (size_t i = 0; rc == CB_OK && i < s->nbumps; i++)
        rc = change_revision(s, s->bumps[i].cal, s->bumps[i].name, s->bumps[i].deleted,
                             &s->bumps[i].rev, err);
    if (rc == CB_OK) return run(s, "COMMIT", 0, NULL, NULL, err);
    PQclear(PQexec(s->conn, "ROLLBACK"));
    return rc;
}

int pg_sink_revision(pg_sink *s, long long calendar_id, const char *name, long long *rev)
{
    char cal[32];
    snprintf(cal, sizeof cal, "%lld", calendar_id);
    for (size_t i = s->nbumps; i-- > 0;)
        if (!strcmp(s->bumps[i].cal, cal) && !strcmp(s->bumps[i].name, name)) {
            *rev = s->bumps[i].rev;
            return *rev ? CB_OK : CB_ENOTFOUND;
        }
    return CB_ENOTFOUND;
}

void pg_sink_rollback(pg_sink *s)
{
    bumps_clear(s, 0);
    s->owned_cal = 0;   /* an ownership found inside what is rolled back */
    PQclear(PQexec(s->conn, "ROLLBACK"));
}

int pg_sink_mark(pg_sink *s, cb_err *err)
{
    s->mark = s->nbumps;
    return run(s, "SAVEPOINT calbridge_object", 0, NULL, NULL, err);
}

int pg_sink_undo(pg_sink *s, cb_err *err)
{
    s->owned_cal = 0;   /* the check may have been made inside what is undone */
    bumps_clear(s, s->mark);
    return run(s, "ROLLBACK TO SAVEPOINT calbridge_object", 0, NULL, NULL, err);
}

/* ---- homes ------------------------------------------------------------ */

static int new_calendar(pg_sink *s, const char *home, const char *name, const char *comps,
                        char id[32], cb_err *err)
{
    PGresult *r;
    int rc = run(s, "INSERT INTO CALENDAR DEFAULT VALUES RETURNING RESOURCE_ID", 0, NULL, &r, err);
    if (rc) return rc;
    snprintf(id, 32, "%lld", first_ll(r));
    const char *b[3] = {home, id, name}, *m[2] = {id, comps}, *v[3] = {home, id, name};
    if ((rc = run(s, "INSERT INTO CALENDAR_BIND (CALENDAR_HOME_RESOURCE_ID, CALENDAR_RESOURCE_ID,"
                     " CALENDAR_RESOURCE_NAME, BIND_MODE, BIND_STATUS) VALUES ($1, $2, $3, 0, 1)",
                  3, b, NULL, err)))
        return rc;
    if ((rc = run(s, "INSERT INTO CALENDAR_METADATA (RESOURCE_ID, SUPPORTED_COMPONENTS)"
                     " VALUES ($1, $2)", 2, m, NULL, err)))
        return rc;
    /* The collection's own revision row, which its sync token starts from. */
    return run(s, "INSERT INTO CALENDAR_OBJECT_REVISIONS (CALENDAR_HOME_RESOURCE_ID,"
                  " CALENDAR_RESOURCE_ID, CALENDAR_NAME, RESOURCE_NAME, DELETED)"
                  " VALUES ($1, $2, $3, NULL, false)", 3, v, NULL, err);
}

/* A home as CalendarServer provisions one (ccs-write-path.md 1.7): its
 * DATAVERSION, one calendar per component type ("calendar", "tasks",
 * "polls", as RestrictCalendarsToOneComponentType has it) with the
 * DEFAULT_* columns, and a transparent inbox. A home the person has in
 * another state (disabled, migrating) is not doubled: refused. */
static int create_home(pg_sink *s, const char *owner, long long *cal, cb_err *err)
{
    const char *p[1] = {owner};
    PGresult *r;
    int rc = run(s, "SELECT STATUS FROM CALENDAR_HOME WHERE OWNER_UID = $1", 1, p, &r, err);
    if (rc) return rc;
    int other = PQntuples(r) > 0;
    long long status = first_ll(r);
    if (other)
        return cb_errf(err, CB_EINVAL, "the home of %s is not active (status %lld); "
                       "CalendarServer must provision it before anything is written", owner,
                       status);
    rc = run(s, "INSERT INTO CALENDAR_HOME (OWNER_UID, DATAVERSION) SELECT $1,"
                " COALESCE((SELECT CAST(VALUE AS integer) FROM CALENDARSERVER"
                "           WHERE NAME = 'CALENDAR-DATAVERSION'), 0) RETURNING RESOURCE_ID",
             1, p, &r, err);
    if (rc) return rc;
    char home[32], calid[32], tasks[32], polls[32], inbox[32];
    snprintf(home, sizeof home, "%lld", first_ll(r));
    if ((rc = new_calendar(s, home, "calendar", "VEVENT", calid, err)) ||
        (rc = new_calendar(s, home, "tasks", "VTODO", tasks, err)) ||
        (rc = new_calendar(s, home, "polls", "VPOLL", polls, err)) ||
        (rc = new_calendar(s, home, "inbox", NULL, inbox, err)))
        return rc;
    const char *m[4] = {home, calid, tasks, polls}, *in[1] = {inbox};
    rc = run(s, "INSERT INTO CALENDAR_HOME_METADATA (RESOURCE_ID, DEFAULT_EVENTS, DEFAULT_TASKS,"
                " DEFAULT_POLLS) VALUES ($1, $2, $3, $4)", 4, m, NULL, err);
    /* The inbox never counts as busy (CALENDAR_TRANSP 1). */
    if (rc == CB_OK)
        rc = run(s, "UPDATE CALENDAR_BIND SET TRANSP = 1 WHERE CALENDAR_RESOURCE_ID = $1", 1, in,
                 NULL, err);
    *cal = atoll(calid);
    return rc;
}

int pg_sink_find_uid(pg_sink *s, const char *owner, const char *uid, long long *calendar_id,
                     char *name, size_t size, cb_err *err)
{
    const char *p[2] = {owner, uid};
    PGresult *r;
    int rc = run(s, "SELECT o.CALENDAR_RESOURCE_ID, o.RESOURCE_NAME FROM CALENDAR_OBJECT o"
                    " JOIN CALENDAR_BIND b ON b.CALENDAR_RESOURCE_ID = o.CALENDAR_RESOURCE_ID"
                    "  AND b.BIND_MODE = 0 AND b.CALENDAR_RESOURCE_NAME <> 'inbox'"
                    " JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID"
                    " WHERE h.OWNER_UID = $1 AND o.ICALENDAR_UID = $2"
                    " ORDER BY o.RESOURCE_ID LIMIT 1", 2, p, &r, err);
    if (rc) return rc;
    int found = PQntuples(r) > 0;
    if (found) {
        *calendar_id = atoll(PQgetvalue(r, 0, 0));
        snprintf(name, size, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return found ? CB_OK : CB_ENOTFOUND;
}

/* CalendarServer's MaxAttendeesPerInstance: a PUT with more is refused
 * (max-attendees-per-instance), and so is calbridge's write. */
static int check_attendees(icalcomponent *cal, const char *name, cb_err *err)
{
    for (icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT); ev;
         ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
        int n = icalcomponent_count_properties(ev, ICAL_ATTENDEE_PROPERTY);
        if (n > MAX_ATTENDEES)
            return cb_errf(err, CB_EINVAL, "%s: %d attendees; CalendarServer allows %d "
                           "(MaxAttendeesPerInstance)", name, n, MAX_ATTENDEES);
    }
    return CB_OK;
}

/* CalendarServer's ImplicitUIDLock (ccs-write-path.md 6.7): the row is
 * inserted and deleted again inside the transaction; its index entry stays
 * locked until the commit, so a CalendarServer write of the same UID waits
 * for ours (and ours for its), and the check that follows sees the other's
 * object. Then one object per UID per home, as CalendarServer enforces. */
static int uid_locked_unique(pg_sink *s, const char *owner, const char *uid, const char *cal,
                             const char *name, cb_err *err)
{
    const char *p[1] = {uid};
    int rc = run(s, "INSERT INTO NAMED_LOCK (LOCK_NAME) VALUES ('ImplicitUIDLock:' || md5($1))",
                 1, p, NULL, err);
    if (rc == CB_OK)
        rc = run(s, "DELETE FROM NAMED_LOCK WHERE LOCK_NAME = 'ImplicitUIDLock:' || md5($1)", 1,
                 p, NULL, err);
    long long other_cal = 0;
    char other[256];
    if (rc == CB_OK && (rc = pg_sink_find_uid(s, owner, uid, &other_cal, other, sizeof other,
                                              err)) == CB_ENOTFOUND)
        return CB_OK;
    if (rc) return rc;
    if (other_cal == atoll(cal) && !strcmp(other, name)) return CB_OK;
    return cb_errf(err, CB_EINVAL, "UID %s is already stored as %s in this home; CalendarServer "
                   "keeps one object per UID", uid, other);
}

int pg_sink_home(pg_sink *s, const char *owner, long long *calendar_id, cb_err *err)
{
    const char *p[1] = {owner};
    PGresult *r;
    /* The default events calendar, or failing that the first owned
     * calendar that holds events (older homes have no default set): not the
     * inbox, not the trash, not a to-do list, which free/busy ignores. */
    int rc = run(s, "SELECT COALESCE(hm.DEFAULT_EVENTS, (SELECT MIN(b.CALENDAR_RESOURCE_ID)"
                    "   FROM CALENDAR_BIND b"
                    "   LEFT JOIN CALENDAR_METADATA m ON m.RESOURCE_ID = b.CALENDAR_RESOURCE_ID"
                    "  WHERE b.CALENDAR_HOME_RESOURCE_ID = h.RESOURCE_ID"
                    "    AND b.BIND_MODE = 0 AND b.CALENDAR_RESOURCE_NAME <> 'inbox'"
                    "    AND COALESCE(m.CHILD_TYPE, 0) = 0 AND NOT COALESCE(m.IS_IN_TRASH, false)"
                    "    AND (m.SUPPORTED_COMPONENTS IS NULL"
                    "         OR m.SUPPORTED_COMPONENTS LIKE '%VEVENT%')))"
                    "  FROM CALENDAR_HOME h"
                    "  LEFT JOIN CALENDAR_HOME_METADATA hm ON hm.RESOURCE_ID = h.RESOURCE_ID"
                    " WHERE h.OWNER_UID = $1 AND h.STATUS = 0", 1, p, &r, err);
    if (rc) return rc;
    int found = PQntuples(r) > 0;
    *calendar_id = first_ll(r);
    if (found && *calendar_id) return CB_OK;
    if (found) return cb_errf(err, CB_ENOTFOUND, "home of %s has no calendar", owner);
    return create_home(s, owner, calendar_id, err);
}

/* A calendar is written only when owner's own home binds it as owner
 * (BIND_MODE 0): a key that names anybody else's calendar is refused,
 * whoever built it. */
static int check_owned(pg_sink *s, const char *owner, long long cal, cb_err *err)
{
    if (cal == s->owned_cal && !strcmp(owner, s->owned_owner)) return CB_OK;
    char id[32];
    snprintf(id, sizeof id, "%lld", cal);
    const char *p[2] = {owner, id};
    PGresult *r;
    int rc = run(s, "SELECT 1 FROM CALENDAR_BIND b JOIN CALENDAR_HOME h"
                    "   ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID"
                    " WHERE h.OWNER_UID = $1 AND b.CALENDAR_RESOURCE_ID = $2 AND b.BIND_MODE = 0",
                 2, p, &r, err);
    if (rc) return rc;
    int owned = PQntuples(r) > 0;
    PQclear(r);
    if (!owned) return cb_errf(err, CB_EINVAL, "calendar %lld is not in %s's own home; refused",
                               cal, owner);
    s->owned_cal = cal;
    snprintf(s->owned_owner, sizeof s->owned_owner, "%s", owner);
    return CB_OK;
}

/* ---- the free/busy index ---------------------------------------------- */

typedef struct index_job {
    pg_sink *s;
    const char *cal, *obj;
    icaltimezone *floating_zone;
    long long rows;
    const peruser_index *users;   /* NULL: no PERUSER rows (the markers) */
} index_job;

static void sql_time(long long t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm);
}

/* Floating and all-day instances are stored as their wall-clock time:
 * CalendarServer moves them into the asking user's zone at query time. */
static long long wall(long long utc, icaltimezone *zone)
{
    struct icaltimetype t = icaltime_from_timet_with_zone((time_t)utc, 0, zone);
    t.zone = NULL;
    return (long long)icaltime_as_timet(t);
}

/* A user's own view of an instance (ccs-write-path.md 1.3): where their
 * transparency differs from the row's, or travel time moves its start or
 * end, CalendarServer's free/busy query reads their PERUSER row. */
static int add_peruser(index_job *j, const char *instance, const occur *o, long long start,
                       long long end, int transparent, cb_err *err)
{
    peruser_row rows[16];
    size_t n = peruser_index_rows(j->users, o->comp, o->orig, transparent, rows, 16);
    int rc = CB_OK;
    for (size_t i = 0; rc == CB_OK && i < n; i++) {
        char a[32] = "", b[32] = "";
        if (rows[i].before >= 0) sql_time(start - rows[i].before, a);
        if (rows[i].after >= 0) sql_time(end + rows[i].after, b);
        const char *p[5] = {instance, rows[i].user, rows[i].transparent ? "true" : "false",
                            *a ? a : NULL, *b ? b : NULL};
        rc = run(j->s, "INSERT INTO PERUSER (TIME_RANGE_INSTANCE_ID, USER_ID, TRANSPARENT,"
                       " ADJUSTED_START_DATE, ADJUSTED_END_DATE) VALUES ($1, $2, $3, $4, $5)",
                 5, p, NULL, err);
    }
    return rc;
}

/* One TIME_RANGE row; o NULL for a marker. */
static int add_row(index_job *j, const occur *o, long long start, long long end, int floating,
                   int fbtype, int transparent, cb_err *err)
{
    char a[32], b[32], fb[8];
    if (floating) start = wall(start, j->floating_zone), end = wall(end, j->floating_zone);
    sql_time(start, a);
    sql_time(end, b);
    snprintf(fb, sizeof fb, "%d", fbtype);
    const char *p[7] = {j->cal, j->obj, floating ? "true" : "false", a, b, fb,
                        transparent ? "true" : "false"};
    j->rows++;
    PGresult *r;
    int rc = run(j->s, "INSERT INTO TIME_RANGE (CALENDAR_RESOURCE_ID, CALENDAR_OBJECT_RESOURCE_ID,"
                       " FLOATING, START_DATE, END_DATE, FBTYPE, TRANSPARENT)"
                       " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING INSTANCE_ID", 7, p, &r, err);
    if (rc) return rc;
    char instance[32];
    snprintf(instance, sizeof instance, "%lld", first_ll(r));
    return o && j->users ? add_peruser(j, instance, o, start, end, transparent, err) : CB_OK;
}

static int fbtype_of(icalcomponent *ev)
{
    icalproperty_status st = icalcomponent_get_status(ev);
    if (st == ICAL_STATUS_CANCELLED) return FB_FREE;
    return st == ICAL_STATUS_TENTATIVE ? FB_TENTATIVE : FB_BUSY;
}

/* adjustedTransp of the shared data: TRANSP (the writer's is in their
 * block), and an all-day event without one is transparent. */
static int is_transparent(icalcomponent *ev)
{
    icalproperty *p = icalcomponent_get_first_property(ev, ICAL_TRANSP_PROPERTY);
    if (!p) return icalcomponent_get_dtstart(ev).is_date;
    return icalproperty_get_transp(p) == ICAL_TRANSP_TRANSPARENT;
}

static int is_floating(icalcomponent *ev)
{
    struct icaltimetype t = icalcomponent_get_dtstart(ev);
    return t.is_date || (!t.zone && !icaltime_is_utc(t));
}

typedef struct span {
    long long lower, upper;    /* what is indexed */
    int lower_cut;             /* instances before lower: RECURRANCE_MIN, 1901 marker */
    int limited;               /* instances after upper: RECURRANCE_MAX = upper */
    int unbounded;             /* no end: the 2100 marker too */
    int delayed;               /* not expanded here: no rows, RECURRANCE_MAX 1900-01-01 */
} span;

static int rule_props(icalcomponent *cal, const char *uid, int *unbounded)
{
    int recurring = 0;
    *unbounded = 0;
    for (icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT); ev;
         ev = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
        const char *u = icalcomponent_get_uid(ev);
        if (!u || strcmp(u, uid)) continue;
        icalproperty *rr = icalcomponent_get_first_property(ev, ICAL_RRULE_PROPERTY);
        recurring |= rr || icalcomponent_get_first_property(ev, ICAL_RDATE_PROPERTY);
        if (!rr) continue;
        struct icalrecurrencetype r = icalproperty_get_rrule(rr);
        if (!r.count && icaltime_is_null_time(r.until)) *unbounded = 1;
    }
    return recurring;
}

/* The object's instances as CalendarServer indexes them (ccs-write-path.md
 * 1.3): a single event to 2100; a series from a year back to a year ahead,
 * with RECURRANCE_MIN/MAX saying it was cut so that CalendarServer expands
 * further itself when a query needs it. More than MaxAllowedInstances in
 * that window is refused, as CalendarServer refuses such a PUT. A series
 * that cannot be expanded here is stored as CalendarServer's delayed
 * expansion stores it (no rows, RECURRANCE_MAX 1900-01-01): it indexes it
 * on its first query, instead of the event never showing in free/busy. */
static int expand(pg_sink *s, icalcomponent *cal, const char *uid, span *sp, occur_list *l,
                  cb_err *err)
{
    long long now = (long long)time(NULL);
    long long today = now - now % 86400;
    sp->lower = today - LOWER_LIMIT_DAYS * 86400LL;
    int recurring = rule_props(cal, uid, &sp->unbounded);
    sp->upper = recurring ? today + EXPAND_AHEAD_DAYS * 86400LL : 4102444800LL; /* 2100 */
    map_ctx mc = {NULL, s->tz, s->default_tz, 0, now, NULL, NULL};
    tzdef_cache zones = {0};
    cb_err e = {0};
    if (occur_ical(cal, uid, &mc, &zones, -(1LL << 62), sp->upper, MAX_INSTANCES, l, &e) != CB_OK) {
        occur_free(l);
        tzdef_cache_free(&zones);
        /* Too many to count here may be too many for CalendarServer too,
         * and a delayed series it cannot expand breaks every query of the
         * calendar: refused. Anything else it may expand better. */
        if (s->strict && strstr(e.msg, "more than"))
            return cb_errf(err, CB_EINVAL, "event %s: more than %d occurrences up to a year "
                           "ahead; not indexed (CalendarServer allows %d in its window)", uid,
                           MAX_INSTANCES, MAX_ALLOWED_INSTANCES);
        sp->delayed = 1;
        return CB_OK;
    } else if (recurring) {
        occur_list beyond = {0};
        sp->limited = sp->unbounded ||
                      occur_ical(cal, uid, &mc, &zones, sp->upper, 253402300799LL, MAX_INSTANCES,
                                 &beyond, NULL) != CB_OK || beyond.n > 0;
        occur_free(&beyond);
    }
    tzdef_cache_free(&zones);
    size_t in_window = 0;
    for (size_t i = 0; i < l->n; i++) {
        sp->lower_cut |= l->v[i].end < sp->lower;
        in_window += l->v[i].end >= sp->lower;
    }
    if (s->strict && recurring && in_window > MAX_ALLOWED_INSTANCES)
        return cb_errf(err, CB_EINVAL, "event %s: %zu occurrences between a year back and a year "
                       "ahead; CalendarServer refuses more than %d (MaxAllowedInstances)", uid,
                       in_window, MAX_ALLOWED_INSTANCES);
    return CB_OK;
}

/* The TIME_RANGE rows of the expanded instances, and the markers. */
static int index_rows(index_job *j, const occur_list *l, const span *sp, cb_err *err)
{
    int rc = CB_OK;
    if (sp->delayed) return CB_OK;   /* CalendarServer builds them */
    for (size_t i = 0; rc == CB_OK && i < l->n; i++) {
        const occur *o = &l->v[i];
        if (o->end < sp->lower) continue;
        icalcomponent *ev = o->comp;
        rc = add_row(j, o, o->start, o->end, is_floating(ev), fbtype_of(ev), is_transparent(ev),
                     err);
    }
    if (rc == CB_OK && sp->lower_cut)
        rc = add_row(j, NULL, -2177452800LL, -2177449200LL, 0, 0, 1, err);
    if (rc == CB_OK && sp->unbounded)
        rc = add_row(j, NULL, 4102444800LL, 4102448400LL, 0, 0, 1, err);
    return rc;
}

/* ---- objects ---------------------------------------------------------- */

/* The revision now (as CalendarServer takes it), or, deferred, at commit. */
static int revise(pg_sink *s, const char *cal, const char *name, int deleted, long long *rev,
                  cb_err *err)
{
    *rev = 0;
    if (!s->defer) return change_revision(s, cal, name, deleted, rev, err);
    for (size_t i = 0; i < s->nbumps; i++)
        if (!strcmp(s->bumps[i].cal, cal) && !strcmp(s->bumps[i].name, name)) {
            s->bumps[i].deleted = deleted;
            return CB_OK;
        }
    bump *v = realloc(s->bumps, (s->nbumps + 1) * sizeof *v);
    if (!v) return cb_errf(err, CB_ENOMEM, "out of memory");
    s->bumps = v;
    v[s->nbumps] = (bump){.deleted = deleted, .name = strdup(name)};
    if (!v[s->nbumps].name) return cb_errf(err, CB_ENOMEM, "out of memory");
    snprintf(v[s->nbumps].cal, sizeof v->cal, "%s", cal);
    s->nbumps++;
    return CB_OK;
}

static int change_revision(pg_sink *s, const char *cal, const char *name, int deleted,
                           long long *rev, cb_err *err)
{
    const char *p[3] = {cal, name, deleted ? "true" : "false"};
    PGresult *r;
    int rc = run(s, "UPDATE CALENDAR_OBJECT_REVISIONS SET REVISION = nextval('REVISION_SEQ'),"
                    " DELETED = $3, MODIFIED = timezone('UTC', CURRENT_TIMESTAMP)"
                    " WHERE CALENDAR_RESOURCE_ID = $1 AND RESOURCE_NAME = $2 RETURNING REVISION",
                 3, p, &r, err);
    if (rc) return rc;
    int found = PQntuples(r) > 0;
    *rev = first_ll(r);
    if (found) return CB_OK;
    rc = run(s, "INSERT INTO CALENDAR_OBJECT_REVISIONS (CALENDAR_HOME_RESOURCE_ID,"
                " CALENDAR_RESOURCE_ID, RESOURCE_NAME, DELETED)"
                " SELECT CALENDAR_HOME_RESOURCE_ID, $1, $2, $3 FROM CALENDAR_BIND"
                "  WHERE CALENDAR_RESOURCE_ID = $1 AND BIND_MODE = 0 RETURNING REVISION",
             3, p, &r, err);
    if (rc == CB_OK) *rev = first_ll(r);
    return rc;
}

typedef struct obj_facts {
    const char *uid, *type, *organizer;
    int access;                 /* CALENDAR_OBJECT.ACCESS, from X-CALENDARSERVER-ACCESS */
    int attachments, private_comments;
} obj_facts;

static int has_prop(icalcomponent *cal, const char *xname, icalproperty_kind kind)
{
    for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_ANY_COMPONENT); c;
         c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT))
        for (icalproperty *p = icalcomponent_get_first_property(c, kind); p;
             p = icalcomponent_get_next_property(c, kind))
            if (!xname || !strcmp(icalproperty_get_x_name(p) ? icalproperty_get_x_name(p) : "", xname))
                return 1;
    return 0;
}

/* accessMode_to_type: "" 0, PUBLIC 1, PRIVATE 2, CONFIDENTIAL 3, RESTRICTED 4. */
static int access_of(icalcomponent *cal)
{
    static const char *const MODES[] = {"PUBLIC", "PRIVATE", "CONFIDENTIAL", "RESTRICTED"};
    for (icalproperty *p = icalcomponent_get_first_property(cal, ICAL_X_PROPERTY); p;
         p = icalcomponent_get_next_property(cal, ICAL_X_PROPERTY)) {
        const char *n = icalproperty_get_x_name(p), *v = icalproperty_get_x(p);
        if (!n || strcmp(n, "X-CALENDARSERVER-ACCESS") || !v) continue;
        for (int i = 0; i < 4; i++)
            if (!strcmp(v, MODES[i])) return i + 1;
    }
    return 0;
}

static int read_facts(icalcomponent *cal, obj_facts *f, cb_err *err)
{
    icalcomponent *first = NULL;
    for (icalcomponent *c = icalcomponent_get_first_real_component(cal); c && !first;
         c = icalcomponent_get_next_component(cal, ICAL_ANY_COMPONENT))
        if (icalcomponent_isa(c) != ICAL_VTIMEZONE_COMPONENT) first = c;
    if (!first || !icalcomponent_get_uid(first))
        return cb_errf(err, CB_EPARSE, "calendar object has no component with a UID");
    f->uid = icalcomponent_get_uid(first);
    f->type = icalcomponent_kind_to_string(icalcomponent_isa(first));
    icalproperty *op = icalcomponent_get_first_property(first, ICAL_ORGANIZER_PROPERTY);
    f->organizer = op ? icalproperty_get_organizer(op) : "";
    /* _ATTACHMENTS_MODE_WRITE for a dropbox, _READ for plain ATTACH. */
    f->attachments = has_prop(cal, "X-APPLE-DROPBOX", ICAL_X_PROPERTY) ? 2
                     : has_prop(cal, NULL, ICAL_ATTACH_PROPERTY)          ? 1 : 0;
    f->access = access_of(cal);
    f->private_comments = has_prop(cal, "X-CALENDARSERVER-PRIVATE-COMMENT", ICAL_X_PROPERTY) ||
                          has_prop(cal, "X-CALENDARSERVER-ATTENDEE-COMMENT", ICAL_X_PROPERTY);
    return CB_OK;
}

/* A fresh Schedule-Tag: clients holding the old one must not PUT over
 * data they never saw (CalendarServer's processScheduleTags). */
static void new_schedule_tag(char tag[37])
{
    unsigned char b[16] = {0};
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)   /* never short for 16 bytes */
        for (size_t i = 0; i < sizeof b; i++) b[i] = (unsigned char)rand();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(tag, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
}

/* The CALENDAR_OBJECT row. On an update every column CalendarServer
 * derives is rewritten: ACCESS, and the scheduling columns (a scheduling
 * object from the Apple era gets a new Schedule-Tag, everything else ""; the
 * ETags it collected are cleared), with MD5 over text and tag as CCS has it. */
/* The stored object under a row lock, and its text: other users' per-user
 * data is carried over from it. */
static int stored_row(pg_sink *s, const char *cal, const char *name, long long *id, char **text,
                      cb_err *err)
{
    const char *p[2] = {cal, name};
    PGresult *r;
    int rc = run(s, "SELECT RESOURCE_ID, ICALENDAR_TEXT FROM CALENDAR_OBJECT"
                    " WHERE CALENDAR_RESOURCE_ID = $1 AND RESOURCE_NAME = $2 FOR UPDATE",
                 2, p, &r, err);
    if (rc) return rc;
    *id = 0;
    *text = NULL;
    if (PQntuples(r)) {
        *id = atoll(PQgetvalue(r, 0, 0));
        if (!(*text = strdup(PQgetvalue(r, 0, 1)))) rc = cb_errf(err, CB_ENOMEM, "out of memory");
    }
    PQclear(r);
    return rc;
}

static int write_row(pg_sink *s, const char *cal, const char *name, const char *text,
                     const obj_facts *f, const span *sp, long long id, char obj[32], cb_err *err)
{
    char mode[4], pc[8], access[4], tag[37], rmin[16] = "", rmax[16] = "";
    snprintf(access, sizeof access, "%d", f->access);
    new_schedule_tag(tag);
    snprintf(mode, sizeof mode, "%d", f->attachments);
    snprintf(pc, sizeof pc, "%s", f->private_comments ? "true" : "false");
    if (sp->lower_cut) strftime(rmin, sizeof rmin, "%Y-%m-%d", gmtime(&(time_t){(time_t)sp->lower}));
    if (sp->limited) strftime(rmax, sizeof rmax, "%Y-%m-%d", gmtime(&(time_t){(time_t)sp->upper}));
    if (sp->delayed) snprintf(rmax, sizeof rmax, "1900-01-01");
    const char *p[10] = {cal, name, text, f->uid, f->type, f->organizer, mode, pc,
                         *rmin ? rmin : NULL, *rmax ? rmax : NULL};
    PGresult *r;
    int rc;
    if (id) {
        snprintf(obj, 32, "%lld", id);
        const char *u[11] = {obj, text, f->uid, f->type, f->organizer, mode, pc, p[8], p[9],
                             access, tag};
        rc = run(s, "UPDATE CALENDAR_OBJECT SET ICALENDAR_TEXT = $2, ICALENDAR_UID = $3,"
                    " ICALENDAR_TYPE = $4, ORGANIZER = $5, ATTACHMENTS_MODE = $6,"
                    " PRIVATE_COMMENTS = $7, RECURRANCE_MIN = $8, RECURRANCE_MAX = $9,"
                    " ACCESS = $10, SCHEDULE_TAG = CASE WHEN SCHEDULE_OBJECT THEN $11 ELSE '' END,"
                    " SCHEDULE_ETAGS = '',"
                    " MD5 = md5($2 || CASE WHEN SCHEDULE_OBJECT THEN $11 ELSE '' END),"
                    " MODIFIED = timezone('UTC', CURRENT_TIMESTAMP)"
                    " WHERE RESOURCE_ID = $1", 11, u, NULL, err);
        const char *d[1] = {obj};
        if (rc == CB_OK)
            rc = run(s, "DELETE FROM TIME_RANGE WHERE CALENDAR_OBJECT_RESOURCE_ID = $1", 1, d, NULL, err);
        return rc;
    }
    const char *i[11] = {cal, name, text, f->uid, f->type, f->organizer, mode, pc, p[8], p[9],
                         access};
    rc = run(s, "INSERT INTO CALENDAR_OBJECT (CALENDAR_RESOURCE_ID, RESOURCE_NAME, ICALENDAR_TEXT,"
                " ICALENDAR_UID, ICALENDAR_TYPE, ORGANIZER, ATTACHMENTS_MODE, PRIVATE_COMMENTS,"
                " RECURRANCE_MIN, RECURRANCE_MAX, ACCESS, SCHEDULE_TAG, SCHEDULE_ETAGS, MD5,"
                " DATAVERSION)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '', '', md5($3), 1)"
                " RETURNING RESOURCE_ID", 11, i, &r, err);
    if (rc == CB_OK) snprintf(obj, 32, "%lld", first_ll(r));
    return rc;
}

/* The varchar(255) columns, checked before anything is written: a value
 * PostgreSQL would refuse fails this object alone, with its reason. */
static int check_lengths(const char *name, const obj_facts *f, cb_err *err)
{
    const char *what[3] = {"resource name", "UID", "ORGANIZER"};
    const char *v[3] = {name, f->uid, f->organizer};
    for (int i = 0; i < 3; i++)
        if (v[i] && sbuf_utf8_chars(v[i]) > 255)
            return cb_errf(err, CB_EINVAL, "%s of %zu characters; CalendarServer stores at most "
                           "255", what[i], sbuf_utf8_chars(v[i]));
    return CB_OK;
}

int pg_sink_put(pg_sink *s, const char *owner, long long calendar_id, const char *name,
                const char *ics, pg_written *out, cb_err *err)
{
    memset(out, 0, sizeof *out);
    /* CalendarServer refuses such an object from any client; parsing one
     * would cost minutes of CPU (libical is quadratic on long lines). */
    if (strlen(ics) > PG_MAX_RESOURCE)
        return cb_errf(err, CB_EINVAL, "%s: %zu bytes, over CalendarServer's MaxResourceSize "
                       "(%d)", name, strlen(ics), PG_MAX_RESOURCE);
    icalcomponent *cal = icalparser_parse_string(ics);
    if (!cal || icalcomponent_isa(cal) != ICAL_VCALENDAR_COMPONENT) {
        if (cal) icalcomponent_free(cal);
        return cb_errf(err, CB_EPARSE, "%s: not one VCALENDAR", name);
    }
    obj_facts f = {0};
    int rc = read_facts(cal, &f, err);
    if (rc == CB_OK) rc = check_lengths(name, &f, err);
    char calid[32], obj[32];
    out->calendar_id = calendar_id;
    if (rc == CB_OK && !calendar_id) rc = pg_sink_home(s, owner, &out->calendar_id, err);
    else if (rc == CB_OK) rc = check_owned(s, owner, calendar_id, err);
    snprintf(calid, sizeof calid, "%lld", out->calendar_id);
    if (rc == CB_OK && s->strict) rc = check_attendees(cal, name, err);
    if (rc == CB_OK && s->strict && f.uid) rc = uid_locked_unique(s, owner, f.uid, calid, name, err);
    long long id = 0;
    char *old = NULL, *text = NULL;
    if (rc == CB_OK) rc = stored_row(s, calid, name, &id, &old, err);
    /* Stored as CalendarServer stores the owner's write: their alarms,
     * TRANSP and travel time in their per-user block, other users' blocks
     * kept. Text already in that form (CalendarServer's own) as it is. */
    map_ctx mc = {NULL, s->tz, s->default_tz, 0, (long long)time(NULL), NULL, NULL};
    if (rc == CB_OK && !(text = peruser_has_blocks(ics) ? strdup(ics)
                                                         : peruser_store(cal, owner, old, &mc, err)))
        rc = err && err->code ? err->code : CB_ENOMEM;
    free(old);
    /* Expanded first: the row carries the limits, and its id keys the index. */
    span sp = {0};
    occur_list l = {0};
    index_job j = {s, calid, obj, icaltimezone_get_builtin_timezone(s->default_tz), 0, NULL};
    if (!j.floating_zone) j.floating_zone = icaltimezone_get_utc_timezone();
    peruser_index *users = NULL;
    if (rc == CB_OK) rc = expand(s, cal, f.uid, &sp, &l, err);
    if (rc == CB_OK && !(j.users = users = peruser_index_new(text, cal, &mc)))
        rc = cb_errf(err, CB_ENOMEM, "out of memory");
    if (rc == CB_OK) rc = write_row(s, calid, name, text, &f, &sp, id, obj, err);
    if (rc == CB_OK) rc = index_rows(&j, &l, &sp, err);
    peruser_index_free(users);
    occur_free(&l);
    if (rc == CB_OK) rc = revise(s, calid, name, 0, &out->revision, err);
    if (rc == CB_OK) rc = touch(s, out->calendar_id, err);
    out->instances = j.rows;
    free(text);
    icalcomponent_free(cal);
    return rc;
}

int pg_sink_delete(pg_sink *s, const char *owner, long long calendar_id, const char *name,
                   pg_written *out, cb_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = calendar_id ? check_owned(s, owner, calendar_id, err)
                         : pg_sink_home(s, owner, &calendar_id, err);
    if (rc) return rc;
    out->calendar_id = calendar_id;
    char calid[32];
    snprintf(calid, sizeof calid, "%lld", calendar_id);
    const char *p[2] = {calid, name};
    PGresult *r;
    rc = run(s, "DELETE FROM CALENDAR_OBJECT WHERE CALENDAR_RESOURCE_ID = $1 AND RESOURCE_NAME = $2"
                " RETURNING RESOURCE_ID", 2, p, &r, err);
    if (rc) return rc;
    if (!PQntuples(r)) {
        PQclear(r);
        return cb_errf(err, CB_ENOTFOUND, "%s: no such calendar object", name);
    }
    char obj[32];
    snprintf(obj, sizeof obj, "%lld", first_ll(r));
    /* Its WebDAV properties go with it, as CalendarServer removes them. */
    const char *d[1] = {obj};
    rc = run(s, "DELETE FROM RESOURCE_PROPERTY WHERE RESOURCE_ID = $1", 1, d, NULL, err);
    if (rc == CB_OK) rc = revise(s, calid, name, 1, &out->revision, err);   /* TIME_RANGE cascades */
    if (rc == CB_OK) rc = touch(s, calendar_id, err);
    return rc;
}

void pg_sink_resource_name(const char *uid, char *out, size_t size)
{
    int safe = *uid && strlen(uid) < 200;
    for (const char *c = uid; safe && *c; c++)
        safe = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
               strchr("-_.@", *c);
    if (safe) {
        snprintf(out, size, "%s.ics", uid);
        return;
    }
    uint64_t h = hash_str(HASH_BASIS_STORED, uid);   /* stable and short */
    snprintf(out, size, "%016llx.ics", (unsigned long long)h);
}
