#include "side_apple.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../mapping/ical_in.h"
#include "../../mapping/ical_out.h"
#include "../../state/keys.h"
#include "pg_sink.h"
#include "pg_source.h"

#define SCHEMA_OLDEST 58
#define SCHEMA_NEWEST 66

typedef struct side_apple {
    side base;
    const people *people;
    const tzmap *tz;
    const char *default_tz;
    pg_source *src;
    pg_sink *sink;
    ccs_notify *notify;
    int queue_push;          /* notify = queue: its privileges are checked too */
} side_apple;

static map_ctx ctx_of(const side_apple *sa)
{
    return (map_ctx){sa->people, sa->tz, sa->default_tz, 0, (long long)time(NULL), NULL, NULL};
}

static char *fmt_lld(long long v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", v);
    return strdup(buf);
}

/* The neutral event of one object, or why it has none. */
static void map_object(const side_apple *sa, const pg_change *pc, ews_event **ev, int *code,
                       char **why, int *skip)
{
    map_ctx mc = ctx_of(sa);
    mc.reader = pc->owner_uid;   /* the owner's alarms, TRANSP and travel time */
    cb_err e = {0};
    *ev = NULL;
    *code = CB_OK;
    if (pc->deleted) return;
    int rc = *pc->ics ? ical_in_map(pc->ics, &mc, ev, &e)
                      : cb_errf(&e, CB_EINVAL, "larger than CalendarServer's MaxResourceSize (%d "
                                "bytes): not read, not carried", PG_MAX_RESOURCE);
    if (rc == CB_EUNSUPPORTED && strstr(e.msg, "no VEVENT")) *skip = 1;
    else if (rc != CB_OK) *code = rc, *why = strdup(e.msg);
}

static int change_of(const side_apple *sa, const pg_change *pc, side_change *c)
{
    char key[KEY_MAX];
    key_source(pc->owner_uid, pc->calendar_id, pc->resource_name, key);
    c->p = people_by_uid(sa->people, pc->owner_uid);
    c->deleted = pc->deleted;
    c->modified = pc->modified;
    if (!(c->id = strdup(key)) || !(c->version = fmt_lld(pc->revision))) return CB_ENOMEM;
    map_object(sa, pc, &c->ev, &c->code, &c->why, &c->skip);
    return CB_OK;
}

/* Objects a scan reads in one page: its memory, not the home's size,
 * bounds what a first sync holds at once. */
#define SCAN_PAGE 1000

static int cmp_owner(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One page of a scan, started (full: from the beginning) or continued; the
 * cursor goes on with the scan until its end, then is the poll's. */
static int scan_read(side_apple *sa, const char **owners, size_t n, int full, pg_cursor *after,
                     pg_scan_pos *pos, pg_changes **ch, char *cursor, size_t size, int *last,
                     cb_err *e)
{
    qsort(owners, n, sizeof *owners, cmp_owner);
    int rc = full ? pg_source_scan_begin(sa->src, owners, n, after, e) : CB_OK;
    if (rc == CB_OK) rc = pg_source_scan_page(sa->src, owners, n, pos, SCAN_PAGE, ch, last, e);
    if (rc != CB_OK) return rc;
    if (*last) pg_cursor_format(after, cursor, size);
    else pg_scan_format(after, pos, cursor, size);
    return CB_OK;
}

static int apple_read(side *s, const person *const *pp, size_t n, const char *cursor,
                      side_read_fn done, void *ud, cb_err *err)
{
    side_apple *sa = (side_apple *)s;
    const char **owners = calloc(n + 1, sizeof *owners);
    if (!owners) return cb_errf(err, CB_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) owners[i] = pp[i]->owner_uid;
    pg_cursor cur, next;
    pg_scan_pos pos = {.owner = ""};
    pg_changes *ch = NULL;
    int trimmed = 0, last = 1, rc = CB_OK;
    cb_err e = {0};
    char buf[1500];
    int have = cursor && pg_cursor_parse(cursor, &cur) == 0;
    int scanning = !have && cursor && pg_scan_parse(cursor, &next, &pos) == 0;
    if (have) rc = pg_source_poll(sa->src, owners, n, &cur, &ch, &next, &trimmed, &e);
    int full = (!have && !scanning) || trimmed;
    if (rc == CB_OK && have && !full) pg_cursor_format(&next, buf, sizeof buf);
    if (rc == CB_OK && (full || scanning))
        rc = scan_read(sa, owners, n, full, &next, &pos, &ch, buf, sizeof buf, &last, &e);
    free(owners);
    side_page *pg = rc == CB_OK ? calloc(1, sizeof *pg) : NULL;
    if (rc == CB_OK && (!pg || !(pg->v = calloc(ch->n + 1, sizeof *pg->v))))
        rc = cb_errf(&e, CB_ENOMEM, "out of memory");
    for (size_t i = 0; rc == CB_OK && i < ch->n; i++)
        if ((rc = change_of(sa, &ch->v[i], &pg->v[pg->n++])))
            cb_errf(&e, rc, "out of memory");
    pg_changes_free(ch);
    if (rc == CB_OK) {
        pg->last = last;
        /* Only a scan's first page says full: the engine's record of what a
         * full read listed starts there (one continued after a restart is
         * not full, and deletes nothing it did not list). */
        pg->full = full;
        if (!(pg->cursor = strdup(buf))) rc = cb_errf(&e, CB_ENOMEM, "out of memory");
    }
    if (rc != CB_OK) {
        side_page_free(pg);
        done(ud, NULL, &e);
    } else {
        done(ud, pg, NULL);
    }
    (void)err;
    return CB_OK;
}

static int apple_fetch(side *s, const person *p, const char *const *ids, size_t n,
                       side_fetch_fn done, void *ud, cb_err *err)
{
    side_apple *sa = (side_apple *)s;
    side_item *v = calloc(n + 1, sizeof *v);
    if (!v) return cb_errf(err, CB_ENOMEM, "out of memory");
    cb_err e = {0};
    int rc = CB_OK;
    for (size_t i = 0; i < n && rc == CB_OK; i++) {
        source_key sk;
        pg_changes *ch = NULL;
        if (!(v[i].id = strdup(ids[i]))) rc = cb_errf(&e, CB_ENOMEM, "out of memory");
        else if (key_source_parse(ids[i], &sk) != CB_OK || !key_source_owned(ids[i], p->owner_uid))
            v[i].code = CB_EINVAL, v[i].why = strdup("not a source key of this person");
        else if ((rc = pg_source_get(sa->src, sk.owner, sk.calendar_id, sk.name, &ch, &e)) == CB_OK) {
            int skip = 0;
            if (ch->v[0].deleted) v[i].code = CB_ENOTFOUND;
            else map_object(sa, &ch->v[0], &v[i].ev, &v[i].code, &v[i].why, &skip);
            v[i].skip = skip;
            v[i].version = fmt_lld(ch->v[0].revision);
        }
        pg_changes_free(ch);
    }
    if (rc) {
        side_items_free(v, n);
        done(ud, NULL, 0, &e);
    } else {
        done(ud, v, n, NULL);
    }
    return CB_OK;
}

/* One object, under its savepoint. */
static int write_one(side_apple *sa, const person *p, side_write *w, cb_err *e)
{
    source_key sk;
    pg_written pw = {0};
    if (key_source_parse(w->id, &sk) != CB_OK)
        return cb_errf(e, CB_EINVAL, "%s: not a source key", w->id);
    int rc;
    if (w->op == SIDE_DELETE) {
        rc = pg_sink_delete(sa->sink, p->owner_uid, sk.calendar_id, sk.name, &pw, e);
    } else {
        map_ctx mc = ctx_of(sa);
        ews_event *ev = (ews_event *)w->ev;
        char *ics = ical_out_calendar(&ev, 1, &mc, e);
        rc = ics ? pg_sink_put(sa->sink, p->owner_uid, sk.calendar_id, sk.name, ics, &pw, e)
                 : (e->code ? e->code : CB_EPARSE);
        free(ics);
    }
    snprintf(w->new_id, sizeof w->new_id, "%s", w->id);
    snprintf(w->version, sizeof w->version, "%lld", pw.revision);
    return rc;
}

static void all_failed(side_write *w, size_t n, const cb_err *e)
{
    for (size_t i = 0; i < n; i++) {
        w[i].code = e->code ? e->code : CB_EIO;
        snprintf(w[i].msg, sizeof w[i].msg, "%s", e->msg);
    }
}

static int apple_apply(side *s, const person *p, side_write *w, size_t n, side_apply_fn done,
                       void *ud, cb_err *err)
{
    side_apple *sa = (side_apple *)s;
    cb_err e = {0};
    int rc = pg_sink_begin(sa->sink, &e);
    for (size_t i = 0; rc == CB_OK && i < n; i++) {
        cb_err ie = {0};
        int irc = pg_sink_mark(sa->sink, &ie);
        if (irc == CB_OK) irc = write_one(sa, p, &w[i], &ie);
        w[i].code = irc;
        if (irc == CB_OK) continue;
        snprintf(w[i].msg, sizeof w[i].msg, "not written into Apple: %.480s", ie.msg);
        /* Only a lost connection takes the batch with it. */
        if (pg_sink_undo(sa->sink, &e) != CB_OK) rc = e.code ? e.code : CB_EIO;
    }
    if (rc == CB_OK) rc = pg_sink_commit(sa->sink, &e);
    else pg_sink_rollback(sa->sink);
    if (rc != CB_OK) all_failed(w, n, &e);
    size_t pending;   /* only the news is late when this fails: it says so */
    if (rc == CB_OK) ccs_notify_send(sa->notify, sa->sink, &pending, &e);
    for (size_t i = 0; rc == CB_OK && i < n; i++) {   /* revisions are taken at commit */
        source_key sk;
        long long rev = 0;
        if (w[i].code == CB_OK && key_source_parse(w[i].id, &sk) == CB_OK &&
            pg_sink_revision(sa->sink, sk.calendar_id, sk.name, &rev) == CB_OK)
            snprintf(w[i].version, sizeof w[i].version, "%lld", rev);
    }
    done(ud, w, n, NULL);
    (void)err;
    return CB_OK;
}

static int apple_find_tag(side *s, const person *p, const char *tag, side_found_fn done,
                          void *ud, cb_err *err)
{
    (void)s, (void)p, (void)tag, (void)err;
    done(ud, 0, NULL, NULL, NULL);   /* idempotent by key: write it again */
    return CB_OK;
}

static int apple_place(side *s, const person *p, const ews_event *ev, char id[1024], cb_err *err)
{
    side_apple *sa = (side_apple *)s;
    long long cal = 0;
    int rc = pg_sink_begin(sa->sink, err);
    if (rc == CB_OK) rc = pg_sink_home(sa->sink, p->owner_uid, &cal, err);
    if (rc == CB_OK) rc = pg_sink_commit(sa->sink, err);
    else pg_sink_rollback(sa->sink);
    if (rc) return rc;
    /* An object of the home already holding the UID (a copy CalendarServer
     * delivered, say) is where it goes: one object per UID per home. */
    char name[256];
    long long at = 0;
    const char *uid = ev->uid ? ev->uid : ev->item_id ? ev->item_id : "";
    rc = pg_sink_find_uid(sa->sink, p->owner_uid, uid, &at, name, sizeof name, err);
    if (rc == CB_OK) {
        key_source(p->owner_uid, at, name, id);
        return CB_OK;
    }
    if (rc != CB_ENOTFOUND) return rc;
    pg_sink_resource_name(uid, name, sizeof name);
    key_source(p->owner_uid, cal, name, id);
    return CB_OK;
}

static int apple_covers(const char *have, const char *seen)
{
    long long s = strtoll(seen, NULL, 10);
    return s > 0 && strtoll(have, NULL, 10) >= s;
}

static int apple_check(side *s, cb_err *err)
{
    side_apple *sa = (side_apple *)s;
    int rc = pg_sink_check_privileges(sa->sink, err);
    return rc == CB_OK && sa->queue_push ? pg_sink_check_push_privileges(sa->sink, err) : rc;
}

static void apple_close(side *s)
{
    side_apple *sa = (side_apple *)s;
    ccs_notify_close(sa->notify);
    pg_sink_close(sa->sink);
    pg_source_close(sa->src);
    free(sa);
}

static const side_ops APPLE_OPS = {
    .name = "Apple", .half = SIDE_APPLE, .per_person = 0, .pages_finite = 1,
    .read = apple_read, .fetch = apple_fetch, .apply = apple_apply,
    .find_tag = apple_find_tag, .place = apple_place, .covers = apple_covers,
    .subscribe = NULL, .unsubscribe = NULL, .check = apple_check, .close = apple_close,
};

int side_apple_open(const char *read_dsn, const char *write_dsn, const people *people,
                    const tzmap *tz, const char *default_tz, const ccs_notify_opts *notify,
                    side **out, cb_err *err)
{
    *out = NULL;
    side_apple *sa = calloc(1, sizeof *sa);
    if (!sa) return cb_errf(err, CB_ENOMEM, "out of memory");
    *sa = (side_apple){{&APPLE_OPS}, people, tz, default_tz, NULL, NULL, NULL,
                       notify && notify->mode == CCS_NOTIFY_QUEUE};
    int version = 0;
    int rc = pg_source_open(read_dsn, &sa->src, err);
    if (rc == CB_OK) rc = pg_source_schema_version(sa->src, &version, err);
    /* Tested on v58 (macOS Server 5, CalendarServer 7.1) and v66 (the
     * current one); what lies between only adds to v58. */
    if (rc == CB_OK && (version < SCHEMA_OLDEST || version > SCHEMA_NEWEST))
        rc = cb_errf(err, CB_EINVAL, "Apple database: CalendarServer schema version %d; calbridge "
                     "knows %d to %d and writes nothing into another", version, SCHEMA_OLDEST,
                     SCHEMA_NEWEST);
    if (rc == CB_OK) rc = pg_sink_open(write_dsn, tz, default_tz, &sa->sink, err);
    if (rc == CB_OK) pg_sink_defer_revisions(sa->sink, 1);
    if (rc == CB_OK) pg_sink_enforce_limits(sa->sink, 1);
    if (rc == CB_OK && notify) rc = ccs_notify_open(notify, &sa->notify, err);
    if (rc) {
        apple_close(&sa->base);
        return rc;
    }
    *out = &sa->base;
    return CB_OK;
}
