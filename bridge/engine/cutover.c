#include "cutover.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../mapping/hash.h"
#include "../../mapping/occur.h"
#include "../../state/keys.h"

#define WINDOW_BACK (30LL * 86400)
#define WINDOW_AHEAD (400LL * 86400)

typedef struct expect {
    char key[STORE_KEY_MAX];
    char item_id[STORE_ID_MAX];
    char apple[17], exchange[17];   /* content prints; exchange "" until read */
} expect;

typedef struct cperson {
    const person *p;
    char step[32];          /* as stored: "", "delta", "flipped", "done" */
    expect *e;
    size_t ne;
    long apple_events, not_carried, exchange_items;
    char mismatch[600];
    int passed;
} cperson;

typedef struct cut {
    const cutover_opts *o;
    cperson *v;
    size_t n, current;
    int outstanding, rc;
    size_t stopped;
    cb_err err;
} cut;

static void compare_next(cut *c);

static void stop(cut *c, int rc, const cb_err *err)
{
    c->rc = rc;
    if (err) c->err = *err;
    event_base_loopexit(c->o->base, NULL);
}

static int set_step(cut *c, cperson *cp, const char *step, store_txn *t)
{
    char name[STORE_KEY_MAX];
    key_name(KEY_CUTOVER, cp->p->owner_uid, name);
    snprintf(cp->step, sizeof cp->step, "%s", step);
    store_txn *own = NULL;
    if (!t && store_begin(c->o->st, 1, &own, NULL) != CB_OK) return CB_EIO;
    int rc = store_put(t ? t : own, name, step, NULL);
    return own ? (rc == CB_OK ? store_commit(own, NULL) : (store_abort(own), rc)) : rc;
}

/* Subject and occurrences over the window: what a person sees, and what
 * both sides must agree on whatever stamps or formatting differ. */
static void content_print(const ews_event *ev, const tzmap *tz, char out[17])
{
    const char *subj = ev->n && ev->items[0]->subject ? ev->items[0]->subject : "";
    uint64_t h = hash_str(HASH_BASIS_STORED, subj);
    long long now = (long long)time(NULL);
    occur_list l = {0};
    tzdef_cache zones = {0};
    occur_ews(ev, tz, &zones, now - WINDOW_BACK, now + WINDOW_AHEAD, &l, NULL);
    occur_sort(&l);
    for (size_t i = 0; i < l.n; i++) {
        long long v[2] = {l.v[i].start, l.v[i].end};
        h = hash_bytes(h, v, sizeof v);
    }
    occur_free(&l);
    tzdef_cache_free(&zones);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* ---- 4. mirror, and the end ------------------------------------------- */

static void on_mirrored(void *ud, int rc, const cb_err *err)
{
    cut *c = ud;
    for (size_t i = 0; rc == CB_OK && i < c->n; i++)
        if (!strcmp(c->v[i].step, "flipped")) set_step(c, &c->v[i], "done", NULL);
    stop(c, rc, err);
}

static void mirror_flipped(cut *c)
{
    int any = 0;
    for (size_t i = 0; i < c->n; i++)
        if (!strcmp(c->v[i].step, "flipped")) {
            service_mark_dirty(c->o->sv, c->v[i].p->smtp);
            any = 1;
        }
    cb_err e = {0};
    if (!any) stop(c, CB_OK, NULL);
    else if (service_cycle(c->o->sv, 0, on_mirrored, c, &e) != CB_OK) stop(c, e.code, &e);
}

/* ---- 3. flip ---------------------------------------------------------- */

static void flip(cut *c)
{
    if (c->o->dry_run) {
        stop(c, CB_OK, NULL);
        return;
    }
    store_txn *t;
    cb_err e = {0};
    int rc = store_begin(c->o->st, 1, &t, &e);
    for (size_t i = 0; rc == CB_OK && i < c->n; i++) {
        cperson *cp = &c->v[i];
        if (!cp->passed) continue;
        char name[STORE_KEY_MAX];
        key_name(KEY_SYNCSTATE, cp->p->smtp, name);
        rc = store_del(t, name, &e);   /* read their calendar in full once */
        if (rc == CB_ENOTFOUND) rc = CB_OK;
        rc = store_authority_put(t, cp->p->owner_uid, AUTHORITY_EXCHANGE, &e);
        if (rc == CB_OK) rc = set_step(c, cp, "flipped", t);
    }
    rc = rc == CB_OK ? store_commit(t, &e) : (store_abort(t), rc);
    if (rc) stop(c, rc, &e);
    else mirror_flipped(c);
}

/* ---- 2. compare ------------------------------------------------------- */

static void verdict(cut *c, cperson *cp)
{
    FILE *f = c->o->out;
    long missing = 0, differ = 0;
    const char *first = NULL;
    for (size_t i = 0; i < cp->ne; i++) {
        expect *x = &cp->e[i];
        if (!x->exchange[0]) missing++;
        else if (strcmp(x->apple, x->exchange)) differ++;
        else continue;
        if (!first) first = x->key;
    }
    cp->passed = !missing && !differ;
    fprintf(f, "  %-28s Apple %ld events (%ld not carried), Exchange %ld linked items: %s\n",
            cp->p->smtp, cp->apple_events, cp->not_carried, cp->exchange_items,
            cp->passed ? "equal" : "MISMATCH");
    if (!cp->passed) {
        snprintf(cp->mismatch, sizeof cp->mismatch, "%ld missing in Exchange, %ld different; "
                 "first: %.300s", missing, differ, first ? first : "?");
        fprintf(f, "      stopped: %s\n", cp->mismatch);
        c->stopped++;
    }
    free(cp->e);
    cp->e = NULL;
    cp->ne = 0;
}

static void compare_done(cut *c, cperson *cp)
{
    verdict(c, cp);
    c->current++;
    compare_next(c);
}

static void on_items(void *ud, side_item *v, size_t n, const cb_err *err)
{
    cut *c = ud;
    cperson *cp = &c->v[c->current];
    for (size_t i = 0; v && i < n; i++)
        for (size_t j = 0; v[i].ev && j < cp->ne; j++)
            if (!strcmp(cp->e[j].item_id, v[i].id)) {
                content_print(v[i].ev, c->o->tz, cp->e[j].exchange);
                cp->exchange_items++;
            }
    if (!v) snprintf(cp->mismatch, sizeof cp->mismatch, "%s", err->msg);
    side_items_free(v, n);
    if (--c->outstanding == 0) compare_done(c, cp);
}

static int expect_event(cut *c, cperson *cp, store_txn *t, const side_change *ch)
{
    const ews_event *ev = ch->ev;
    if (ch->deleted || ch->skip) return CB_OK;
    cp->apple_events++;
    if (ch->code || !ev || ev->expanded || !ev->n || ev->items[0]->role != ROLE_MAIN) {
        cp->not_carried++;   /* reported by sync when it met them */
        return CB_OK;
    }
    expect *v = realloc(cp->e, (cp->ne + 1) * sizeof *v);
    if (!v) return CB_ENOMEM;
    cp->e = v;
    expect *x = &v[cp->ne++];
    memset(x, 0, sizeof *x);
    snprintf(x->key, sizeof x->key, "%s", ch->id);
    link_rec l;
    int rc = store_link_get(t, x->key, &l, NULL);
    if (rc == CB_OK) snprintf(x->item_id, sizeof x->item_id, "%s", l.item_id);
    else if (rc != CB_ENOTFOUND) return rc;   /* unread is not "missing" */
    content_print(ev, c->o->tz, x->apple);
    return CB_OK;
}

/* The linked items, read from the Exchange side in batches. */
static int fetch_linked(cut *c, cperson *cp, cb_err *err)
{
    side *ex = c->o->sides[SIDE_EXCHANGE];
    size_t batch = (size_t)c->o->cfg->batch_size;
    const char *ids[100];
    size_t n = 0;
    c->outstanding = 1;   /* held until every batch is sent */
    for (size_t i = 0; i <= cp->ne; i++) {
        if (i < cp->ne && cp->e[i].item_id[0]) ids[n++] = cp->e[i].item_id;
        if (!n || (n < batch && n < 100 && i < cp->ne)) continue;
        c->outstanding++;
        int rc = ex->ops->fetch(ex, cp->p, ids, n, on_items, c, err);
        if (rc) {
            c->outstanding--;
            return rc;
        }
        n = 0;
    }
    if (--c->outstanding == 0) compare_done(c, cp);
    return CB_OK;
}

/* What the Apple side holds for the person: every event, read in full. */
static void on_apple(void *ud, side_page *pg, const cb_err *err)
{
    cut *c = ud;
    cperson *cp = &c->v[c->current];
    cb_err e = {0};
    store_txn *t = NULL;
    int rc = pg ? store_begin(c->o->st, 0, &t, &e) : (e = *err, e.code ? e.code : CB_EIO);
    for (size_t i = 0; rc == CB_OK && i < pg->n; i++) rc = expect_event(c, cp, t, &pg->v[i]);
    store_abort(t);
    side_page_free(pg);
    if (rc == CB_OK) rc = fetch_linked(c, cp, &e);
    if (rc) stop(c, rc, e.msg[0] ? &e : &(cb_err){rc, "comparing both sides failed"});
}

static int compare_start(cut *c, cperson *cp, cb_err *err)
{
    side *ap = c->o->sides[SIDE_APPLE];
    return ap->ops->read(ap, &cp->p, 1, NULL, on_apple, c, err);
}

static void compare_next(cut *c)
{
    while (c->current < c->n) {
        cperson *cp = &c->v[c->current];
        if (*cp->step && strcmp(cp->step, "delta")) {   /* flipped or done */
            c->current++;
            continue;
        }
        cb_err e = {0};
        if (compare_start(c, cp, &e) != CB_OK) stop(c, e.code ? e.code : CB_EIO, &e);
        return;   /* on_apple, then on_items, go on */
    }
    flip(c);
}

/* ---- 1. delta --------------------------------------------------------- */

static void on_second_cycle(void *ud, int rc, const cb_err *err)
{
    cut *c = ud;
    if (rc != CB_OK) {
        stop(c, rc, err);
        return;
    }
    fprintf(c->o->out, "comparing both sides:\n");
    compare_next(c);
}

static void on_first_cycle(void *ud, int rc, const cb_err *err)
{
    cut *c = ud;
    cb_err e = {0};
    if (rc != CB_OK) stop(c, rc, err);
    /* The second cycle carries what the first found edited in Exchange. */
    else if (service_cycle(c->o->sv, 1, on_second_cycle, c, &e) != CB_OK) stop(c, e.code, &e);
}

static void begin(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    cut *c = ud;
    cb_err e = {0};
    int delta = 0;
    for (size_t i = 0; i < c->n; i++) {
        cperson *cp = &c->v[i];
        if (*cp->step && strcmp(cp->step, "delta")) continue;
        delta = 1;
        if (!c->o->dry_run && set_step(c, cp, "delta", NULL) != CB_OK) {
            stop(c, CB_EIO, &(cb_err){CB_EIO, "cannot record the cutover step"});
            return;
        }
    }
    if (!delta || c->o->dry_run) {
        if (delta) fprintf(c->o->out, "comparing both sides (dry run: no final delta):\n");
        compare_next(c);
    } else {
        fprintf(c->o->out, "final Apple -> Exchange delta...\n");
        if (service_cycle(c->o->sv, 1, on_first_cycle, c, &e) != CB_OK) stop(c, e.code, &e);
    }
}

int cutover_run(const cutover_opts *o, size_t *stopped, cb_err *err)
{
    cut c = {.o = o};
    c.v = calloc(o->n + 1, sizeof *c.v);
    *stopped = 0;
    if (!c.v) return cb_errf(err, CB_ENOMEM, "out of memory");
    store_txn *t;
    int rc = store_begin(o->st, 0, &t, err);
    if (rc != CB_OK) {
        free(c.v);
        return rc;
    }
    for (size_t i = 0; i < o->n; i++) {
        cperson *cp = &c.v[c.n];
        if (!(cp->p = people_by_uid(o->people, o->owners[i]))) continue;
        char name[STORE_KEY_MAX];
        key_name(KEY_CUTOVER, cp->p->owner_uid, name);
        rc = store_get(t, name, cp->step, sizeof cp->step, err);
        if (rc != CB_OK && rc != CB_ENOTFOUND) {
            store_abort(t);
            free(c.v);
            return rc;   /* a step that cannot be read: resuming blind is no option */
        }
        fprintf(o->out, "  %-28s %s\n", cp->p->smtp,
                !*cp->step ? "to cut over" : !strcmp(cp->step, "done") ? "already cut over"
                : !strcmp(cp->step, "flipped") ? "flipped; resuming with the mirror"
                                               : "resuming an interrupted cutover");
        c.n++;
    }
    store_abort(t);
    struct event *ev = evtimer_new(o->base, begin, &c);
    event_active(ev, EV_TIMEOUT, 0);
    event_base_dispatch(o->base);
    event_free(ev);
    for (size_t i = 0; i < c.n; i++) free(c.v[i].e);
    if (c.err.msg[0]) *err = c.err;
    rc = c.rc;
    *stopped = c.stopped;
    if (rc == CB_OK && !o->dry_run) {
        for (size_t i = 0; i < c.n; i++)
            fprintf(o->out, "  %-28s authority %s\n", c.v[i].p->smtp,
                    !strcmp(c.v[i].step, "done") ? "exchange" : "apple (not cut over)");
    }
    free(c.v);
    return rc;
}
