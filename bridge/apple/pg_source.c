#include "pg_source.h"

/* An object over CalendarServer's own MaxResourceSize (twistedcaldav/
 * stdconfig.py, 1,048,576 bytes) could not have been written by a client:
 * its text is not even transferred, only reported (libical is quadratic on
 * a long unfolded line: 20 MB took 66 s of CPU). */
#define OVERSIZE_OR_TEXT "CASE WHEN octet_length(o.ICALENDAR_TEXT) > " PG_MAX_RESOURCE_STR \
    " THEN '' ELSE o.ICALENDAR_TEXT END"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../mapping/sbuf.h"

struct pg_source {
    PGconn *conn;
    char *dsn;
    int prepared;           /* POLL_STMT exists on this connection */
    /* A scan's revision rows of the home it is in (SCAN_REV_SQL), kept
     * across its pages; NULL with no scan under way. */
    PGresult *revs;
    char *revs_owner;
};

/* Rows of owned calendars other than the scheduling inbox and the trash.
 * Objects trashed in place (TRASHED set) count as deleted. */
#define POLL_ROWS \
    "SELECT h.OWNER_UID, r.CALENDAR_RESOURCE_ID, r.RESOURCE_NAME, r.REVISION AS rev," \
    "       r.DELETED OR o.RESOURCE_ID IS NULL, " OVERSIZE_OR_TEXT "," \
    "       extract(epoch FROM r.MODIFIED)" \
    "  FROM CALENDAR_HOME h" \
    "  JOIN CALENDAR_OBJECT_REVISIONS r ON r.CALENDAR_HOME_RESOURCE_ID = h.RESOURCE_ID" \
    "  LEFT JOIN CALENDAR_HOME_METADATA hm ON hm.RESOURCE_ID = h.RESOURCE_ID" \
    "  LEFT JOIN CALENDAR_BIND b ON b.CALENDAR_HOME_RESOURCE_ID = r.CALENDAR_HOME_RESOURCE_ID" \
    "        AND b.CALENDAR_RESOURCE_ID = r.CALENDAR_RESOURCE_ID" \
    "  LEFT JOIN CALENDAR_OBJECT o ON o.CALENDAR_RESOURCE_ID = r.CALENDAR_RESOURCE_ID" \
    "        AND o.RESOURCE_NAME = r.RESOURCE_NAME AND NOT r.DELETED AND o.TRASHED IS NULL" \
    " WHERE h.OWNER_UID = ANY($1::text[]) AND h.STATUS = 0 AND r.REVISION > $2::bigint" \
    "   AND r.RESOURCE_NAME IS NOT NULL AND r.CALENDAR_RESOURCE_ID IS NOT NULL" \
    "   AND r.CALENDAR_RESOURCE_ID IS DISTINCT FROM hm.TRASH" \
    "   AND (r.DELETED OR (b.BIND_MODE = 0 AND b.CALENDAR_RESOURCE_NAME <> 'inbox'))"

/* The poll is one statement, prepared once, so an idle poll is one round
 * trip: a single statement reads under one snapshot, the one
 * txid_current_snapshot() reports, so the rows and the snapshot that
 * decides the cursor agree as they did in a REPEATABLE READ transaction.
 * Columns 0-6 are the rows (one row of NULLs when there are none), 7-9 the
 * snapshot's xmin, xmax and CalendarServer's MIN-VALID-REVISION; nothing is
 * read when the cursor is older than that (the caller rescans). */
static const char POLL_SQL[] =
    "WITH sn AS (SELECT txid_snapshot_xmin(t) AS xmin, txid_snapshot_xmax(t) AS xmax,"
    "       COALESCE((SELECT CASE WHEN VALUE ~ '^[0-9]{1,18}$' THEN VALUE::bigint END"
    "                   FROM CALENDARSERVER WHERE NAME = 'MIN-VALID-REVISION'), 1) AS min_valid"
    "  FROM txid_current_snapshot() t)"
    "SELECT c.*, sn.xmin, sn.xmax, sn.min_valid FROM sn LEFT JOIN LATERAL ("
    POLL_ROWS "   AND $2::bigint + 1 >= sn.min_valid) c ON true"
    " ORDER BY c.rev";
#define POLL_STMT "calbridge_poll"

/* A scan reads one home at a time, a page of objects at a time, in the
 * order of CALENDAR_OBJECT's unique (calendar, name) index: first the keys
 * of the page (narrow rows, so a large home is not sorted with its text),
 * then their rows by primary key. Revision rows are read once per home and
 * matched in C: as one join, a planner working from statistics taken
 * before a home was loaded looped over a revisions index once per object,
 * filtering the whole calendar each time (25 M rows for 5,000 objects). */
static const char SCAN_SQL[] =
    "WITH k AS (SELECT o.RESOURCE_ID, o.CALENDAR_RESOURCE_ID, o.RESOURCE_NAME"
    "  FROM CALENDAR_HOME h"
    "  LEFT JOIN CALENDAR_HOME_METADATA hm ON hm.RESOURCE_ID = h.RESOURCE_ID"
    "  JOIN CALENDAR_BIND b ON b.CALENDAR_HOME_RESOURCE_ID = h.RESOURCE_ID"
    "       AND b.BIND_MODE = 0 AND b.CALENDAR_RESOURCE_NAME <> 'inbox'"
    "  JOIN CALENDAR_OBJECT o ON o.CALENDAR_RESOURCE_ID = b.CALENDAR_RESOURCE_ID"
    "       AND o.TRASHED IS NULL"
    " WHERE h.OWNER_UID = $1 AND h.STATUS = 0"
    "   AND o.CALENDAR_RESOURCE_ID IS DISTINCT FROM hm.TRASH"
    "   AND (o.CALENDAR_RESOURCE_ID, o.RESOURCE_NAME) > ($2::bigint, $3::text)"
    " ORDER BY o.CALENDAR_RESOURCE_ID, o.RESOURCE_NAME LIMIT $4::bigint)"
    "SELECT $1::text, k.CALENDAR_RESOURCE_ID, k.RESOURCE_NAME,"
    "       0, false, " OVERSIZE_OR_TEXT ", extract(epoch FROM o.MODIFIED)"
    "  FROM k JOIN CALENDAR_OBJECT o ON o.RESOURCE_ID = k.RESOURCE_ID"
    " ORDER BY k.CALENDAR_RESOURCE_ID, k.RESOURCE_NAME";

/* A home's revision rows, in the order rev_find searches them (bytes, not
 * the database's collation). */
static const char SCAN_REV_SQL[] =
    "SELECT r.CALENDAR_RESOURCE_ID, r.RESOURCE_NAME, r.REVISION, extract(epoch FROM r.MODIFIED)"
    "  FROM CALENDAR_OBJECT_REVISIONS r"
    " WHERE r.CALENDAR_HOME_RESOURCE_ID = ANY(ARRAY(SELECT RESOURCE_ID FROM CALENDAR_HOME"
    "                                                WHERE OWNER_UID = ANY($1::text[])))"
    "   AND r.CALENDAR_RESOURCE_ID IS NOT NULL AND r.RESOURCE_NAME IS NOT NULL"
    " ORDER BY 1, r.RESOURCE_NAME COLLATE \"C\"";

static const char HEAD_SQL[] =
    "SELECT COALESCE(MAX(r.REVISION), 0) FROM CALENDAR_OBJECT_REVISIONS r"
    "  JOIN CALENDAR_HOME h ON h.RESOURCE_ID = r.CALENDAR_HOME_RESOURCE_ID"
    " WHERE h.OWNER_UID = ANY($1::text[])";

static const char SNAPSHOT_SQL[] =
    "SELECT txid_snapshot_xmin(txid_current_snapshot()),"
    "       txid_snapshot_xmax(txid_current_snapshot()),"
    "       COALESCE((SELECT VALUE FROM CALENDARSERVER"
    "                  WHERE NAME = 'MIN-VALID-REVISION'), '1')";

static int session_start(pg_source *s, cb_err *err);

static void revs_drop(pg_source *s)
{
    PQclear(s->revs);
    s->revs = NULL;
    free(s->revs_owner);
    s->revs_owner = NULL;
}

int pg_source_open(const char *dsn, pg_source **out, cb_err *err)
{
    *out = NULL;
    pg_source *s = calloc(1, sizeof *s);
    if (!s || !(s->dsn = strdup(dsn))) {
        free(s);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    s->conn = PQconnectdb(dsn);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        cb_errf(err, CB_EIO, "Apple database: %s", PQerrorMessage(s->conn));
        pg_source_close(s);
        return CB_EIO;
    }
    if (session_start(s, err) != CB_OK) {
        pg_source_close(s);
        return CB_EIO;
    }
    *out = s;
    return CB_OK;
}

void pg_source_close(pg_source *s)
{
    if (!s) return;
    revs_drop(s);
    PQfinish(s->conn);
    free(s->dsn);
    free(s);
}

static int exec_ok(pg_source *s, const char *sql, cb_err *err)
{
    PGresult *r = PQexec(s->conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) cb_errf(err, CB_EIO, "Apple database: %s", PQerrorMessage(s->conn));
    PQclear(r);
    return ok ? CB_OK : CB_EIO;
}

/* The reader never writes: its session says so to the server, once, where
 * each read used to open a READ ONLY transaction. */
static int session_start(pg_source *s, cb_err *err)
{
    s->prepared = 0;
    return exec_ok(s, "SET default_transaction_read_only = on", err);
}

/* A connection lost since the last poll (server restart) is re-opened once;
 * its session settings and prepared statement went with it. */
static int ensure(pg_source *s, cb_err *err)
{
    if (PQstatus(s->conn) == CONNECTION_OK) return CB_OK;
    PQreset(s->conn);
    if (PQstatus(s->conn) == CONNECTION_OK) return session_start(s, err);
    return cb_errf(err, CB_EIO, "Apple database: %s", PQerrorMessage(s->conn));
}

/* {"a","b"}: every element quoted, so no owner UID can break the literal. */
static char *owner_array(const char *const *owners, size_t n)
{
    sbuf b;
    sbuf_init(&b);
    sbuf_cat(&b, "{");
    for (size_t i = 0; i < n; i++) {
        sbuf_cat(&b, i ? ",\"" : "\"");
        for (const char *c = owners[i]; *c; c++) {
            if (*c == '"' || *c == '\\') sbuf_cat(&b, "\\");
            sbuf_catn(&b, c, 1);
        }
        sbuf_cat(&b, "\"");
    }
    sbuf_cat(&b, "}");
    return sbuf_take(&b);
}

/* The rows of sql with n text parameters, or NULL and err. */
static PGresult *query_params(pg_source *s, const char *sql, int n, const char *const *params,
                              cb_err *err)
{
    PGresult *r = PQexecParams(s->conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        cb_errf(err, CB_EIO, "Apple database: %s", PQerrorMessage(s->conn));
        PQclear(r);
        return NULL;
    }
    return r;
}

static PGresult *query(pg_source *s, const char *sql, const char *owners, const char *rev,
                       cb_err *err)
{
    const char *params[2] = {owners, rev};
    return query_params(s, sql, rev ? 2 : 1, params, err);
}

static int collect(PGresult *r, pg_changes **out, long long *max_rev, cb_err *err)
{
    pg_changes *c = calloc(1, sizeof *c);
    int n = PQntuples(r);
    if (c && n) c->v = calloc((size_t)n, sizeof *c->v);
    if (!c || (n && !c->v)) {
        free(c);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        if (PQgetisnull(r, i, 0)) continue;   /* the poll's row when nothing changed */
        pg_change *ch = &c->v[c->n++];
        ch->owner_uid = strdup(PQgetvalue(r, i, 0));
        ch->calendar_id = atoll(PQgetvalue(r, i, 1));
        ch->resource_name = strdup(PQgetvalue(r, i, 2));
        ch->revision = atoll(PQgetvalue(r, i, 3));
        ch->deleted = PQgetvalue(r, i, 4)[0] == 't' || PQgetisnull(r, i, 5);
        ch->ics = ch->deleted ? NULL : strdup(PQgetvalue(r, i, 5));
        ch->modified = PQnfields(r) > 6 ? atof(PQgetvalue(r, i, 6)) : 0;
        if (ch->revision > *max_rev) *max_rev = ch->revision;
        if (!ch->owner_uid || !ch->resource_name || (!ch->deleted && !ch->ics)) {
            pg_changes_free(c);
            return cb_errf(err, CB_ENOMEM, "out of memory");
        }
    }
    *out = c;
    return CB_OK;
}

typedef struct snap {
    long long xmin, xmax, min_valid;
} snap;

static int begin_snapshot(pg_source *s, snap *sn, cb_err *err)
{
    int rc = ensure(s, err);
    if (rc) return rc;
    if ((rc = exec_ok(s, "BEGIN ISOLATION LEVEL REPEATABLE READ", err))) return rc;
    PGresult *r = PQexec(s->conn, SNAPSHOT_SQL);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        cb_errf(err, CB_EIO, "Apple database: %s", PQerrorMessage(s->conn));
        PQclear(r);
        exec_ok(s, "ROLLBACK", NULL);
        return CB_EIO;
    }
    sn->xmin = atoll(PQgetvalue(r, 0, 0));
    sn->xmax = atoll(PQgetvalue(r, 0, 1));
    sn->min_valid = atoll(PQgetvalue(r, 0, 2));
    PQclear(r);
    return CB_OK;
}

/* The cursor after reading everything visible in sn up to max_rev. */
static void advance(const pg_cursor *cur, const snap *sn, long long max_rev, pg_cursor *next)
{
    long long base = cur->rev;
    if (cur->pending_rev > base && sn->xmin >= cur->pending_xmax) base = cur->pending_rev;
    if (max_rev < base) max_rev = base;
    if (sn->xmin >= sn->xmax) {   /* nothing in flight: all of it is final */
        *next = (pg_cursor){max_rev, 0, 0};
        return;
    }
    next->rev = base;
    next->pending_rev = max_rev > base ? max_rev : 0;
    next->pending_xmax = max_rev > base ? sn->xmax : 0;
}

static PGresult *poll_exec(pg_source *s, const char *owners, const char *rev, cb_err *err)
{
    if (!s->prepared) {
        PGresult *p = PQprepare(s->conn, POLL_STMT, POLL_SQL, 2, NULL);
        s->prepared = PQresultStatus(p) == PGRES_COMMAND_OK;
        if (!s->prepared) cb_errf(err, CB_EIO, "Apple database: %s", PQerrorMessage(s->conn));
        PQclear(p);
        if (!s->prepared) return NULL;
    }
    const char *params[2] = {owners, rev};
    PGresult *r = PQexecPrepared(s->conn, POLL_STMT, 2, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1 || PQnfields(r) != 10) {
        cb_errf(err, CB_EIO, "Apple database: %s", PQerrorMessage(s->conn));
        PQclear(r);
        return NULL;
    }
    return r;
}

int pg_source_poll(pg_source *s, const char *const *owners, size_t n,
                   const pg_cursor *cur, pg_changes **out, pg_cursor *next,
                   int *trimmed, cb_err *err)
{
    *out = NULL;
    *trimmed = 0;
    int rc = ensure(s, err);
    if (rc) return rc;
    char *arr = owner_array(owners, n), rev[32];
    if (!arr) return cb_errf(err, CB_ENOMEM, "out of memory");
    snprintf(rev, sizeof rev, "%lld", cur->rev);
    PGresult *r = poll_exec(s, arr, rev, err);
    free(arr);
    if (!r) return CB_EIO;
    snap sn = {atoll(PQgetvalue(r, 0, 7)), atoll(PQgetvalue(r, 0, 8)), atoll(PQgetvalue(r, 0, 9))};
    if (cur->rev + 1 < sn.min_valid) {
        *trimmed = 1;
        PQclear(r);
        return CB_OK;
    }
    long long max_rev = cur->rev;
    rc = collect(r, out, &max_rev, err);
    PQclear(r);
    if (rc == CB_OK) advance(cur, &sn, max_rev, next);
    return rc;
}

int pg_source_scan_begin(pg_source *s, const char *const *owners, size_t n, pg_cursor *after,
                         cb_err *err)
{
    snap sn;
    int rc = begin_snapshot(s, &sn, err);
    if (rc) return rc;
    revs_drop(s);   /* a scan begun again reads every home's rows afresh */
    char *arr = owner_array(owners, n);
    PGresult *h = arr ? query(s, HEAD_SQL, arr, NULL, err) : NULL;
    rc = !arr ? cb_errf(err, CB_ENOMEM, "out of memory") : !h ? CB_EIO : CB_OK;
    free(arr);
    long long head = h ? atoll(PQgetvalue(h, 0, 0)) : 0;
    PQclear(h);
    exec_ok(s, "ROLLBACK", NULL);
    if (rc) return rc;
    /* A scan reads the state, not a revision range: start just below what
     * may have been trimmed and let the pending rule catch up. Whatever
     * changes while the pages are read has a revision the polls read. */
    pg_cursor start = {sn.min_valid > 1 ? sn.min_valid - 1 : 0, 0, 0};
    if (sn.xmin >= sn.xmax) start.rev = head;
    advance(&start, &sn, head, after);
    return CB_OK;
}

/* The revision and time of an object of the home in s->revs (C order). */
static void rev_find(const PGresult *revs, pg_change *c)
{
    int lo = 0, hi = PQntuples(revs);
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        long long cal = atoll(PQgetvalue(revs, mid, 0));
        int d = cal != c->calendar_id ? (cal < c->calendar_id ? -1 : 1)
                                      : strcmp(PQgetvalue(revs, mid, 1), c->resource_name);
        if (!d) {
            c->revision = atoll(PQgetvalue(revs, mid, 2));
            c->modified = atof(PQgetvalue(revs, mid, 3));
            return;
        }
        if (d < 0) lo = mid + 1;
        else hi = mid;
    }
}

static int home_revisions(pg_source *s, const char *owner, cb_err *err)
{
    if (s->revs && !strcmp(s->revs_owner, owner)) return CB_OK;
    revs_drop(s);
    char *arr = owner_array(&owner, 1);
    s->revs_owner = strdup(owner);
    int nomem = !arr || !s->revs_owner;
    s->revs = nomem ? NULL : query(s, SCAN_REV_SQL, arr, NULL, err);
    free(arr);
    if (s->revs) return CB_OK;
    revs_drop(s);
    return nomem ? cb_errf(err, CB_ENOMEM, "out of memory") : CB_EIO;
}

/* Appends up to limit objects of one home after (calendar, name) to *all. */
static int scan_home(pg_source *s, const char *owner, long long calendar, const char *name,
                     size_t limit, pg_changes **all, size_t *got, cb_err *err)
{
    int rc = home_revisions(s, owner, err);
    if (rc) return rc;
    char cal[32], lim[32];
    snprintf(cal, sizeof cal, "%lld", calendar);
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *params[4] = {owner, cal, name, lim};
    PGresult *r = query_params(s, SCAN_SQL, 4, params, err);
    if (!r) return CB_EIO;
    pg_changes *c = NULL;
    long long ignored = 0;
    rc = collect(r, &c, &ignored, err);
    PQclear(r);
    if (rc) return rc;
    for (size_t i = 0; i < c->n; i++) rev_find(s->revs, &c->v[i]);
    *got = c->n;
    if (!*all) {
        *all = c;
        return CB_OK;
    }
    pg_change *v = realloc((*all)->v, ((*all)->n + c->n + 1) * sizeof *v);
    if (!v) {
        pg_changes_free(c);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    memcpy(v + (*all)->n, c->v, c->n * sizeof *v);
    (*all)->v = v;
    (*all)->n += c->n;
    free(c->v);
    free(c);
    return CB_OK;
}

int pg_source_scan_page(pg_source *s, const char *const *owners, size_t n, pg_scan_pos *pos,
                        size_t limit, pg_changes **out, int *end, cb_err *err)
{
    *out = NULL;
    *end = 0;
    int rc = ensure(s, err);
    size_t i = 0;
    while (i < n && strcmp(owners[i], pos->owner) < 0) i++;
    size_t want = limit;
    for (; rc == CB_OK && i < n && want; i++) {
        if (strcmp(owners[i], pos->owner)) {   /* a home from its start */
            snprintf(pos->owner, sizeof pos->owner, "%s", owners[i]);
            pos->calendar = -1;
            pos->name[0] = '\0';
        }
        size_t got = 0;
        rc = scan_home(s, owners[i], pos->calendar, pos->name, want, out, &got, err);
        if (rc || got == want) break;   /* more of this home may follow */
        want -= got;
    }
    if (rc == CB_OK && !*out && !(*out = calloc(1, sizeof **out)))
        rc = cb_errf(err, CB_ENOMEM, "out of memory");
    if (rc != CB_OK) {
        pg_changes_free(*out);
        *out = NULL;
        return rc;
    }
    if ((*out)->n) {
        const pg_change *last = &(*out)->v[(*out)->n - 1];
        snprintf(pos->owner, sizeof pos->owner, "%s", last->owner_uid);
        pos->calendar = last->calendar_id;
        snprintf(pos->name, sizeof pos->name, "%s", last->resource_name);
    }
    *end = i >= n;
    if (*end) revs_drop(s);   /* the revision rows are only for the scan's pages */
    return CB_OK;
}

static const char GET_SQL[] =
    "SELECT h.OWNER_UID, o.CALENDAR_RESOURCE_ID, o.RESOURCE_NAME, COALESCE(r.REVISION, 0),"
    "       false, " OVERSIZE_OR_TEXT ", extract(epoch FROM COALESCE(r.MODIFIED, o.MODIFIED))"
    "  FROM CALENDAR_OBJECT o"
    "  JOIN CALENDAR_BIND b ON b.CALENDAR_RESOURCE_ID = o.CALENDAR_RESOURCE_ID AND b.BIND_MODE = 0"
    "  JOIN CALENDAR_HOME h ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID"
    "  LEFT JOIN CALENDAR_OBJECT_REVISIONS r ON r.CALENDAR_RESOURCE_ID = o.CALENDAR_RESOURCE_ID"
    "       AND r.RESOURCE_NAME = o.RESOURCE_NAME"
    " WHERE h.OWNER_UID = $1 AND o.CALENDAR_RESOURCE_ID = $2 AND o.RESOURCE_NAME = $3"
    "   AND o.TRASHED IS NULL";

int pg_source_get(pg_source *s, const char *owner, long long calendar_id, const char *name,
                  pg_changes **out, cb_err *err)
{
    *out = NULL;
    int rc = ensure(s, err);
    if (rc) return rc;
    char cal[32];
    snprintf(cal, sizeof cal, "%lld", calendar_id);
    const char *p[3] = {owner, cal, name};
    PGresult *r = query_params(s, GET_SQL, 3, p, err);
    if (!r) return CB_EIO;
    long long ignored = 0;
    if (PQntuples(r)) {
        rc = collect(r, out, &ignored, err);
        PQclear(r);
        return rc;
    }
    PQclear(r);
    pg_changes *c = calloc(1, sizeof *c);
    pg_change *v = c ? calloc(1, sizeof *v) : NULL;
    if (v && (v->owner_uid = strdup(owner)) && (v->resource_name = strdup(name))) {
        v->calendar_id = calendar_id;
        v->deleted = 1;
        c->v = v;
        c->n = 1;
        *out = c;
        return CB_OK;
    }
    if (v) free(v->owner_uid);
    free(v);
    free(c);
    return cb_errf(err, CB_ENOMEM, "out of memory");
}

int pg_source_schema_version(pg_source *s, int *version, cb_err *err)
{
    PGresult *r = PQexec(s->conn, "SELECT VALUE FROM CALENDARSERVER WHERE NAME = 'VERSION'");
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    *version = ok ? atoi(PQgetvalue(r, 0, 0)) : 0;
    int rc = ok ? CB_OK : cb_errf(err, CB_EINVAL, "Apple database: no CalendarServer schema "
                                  "version (CALENDARSERVER VERSION): is this CalendarServer's "
                                  "database? %s", PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

int pg_source_counts(pg_source *s, const char *const *owners, size_t n, long *out, cb_err *err)
{
    int rc = ensure(s, err);
    if (rc) return rc;
    char *arr = owner_array(owners, n);
    PGresult *r = arr ? query(s, "SELECT h.OWNER_UID, count(o.RESOURCE_ID) FROM CALENDAR_HOME h"
                                 "  JOIN CALENDAR_BIND b ON b.CALENDAR_HOME_RESOURCE_ID = h.RESOURCE_ID"
                                 "       AND b.BIND_MODE = 0 AND b.CALENDAR_RESOURCE_NAME <> 'inbox'"
                                 "  JOIN CALENDAR_OBJECT o ON o.CALENDAR_RESOURCE_ID = b.CALENDAR_RESOURCE_ID"
                                 "       AND o.TRASHED IS NULL"
                                 " WHERE h.OWNER_UID = ANY($1::text[]) AND h.STATUS = 0 GROUP BY 1",
                              arr, NULL, err)
                      : NULL;
    free(arr);
    if (!r) return CB_EIO;
    for (size_t i = 0; i < n; i++) out[i] = 0;
    for (int j = 0; j < PQntuples(r); j++)
        for (size_t i = 0; i < n; i++)
            if (!strcmp(owners[i], PQgetvalue(r, j, 0))) out[i] = atol(PQgetvalue(r, j, 1));
    PQclear(r);
    return CB_OK;
}

void pg_changes_free(pg_changes *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->v[i].owner_uid);
        free(c->v[i].resource_name);
        free(c->v[i].ics);
    }
    free(c->v);
    free(c);
}

void pg_cursor_format(const pg_cursor *c, char *buf, size_t size)
{
    snprintf(buf, size, "%lld %lld %lld", c->rev, c->pending_rev, c->pending_xmax);
}

int pg_cursor_parse(const char *text, pg_cursor *c)
{
    return sscanf(text, "%lld %lld %lld", &c->rev, &c->pending_rev, &c->pending_xmax) == 3 &&
                   c->rev >= 0 ? 0 : -1;
}

static int explain_into(pg_source *s, const char *title, const char *sql, const char *owners,
                        const char *rev, sbuf *b, cb_err *err)
{
    sbuf q;
    sbuf_init(&q);
    sbuf_cat(&q, "EXPLAIN ");
    sbuf_cat(&q, sql);
    PGresult *r = q.s ? query(s, q.s, owners, rev, err) : NULL;
    sbuf_free(&q);
    if (!r) return CB_EIO;
    sbuf_cat(b, title);
    for (int i = 0; i < PQntuples(r); i++) {
        sbuf_cat(b, PQgetvalue(r, i, 0));
        sbuf_cat(b, "\n");
    }
    PQclear(r);
    return CB_OK;
}

void pg_scan_format(const pg_cursor *after, const pg_scan_pos *pos, char *buf, size_t size)
{
    snprintf(buf, size, "scan %lld %lld %lld %lld %zu %zu %s%s", after->rev, after->pending_rev,
             after->pending_xmax, pos->calendar, strlen(pos->owner), strlen(pos->name),
             pos->owner, pos->name);
}

int pg_scan_parse(const char *text, pg_cursor *after, pg_scan_pos *pos)
{
    size_t ol, nl;
    int at = 0;
    /* Exactly one space before the owner, which may itself begin with one. */
    if (sscanf(text, "scan %lld %lld %lld %lld %zu %zu%n", &after->rev, &after->pending_rev,
               &after->pending_xmax, &pos->calendar, &ol, &nl, &at) != 6 || text[at] != ' ')
        return -1;
    at++;
    if (ol >= sizeof pos->owner || nl >= sizeof pos->name || strlen(text + at) != ol + nl ||
        after->rev < 0)
        return -1;
    memcpy(pos->owner, text + at, ol);
    pos->owner[ol] = '\0';
    memcpy(pos->name, text + at + ol, nl);
    pos->name[nl] = '\0';
    return 0;
}

int pg_source_explain(pg_source *s, const char *const *owners, size_t n, long long rev,
                      char **out, cb_err *err)
{
    *out = NULL;
    int rc = ensure(s, err);
    if (rc) return rc;
    char *arr = owner_array(owners, n), revs[32];
    snprintf(revs, sizeof revs, "%lld", rev);
    sbuf b;
    sbuf_init(&b);
    rc = arr ? explain_into(s, "change poll plan:\n", POLL_SQL, arr, revs, &b, err) : CB_ENOMEM;
    if (rc == CB_OK)
        rc = explain_into(s, "rescan plan (revision rows):\n", SCAN_REV_SQL, arr, NULL, &b, err);
    free(arr);
    if (rc == CB_ENOMEM) cb_errf(err, CB_ENOMEM, "out of memory");
    if (rc == CB_OK && !(*out = sbuf_take(&b))) rc = cb_errf(err, CB_ENOMEM, "out of memory");
    sbuf_free(&b);
    return rc;
}
