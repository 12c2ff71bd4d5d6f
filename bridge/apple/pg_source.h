/* pg_source.h — reading changes from a CalendarServer database.
 *
 * CalendarServer keeps one CALENDAR_OBJECT_REVISIONS row per calendar object
 * resource and gives it a fresh REVISION (from REVISION_SEQ) on every write
 * and on deletion (DELETED = true). A poll reads the rows of the mapped
 * people's homes with REVISION above the cursor through the
 * (CALENDAR_HOME_RESOURCE_ID, REVISION) index, so its cost follows the
 * number of changes, not the size of the tables.
 *
 * Out-of-order commits: a transaction can take revision 10, commit after
 * another one took and committed 11. The cursor therefore never moves past
 * a revision while a transaction that was running when it was read may still
 * commit a lower one: each poll records the snapshot's xmax, and the highest
 * revision seen becomes the cursor only once every transaction below that
 * xmax has finished (txid_snapshot_xmin of a later snapshot >= it). Rows read
 * twice in the meantime are filtered by the caller (link revision).
 *
 * Only SELECT is needed. Reading from a copy of the database works the same.
 */
#ifndef PG_SOURCE_H
#define PG_SOURCE_H

#include <stddef.h>
#include "../../mapping/cb_err.h"

typedef struct pg_source pg_source;

/* CalendarServer's MaxResourceSize default: the largest calendar object
 * it accepts from a client, in bytes. */
#define PG_MAX_RESOURCE 1048576
#define PG_MAX_RESOURCE_STR "1048576"

typedef struct pg_change {
    char *owner_uid;
    long long calendar_id;
    char *resource_name;
    long long revision;
    int deleted;            /* or the object no longer exists */
    char *ics;              /* NULL when deleted; "" when over PG_MAX_RESOURCE */
    double modified;        /* when the revision was taken, UTC seconds */
} pg_change;

typedef struct pg_changes {
    pg_change *v;
    size_t n;
} pg_changes;

typedef struct pg_cursor {
    long long rev;            /* every revision <= rev has been read */
    long long pending_rev;    /* becomes rev once ... */
    long long pending_xmax;   /* ... every txid below this has finished */
} pg_cursor;

int pg_source_open(const char *dsn, pg_source **out, cb_err *err);
void pg_source_close(pg_source *s);

/* Changes with revision > cur->rev for the homes of owners (n of them), and
 * the cursor to store once they are all carried. *trimmed is set (and
 * nothing read) when cur->rev is older than CalendarServer's
 * MIN-VALID-REVISION: the caller must rescan. */
int pg_source_poll(pg_source *s, const char *const *owners, size_t n,
                   const pg_cursor *cur, pg_changes **out, pg_cursor *next,
                   int *trimmed, cb_err *err);

/* A scan: every live calendar object (deleted = 0) of owners, read page
 * by page for the first sync and after trimming. scan_begin gives the
 * cursor to store once every page is carried; each scan_page then reads up
 * to limit objects after pos, in owner order (owners sorted by strcmp),
 * moves pos to the last one read and sets *end after the last owner's
 * last object. A pos can be stored and read back (pg_scan_format/parse)
 * to go on after a restart. */
typedef struct pg_scan_pos {
    char owner[256];          /* "" before the first owner */
    long long calendar;       /* the last object read: its calendar, */
    char name[1024];          /* and its resource name */
} pg_scan_pos;

int pg_source_scan_begin(pg_source *s, const char *const *owners, size_t n, pg_cursor *after,
                         cb_err *err);
int pg_source_scan_page(pg_source *s, const char *const *owners, size_t n, pg_scan_pos *pos,
                        size_t limit, pg_changes **out, int *end, cb_err *err);

/* The current state of one object as a one-change list (deleted = 1 and
 * revision 0 when it no longer exists). Used to write an event again. */
int pg_source_get(pg_source *s, const char *owner, long long calendar_id, const char *name,
                  pg_changes **out, cb_err *err);

/* CalendarServer's schema version (CALENDARSERVER NAME 'VERSION'):
 * CB_EINVAL when the database has none. */
int pg_source_schema_version(pg_source *s, int *version, cb_err *err);

/* The number of live calendar objects in each owner's home (out[i] for
 * owners[i]), counted as the scan counts them. */
int pg_source_counts(pg_source *s, const char *const *owners, size_t n, long *out, cb_err *err);

void pg_changes_free(pg_changes *c);

/* "rev pending_rev pending_xmax" and back; parse returns -1 on bad text. */
void pg_cursor_format(const pg_cursor *c, char *buf, size_t size);
int pg_cursor_parse(const char *text, pg_cursor *c);

/* A scan under way as a cursor ("scan ..."), and back; parse returns -1
 * on text that is not one. */
void pg_scan_format(const pg_cursor *after, const pg_scan_pos *pos, char *buf, size_t size);
int pg_scan_parse(const char *text, pg_cursor *after, pg_scan_pos *pos);

/* The EXPLAIN text of the poll query from revision rev and of the rescan's
 * revision rows, each under a heading, for the README and the plan tests. */
int pg_source_explain(pg_source *s, const char *const *owners, size_t n,
                      long long rev, char **out, cb_err *err);

#endif
