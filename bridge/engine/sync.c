#include "sync.h"
#include "rules.h"
#include "../exchange/ews_ops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../mapping/ical_in.h"
#include "../../mapping/sbuf.h"
#include "../../state/keys.h"

#define MASTER_MARK "@@calbridge-master-item@@"

typedef struct work {
    intent_rec in;          /* op, key, mailbox, item_id, fingerprint, revision, tag */
    char *xml;              /* CalendarItem or ItemChange; NULL for deletes */
    /* Deleted and modified occurrences, applied once the master exists:
     * OccurrenceItemIds and ItemChanges naming MASTER_MARK. */
    char *occ_del, *occ_upd;
    char master_id[STORE_ID_MAX];
    double changed;         /* when the Apple change was made (lag) */
    int lookups;            /* tag look-ups after lost CreateItem answers */
} work;

typedef struct batch {
    sync_ctx *s;
    intent_op op;
    work **w;
    size_t n;
} batch;

struct sync_ctx {
    sync_deps d;
    sync_done_fn done;
    void *ud;
    int running;
    int outstanding;        /* requests of the current stage */
    int failed;             /* a request failed: keep the cursor */
    cb_err err;
    char **held;            /* mailboxes held back this pass (cursor kept) */
    size_t nheld;
    work *works;
    size_t nworks;
    pg_cursor next_cursor;
    int have_next;
    char stored_cursor[96];  /* the cursor as stored: an unchanged one is not rewritten */
    const char **owners;
    size_t nowners;
};

int sync_new(const sync_deps *deps, sync_ctx **out, cb_err *err)
{
    *out = NULL;
    sync_ctx *s = calloc(1, sizeof *s);
    if (!s) return cb_errf(err, CB_ENOMEM, "out of memory");
    s->d = *deps;
    s->nowners = deps->people->n;
    s->owners = calloc(s->nowners ? s->nowners : 1, sizeof *s->owners);
    if (!s->owners) {
        free(s);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->nowners; i++) s->owners[i] = deps->people->v[i].owner_uid;
    *out = s;
    return CB_OK;
}

static void free_works(sync_ctx *s)
{
    for (size_t i = 0; i < s->nworks; i++) {
        free(s->works[i].xml);
        free(s->works[i].occ_del);
        free(s->works[i].occ_upd);
    }
    free(s->works);
    s->works = NULL;
    s->nworks = 0;
}

static void free_held(sync_ctx *s)
{
    for (size_t i = 0; i < s->nheld; i++) free(s->held[i]);
    free(s->held);
    s->held = NULL;
    s->nheld = 0;
}

void sync_free(sync_ctx *s)
{
    if (!s) return;
    free_works(s);
    free_held(s);
    free(s->owners);
    free(s);
}

static void end_pass(sync_ctx *s, int rc)
{
    free_works(s);
    free_held(s);
    s->running = 0;
    if (rc != CB_OK) {
        store_txn *t;
        /* Best effort: the error reaches the caller either way; this copy
         * is only what `status` shows later. */
        if (store_begin(s->d.st, 1, &t, NULL) == CB_OK) {
            if (store_put(t, KEY_LAST_ERROR, s->err.msg, NULL) == CB_OK) (void)store_commit(t, NULL);
            else store_abort(t);
        }
    }
    s->done(s->ud, rc, rc == CB_OK ? NULL : &s->err);
}

static void fail_request(sync_ctx *s, const cb_err *err)
{
    if (!s->failed) s->err = *err;
    s->failed = 1;
}

/* A request for mailbox failed. A fault about that mailbox alone holds its
 * person back (reported once; intents and cursor stay, so nothing is lost)
 * and everyone else goes on; anything else fails the pass. */
static void fail_for(sync_ctx *s, const char *mailbox, const cb_err *err)
{
    if (!err || err->code != CB_EMAILBOX) {
        fail_request(s, err ? err : &(cb_err){CB_EIO, "request failed"});
        return;
    }
    for (size_t i = 0; i < s->nheld; i++)
        if (!strcmp(s->held[i], mailbox)) return;
    char **v = realloc(s->held, (s->nheld + 1) * sizeof *v);
    if (!v || !(v[s->nheld] = strdup(mailbox))) {
        if (v) s->held = v;
        fail_request(s, err);
        return;
    }
    s->held = v;
    s->nheld++;
    rules_hold_report(s->d.rep, mailbox, err->msg);
}

/* ---- stage 5: commit -------------------------------------------------- */

static void finish_write_stage(sync_ctx *s)
{
    if (s->failed) {
        end_pass(s, s->err.code ? s->err.code : CB_EIO);
        return;
    }
    store_txn *t;
    cb_err err;
    if (s->nheld) s->have_next = 0;   /* their changes are read again next pass */
    int rc = store_begin(s->d.st, 1, &t, &err);
    if (rc == CB_OK && s->have_next) {
        char buf[96];
        pg_cursor_format(&s->next_cursor, buf, sizeof buf);
        if (strcmp(buf, s->stored_cursor)) rc = store_put(t, KEY_CURSOR_APPLE, buf, &err);
    }
    if (rc == CB_OK) rc = store_commit(t, &err);
    else store_abort(t);
    if (rc) s->err = err;
    end_pass(s, rc);
}

/* Per-item answers Exchange gives when it did not apply the item now but
 * might later: throttling and server trouble inside a 200. */
static int transient(const ews_msg *m)
{
    static const char *const CODES[] = {"ErrorServerBusy", "ErrorInternalServerError",
                                        "ErrorTooManyObjectsOpened", "ErrorTimeoutExpired",
                                        "ErrorBatchProcessingStopped",
                                        "ErrorMailboxStoreUnavailable", "ErrorConnectionFailed"};
    for (size_t i = 0; !m->ok && i < sizeof CODES / sizeof *CODES; i++)
        if (!strcmp(m->code, CODES[i])) return 1;
    return 0;
}

/* Records one item's answer in t; a state-store failure is returned (the
 * caller then aborts t and the intent stays for recovery). A transient
 * error leaves the intent as it is: the pass is failed (cursor kept) and
 * the item is written again on the next one, nothing dropped. */
static int apply_result(sync_ctx *s, store_txn *t, work *w, const ews_msg *m)
{
    int rc = CB_OK;
    if (transient(m)) {
        cb_err e;
        cb_errf(&e, CB_EBUSY, "%s: %s: retried on the next pass", w->in.key, m->code);
        fail_request(s, &e);
        return CB_OK;
    }
    report *rep = s->d.rep;
    intent_rec *in = &w->in;
    link_rec l = {0};
    snprintf(l.mailbox, sizeof l.mailbox, "%s", in->mailbox);
    snprintf(l.fingerprint, sizeof l.fingerprint, "%s", in->fingerprint);
    l.revision = in->revision;
    int not_found = !m->ok && !strcmp(m->code, "ErrorItemNotFound");
    if (in->op == OP_DELETE && (m->ok || not_found)) {
        rc = store_link_del(t, in->key, NULL);
        if (rc == CB_ENOTFOUND) rc = CB_OK;
        if (rc == CB_OK) rc = store_failed_clear(t, in->key, NULL);
        rep->deleted++;
    } else if (in->op == OP_UPDATE && not_found) {
        /* Deleted on the Exchange side: forget the link, so the next change
         * of the event (or a rescan) creates it again. */
        rc = store_link_del(t, in->key, NULL);
        if (rc == CB_ENOTFOUND) rc = CB_OK;
        rep->failed++;
        report_add(rep, in->key, 1, "item was deleted in Exchange; re-created on its next change");
    } else if (!m->ok) {
        char why[sizeof m->code + sizeof m->text + 4];
        snprintf(why, sizeof why, "%s: %s", m->code, m->text);
        rep->failed++;
        report_add(rep, in->key, 1, "%s", why);
        rc = store_failed_put(t, in->key, why, NULL);
    } else {
        snprintf(l.item_id, sizeof l.item_id, "%s", in->op == OP_CREATE ? m->item_id : in->item_id);
        snprintf(l.change_key, sizeof l.change_key, "%s", m->change_key);
        /* Until its occurrences are applied the item is not what the
         * fingerprint says: a crash in between makes the next pass write
         * the whole series again. */
        if (w->occ_del || w->occ_upd) {
            l.fingerprint[0] = '\0';
            snprintf(w->master_id, sizeof w->master_id, "%s", l.item_id);
        }
        rc = store_link_put(t, in->key, &l, NULL);
        if (rc == CB_OK) rc = store_failed_clear(t, in->key, NULL);
        if (rc == CB_OK && in->op == OP_CREATE) rep->created++;
        else if (rc == CB_OK) rep->updated++;
    }
    source_key sk;
    if (rc == CB_OK && (m->ok || not_found) && key_source_parse(in->key, &sk) == CB_OK)
        rc = store_lag_put(t, sk.owner, "to-exchange", w->changed, NULL);
    if (rc == CB_OK) rc = store_intent_del(t, in->tag, NULL);
    return rc;
}

static void submit_occurrences(sync_ctx *s, work *w);
static int submit_batch(sync_ctx *s, batch *b, cb_err *err);

/* The item a FindItem by tag found for intent `in` becomes its link, and the
 * intent goes, in one transaction (never the intent alone: the item would
 * be orphaned and created a second time). found NULL: nothing exists, only
 * the intent goes. unfinished: its occurrences are still to be applied, so
 * the link claims no content yet. */
static int adopt(sync_ctx *s, const intent_rec *in, const ews_found *found, int unfinished,
                 cb_err *err)
{
    store_txn *t;
    int rc = store_begin(s->d.st, 1, &t, err);
    if (rc) return rc;
    if (found) {
        link_rec l = {0};
        snprintf(l.mailbox, sizeof l.mailbox, "%s", in->mailbox);
        snprintf(l.item_id, sizeof l.item_id, "%s", found->item_id);
        snprintf(l.change_key, sizeof l.change_key, "%s", found->change_key);
        snprintf(l.fingerprint, sizeof l.fingerprint, "%s", unfinished ? "" : in->fingerprint);
        l.revision = in->revision;
        rc = store_link_put(t, in->key, &l, err);
    }
    if (rc == CB_OK) rc = store_intent_del(t, in->tag, err);
    rc = rc == CB_OK ? store_commit(t, err) : (store_abort(t), rc);
    if (rc == CB_OK && found) s->d.rep->adopted++;
    return rc;
}

static const ews_found *found_tag(const ews_response *r, const char *tag)
{
    for (size_t i = 0; i < r->nfound; i++)
        if (!strcmp(r->found[i].tag, tag)) return &r->found[i];
    return NULL;
}

typedef struct lookup {
    sync_ctx *s;
    work *w;
} lookup;

static void finish_write_stage(sync_ctx *s);

/* A lost CreateItem answer, looked up: adopted when the item exists, else
 * sent again on its own (at most three times, then the next pass). */
static void on_lookup(void *ud, const ews_response *r, const cb_err *err)
{
    lookup *lk = ud;
    sync_ctx *s = lk->s;
    work *w = lk->w;
    cb_err e = {0};
    const ews_found *f = r && (!r->nmsgs || r->msgs[0].ok) ? found_tag(r, w->in.tag) : NULL;
    if (!r || (r->nmsgs && !r->msgs[0].ok)) {
        fail_for(s, w->in.mailbox, r ? &(cb_err){CB_EREMOTE, "FindItem by tag failed"} : err);
    } else if (f) {
        int occ = w->occ_del || w->occ_upd;
        if (adopt(s, &w->in, f, occ, &e) != CB_OK) fail_request(s, &e);
        else if (occ) {
            snprintf(w->master_id, sizeof w->master_id, "%s", f->item_id);
            submit_occurrences(s, w);
        }
    } else {
        batch *one = calloc(1, sizeof *one);
        work **v = calloc(1, sizeof *v);
        if (one && v) *one = (batch){s, OP_CREATE, v, 1}, v[0] = w;
        if (!one || !v || submit_batch(s, one, &e) != CB_OK) {
            free(one);
            free(v);
            fail_request(s, e.msg[0] ? &e : &(cb_err){CB_ENOMEM, "out of memory"});
        }
    }
    free(lk);
    if (--s->outstanding == 0) finish_write_stage(s);
}

/* A CreateItem whose answer never came may have been applied: each of its
 * items is looked up by tag before anything is sent again. */
static void look_up_creates(sync_ctx *s, const batch *b, const cb_err *err)
{
    for (size_t i = 0; i < b->n; i++) {
        work *w = b->w[i];
        lookup *lk = calloc(1, sizeof *lk);
        sbuf x;
        sbuf_init(&x);
        ews_ops_find_by_tag(&x, w->in.tag);
        cb_err e = {0};
        if (!lk || sbuf_failed(&x) || w->lookups++ >= 3 ||
            ews_client_submit(s->d.ews, w->in.mailbox, x.s, on_lookup, lk, &e) != CB_OK) {
            free(lk);
            fail_request(s, e.msg[0] ? &e : err);   /* the intent stays: next pass */
        } else {
            *lk = (lookup){s, w};
            s->outstanding++;
        }
        sbuf_free(&x);
    }
}

/* Exchange refused a whole request for what it carries: each item is sent
 * alone, so that only the guilty one fails. Returns 0 when split. */
static int split_batch(sync_ctx *s, const batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        batch *one = calloc(1, sizeof *one);
        work **w = calloc(1, sizeof *w);
        cb_err e;
        if (!one || !w) {
            free(one);
            free(w);
            return cb_errf(&e, CB_ENOMEM, "out of memory"), fail_request(s, &e), -1;
        }
        *one = (batch){s, b->op, w, 1};
        w[0] = b->w[i];
        if (submit_batch(s, one, &e) != CB_OK) {
            fail_request(s, &e);
            free(w);
            free(one);
        }
    }
    return 0;
}

/* One item Exchange refused alone: reported, remembered until carried;
 * nothing was applied, so its intent goes. */
static void refused_alone(sync_ctx *s, work *w, const cb_err *err)
{
    store_txn *t;
    cb_err e;
    s->d.rep->failed++;
    report_add(s->d.rep, w->in.key, 1, "refused by Exchange: %s", err->msg);
    if (store_begin(s->d.st, 1, &t, &e) != CB_OK) {
        fail_request(s, &e);
        return;
    }
    int rc = store_failed_put(t, w->in.key, err->msg, &e);
    if (rc == CB_OK) rc = store_intent_del(t, w->in.tag, &e);
    if (rc == CB_OK) rc = store_commit(t, &e);
    else store_abort(t);
    if (rc) fail_request(s, &e);
}

static void on_batch(void *ud, const ews_response *r, const cb_err *err)
{
    batch *b = ud;
    sync_ctx *s = b->s;
    if (!r && err->code == CB_EREJECTED && b->n > 1) {
        split_batch(s, b);
    } else if (!r && err->code == CB_EREJECTED) {
        refused_alone(s, b->w[0], err);
    } else if (!r && b->op == OP_CREATE && err->code == CB_EIO) {
        look_up_creates(s, b, err);
    } else if (!r) {
        fail_for(s, b->w[0]->in.mailbox, err);   /* intents stay pending for recovery */
    } else {
        store_txn *t = NULL;
        cb_err e = {0};
        int rc = store_begin(s->d.st, 1, &t, &e), began = rc == CB_OK;
        for (size_t i = 0; rc == CB_OK && i < b->n && i < r->nmsgs; i++)
            rc = apply_result(s, t, b->w[i], &r->msgs[i]);
        if (rc == CB_OK) rc = store_commit(t, &e);
        else if (began) store_abort(t);
        if (rc != CB_OK && !e.msg[0]) cb_errf(&e, rc, "recording EWS answers in the state failed");
        if (rc != CB_OK) {
            /* Nothing of the batch is recorded: its intents stay for
             * recovery, and no occurrence is applied to an unlinked master. */
            fail_request(s, &e);
            for (size_t i = 0; i < b->n; i++) b->w[i]->master_id[0] = '\0';
        }
        if (r->nmsgs < b->n) {
            cb_errf(&e, CB_EREMOTE, "EWS answered %zu of %zu items", r->nmsgs, b->n);
            fail_request(s, &e);
        }
        for (size_t i = 0; i < b->n; i++)
            if (b->w[i]->master_id[0]) submit_occurrences(s, b->w[i]);
    }
    free(b->w);
    free(b);
    if (--s->outstanding == 0) finish_write_stage(s);
}

/* ---- stage 4b: occurrences of a series ---------------------------------- */

typedef struct occ_req {
    sync_ctx *s;
    work *w;
    int pending, failed;
} occ_req;

/* text with every MASTER_MARK replaced by the ItemId (XML-escaped). */
static char *with_master(const char *text, const char *master_id)
{
    sbuf b;
    sbuf_init(&b);
    size_t ml = strlen(MASTER_MARK);
    for (const char *p = text, *q; *p; p = q + ml) {
        if (!(q = strstr(p, MASTER_MARK))) {
            sbuf_cat(&b, p);
            break;
        }
        sbuf_catn(&b, p, (size_t)(q - p));
        sbuf_xml(&b, master_id);
    }
    return sbuf_take(&b);
}

/* The link takes the master's ChangeKey as it is after its occurrence
 * changes (DeleteItem answers carry none) and the event's fingerprint:
 * the mirror pass then recognises the series as the bridge's own write. */
static void on_master_read(void *ud, const ews_response *r, const cb_err *err)
{
    occ_req *o = ud;
    sync_ctx *s = o->s;
    store_txn *t;
    link_rec l;
    cb_err e = {0};
    int rc = CB_OK;
    if (!r) fail_for(s, o->w->in.mailbox, err);
    else if (r->nmsgs && r->msgs[0].ok && (rc = store_begin(s->d.st, 1, &t, &e)) == CB_OK) {
        rc = store_link_get(t, o->w->in.key, &l, &e);
        if (rc == CB_OK) {
            snprintf(l.fingerprint, sizeof l.fingerprint, "%s", o->w->in.fingerprint);
            snprintf(l.change_key, sizeof l.change_key, "%s", r->msgs[0].change_key);
            rc = store_link_put(t, o->w->in.key, &l, &e);
        }
        rc = rc == CB_OK ? store_commit(t, &e) : (store_abort(t), rc);
    }
    /* Not recorded: the link's empty fingerprint brings the series back. */
    if (rc != CB_OK && rc != CB_ENOTFOUND) fail_request(s, &e);
    free(o);
    if (--s->outstanding == 0) finish_write_stage(s);
}

static void read_master(occ_req *o)
{
    sync_ctx *s = o->s;
    sbuf x;
    sbuf_init(&x);
    ews_ops_get_change_key(&x, o->w->master_id);
    if (!sbuf_failed(&x) &&
        ews_client_submit(s->d.ews, o->w->in.mailbox, x.s, on_master_read, o, NULL) == CB_OK)
        s->outstanding++;
    else
        free(o);   /* the link's empty fingerprint brings the event back next pass */
    sbuf_free(&x);
}

static void on_occurrences(void *ud, const ews_response *r, const cb_err *err)
{
    occ_req *o = ud;
    sync_ctx *s = o->s;
    for (size_t i = 0; r && i < r->nmsgs; i++)
        if (!r->msgs[i].ok) {
            o->failed = 1;
            report_add(s->d.rep, o->w->in.key, 1, "occurrence change refused: %s: %s",
                       r->msgs[i].code, r->msgs[i].text);
        }
    if (!r) {
        o->failed = 1;
        fail_for(s, o->w->in.mailbox, err);
    }
    if (--o->pending == 0) {
        if (o->failed) free(o);
        else read_master(o);
    }
    if (--s->outstanding == 0) finish_write_stage(s);
}

static void submit_occurrences(sync_ctx *s, work *w)
{
    occ_req *o = calloc(1, sizeof *o);
    if (!o) return;   /* the link's empty fingerprint brings it back next pass */
    o->s = s;
    o->w = w;
    const char *parts[2] = {w->occ_del, w->occ_upd};
    const ews_write ops[2] = {EWS_WRITE_DELETE, EWS_WRITE_UPDATE};
    o->pending = 1;   /* held until both are submitted */
    for (int i = 0; i < 2; i++) {
        if (!parts[i]) continue;
        char *body = with_master(parts[i], w->master_id);
        sbuf x;
        sbuf_init(&x);
        ews_ops_open(&x, ops[i]);
        sbuf_cat(&x, body ? body : "");
        ews_ops_close(&x, ops[i]);
        free(body);
        if (ews_client_submit(s->d.ews, w->in.mailbox, x.s, on_occurrences, o, NULL) == CB_OK) {
            o->pending++;
            s->outstanding++;
        } else {
            o->failed = 1;
        }
        sbuf_free(&x);
    }
    s->outstanding++;
    on_occurrences(o, &(ews_response){0}, NULL);   /* drops the hold */
}

/* ---- stage 4: effect -------------------------------------------------- */

static void batch_xml(const batch *b, sbuf *x)
{
    ews_write op = b->op == OP_CREATE ? EWS_WRITE_CREATE
                   : b->op == OP_UPDATE ? EWS_WRITE_UPDATE : EWS_WRITE_DELETE;
    ews_ops_open(x, op);
    for (size_t i = 0; i < b->n; i++) {
        if (b->op == OP_DELETE) ews_ops_item_id(x, b->w[i]->in.item_id);
        else sbuf_cat(x, b->w[i]->xml);
    }
    ews_ops_close(x, op);
}

static int submit_batch(sync_ctx *s, batch *b, cb_err *err)
{
    sbuf x;
    sbuf_init(&x);
    batch_xml(b, &x);
    int rc = sbuf_failed(&x) ? cb_errf(err, CB_ENOMEM, "out of memory")
             : ews_client_submit(s->d.ews, b->w[0]->in.mailbox, x.s, on_batch, b, err);
    sbuf_free(&x);
    if (rc == CB_OK) s->outstanding++;
    return rc;
}

/* Groups works by mailbox and operation into batches of batch_size. */
static int submit_all(sync_ctx *s, cb_err *err)
{
    char *done = calloc(s->nworks ? s->nworks : 1, 1);
    if (!done) return cb_errf(err, CB_ENOMEM, "out of memory");
    int rc = CB_OK;
    size_t max = (size_t)s->d.cfg->batch_size;
    for (size_t i = 0; i < s->nworks && rc == CB_OK; i++) {
        if (done[i]) continue;
        batch *b = calloc(1, sizeof *b);
        work **w = calloc(max, sizeof *w);
        if (!b || !w) {
            free(b);
            free(w);
            rc = cb_errf(err, CB_ENOMEM, "out of memory");
            break;
        }
        b->s = s;
        b->w = w;
        b->op = s->works[i].in.op;
        for (size_t j = i; j < s->nworks && b->n < max; j++)
            if (!done[j] && s->works[j].in.op == b->op &&
                !strcmp(s->works[j].in.mailbox, s->works[i].in.mailbox)) {
                done[j] = 1;
                b->w[b->n++] = &s->works[j];
            }
        if ((rc = submit_batch(s, b, err)) != CB_OK) {
            free(b->w);
            free(b);
        }
    }
    free(done);
    return rc;
}

/* ---- stage 3: plan and intent ----------------------------------------- */

static void change_key_of(const pg_change *c, char key[STORE_KEY_MAX])
{
    key_source(c->owner_uid, c->calendar_id, c->resource_name, key);
}

static work *add_work(sync_ctx *s, intent_op op, const char *key, const char *mailbox,
                      long long rev)
{
    work *v = realloc(s->works, (s->nworks + 1) * sizeof *v);
    if (!v) return NULL;
    s->works = v;
    work *w = &v[s->nworks++];
    memset(w, 0, sizeof *w);
    w->in.op = op;
    w->in.revision = rev;
    snprintf(w->in.key, sizeof w->in.key, "%s", key);
    snprintf(w->in.mailbox, sizeof w->in.mailbox, "%s", mailbox);
    if (store_new_tag(w->in.tag, NULL) != CB_OK) {
        s->nworks--;
        return NULL;
    }
    return w;
}

static int mirror_conflict(sync_ctx *s, store_txn *t, const char *key, const link_rec *l,
                           const char *what)
{
    return rules_conflict(t, s->d.rep, SIDE_APPLE, key, what, l ? l->item_id : NULL, l != NULL);
}

/* A change in the Apple home of an Exchange-authoritative person: the
 * bridge's own write (echo) or a conflict. */
static int plan_mirror_side(sync_ctx *s, store_txn *t, const pg_change *c, const char *key,
                            link_rec *l)
{
    if (l && c->revision > 0 && l->revision >= c->revision) {
        s->d.rep->echoes++;
        return CB_OK;
    }
    if (c->deleted) {
        if (!l) return CB_OK;
        int rc = mirror_conflict(s, t, key, l, "deleted");
        l->revision = c->revision;
        return rc ? rc : store_link_put(t, key, l, NULL);
    }
    map_ctx mc = {s->d.people, s->d.tz, s->d.cfg->default_tz, 0, (long long)time(NULL), NULL};
    ews_event *ev = NULL;
    char fp[17] = "";
    if (ical_in_map(c->ics, &mc, &ev, NULL) == CB_OK && ev->n) ews_item_fingerprint(ev->items[0], fp);
    ews_event_free(ev);
    int rc = CB_OK;
    if (l && !strcmp(fp, l->fingerprint)) s->d.rep->echoes++;   /* written by us, seen late */
    else rc = mirror_conflict(s, t, key, l, l ? "edited" : "created");
    if (rc || !l) return rc;
    l->revision = c->revision;
    return store_link_put(t, key, l, NULL);
}

/* Decides what one change needs; returns CB_ENOMEM/CB_EIO only for faults
 * that must stop the pass, never for a bad event. */
static int plan_change(sync_ctx *s, store_txn *t, const pg_change *c)
{
    report *rep = s->d.rep;
    char key[STORE_KEY_MAX];
    change_key_of(c, key);
    const person *p = people_by_uid(s->d.people, c->owner_uid);
    if (!p) return CB_OK;
    rep->read++;
    link_rec l;
    int linked = store_link_get(t, key, &l, NULL) == CB_OK;
    authority auth;
    int arc = store_authority_get(t, c->owner_uid, &auth, NULL);
    if (arc) return arc;   /* unknown authority: nothing is planned, the pass stops */
    if (auth == AUTHORITY_EXCHANGE) return plan_mirror_side(s, t, c, key, linked ? &l : NULL);
    if (linked && l.revision >= c->revision && c->revision > 0) {
        rep->unchanged++;
        return CB_OK;
    }
    if (c->deleted) {
        if (!linked) return store_failed_clear(t, key, NULL);
        work *w = add_work(s, OP_DELETE, key, l.mailbox, c->revision);
        if (!w) return CB_ENOMEM;
        w->changed = c->modified;
        snprintf(w->in.item_id, sizeof w->in.item_id, "%s", l.item_id);
        return CB_OK;
    }
    map_ctx mc = {s->d.people, s->d.tz, s->d.cfg->default_tz, 0, (long long)time(NULL), NULL};
    ews_event *ev;
    cb_err e;
    int rc = *c->ics ? ical_in_map(c->ics, &mc, &ev, &e)
                     : cb_errf(&e, CB_EINVAL, "larger than CalendarServer's MaxResourceSize (%d "
                               "bytes): not read, not carried", PG_MAX_RESOURCE);
    if (rc == CB_EUNSUPPORTED && strstr(e.msg, "no VEVENT")) {
        rep->skipped++;
        return CB_OK;
    }
    if (rc == CB_OK && (ev->expanded || ev->items[0]->role != ROLE_MAIN)) {
        rc = cb_errf(&e, CB_EUNSUPPORTED, "event %s: %s; single items are shown by "
                     "`calbridge translate` but not carried by sync yet", ev->uid,
                     ev->warnings ? ev->warnings : "no series");
        ews_event_free(ev);
    }
    if (rc != CB_OK) {
        rep->failed++;
        report_add(rep, key, 1, "%s", e.msg);
        return store_failed_put(t, key, e.msg, NULL) == CB_EIO ? CB_EIO : CB_OK;
    }
    ews_item *it = ev->items[0];
    if (ev->n > 1)
        ews_event_warn(ev, "travel time is shown by `calbridge translate` but not carried by "
                           "sync yet");
    char fp[17];
    ews_item_fingerprint(it, fp);
    if (linked && !strcmp(fp, l.fingerprint)) {
        l.revision = c->revision;   /* same content: only remember the revision */
        ews_event_free(ev);
        rep->unchanged++;
        return store_link_put(t, key, &l, NULL);
    }
    work *w = add_work(s, linked ? OP_UPDATE : OP_CREATE, key, p->smtp, c->revision);
    if (!w) {
        ews_event_free(ev);
        return CB_ENOMEM;
    }
    w->changed = c->modified;
    snprintf(w->in.fingerprint, sizeof w->in.fingerprint, "%s", fp);
    if (ev->warnings) report_add(rep, key, 0, "%s", ev->warnings);
    sbuf x;
    sbuf_init(&x);
    if (linked) {
        snprintf(w->in.item_id, sizeof w->in.item_id, "%s", l.item_id);
        ews_item_write_update(it, l.item_id, NULL, &x);
    } else {
        ews_item_write_create(it, key, w->in.tag, &x);
    }
    if (it->nocc) {
        sbuf d, u;
        sbuf_init(&d);
        sbuf_init(&u);
        ews_item_write_occurrences(it, MASTER_MARK, &d, &u);
        w->occ_del = d.len ? sbuf_take(&d) : (sbuf_free(&d), NULL);
        w->occ_upd = u.len ? sbuf_take(&u) : (sbuf_free(&u), NULL);
    }
    ews_event_free(ev);
    w->xml = sbuf_take(&x);
    return w->xml ? CB_OK : CB_ENOMEM;
}

typedef struct gone_ctx {
    sync_ctx *s;
    store_txn *t;
    const pg_changes *seen;
} gone_ctx;

static int cmp_change_key(const void *a, const void *b)
{
    char ka[STORE_KEY_MAX], kb[STORE_KEY_MAX];
    change_key_of(a, ka);
    change_key_of(b, kb);
    return strcmp(ka, kb);
}

static int cmp_key_change(const void *key, const void *elem)
{
    char k[STORE_KEY_MAX];
    change_key_of(elem, k);
    return strcmp(key, k);
}

/* After a scan (changes sorted by key): linked events of mapped people that no longer exist. */
static int plan_gone(void *ud, const char *key, const link_rec *l)
{
    gone_ctx *g = ud;
    source_key sk;
    if (key_source_parse(key, &sk) != CB_OK || !people_by_uid(g->s->d.people, sk.owner)) return 0;
    authority auth;
    int rc = store_authority_get(g->t, sk.owner, &auth, NULL);
    if (rc) return rc;   /* unknown authority: nothing may be deleted */
    if (auth == AUTHORITY_EXCHANGE) return 0;   /* its Apple home is the mirror */
    if (g->seen->n && bsearch(key, g->seen->v, g->seen->n, sizeof *g->seen->v, cmp_key_change))
        return 0;
    work *w = add_work(g->s, OP_DELETE, key, l->mailbox, l->revision);
    if (!w) return CB_ENOMEM;
    snprintf(w->in.item_id, sizeof w->in.item_id, "%s", l->item_id);
    return 0;
}

typedef struct repush_ctx {
    sync_ctx *s;
    store_txn *t;
    int rc;
} repush_ctx;

/* An event edited in Exchange while Apple is authoritative: its Apple
 * version is planned again (the mirror reset its link). */
static int repush_one(void *ud, const char *name, const char *value)
{
    (void)value;
    repush_ctx *r = ud;
    source_key sk;
    if (key_source_parse(key_arg(KEY_REPUSH, name), &sk) != CB_OK) return 0;
    pg_changes *ch = NULL;
    r->rc = pg_source_get(r->s->d.pg, sk.owner, sk.calendar_id, sk.name, &ch, NULL);
    if (r->rc == CB_OK) r->rc = plan_change(r->s, r->t, &ch->v[0]);
    pg_changes_free(ch);
    return r->rc;
}

/* The mass-delete guard: drops the deletions of any person over the share
 * and returns 1 if it did (the cursor must then stay). */
static int hold_mass_deletes(sync_ctx *s, store_txn *t)
{
    const config *cfg = s->d.cfg;
    int held = 0;
    for (size_t i = 0; i < s->d.people->n && !s->d.force_delete; i++) {
        const person *p = &s->d.people->v[i];
        size_t len = strlen(p->owner_uid);
        long dels = 0;
        for (size_t j = 0; j < s->nworks; j++)
            dels += s->works[j].in.op == OP_DELETE && !strncmp(s->works[j].in.key, p->owner_uid, len) &&
                    s->works[j].in.key[len] == '/';
        long links = 0;
        if (dels < cfg->mass_delete_min) continue;
        if (store_link_count(t, p->owner_uid, &links, NULL) != CB_OK) links = -1;
        if (!rules_guard_holds(cfg, s->d.force_delete, dels, links)) continue;
        size_t k = 0;
        for (size_t j = 0; j < s->nworks; j++) {
            work *w = &s->works[j];
            int drop = w->in.op == OP_DELETE && !strncmp(w->in.key, p->owner_uid, len) &&
                       w->in.key[len] == '/';
            if (drop) free(w->xml);
            else s->works[k++] = *w;
        }
        s->nworks = k;
        rules_guard_report(s->d.rep, cfg, p->smtp, dels, links);
        held = 1;
    }
    return held;
}

static int plan(sync_ctx *s, const pg_changes *ch, int scanned, cb_err *err)
{
    store_txn *t;
    int rc = store_begin(s->d.st, 1, &t, err);
    if (rc) return rc;
    for (size_t i = 0; i < ch->n && rc == CB_OK; i++) rc = plan_change(s, t, &ch->v[i]);
    if (rc == CB_OK && scanned) {
        gone_ctx g = {s, t, ch};
        rc = store_link_each(t, plan_gone, &g, err);
    }
    if (rc == CB_OK) {
        repush_ctx r = {s, t, CB_OK};
        char prefix[STORE_KEY_MAX];
        key_prefix(KEY_REPUSH, NULL, prefix);
        rc = store_each(t, prefix, repush_one, &r, err);
        if (r.rc != CB_OK) rc = r.rc;
        if (rc == CB_OK) rc = store_del_prefix(t, prefix, err);
    }
    if (rc == CB_OK && hold_mass_deletes(s, t)) s->have_next = 0;
    for (size_t i = 0; i < s->nworks && rc == CB_OK; i++)
        rc = store_intent_put(t, &s->works[i].in, err);
    if (rc != CB_OK) {
        store_abort(t);
        return rc < 0 && !err->msg[0] ? cb_errf(err, rc, "planning failed") : rc;
    }
    return store_commit(t, err);
}

/* ---- stage 2: read ---------------------------------------------------- */

static void read_and_write(sync_ctx *s)
{
    store_txn *t;
    char buf[96];
    pg_cursor cur = {0};
    int have = 0;
    cb_err err = {0};
    if (store_begin(s->d.st, 0, &t, &err) == CB_OK) {
        have = store_get(t, KEY_CURSOR_APPLE, buf, sizeof buf, NULL) == CB_OK &&
               pg_cursor_parse(buf, &cur) == 0;
        store_abort(t);
    }
    snprintf(s->stored_cursor, sizeof s->stored_cursor, "%s", have ? buf : "");
    pg_changes *ch = NULL;
    int trimmed = 0, rc = CB_OK;
    if (have) rc = pg_source_poll(s->d.pg, s->owners, s->nowners, &cur, &ch, &s->next_cursor,
                                  &trimmed, &err);
    int scanned = !have || trimmed;
    if (rc == CB_OK && scanned)
        rc = pg_source_scan(s->d.pg, s->owners, s->nowners, &ch, &s->next_cursor, &err);
    if (rc == CB_OK && scanned && ch && ch->n > 1)
        qsort(ch->v, ch->n, sizeof *ch->v, cmp_change_key);
    s->have_next = rc == CB_OK;
    if (rc == CB_OK) rc = plan(s, ch, scanned, &err);
    pg_changes_free(ch);
    if (rc == CB_OK) rc = submit_all(s, &err);
    if (rc != CB_OK) {
        s->err = err;
        if (!s->outstanding) end_pass(s, rc);
        else s->failed = 1;
        return;
    }
    if (!s->outstanding) finish_write_stage(s);
}

/* ---- stage 1: recovery ------------------------------------------------ */

typedef struct recovery {
    sync_ctx *s;
    intent_rec in;
} recovery;

static void on_recovered(void *ud, const ews_response *r, const cb_err *err)
{
    recovery *rv = ud;
    sync_ctx *s = rv->s;
    if (!r || (r->nmsgs && !r->msgs[0].ok)) {
        cb_err e;
        if (!r) e = *err;
        else cb_errf(&e, CB_EREMOTE, "recovery FindItem: %s", r->msgs[0].code);
        fail_for(s, rv->in.mailbox, &e);   /* a held person's intent waits */
    } else {
        cb_err e = {0};
        if (adopt(s, &rv->in, found_tag(r, rv->in.tag), 0, &e) != CB_OK) fail_request(s, &e);
    }
    free(rv);
    if (--s->outstanding == 0) {
        if (s->failed) end_pass(s, s->err.code ? s->err.code : CB_EIO);
        else read_and_write(s);
    }
}

typedef struct intent_list {
    intent_rec *v;
    size_t n;
} intent_list;

static int collect_intent(void *ud, const intent_rec *in)
{
    intent_list *l = ud;
    intent_rec *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v) return CB_ENOMEM;
    l->v = v;
    v[l->n++] = *in;
    return 0;
}

/* Creates are looked up by tag; updates and deletes are simply dropped:
 * both are idempotent and will be planned again from the same change. */
static int recover(sync_ctx *s, cb_err *err)
{
    store_txn *t;
    intent_list l = {0};
    int rc = store_begin(s->d.st, 1, &t, err);
    if (rc) return rc;
    rc = store_intent_each(t, collect_intent, &l, err);
    for (size_t i = 0; i < l.n && rc == CB_OK; i++)
        if (l.v[i].op != OP_CREATE) rc = store_intent_del(t, l.v[i].tag, err);
    rc = rc == CB_OK ? store_commit(t, err) : (store_abort(t), rc);
    for (size_t i = 0; i < l.n && rc == CB_OK; i++) {
        if (l.v[i].op != OP_CREATE) continue;
        recovery *rv = calloc(1, sizeof *rv);
        sbuf x;
        sbuf_init(&x);
        ews_ops_find_by_tag(&x, l.v[i].tag);
        if (!rv || sbuf_failed(&x)) rc = cb_errf(err, CB_ENOMEM, "out of memory");
        else {
            rv->s = s;
            rv->in = l.v[i];
            rc = ews_client_submit(s->d.ews, rv->in.mailbox, x.s, on_recovered, rv, err);
        }
        if (rc == CB_OK) s->outstanding++;
        else free(rv);
        sbuf_free(&x);
    }
    free(l.v);
    return rc;
}

int sync_pass(sync_ctx *s, sync_done_fn done, void *ud, cb_err *err)
{
    if (s->running) return cb_errf(err, CB_EBUSY, "a pass is already running");
    s->running = 1;
    s->done = done;
    s->ud = ud;
    s->failed = 0;
    free_held(s);
    s->outstanding = 0;
    s->have_next = 0;
    memset(&s->err, 0, sizeof s->err);
    s->d.rep->people = (long)s->nowners;
    int rc = recover(s, err);
    if (rc != CB_OK) {
        s->running = 0;
        return rc;
    }
    if (!s->outstanding) read_and_write(s);
    return CB_OK;
}
