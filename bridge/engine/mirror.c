#include "mirror.h"
#include "rules.h"
#include "../exchange/ews_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../../mapping/ews_in.h"
#include "../../mapping/ical_out.h"
#include "../../mapping/sbuf.h"
#include "../../state/keys.h"

#define SYNC_MAX_CHANGES 512
#define STATE_MAX 65536
/* Pages of SyncFolderItems one pass reads for a person: 51,200 changes,
 * more than a calendar holds; a server that never says
 * IncludesLastItemInRange is left for the next pass. */
#define SYNC_MAX_PAGES 100

typedef struct fetch {
    char item_id[STORE_ID_MAX];
    int force;              /* refetch: write whatever the fingerprint */
} fetch;

typedef struct mperson {
    mirror *m;
    const person *p;
    authority auth;
    char *state;            /* SyncState being advanced (owned) */
    char *stored;           /* the SyncState as stored (owned; NULL if none) */
    int had_state;
    ews_change *ch;         /* this page's changes: each page is written
                             * and its SyncState stored before the next */
    size_t nch;
    int pages, last;        /* pages read this pass; the server's end */
    char **seen;            /* a full read (no SyncState): every ItemId listed, */
    size_t nseen;           /* so that links to items not there any more go */
    long links0, dels;      /* links at the pass's start; deleted so far */
    fetch *fetch;
    size_t nfetch, next;
    long long calendar_id;  /* default calendar of the Apple home */
    int single;             /* fetching one by one after a bad batch */
    size_t sent;            /* ids in the GetItem in flight */
    int failed;
} mperson;

struct mirror {
    mirror_deps d;
    mirror_done_fn done;
    void *ud;
    int running, outstanding, failed;
    cb_err err;
};

int mirror_new(const mirror_deps *deps, mirror **out, cb_err *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return cb_errf(err, CB_ENOMEM, "out of memory");
    (*out)->d = *deps;
    return CB_OK;
}

void mirror_free(mirror *m)
{
    free(m);
}

static void person_free(mperson *mp)
{
    for (size_t i = 0; i < mp->nseen; i++) free(mp->seen[i]);
    free(mp->seen);
    free(mp->stored);
    free(mp->state);
    free(mp->ch);
    free(mp->fetch);
    free(mp);
}

/* ---- finishing -------------------------------------------------------- */

static void one_done(mirror *m)
{
    if (--m->outstanding) return;
    m->running = 0;
    m->done(m->ud, m->failed ? m->err.code : CB_OK, m->failed ? &m->err : NULL);
}

static void person_done(mperson *mp, int rc, const cb_err *err)
{
    mirror *m = mp->m;
    if (rc == CB_EMAILBOX) {   /* that mailbox alone: its SyncState stays, others go on */
        rules_hold_report(m->d.rep, mp->p->smtp, err->msg);
        rc = CB_OK;
    }
    if (rc != CB_OK) {
        if (!m->failed) m->err = *err;
        m->failed = 1;
        m->d.rep->failed++;
        report_add(m->d.rep, mp->p->smtp, 1, "%s", err->msg);
    }
    person_free(mp);
    one_done(m);
}

static void sync_next(mperson *mp);

/* The next page starts from what this one stored, with nothing kept. */
static void next_page(mperson *mp)
{
    mp->nch = 0;
    mp->nfetch = mp->next = mp->sent = 0;
    mp->single = 0;
    sync_next(mp);
}

/* Everything of the page is written: the SyncState may move. */
static void person_commit(mperson *mp)
{
    store_txn *t;
    cb_err e = {0};
    char name[STORE_KEY_MAX];
    /* An unchanged SyncState is not written again: an idle cycle writes
     * (and fsyncs) nothing. */
    const char *now = mp->state ? mp->state : "";
    int same = mp->stored && !strcmp(mp->stored, now);
    int rc = store_begin(mp->m->d.st, 1, &t, &e);
    if (rc == CB_OK) {
        key_name(KEY_SYNCSTATE, mp->p->smtp, name);
        if (!same) rc = store_put(t, name, now, &e);
        key_prefix(KEY_REFETCH, mp->p->owner_uid, name);
        if (rc == CB_OK && mp->pages == 0) rc = store_del_prefix(t, name, &e);
        rc = rc == CB_OK ? store_commit(t, &e) : (store_abort(t), rc);
    }
    if (rc == CB_OK && !same) {
        free(mp->stored);
        mp->stored = strdup(now);   /* NULL only means "write it next time" */
    }
    if (rc == CB_OK && !mp->last && ++mp->pages < SYNC_MAX_PAGES) {
        next_page(mp);
        return;
    }
    if (rc == CB_OK && !mp->last)
        report_add(mp->m->d.rep, mp->p->smtp, 0, "SyncFolderItems did not reach the end after %d "
                   "pages; the rest is read on the next pass", SYNC_MAX_PAGES);
    person_done(mp, rc, &e);
}

/* ---- writing one event ------------------------------------------------ */

/* The Apple key an Exchange item belongs to, from calbridge's own state
 * only: its link (mailbox + ItemId), the pending create whose tag it
 * carries, or a new resource in the person's default calendar named after
 * its UID. The item's stamps are its mailbox owner's to edit: they never
 * choose whose calendar is written. Returns -1 when the state itself names
 * a key outside the person's home (refused, never written), -2 when the
 * state cannot be read (the batch stops: guessing could double an item). */
static int key_for(mperson *mp, store_txn *t, const ews_event *ev, char key[STORE_KEY_MAX])
{
    const char *owner = mp->p->owner_uid;
    intent_rec in;
    key[0] = '\0';
    int rc = store_link_by_item(t, mp->p->smtp, ev->item_id, key, NULL);
    if (rc != CB_OK && rc != CB_ENOTFOUND) return -2;   /* unreadable: never guess */
    if (rc != CB_OK) key[0] = '\0';
    if (!key[0] && ev->tag && store_intent_get(t, ev->tag, &in, NULL) == CB_OK &&
        in.op == OP_CREATE && !strcasecmp(in.mailbox, mp->p->smtp))
        snprintf(key, STORE_KEY_MAX, "%s", in.key);
    if (key[0]) return key_source_owned(key, owner) ? 0 : -1;
    char name[256];
    pg_sink_resource_name(ev->uid ? ev->uid : ev->item_id, name, sizeof name);
    key_source(owner, mp->calendar_id, name, key);
    return 0;
}

/* Records an Exchange edit of an Apple-authoritative event and queues the
 * Apple version; a state-store failure is returned (the batch stops). */
static int conflict(mperson *mp, store_txn *t, const char *key, link_rec *l, const char *what)
{
    int rc = rules_conflict(t, mp->m->d.rep, SIDE_EXCHANGE, key, what, l ? l->item_id : "", 1);
    if (rc == CB_OK && l) {
        l->revision = 0;        /* the next sync pass re-plans the event */
        l->fingerprint[0] = '\0';
        rc = store_link_put(t, key, l, NULL);
    }
    return rc;
}

static int write_apple(mperson *mp, store_txn *t, const char *key, ews_event *ev,
                       const char *fp, cb_err *err)
{
    mirror *m = mp->m;
    map_ctx mc = {m->d.people, m->d.tz, m->d.cfg->default_tz, 0, (long long)time(NULL), NULL};
    char *ics = ical_out_calendar(&ev, 1, &mc, err);
    if (!ics) return err->code ? err->code : CB_EPARSE;
    source_key sk;
    pg_written w;
    int rc = key_source_parse(key, &sk) == CB_OK
                 ? pg_sink_put(m->d.sink, mp->p->owner_uid, sk.calendar_id, sk.name, ics, &w, err)
                 : cb_errf(err, CB_EINVAL, "%s: not a source key", key);
    free(ics);
    if (rc) return rc;
    link_rec l = {0};
    snprintf(l.mailbox, sizeof l.mailbox, "%s", mp->p->smtp);
    snprintf(l.item_id, sizeof l.item_id, "%s", ev->item_id);
    snprintf(l.change_key, sizeof l.change_key, "%s", ev->change_key ? ev->change_key : "");
    snprintf(l.fingerprint, sizeof l.fingerprint, "%s", fp);
    l.revision = w.revision;
    rc = store_lag_put(t, mp->p->owner_uid, "to-apple", (double)ev->modified, err);
    return rc ? rc : store_link_put(t, key, &l, err);
}

/* One event read from Exchange. Returns CB_EIO only when the batch must
 * stop (database or state store); a bad event is reported and skipped. */
static int apply_event(mperson *mp, store_txn *t, ews_event *ev, int force)
{
    report *rep = mp->m->d.rep;
    if (!ev->item_id || !ev->n || ev->items[0]->role != ROLE_MAIN) return CB_OK;
    rep->ex_read++;
    char key[STORE_KEY_MAX], fp[17];
    int found = key_for(mp, t, ev, key);
    if (found == -2) return CB_EIO;
    if (found < 0) {
        rep->failed++;
        report_add(rep, ev->item_id, 1, "Exchange item of %s is linked outside their own "
                   "calendar (%s); not written", mp->p->smtp, key);
        return CB_OK;
    }
    ews_item_fingerprint(ev->items[0], fp);
    link_rec l;
    int lrc = store_link_get(t, key, &l, NULL);
    if (lrc != CB_OK && lrc != CB_ENOTFOUND) return lrc;
    int linked = lrc == CB_OK;
    int same = linked && !strcmp(fp, l.fingerprint);
    if (same && !force) {
        rep->echoes++;
        snprintf(l.change_key, sizeof l.change_key, "%s", ev->change_key ? ev->change_key : "");
        return store_link_put(t, key, &l, NULL);
    }
    if (mp->auth == AUTHORITY_APPLE) {
        if (linked) return conflict(mp, t, key, &l, "edited");
        report_add(rep, key, 0, "an item created in Exchange for a person whose authority "
                                     "is Apple; left alone");
        return CB_OK;
    }
    cb_err e = {0};
    char what[STORE_KEY_MAX];
    key_exchange_item(mp->p->smtp, ev->item_id, what);
    /* Each object under its own savepoint: one PostgreSQL refuses fails
     * alone; only a lost connection stops the batch. */
    int rc = pg_sink_mark(mp->m->d.sink, &e);
    if (rc == CB_OK) rc = write_apple(mp, t, key, ev, fp, &e);
    if (rc && pg_sink_undo(mp->m->d.sink, NULL) != CB_OK) return CB_EIO;
    if (rc) {
        rep->failed++;
        report_add(rep, key, 1, "%s item %s: not written into Apple: %s", mp->p->smtp,
                   ev->item_id, e.msg);
        return store_failed_put(t, what, e.msg, NULL) == CB_OK ? CB_OK : CB_EIO;
    }
    rep->ex_written++;
    return store_failed_clear(t, what, NULL) == CB_OK ? CB_OK : CB_EIO;
}

/* ---- fetching --------------------------------------------------------- */

static void fetch_next(mperson *mp);

static int apply_events(mperson *mp, ews_event **ev, size_t n, cb_err *err)
{
    mirror *m = mp->m;
    int rc = pg_sink_begin(m->d.sink, err);
    if (rc) return rc;
    store_txn *t;
    if ((rc = store_begin(m->d.st, 1, &t, err))) {
        pg_sink_rollback(m->d.sink);
        return rc;
    }
    for (size_t i = 0; i < n && rc == CB_OK; i++) {
        int force = 0;
        for (size_t j = 0; j < mp->nfetch; j++)
            if (ev[i]->item_id && !strcmp(mp->fetch[j].item_id, ev[i]->item_id)) force = mp->fetch[j].force;
        rc = apply_event(mp, t, ev[i], force);
    }
    if (rc != CB_OK) {
        cb_errf(err, rc, "writing %s's items into Apple failed (database or state store); "
                "the batch is repeated next pass", mp->p->smtp);
        store_abort(t);
        pg_sink_rollback(m->d.sink);
        return rc;
    }
    /* PostgreSQL first: links may only name rows that exist. */
    if ((rc = pg_sink_commit(m->d.sink, err))) {
        store_abort(t);
        return rc;
    }
    return store_commit(t, err);
}

static void on_items(void *ud, const ews_response *r, const cb_err *err)
{
    mperson *mp = ud;
    if (!r) {
        person_done(mp, err->code ? err->code : CB_EIO, err);
        return;
    }
    ews_event **ev = NULL;
    size_t n = 0;
    cb_err e = {0};
    int rc = ews_in_parse(r->raw, r->raw_len, mp->m->d.tz, &ev, &n, &e);
    if (rc == CB_EPARSE && mp->sent > 1) {
        /* One bad item spoils the batch's parse: take its items one by one. */
        mp->single = 1;
        mp->next -= mp->sent;
        fetch_next(mp);
        return;
    }
    if (rc == CB_EPARSE && strstr(e.msg, "no calendar item") == NULL) {
        mp->m->d.rep->failed++;
        report_add(mp->m->d.rep, mp->fetch[mp->next - 1].item_id, 1, "Exchange item: %s", e.msg);
    }
    rc = rc == CB_OK ? apply_events(mp, ev, n, &e) : CB_OK;
    ews_in_events_free(ev, n);
    if (rc) person_done(mp, rc, &e);
    else fetch_next(mp);
}

static void fetch_next(mperson *mp)
{
    if (mp->next >= mp->nfetch) {
        person_commit(mp);
        return;
    }
    size_t batch = mp->single ? 1 : (size_t)mp->m->d.cfg->batch_size, n = 0;
    const char *ids[100];
    while (n < batch && n < 100 && mp->next < mp->nfetch) ids[n++] = mp->fetch[mp->next++].item_id;
    mp->sent = n;
    sbuf x;
    sbuf_init(&x);
    ews_ops_get_items(&x, ids, n);
    cb_err e = {0};
    int rc = sbuf_failed(&x) ? cb_errf(&e, CB_ENOMEM, "out of memory")
             : ews_client_submit(mp->m->d.ews, mp->p->smtp, x.s, on_items, mp, &e);
    sbuf_free(&x);
    if (rc) person_done(mp, rc, &e);
}

/* ---- planning --------------------------------------------------------- */

static int add_fetch(mperson *mp, const char *item_id, int force)
{
    for (size_t i = 0; i < mp->nfetch; i++)
        if (!strcmp(mp->fetch[i].item_id, item_id)) {
            mp->fetch[i].force |= force;
            return CB_OK;
        }
    fetch *v = realloc(mp->fetch, (mp->nfetch + 1) * sizeof *v);
    if (!v) return CB_ENOMEM;
    mp->fetch = v;
    snprintf(v[mp->nfetch].item_id, sizeof v->item_id, "%s", item_id);
    v[mp->nfetch++].force = force;
    return CB_OK;
}

static int deleted_in_list(const mperson *mp, const char *item_id)
{
    for (size_t i = 0; i < mp->nch; i++)
        if (mp->ch[i].kind == 'D' && !strcmp(mp->ch[i].item_id, item_id)) return 1;
    return 0;
}

/* The mass-delete guard: 1 when the deletions must be held back. */
static int too_many_deletes(mperson *mp, store_txn *t, long deletes)
{
    /* Counted over the whole pass: deletions spread over pages add up. */
    if (mp->pages == 0 && store_link_count(t, mp->p->owner_uid, &mp->links0, NULL) != CB_OK)
        mp->links0 = -1;
    return rules_guard_holds(mp->m->d.cfg, mp->m->d.force_delete, deletes + mp->dels, mp->links0);
}

static int delete_one(mperson *mp, store_txn *t, const char *key, link_rec *l, cb_err *err)
{
    report *rep = mp->m->d.rep;
    if (mp->auth == AUTHORITY_APPLE) {
        int rc = conflict(mp, t, key, NULL, "deleted");
        return rc ? rc : store_link_del(t, key, err);
    }
    source_key sk;
    pg_written w;
    int rc = key_source_parse(key, &sk) == CB_OK
                 ? pg_sink_delete(mp->m->d.sink, mp->p->owner_uid, sk.calendar_id, sk.name, &w, err)
                 : CB_ENOTFOUND;   /* a damaged link names nothing to delete */
    if (rc && rc != CB_ENOTFOUND) return rc;
    (void)l;
    rep->ex_deleted++;
    rc = store_lag_put(t, mp->p->owner_uid, "to-apple", 0, err);
    return rc ? rc : store_link_del(t, key, err);
}

typedef struct del {
    char key[STORE_KEY_MAX];
    link_rec l;
} del;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct ghost_ctx {
    mperson *mp;
    del **out;
    long *n;
    int rc;
} ghost_ctx;

/* A link of this person's mailbox whose item a full read did not list:
 * the item is gone (deleted while the SyncState was lost or invalid). */
static int add_ghost(void *ud, const char *key, const link_rec *l)
{
    ghost_ctx *g = ud;
    mperson *mp = g->mp;
    const char *id = l->item_id;
    if (!key_source_owned(key, mp->p->owner_uid) || strcasecmp(l->mailbox, mp->p->smtp) ||
        (mp->nseen && bsearch(&id, mp->seen, mp->nseen, sizeof *mp->seen, cmp_str)))
        return 0;
    del *v = realloc(*g->out, (size_t)(*g->n + 1) * sizeof *v);
    if (!v) return g->rc = CB_ENOMEM;
    *g->out = v;
    snprintf(v[*g->n].key, sizeof v->key, "%s", key);
    v[(*g->n)++].l = *l;
    return 0;
}

static int collect_deletes(mperson *mp, store_txn *t, del **out, long *n)
{
    *out = NULL;
    *n = 0;
    if (!mp->had_state && mp->last) {   /* the full read is complete */
        if (mp->nseen) qsort(mp->seen, mp->nseen, sizeof *mp->seen, cmp_str);
        ghost_ctx g = {mp, out, n, CB_OK};
        int rc = store_link_each(t, add_ghost, &g, NULL);
        if (rc || g.rc) return g.rc ? g.rc : rc;
    }
    for (size_t i = 0; i < mp->nch; i++) {
        if (mp->ch[i].kind != 'D') continue;
        char key[STORE_KEY_MAX];
        key_exchange_item(mp->p->smtp, mp->ch[i].item_id, key);
        if (store_failed_clear(t, key, NULL) != CB_OK) return CB_EIO;
        int rc = store_link_by_item(t, mp->p->smtp, mp->ch[i].item_id, key, NULL);
        if (rc == CB_ENOTFOUND) continue;
        if (rc) return rc;
        int dup = 0;   /* already a ghost, or deleted twice in the list */
        for (long k = 0; k < *n && !dup; k++) dup = !strcmp((*out)[k].key, key);
        if (dup) continue;
        del *v = realloc(*out, (size_t)(*n + 1) * sizeof *v);
        if (!v) return CB_ENOMEM;
        *out = v;
        snprintf(v[*n].key, sizeof v->key, "%s", key);
        if (store_link_get(t, key, &v[*n].l, NULL) == CB_OK) (*n)++;
    }
    return CB_OK;
}

/* Deletions, in one PostgreSQL and one LMDB transaction. Returns 1 when
 * the guard held the person back. */
static int apply_deletes(mperson *mp, cb_err *err)
{
    mirror *m = mp->m;
    store_txn *t;
    int rc = store_begin(m->d.st, 1, &t, err);
    if (rc) return rc;
    del *d = NULL;
    long n = 0;
    if ((rc = collect_deletes(mp, t, &d, &n)) == CB_OK && mp->auth == AUTHORITY_EXCHANGE &&
        too_many_deletes(mp, t, n)) {
        rules_guard_report(m->d.rep, m->d.cfg, mp->p->smtp, n + mp->dels, mp->links0);
        free(d);
        store_abort(t);
        return 1;
    }
    if (rc == CB_OK && n) rc = pg_sink_begin(m->d.sink, err);
    for (long i = 0; i < n && rc == CB_OK; i++) rc = delete_one(mp, t, d[i].key, &d[i].l, err);
    mp->dels += n;
    if (rc == CB_OK && n) rc = pg_sink_commit(m->d.sink, err);
    else if (n) pg_sink_rollback(m->d.sink);
    free(d);
    return rc == CB_OK ? store_commit(t, err) : (store_abort(t), rc);
}

typedef struct refetch_ctx {
    mperson *mp;
    int rc;
} refetch_ctx;

static int collect_refetch(void *ud, const char *name, const char *value)
{
    (void)name;
    refetch_ctx *c = ud;
    if (*value) c->rc = add_fetch(c->mp, value, 1);
    return c->rc;
}

static int plan_fetches(mperson *mp, cb_err *err)
{
    store_txn *t;
    int rc = store_begin(mp->m->d.st, 0, &t, err);
    if (rc) return rc;
    for (size_t i = 0; i < mp->nch && rc == CB_OK; i++) {
        ews_change *c = &mp->ch[i];
        if (c->kind == 'D' || deleted_in_list(mp, c->item_id)) continue;
        char key[STORE_KEY_MAX];
        link_rec l;
        if (store_link_by_item(t, mp->p->smtp, c->item_id, key, NULL) == CB_OK &&
            store_link_get(t, key, &l, NULL) == CB_OK && *c->change_key &&
            !strcmp(l.change_key, c->change_key)) {
            mp->m->d.rep->echoes++;   /* the bridge's own write */
            continue;
        }
        rc = add_fetch(mp, c->item_id, 0);
    }
    char prefix[STORE_KEY_MAX];
    key_prefix(KEY_REFETCH, mp->p->owner_uid, prefix);
    refetch_ctx rc2 = {mp, CB_OK};
    if (rc == CB_OK && mp->pages == 0) store_each(t, prefix, collect_refetch, &rc2, NULL);
    store_abort(t);
    if (rc == CB_OK) rc = rc2.rc;
    return rc ? cb_errf(err, rc, "out of memory") : CB_OK;
}

static void plan(mperson *mp)
{
    cb_err e = {0};
    int rc = CB_OK;
    if (mp->pages == 0 && mp->auth == AUTHORITY_EXCHANGE) {   /* once a pass, not a page */
        rc = pg_sink_begin(mp->m->d.sink, &e);
        if (rc == CB_OK) rc = pg_sink_home(mp->m->d.sink, mp->p->owner_uid, &mp->calendar_id, &e);
        if (rc == CB_OK) rc = pg_sink_commit(mp->m->d.sink, &e);
        else pg_sink_rollback(mp->m->d.sink);
    }
    if (rc == CB_OK) {
        rc = apply_deletes(mp, &e);
        if (rc == 1) {   /* held back: nothing applied, the state stays */
            person_done(mp, CB_OK, NULL);
            return;
        }
    }
    if (rc == CB_OK) rc = plan_fetches(mp, &e);
    if (rc) person_done(mp, rc, &e);
    else fetch_next(mp);
}

/* ---- SyncFolderItems -------------------------------------------------- */

static int take_changes(mperson *mp, const ews_response *r)
{
    if (!r->nchanges) return CB_OK;
    if (!mp->had_state) {   /* a full read: remember what exists */
        char **v = realloc(mp->seen, (mp->nseen + r->nchanges) * sizeof *v);
        if (!v) return CB_ENOMEM;
        mp->seen = v;
        for (size_t i = 0; i < r->nchanges; i++)
            if (r->changes[i].kind != 'D' && !(v[mp->nseen++] = strdup(r->changes[i].item_id)))
                return CB_ENOMEM;
    }
    ews_change *v = realloc(mp->ch, (mp->nch + r->nchanges) * sizeof *v);
    if (!v) return CB_ENOMEM;
    mp->ch = v;
    memcpy(v + mp->nch, r->changes, r->nchanges * sizeof *v);
    mp->nch += r->nchanges;
    return CB_OK;
}

static void on_sync(void *ud, const ews_response *r, const cb_err *err)
{
    mperson *mp = ud;
    cb_err e = {0};
    if (!r) {
        person_done(mp, err->code ? err->code : CB_EIO, err);
        return;
    }
    const ews_msg *msg = r->nmsgs ? &r->msgs[0] : NULL;
    if (msg && !msg->ok && !strcmp(msg->code, "ErrorInvalidSyncStateData") && mp->had_state) {
        report_add(mp->m->d.rep, mp->p->smtp, 0, "Exchange refused the stored sync state; "
                   "the calendar was read again in full and matched against the links");
        free(mp->state);
        mp->state = NULL;
        mp->had_state = 0;
        mp->nch = 0;
        sync_next(mp);
        return;
    }
    if (!msg || !msg->ok || !r->sync_state) {
        cb_errf(&e, CB_EREMOTE, "SyncFolderItems for %s: %s %s", mp->p->smtp,
                msg ? msg->code : "no answer", msg ? msg->text : "");
        person_done(mp, e.code, &e);
        return;
    }
    if (take_changes(mp, r) != CB_OK) {
        person_done(mp, cb_errf(&e, CB_ENOMEM, "out of memory"), &e);
        return;
    }
    /* A page that moves nothing is the end, whatever the server says. */
    int moved = r->nchanges || !mp->state || strcmp(mp->state, r->sync_state);
    mp->last = r->sync_last || !moved;
    free(mp->state);
    mp->state = strdup(r->sync_state);
    if (!mp->state) person_done(mp, cb_errf(&e, CB_ENOMEM, "out of memory"), &e);
    else plan(mp);
}

static void sync_next(mperson *mp)
{
    sbuf x;
    sbuf_init(&x);
    ews_ops_sync_folder(&x, mp->state, SYNC_MAX_CHANGES);
    cb_err e = {0};
    int rc = sbuf_failed(&x) ? cb_errf(&e, CB_ENOMEM, "out of memory")
             : ews_client_submit(mp->m->d.ews, mp->p->smtp, x.s, on_sync, mp, &e);
    sbuf_free(&x);
    if (rc) person_done(mp, rc, &e);
}

static mperson *person_start(mirror *m, const person *p, cb_err *err)
{
    mperson *mp = calloc(1, sizeof *mp);
    char *state = calloc(1, STATE_MAX);
    store_txn *t = NULL;
    if (!mp || !state) {
        free(mp);
        free(state);
        cb_errf(err, CB_ENOMEM, "out of memory");
        return NULL;
    }
    mp->m = m;
    mp->p = p;
    char name[STORE_KEY_MAX];
    key_name(KEY_SYNCSTATE, p->smtp, name);
    int rc = store_begin(m->d.st, 0, &t, err);
    if (rc == CB_OK) {
        mp->had_state = store_get(t, name, state, STATE_MAX, NULL) == CB_OK && *state;
        rc = store_authority_get(t, p->owner_uid, &mp->auth, err);
        store_abort(t);
    }
    mp->state = mp->had_state ? strdup(state) : NULL;
    mp->stored = mp->had_state ? strdup(state) : NULL;
    free(state);
    if (rc) {   /* an unknown authority is no reason to write either side */
        person_free(mp);
        return NULL;
    }
    return mp;
}

int mirror_pass(mirror *m, const char *const *owners, size_t n, mirror_done_fn done, void *ud,
                cb_err *err)
{
    if (m->running) return cb_errf(err, CB_EBUSY, "a mirror pass is already running");
    const people *pp = m->d.people;
    size_t count = owners ? n : pp->n;
    m->running = 1;
    m->failed = 0;
    m->done = done;
    m->ud = ud;
    m->outstanding = 1;   /* held until every person has started */
    for (size_t i = 0; i < count; i++) {
        const person *p = owners ? people_by_uid(pp, owners[i]) : &pp->v[i];
        if (!p) continue;
        cb_err pe = {0};
        mperson *mp = person_start(m, p, &pe);
        if (!mp) {   /* that person only; the others go on */
            if (!m->failed) m->err = pe;
            m->failed = 1;
            m->d.rep->failed++;
            report_add(m->d.rep, p->smtp, 1, "%s", pe.msg);
            continue;
        }
        m->outstanding++;
        sync_next(mp);
    }
    one_done(m);
    return CB_OK;
}
