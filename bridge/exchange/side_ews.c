#include "side_ews.h"

#include <stdlib.h>
#include <string.h>

#include "../../mapping/ews_in.h"
#include "../../mapping/sbuf.h"
#include "ews_client.h"
#include "ews_ops.h"
#include "ews_stream.h"

#define SYNC_MAX_CHANGES 512

typedef struct side_ews {
    side base;
    struct event_base *evb;
    const config *cfg;
    const people *people;
    const tzmap *tz;
    ews_client *c;
    ews_stream *stream;
    side_signal_fn signal;
    void *signal_ud;
} side_ews;

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

/* ---- read: SyncFolderItems ---------------------------------------------- */

typedef struct sync_req {
    side_ews *se;
    const person *p;
    char *cursor;           /* NULL: a full read */
    int restarted;
    side_read_fn done;
    void *ud;
} sync_req;

static int sync_send(sync_req *q, cb_err *err);

static void sync_end(sync_req *q, side_page *pg, const cb_err *err)
{
    side_read_fn done = q->done;
    void *ud = q->ud;
    free(q->cursor);
    free(q);
    done(ud, pg, err);
}

static side_page *page_of(sync_req *q, const ews_response *r)
{
    side_page *pg = calloc(1, sizeof *pg);
    if (!pg) return NULL;
    pg->v = calloc(r->nchanges + 1, sizeof *pg->v);
    pg->cursor = strdup(r->sync_state);
    if (!pg->v || !pg->cursor) goto fail;
    for (size_t i = 0; i < r->nchanges; i++) {
        side_change *c = &pg->v[pg->n++];
        c->p = q->p;
        c->deleted = r->changes[i].kind == 'D';
        if (!(c->id = strdup(r->changes[i].item_id)) ||
            !(c->version = strdup(r->changes[i].change_key)))
            goto fail;
    }
    /* A page that moves nothing is the end, whatever the server says. */
    int moved = r->nchanges || !q->cursor || strcmp(q->cursor, r->sync_state);
    pg->last = r->sync_last || !moved;
    pg->full = !q->cursor;
    if (q->restarted && !(pg->note = strdup("Exchange refused the stored sync state; the "
                                            "calendar was read again in full and matched "
                                            "against the links")))
        goto fail;
    return pg;
fail:
    side_page_free(pg);
    return NULL;
}

static void on_sync(void *ud, const ews_response *r, const cb_err *err)
{
    sync_req *q = ud;
    cb_err e = {0};
    if (!r) {
        sync_end(q, NULL, err);
        return;
    }
    const ews_msg *m = r->nmsgs ? &r->msgs[0] : NULL;
    if (m && !m->ok && !strcmp(m->code, "ErrorInvalidSyncStateData") && q->cursor) {
        free(q->cursor);
        q->cursor = NULL;
        q->restarted = 1;
        if (sync_send(q, &e) != CB_OK) sync_end(q, NULL, &e);
        return;
    }
    if (!m || !m->ok || !r->sync_state) {
        cb_errf(&e, CB_EREMOTE, "SyncFolderItems for %s: %s %s", q->p->smtp,
                m ? m->code : "no answer", m ? m->text : "");
        sync_end(q, NULL, &e);
        return;
    }
    side_page *pg = page_of(q, r);
    if (!pg) cb_errf(&e, CB_ENOMEM, "out of memory");
    sync_end(q, pg, pg ? NULL : &e);
}

static int sync_send(sync_req *q, cb_err *err)
{
    sbuf x;
    sbuf_init(&x);
    ews_ops_sync_folder(&x, q->cursor, SYNC_MAX_CHANGES);
    int rc = sbuf_failed(&x) ? cb_errf(err, CB_ENOMEM, "out of memory")
             : ews_client_submit(q->se->c, q->p->smtp, x.s, on_sync, q, err);
    sbuf_free(&x);
    return rc;
}

static int ews_read(side *s, const person *const *pp, size_t n, const char *cursor,
                    side_read_fn done, void *ud, cb_err *err)
{
    if (n != 1) return cb_errf(err, CB_EINVAL, "EWS reads one person's calendar at a time");
    sync_req *q = calloc(1, sizeof *q);
    if (!q || (cursor && !(q->cursor = strdup(cursor)))) {
        free(q);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    q->se = (side_ews *)s;
    q->p = pp[0];
    q->done = done;
    q->ud = ud;
    int rc = sync_send(q, err);
    if (rc) {
        free(q->cursor);
        free(q);
    }
    return rc;
}

/* ---- fetch: GetItem ------------------------------------------------------- */

typedef struct fetch_req {
    side_ews *se;
    const person *p;
    char **ids;
    size_t n, next;         /* one by one: the next id to fetch */
    int single;
    side_item *items;
    side_fetch_fn done;
    void *ud;
} fetch_req;

static int fetch_send(fetch_req *q, size_t from, size_t n, cb_err *err);

static void fetch_free(fetch_req *q)
{
    for (size_t i = 0; i < q->n; i++) free(q->ids[i]);
    free(q->ids);
    free(q);
}

static void fetch_end(fetch_req *q, const cb_err *err)
{
    side_fetch_fn done = q->done;
    void *ud = q->ud;
    side_item *v = err ? NULL : q->items;
    size_t n = q->n;
    if (err) side_items_free(q->items, q->n);
    fetch_free(q);
    done(ud, v, n, err);
}

static void item_set(side_item *it, int code, const char *fmt, const char *a, const char *b)
{
    it->code = code;
    free(it->why);
    size_t len = strlen(fmt) + strlen(a) + strlen(b) + 1;
    if ((it->why = malloc(len))) snprintf(it->why, len, fmt, a, b);
}

/* The answer for ids [from, from + n): events matched by ItemId, and each
 * message that is not one. */
static void take_items(fetch_req *q, size_t from, size_t n, const ews_msg *msgs, size_t nmsgs,
                       ews_event **ev, size_t nev, const cb_err *perr)
{
    for (size_t i = 0; i < n; i++) {
        side_item *it = &q->items[from + i];
        const ews_msg *m = i < nmsgs ? &msgs[i] : NULL;
        for (size_t j = 0; j < nev && !it->ev && !it->skip; j++)
            if (ev[j] && ev[j]->item_id && !strcmp(ev[j]->item_id, it->id) && ev[j]->companion) {
                it->skip = 1;   /* a travel-time appointment: follows its event */
                it->code = CB_OK;
            } else if (ev[j] && ev[j]->item_id && !strcmp(ev[j]->item_id, it->id)) {
                it->ev = ev[j];
                ev[j] = NULL;
                it->code = CB_OK;
                free(it->version);
                it->version = dup_or_empty(it->ev->change_key);
            }
        if (it->ev || it->skip) continue;
        if (m && !m->ok && !strcmp(m->code, "ErrorItemNotFound"))
            item_set(it, CB_ENOTFOUND, "%s%s", "", "");
        else if (m && !m->ok)
            item_set(it, CB_EREJECTED, "Exchange item: %s: %s", m->code, m->text);
        else
            item_set(it, CB_EPARSE, "Exchange item: %s%s", perr ? perr->msg : "not readable", "");
    }
}

typedef struct fetch_call {
    fetch_req *q;
    size_t from, n;
    /* While the exceptions of the masters in the answer are read: */
    char *first;            /* that answer */
    size_t first_len;
    ews_msg *msgs;          /* and its messages, one per id asked */
    size_t nmsgs;
} fetch_call;

static void fetch_call_free(fetch_call *fc)
{
    free(fc->first);
    free(fc->msgs);
    free(fc);
}

/* The answers (the masters', and their exceptions' when read) become the
 * items [from, from + n); one bad item spoils a batch's parse, so a batch
 * that does not parse is asked again one by one. */
static void take_answers(fetch_call *fc, const ews_msg *msgs, size_t nmsgs,
                         const char *const *docs, const size_t *lens, size_t ndocs)
{
    fetch_req *q = fc->q;
    size_t from = fc->from, n = fc->n;
    ews_event **ev = NULL;
    size_t nev = 0;
    cb_err pe = {0};
    int rc = ews_in_parse_many(docs, lens, ndocs, q->se->tz, &ev, &nev, &pe);
    if (rc == CB_EPARSE && n > 1 && !strstr(pe.msg, "no calendar item")) {
        q->single = 1;
        q->next = from;
    } else {
        take_items(q, from, n, msgs, nmsgs, ev, nev, rc == CB_OK ? NULL : &pe);
        if (q->single) q->next = from + n;
    }
    ews_in_events_free(ev, nev);
    fetch_call_free(fc);
    cb_err e = {0};
    if (!q->single || q->next >= q->n) fetch_end(q, NULL);
    else if (fetch_send(q, q->next, 1, &e) != CB_OK) fetch_end(q, &e);
}

static void on_exceptions(void *ud, const ews_response *r, const cb_err *err)
{
    (void)err;
    fetch_call *fc = ud;
    /* Without their answer the exceptions keep the times the masters list. */
    const char *docs[2] = {fc->first, r ? r->raw : NULL};
    size_t lens[2] = {fc->first_len, r ? r->raw_len : 0};
    take_answers(fc, fc->msgs, fc->nmsgs, docs, lens, r ? 2 : 1);
}

/* Exchange answers a master with its exceptions' times only: their
 * subjects, locations and the rest come from a GetItem of their own
 * ItemIds (one request for the batch). 1 when that request was sent. */
static int read_exceptions(fetch_call *fc, const ews_response *r)
{
    char **ids = NULL;
    size_t nids = 0;
    if (!strstr(r->raw, "ModifiedOccurrences") ||
        ews_in_modified_ids(r->raw, r->raw_len, &ids, &nids, NULL) != CB_OK || !nids)
        return 0;
    sbuf x;
    sbuf_init(&x);
    ews_ops_get_items(&x, (const char *const *)ids, nids);
    for (size_t i = 0; i < nids; i++) free(ids[i]);
    free(ids);
    fc->first = malloc(r->raw_len + 1);
    fc->msgs = calloc(r->nmsgs + 1, sizeof *fc->msgs);
    int sent = fc->first && fc->msgs && !sbuf_failed(&x);
    if (sent) {
        memcpy(fc->first, r->raw, r->raw_len);
        fc->first[r->raw_len] = '\0';
        fc->first_len = r->raw_len;
        memcpy(fc->msgs, r->msgs, r->nmsgs * sizeof *fc->msgs);
        fc->nmsgs = r->nmsgs;
        sent = ews_client_submit(fc->q->se->c, fc->q->p->smtp, x.s, on_exceptions, fc, NULL) == CB_OK;
    }
    if (!sent) {
        free(fc->first), fc->first = NULL;
        free(fc->msgs), fc->msgs = NULL;
    }
    sbuf_free(&x);
    return sent;
}

static void on_items(void *ud, const ews_response *r, const cb_err *err)
{
    fetch_call *fc = ud;
    if (!r) {
        fetch_req *q = fc->q;
        fetch_call_free(fc);
        fetch_end(q, err);
        return;
    }
    if (read_exceptions(fc, r)) return;
    const char *doc = r->raw;
    take_answers(fc, r->msgs, r->nmsgs, &doc, &r->raw_len, 1);
}

static int fetch_send(fetch_req *q, size_t from, size_t n, cb_err *err)
{
    fetch_call *fc = calloc(1, sizeof *fc);
    sbuf x;
    sbuf_init(&x);
    ews_ops_get_items(&x, (const char *const *)q->ids + from, n);
    int rc = !fc || sbuf_failed(&x) ? cb_errf(err, CB_ENOMEM, "out of memory") : CB_OK;
    if (rc == CB_OK) {
        *fc = (fetch_call){.q = q, .from = from, .n = n};
        rc = ews_client_submit(q->se->c, q->p->smtp, x.s, on_items, fc, err);
    }
    if (rc) free(fc);
    sbuf_free(&x);
    return rc;
}

static int ews_fetch(side *s, const person *p, const char *const *ids, size_t n,
                     side_fetch_fn done, void *ud, cb_err *err)
{
    fetch_req *q = calloc(1, sizeof *q);
    int ok = q && (q->ids = calloc(n + 1, sizeof *q->ids)) &&
             (q->items = calloc(n + 1, sizeof *q->items));
    for (size_t i = 0; ok && i < n; i++, q->n++)
        ok = (q->ids[i] = strdup(ids[i])) && (q->items[i].id = strdup(ids[i]));
    if (!ok) {
        if (q) side_items_free(q->items, q->n), fetch_free(q);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    q->se = (side_ews *)s;
    q->p = p;
    q->done = done;
    q->ud = ud;
    int rc = fetch_send(q, 0, n, err);
    if (rc) {
        side_items_free(q->items, q->n);
        fetch_free(q);
    }
    return rc;
}

/* ---- apply: CreateItem, UpdateItem, DeleteItem ----------------------------- */

typedef struct apply_req {
    side_ews *se;
    const person *p;
    side_write *w;
    size_t n;
    int outstanding;        /* requests in flight for these writes */
    side_apply_fn done;
    void *ud;
    int companions;         /* the travel-time phase has started */
    ews_event **have;       /* update: each series as Exchange holds it (or NULL) */
    int *keep;              /* ... and whether its pattern stays as it is */
} apply_req;

static int companions_start(apply_req *q);

typedef struct write_call {
    apply_req *q;
    size_t from, n;
} write_call;

static void apply_step(apply_req *q)
{
    if (--q->outstanding) return;
    if (!q->companions++ && companions_start(q)) return;
    side_apply_fn done = q->done;
    void *ud = q->ud;
    side_write *w = q->w;
    size_t n = q->n;
    for (size_t i = 0; q->have && i < n; i++) ews_event_free(q->have[i]);
    free(q->have);
    free(q->keep);
    free(q);
    done(ud, w, n, NULL);
}

/* Per-item answers Exchange gives when it did not apply the item now but
 * might later: throttling and server trouble inside a 200. */
static int transient(const char *code)
{
    static const char *const CODES[] = {"ErrorServerBusy", "ErrorInternalServerError",
                                        "ErrorTooManyObjectsOpened", "ErrorTimeoutExpired",
                                        "ErrorBatchProcessingStopped",
                                        "ErrorMailboxStoreUnavailable", "ErrorConnectionFailed"};
    for (size_t i = 0; i < sizeof CODES / sizeof *CODES; i++)
        if (!strcmp(code, CODES[i])) return 1;
    return 0;
}

static void write_result(side_write *w, int code, const char *msg)
{
    w->code = code;
    snprintf(w->msg, sizeof w->msg, "%.500s", msg);
}

static int write_send(apply_req *q, size_t from, size_t n, cb_err *err);

/* ---- a series' occurrences, once its master exists ---- */

typedef struct occ_req {
    apply_req *q;
    side_write *w;
    int pending, failed;
} occ_req;

/* The DeleteItem and the UpdateItem that apply it's occurrence changes to
 * the series master_id, leaving out deletions have already holds (NULL:
 * none): x[0] and x[1], each left empty when there is nothing of its kind.
 * -1 when out of memory. */
static int occurrence_requests(const ews_item *it, const ews_item *have, const char *master_id,
                               sbuf x[2])
{
    static const ews_write OPS[2] = {EWS_WRITE_DELETE, EWS_WRITE_UPDATE};
    sbuf part[2];
    sbuf_init(&part[0]);
    sbuf_init(&part[1]);
    ews_item_write_occurrence_changes(it, have, master_id, &part[0], &part[1]);
    int rc = sbuf_failed(&part[0]) || sbuf_failed(&part[1]) ? -1 : 0;
    for (int i = 0; i < 2; i++) {
        sbuf_init(&x[i]);
        if (!part[i].len) continue;
        ews_ops_open(&x[i], OPS[i]);
        sbuf_cat(&x[i], part[i].s);
        ews_ops_close(&x[i], OPS[i]);
        if (sbuf_failed(&x[i])) rc = -1;
    }
    sbuf_free(&part[0]);
    sbuf_free(&part[1]);
    return rc;
}

/* The master's ChangeKey as it is after its occurrence changes (DeleteItem
 * answers carry none): the version the link records. */
static void on_master_read(void *ud, const ews_response *r, const cb_err *err)
{
    occ_req *o = ud;
    (void)err;
    if (r && r->nmsgs && r->msgs[0].ok)
        snprintf(o->w->version, sizeof o->w->version, "%s", r->msgs[0].change_key);
    else
        o->w->incomplete = 1;
    apply_req *q = o->q;
    free(o);
    apply_step(q);
}

static void on_occurrences(void *ud, const ews_response *r, const cb_err *err)
{
    occ_req *o = ud;
    for (size_t i = 0; r && i < r->nmsgs; i++) {
        const ews_msg *m = &r->msgs[i];
        /* Deleted already: what was wanted. */
        if (m->ok || !strcmp(m->code, "ErrorCalendarOccurrenceIsDeletedFromRecurrence")) continue;
        snprintf(o->w->msg, sizeof o->w->msg, "occurrence change refused: %s: %s", m->code,
                 m->text);
        /* Refused for what it asks (a move past a neighbour, an occurrence
         * the pattern does not have): sending it again would not help; it
         * is reported with the event. Anything else: written again. */
        if (strcmp(m->code, "ErrorOccurrenceCrossingBoundary") &&
            strcmp(m->code, "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange"))
            o->failed = 1;
    }
    if (!r && err) {
        o->failed = 1;
        snprintf(o->w->msg, sizeof o->w->msg, "occurrence change not applied: %.400s", err->msg);
    }
    if (--o->pending) return;
    apply_req *q = o->q;
    sbuf x;
    sbuf_init(&x);
    ews_ops_get_change_key(&x, o->w->new_id);
    if (o->failed || sbuf_failed(&x) ||
        ews_client_submit(q->se->c, q->p->smtp, x.s, on_master_read, o, NULL) != CB_OK) {
        o->w->incomplete = 1;   /* written whole again on its next pass */
        free(o);
        apply_step(q);
    }
    sbuf_free(&x);
}

static void occurrences(apply_req *q, side_write *w)
{
    const ews_item *it = w->ev->items[0];
    size_t k = (size_t)(w - q->w);
    const ews_item *have = q->keep && q->keep[k] && q->have[k] ? q->have[k]->items[0] : NULL;
    sbuf x[2];
    int rc = occurrence_requests(it, have, w->new_id, x);
    occ_req *o = rc == 0 && (x[0].len || x[1].len) ? calloc(1, sizeof *o) : NULL;
    if (rc || ((x[0].len || x[1].len) && !o)) w->incomplete = 1;
    if (o) {
        *o = (occ_req){q, w, 1, 0};
        q->outstanding++;
        for (int i = 0; i < 2; i++) {
            if (!x[i].len) continue;   /* nothing of this kind differs */
            if (ews_client_submit(q->se->c, q->p->smtp, x[i].s, on_occurrences, o, NULL) == CB_OK)
                o->pending++;
            else
                o->failed = 1;
        }
        on_occurrences(o, &(ews_response){0}, NULL);   /* drops the hold */
    }
    sbuf_free(&x[0]);
    sbuf_free(&x[1]);
}

/* ---- travel time: the main item's companions ---- */

/* Apple's travel time is carried as OOF appointments before and after the
 * event (ROLE_TRAVEL, ROLE_RETURN), stamped with the event's source key and
 * a suffix. They follow the main item once it is written, and are found
 * again by that stamp (FindItem) rather than linked: one a crash left
 * behind is updated, not doubled, and one the event no longer has is
 * deleted. A companion not written marks its event incomplete: it is
 * written whole again on its next pass. */

static const char *const SUFFIXES[2] = {"#travel", "#return"};

typedef struct comp_call {
    apply_req *q;
    ews_write op;
    size_t *owner;          /* per item sent: the write (index in q->w) */
    const ews_item **item;  /* and the companion written (create, update) */
    size_t n;
    int one;                /* every answer is owner[0]'s (its occurrences) */
} comp_call;

static void companion_occurrences(apply_req *q, size_t owner, const ews_item *it, const char *id);

static const ews_item *companion_of(const side_write *w, int k)
{
    if (w->op == SIDE_DELETE || !w->ev) return NULL;
    for (size_t i = 0; i < w->ev->n; i++)
        if (w->ev->items[i]->role == (k ? ROLE_RETURN : ROLE_TRAVEL)) return w->ev->items[i];
    return NULL;
}

/* Whether a write may have companions to write or remove: a create only
 * when its event has travel time (nothing can be there before it). */
static int wants_companions(const side_write *w)
{
    if (w->code != CB_OK || !w->key || !*w->key) return 0;
    return w->op != SIDE_CREATE || companion_of(w, 0) || companion_of(w, 1);
}

static void on_companions_written(void *ud, const ews_response *r, const cb_err *err)
{
    comp_call *cc = ud;
    apply_req *q = cc->q;
    size_t n = cc->one ? (r && r->nmsgs ? r->nmsgs : 1) : cc->n;
    for (size_t i = 0; i < n; i++) {
        const ews_msg *m = r && i < r->nmsgs ? &r->msgs[i] : NULL;
        size_t owner = cc->owner[cc->one ? 0 : i];
        /* Gone already is what a delete wanted. */
        int gone = m && !m->ok && (!strcmp(m->code, "ErrorItemNotFound") ||
                                   !strcmp(m->code, "ErrorCalendarOccurrenceIsDeletedFromRecurrence"));
        if (m && m->ok && !cc->one && cc->op != EWS_WRITE_DELETE && cc->item[i]->nocc)
            companion_occurrences(q, owner, cc->item[i], m->item_id[0] ? m->item_id : NULL);
        if (m && (m->ok || gone)) continue;
        side_write *w = &q->w[owner];
        w->incomplete = 1;
        snprintf(w->msg, sizeof w->msg, "travel time not written: %.400s",
                 m ? m->code : err ? err->msg : "no answer");
    }
    free(cc->owner);
    free(cc->item);
    free(cc);
    apply_step(q);
}

/* Sends the request x (op's); takes owner and item. */
static void companions_send(apply_req *q, ews_write op, const sbuf *x, size_t *owner,
                            const ews_item **item, size_t n, int one)
{
    comp_call *cc = malloc(sizeof *cc);
    if (cc) *cc = (comp_call){q, op, owner, item, n, one};
    q->outstanding++;
    if (cc && !sbuf_failed(x) &&
        ews_client_submit(q->se->c, q->p->smtp, x->s, on_companions_written, cc, NULL) == CB_OK)
        return;
    q->outstanding--;
    for (size_t i = 0; i < (one ? 1 : n); i++) q->w[owner[i]].incomplete = 1;
    free(owner);
    free(item);
    free(cc);
}

/* A travel series' deleted and changed occurrences, once it exists (setting
 * its Recurrence dropped any it had). The update's answer names no item:
 * id is then the one updated, found again in the companion's stamp. */
static void companion_occurrences(apply_req *q, size_t owner, const ews_item *it, const char *id)
{
    static const ews_write OPS[2] = {EWS_WRITE_DELETE, EWS_WRITE_UPDATE};
    if (!id) return;
    sbuf x[2];
    if (occurrence_requests(it, NULL, id, x)) q->w[owner].incomplete = 1;
    for (int i = 0; i < 2; i++) {
        size_t *own = x[i].len ? malloc(sizeof *own) : NULL;
        if (own) {
            *own = owner;
            companions_send(q, OPS[i], &x[i], own, NULL, 1, 1);
        } else if (x[i].len) {
            q->w[owner].incomplete = 1;
        }
        sbuf_free(&x[i]);
    }
}

typedef struct comp_batch {
    sbuf x;
    size_t *owner, n;
    const ews_item **item;
    ews_write op;
} comp_batch;

static void batch_add(comp_batch *b, size_t w, const ews_item *it)
{
    size_t *v = realloc(b->owner, (b->n + 1) * sizeof *v);
    if (v) b->owner = v;
    const ews_item **t = v ? realloc(b->item, (b->n + 1) * sizeof *t) : NULL;
    if (t) b->item = t;
    if (!v || !t) return;
    v[b->n] = w;
    t[b->n++] = it;
}

/* What each write's companions should be, against what FindItem found. */
static void on_companions_found(void *ud, const ews_response *r, const cb_err *err)
{
    apply_req *q = ud;
    comp_batch b[3] = {{.op = EWS_WRITE_CREATE}, {.op = EWS_WRITE_UPDATE}, {.op = EWS_WRITE_DELETE}};
    for (int k = 0; k < 3; k++) {
        sbuf_init(&b[k].x);
        ews_ops_open(&b[k].x, b[k].op);
    }
    int ok = r && (!r->nmsgs || r->msgs[0].ok);
    for (size_t i = 0; i < q->n; i++) {
        side_write *w = &q->w[i];
        if (!wants_companions(w)) continue;
        if (!ok) {
            w->incomplete = 1;
            snprintf(w->msg, sizeof w->msg, "travel time not checked: %.400s",
                     r && r->nmsgs ? r->msgs[0].code : err ? err->msg : "no answer");
            continue;
        }
        for (int k = 0; k < 2; k++) {
            char source[1100];
            snprintf(source, sizeof source, "%s%s", w->key, SUFFIXES[k]);
            const ews_item *want = companion_of(w, k);
            int kept = 0;
            for (size_t f = 0; f < r->nfound; f++) {
                if (strcmp(r->found[f].source, source)) continue;
                if (want && !kept++) {
                    ews_item_write_update(want, r->found[f].item_id, NULL, &b[1].x);
                    batch_add(&b[1], i, want);
                } else {   /* not wanted any more, or a second one */
                    ews_ops_item_id(&b[2].x, r->found[f].item_id);
                    batch_add(&b[2], i, NULL);
                }
            }
            if (want && !kept) {
                ews_item_write_create(want, source, NULL, &b[0].x);
                batch_add(&b[0], i, want);
            }
        }
    }
    for (int k = 0; k < 3; k++) {
        ews_ops_close(&b[k].x, b[k].op);
        if (b[k].n) companions_send(q, b[k].op, &b[k].x, b[k].owner, b[k].item, b[k].n, 0);
        else free(b[k].owner), free(b[k].item);
        sbuf_free(&b[k].x);
    }
    apply_step(q);
}

/* Starts the companions' phase; 0 when there is nothing to do. */
static int companions_start(apply_req *q)
{
    sbuf x;
    sbuf_init(&x);
    const char **src = calloc(2 * q->n + 1, sizeof *src);
    char (*buf)[1100] = calloc(2 * q->n + 1, sizeof *buf);
    size_t n = 0;
    for (size_t i = 0; src && buf && i < q->n; i++) {
        if (!wants_companions(&q->w[i])) continue;
        for (int k = 0; k < 2; k++) {
            snprintf(buf[n], sizeof buf[n], "%s%s", q->w[i].key, SUFFIXES[k]);
            src[n] = buf[n];
            n++;
        }
    }
    int started = 0;
    if (n) {
        ews_ops_find_by_sources(&x, src, n);
        q->outstanding = 1;   /* the FindItem's */
        started = !sbuf_failed(&x) &&
                  ews_client_submit(q->se->c, q->p->smtp, x.s, on_companions_found, q, NULL) == CB_OK;
        if (!started) q->outstanding = 0;
        for (size_t i = 0; !started && i < q->n; i++)
            if (wants_companions(&q->w[i])) q->w[i].incomplete = 1;
    }
    free(src);
    free(buf);
    sbuf_free(&x);
    return started;
}

/* ---- the write requests ---- */

static void msg_result(apply_req *q, side_write *w, const ews_msg *m)
{
    if (m->ok) {
        w->code = CB_OK;
        if (w->op == SIDE_CREATE) snprintf(w->new_id, sizeof w->new_id, "%s", m->item_id);
        else snprintf(w->new_id, sizeof w->new_id, "%s", w->id);
        snprintf(w->version, sizeof w->version, "%s", m->change_key);
        if (w->op != SIDE_DELETE && w->ev->items[0]->nocc) occurrences(q, w);
        return;
    }
    char why[sizeof m->code + sizeof m->text + 4];
    snprintf(why, sizeof why, "%s: %s", m->code, m->text);
    int code = !strcmp(m->code, "ErrorItemNotFound") ? CB_ENOTFOUND
               : transient(m->code)                  ? CB_EBUSY
                                                     : CB_EREJECTED;
    write_result(w, code, why);
}

static void on_written(void *ud, const ews_response *r, const cb_err *err)
{
    write_call *wc = ud;
    apply_req *q = wc->q;
    size_t from = wc->from, n = wc->n;
    free(wc);
    side_write *w = q->w + from;
    if (!r && err->code == CB_EREJECTED && n > 1) {
        /* Refused for what it carries: each item alone, so that only the
         * guilty one fails. */
        for (size_t i = 0; i < n; i++) {
            cb_err e = {0};
            q->outstanding++;
            if (write_send(q, from + i, 1, &e) != CB_OK) {
                q->outstanding--;
                write_result(&w[i], e.code ? e.code : CB_ENOMEM, e.msg);
            }
        }
    } else if (!r) {
        char why[600];
        snprintf(why, sizeof why, "%s%s", err->code == CB_EREJECTED ? "refused by Exchange: " : "",
                 err->msg);
        /* A CreateItem is never re-sent by the client: its answer, not
         * necessarily its effect, was lost. */
        int code = err->code == CB_EIO && w[0].op == SIDE_CREATE ? CB_ELOST : err->code;
        for (size_t i = 0; i < n; i++) write_result(&w[i], code ? code : CB_EIO, why);
    } else {
        int busy = 0;
        for (size_t i = 0; i < n; i++) {
            if (i < r->nmsgs) msg_result(q, &w[i], &r->msgs[i]);
            else write_result(&w[i], CB_EREMOTE, "EWS answered fewer items than were sent");
            busy |= w[i].code == CB_EBUSY;
        }
        /* Items refused "busy" are sent again by the engine: after the
         * back-off Exchange asked for (BackOffMilliseconds), or a second. */
        if (busy) ews_client_pause(q->se->c, q->p->smtp, r->backoff_ms > 0 ? r->backoff_ms : 1000);
    }
    apply_step(q);
}

static void write_xml(const side_write *w, size_t n, const int *keep, sbuf *x)
{
    ews_write op = w[0].op == SIDE_CREATE ? EWS_WRITE_CREATE
                   : w[0].op == SIDE_UPDATE ? EWS_WRITE_UPDATE : EWS_WRITE_DELETE;
    ews_ops_open(x, op);
    for (size_t i = 0; i < n; i++) {
        if (op == EWS_WRITE_DELETE) ews_ops_item_id(x, w[i].id);
        else if (op == EWS_WRITE_UPDATE && keep && keep[i])
            ews_item_write_update_keeping_pattern(w[i].ev->items[0], w[i].id, x);
        else if (op == EWS_WRITE_UPDATE) ews_item_write_update(w[i].ev->items[0], w[i].id, NULL, x);
        else ews_item_write_create(w[i].ev->items[0], w[i].key, w[i].tag, x);
    }
    ews_ops_close(x, op);
}

static int write_send(apply_req *q, size_t from, size_t n, cb_err *err)
{
    write_call *wc = malloc(sizeof *wc);
    sbuf x;
    sbuf_init(&x);
    write_xml(q->w + from, n, q->keep ? q->keep + from : NULL, &x);
    int rc = !wc || sbuf_failed(&x) ? cb_errf(err, CB_ENOMEM, "out of memory") : CB_OK;
    if (rc == CB_OK) {
        *wc = (write_call){q, from, n};
        rc = ews_client_submit(q->se->c, q->p->smtp, x.s, on_written, wc, err);
    }
    if (rc) free(wc);
    sbuf_free(&x);
    return rc;
}

/* ---- a series updated: what Exchange holds first ---- */

/* A series' update sends only what differs from what Exchange holds
 * (ews-production-gaps.md 2.6): its pattern (Recurrence, Start, End) is set
 * again only when it changed, because setting it drops every exception;
 * an occurrence deleted already is not deleted again. An exception
 * Exchange has that Apple no longer wants (a deleted occurrence restored, a
 * changed one reset) cannot be undone alone: the pattern is then set
 * again and the wanted exceptions re-applied. */

static int keeps_pattern(const side_ews *se, const ews_item *want, const ews_item *have)
{
    tzdef_cache z = {0};
    int keep = have && want->has_recurrence && ews_item_same_pattern(want, have, se->tz, &z);
    tzdef_cache_free(&z);
    for (size_t i = 0; keep && i < have->nocc; i++) {
        const ews_occurrence *w = ews_item_occurrence(want, have->occ[i].index);
        keep = w && !w->item == !have->occ[i].item;   /* deleted stays deleted, changed changed */
    }
    return keep;
}

static int is_series_update(const side_write *w)
{
    return w->op == SIDE_UPDATE && w->ev && w->ev->n && w->ev->items[0]->has_recurrence;
}

static void on_series_read(void *ud, const ews_response *r, const cb_err *err)
{
    apply_req *q = ud;
    ews_event **ev = NULL;
    size_t nev = 0;
    (void)err;
    /* Unreadable: every pattern is set again, as before (safe, not minimal). */
    if (r && ews_in_parse(r->raw, r->raw_len, q->se->tz, &ev, &nev, NULL) == CB_OK)
        for (size_t i = 0; i < q->n; i++)
            for (size_t j = 0; is_series_update(&q->w[i]) && j < nev && !q->have[i]; j++)
                if (ev[j] && ev[j]->item_id && !strcmp(ev[j]->item_id, q->w[i].id) && ev[j]->n) {
                    q->have[i] = ev[j];
                    ev[j] = NULL;
                    q->keep[i] = keeps_pattern(q->se, q->w[i].ev->items[0], q->have[i]->items[0]);
                }
    ews_in_events_free(ev, nev);
    cb_err e = {0};
    if (write_send(q, 0, q->n, &e) != CB_OK) {
        for (size_t i = 0; i < q->n; i++) write_result(&q->w[i], e.code ? e.code : CB_EIO, e.msg);
        apply_step(q);
    }
}

/* CB_ENOTFOUND when no write is a series update (nothing to read). */
static int series_read(apply_req *q, cb_err *err)
{
    size_t k = 0;
    const char **ids = calloc(q->n + 1, sizeof *ids);
    for (size_t i = 0; ids && i < q->n; i++)
        if (is_series_update(&q->w[i])) ids[k++] = q->w[i].id;
    if (ids && !k) {
        free(ids);
        return CB_ENOTFOUND;
    }
    q->have = calloc(q->n, sizeof *q->have);
    q->keep = calloc(q->n, sizeof *q->keep);
    sbuf x;
    sbuf_init(&x);
    if (ids) ews_ops_get_items(&x, ids, k);
    int rc = !ids || !q->have || !q->keep || sbuf_failed(&x)
                 ? cb_errf(err, CB_ENOMEM, "out of memory")
                 : ews_client_submit(q->se->c, q->p->smtp, x.s, on_series_read, q, err);
    free(ids);
    sbuf_free(&x);
    if (rc) {
        free(q->have);
        free(q->keep);
        q->have = NULL;
        q->keep = NULL;
    }
    return rc;
}

static int ews_apply(side *s, const person *p, side_write *w, size_t n, side_apply_fn done,
                     void *ud, cb_err *err)
{
    for (size_t i = 1; i < n; i++)
        if (w[i].op != w[0].op) return cb_errf(err, CB_EINVAL, "one operation per batch");
    apply_req *q = calloc(1, sizeof *q);
    if (!q) return cb_errf(err, CB_ENOMEM, "out of memory");
    *q = (apply_req){(side_ews *)s, p, w, n, 1, done, ud, 0, NULL, NULL};
    int rc = series_read(q, err);
    if (rc == CB_ENOTFOUND) rc = write_send(q, 0, n, err);
    if (rc) free(q);
    return rc;
}

/* ---- find_tag: FindItem ---------------------------------------------------- */

typedef struct find_req {
    char tag[64];
    side_found_fn done;
    void *ud;
} find_req;

static void on_found(void *ud, const ews_response *r, const cb_err *err)
{
    find_req *q = ud;
    side_found_fn done = q->done;
    void *cud = q->ud;
    cb_err e = {0};
    const ews_found *f = NULL;
    if (r && r->nmsgs && !r->msgs[0].ok) cb_errf(&e, CB_EREMOTE, "FindItem by tag failed: %s",
                                                 r->msgs[0].code);
    for (size_t i = 0; r && !e.code && i < r->nfound && !f; i++)
        if (!strcmp(r->found[i].tag, q->tag)) f = &r->found[i];
    free(q);
    if (!r) done(cud, 0, NULL, NULL, err);
    else if (e.code) done(cud, 0, NULL, NULL, &e);
    else done(cud, f != NULL, f ? f->item_id : NULL, f ? f->change_key : NULL, NULL);
}

static int ews_find_tag(side *s, const person *p, const char *tag, side_found_fn done, void *ud,
                        cb_err *err)
{
    side_ews *se = (side_ews *)s;
    find_req *q = calloc(1, sizeof *q);
    sbuf x;
    sbuf_init(&x);
    ews_ops_find_by_tag(&x, tag);
    int rc = !q || sbuf_failed(&x) ? cb_errf(err, CB_ENOMEM, "out of memory") : CB_OK;
    if (rc == CB_OK) {
        snprintf(q->tag, sizeof q->tag, "%s", tag);
        q->done = done;
        q->ud = ud;
        rc = ews_client_submit(se->c, p->smtp, x.s, on_found, q, err);
    }
    if (rc) free(q);
    sbuf_free(&x);
    return rc;
}

/* ---- the rest of the contract --------------------------------------------- */

static int ews_place(side *s, const person *p, const ews_event *ev, char id[1024], cb_err *err)
{
    (void)s, (void)p, (void)ev, (void)err;
    id[0] = '\0';   /* Exchange names new items */
    return CB_OK;
}

static int ews_covers(const char *have, const char *seen)
{
    return *seen && !strcmp(have, seen);
}

static void on_stream(void *ud, const char *smtp)
{
    side_ews *se = ud;
    const person *p = people_by_smtp(se->people, smtp);
    if (p && se->signal) se->signal(se->signal_ud, p);
}

static int ews_subscribe(side *s, side_signal_fn fn, void *ud, const side_memo *memo, cb_err *err)
{
    side_ews *se = (side_ews *)s;
    se->signal = fn;
    se->signal_ud = ud;
    int rc = ews_stream_new(se->evb, se->cfg, se->people, memo, on_stream, se, &se->stream, err);
    if (rc == CB_OK) ews_stream_start(se->stream);
    return rc;
}

static void ews_unsubscribe(side *s, FILE *log)
{
    side_ews *se = (side_ews *)s;
    if (!se->stream) return;
    ews_stream_stop(se->stream);
    ews_stream_stats st = ews_stream_get_stats(se->stream);
    if (log)
        fprintf(log, "calbridge: streams: %ld groups, %ld subscribed (%ld kept from the last run, "
                     "%ld failed, %ld unsubscribed), %ld connections (%ld closed by the server, "
                     "%ld lost), %ld envelopes, %ld notifications, %ld heartbeats, %ld missed, "
                     "%ld re-subscribed\n", st.groups, st.subscribed, st.reused,
                st.subscribe_failed, st.unsubscribed, st.connections, st.closed, st.dropped,
                st.envelopes, st.notifications, st.heartbeats, st.missed, st.resubscribed);
}

static int ews_check(side *s, cb_err *err)
{
    (void)s, (void)err;
    return CB_OK;   /* what impersonation allows shows per mailbox (CB_EMAILBOX) */
}

static void ews_close(side *s)
{
    side_ews *se = (side_ews *)s;
    ews_stream_free(se->stream);
    ews_client_free(se->c);
    free(se);
}

static const side_ops EWS_OPS = {
    .name = "Exchange", .half = SIDE_EXCHANGE, .per_person = 1,
    .read = ews_read, .fetch = ews_fetch, .apply = ews_apply, .find_tag = ews_find_tag,
    .place = ews_place, .covers = ews_covers, .subscribe = ews_subscribe,
    .unsubscribe = ews_unsubscribe, .check = ews_check, .close = ews_close,
};

int side_ews_open(struct event_base *base, const config *cfg, const people *people,
                  const tzmap *tz, side **out, cb_err *err)
{
    *out = NULL;
    side_ews *se = calloc(1, sizeof *se);
    if (!se) return cb_errf(err, CB_ENOMEM, "out of memory");
    *se = (side_ews){{&EWS_OPS}, base, cfg, people, tz, NULL, NULL, NULL, NULL};
    int rc = ews_client_new(base, cfg, &se->c, err);
    if (rc) {
        free(se);
        return rc;
    }
    *out = &se->base;
    return CB_OK;
}
