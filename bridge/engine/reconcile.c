#include "reconcile.h"
#include "rules.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../mapping/hash.h"
#include "../../state/keys.h"

typedef struct work {
    intent_rec in;          /* what is written where; in.tag names it */
    const person *p;
    ews_event *ev;          /* owned; NULL for a deletion */
    char fp[17];            /* the content's fingerprint */
    double changed;         /* when the change was made (lag) */
    char entry[KEY_MAX];    /* the queued rewrite it carries, or "" */
    int lookups;            /* tag look-ups after lost answers */
    int busy;               /* sends again after a per-item "busy" */
} work;

typedef struct fetch_ent {
    const person *p;
    char *id, *version;
    double modified;
    char *entry;            /* a queued rewrite (forced), or NULL */
} fetch_ent;

/* Every allocation a side call holds (a batch, a look-up) is on this list,
 * so that a pass abandoned mid-flight frees them too. */
typedef struct pend {
    struct pend *prev, *next;
} pend;

typedef struct unit unit;

typedef struct batch {
    pend link;
    unit *u;
    work **wk;
    side_write *sw;
    size_t n;
} batch;

typedef struct lookup {
    pend link;
    unit *u;
    work *w;
} lookup;

#define BUSY_AGAIN 3   /* sends of one write refused "busy" before the pass gives up on it */

typedef struct recovery {
    pend link;
    reconcile *r;
    intent_rec in;
    const person *p;
} recovery;

typedef struct fetch_req {
    pend link;
    unit *u;
    size_t start, n;
} fetch_req;

/* One cursor's read: everyone (a side with one cursor) or one person. */
struct unit {
    reconcile *r;
    const person **pp;
    size_t n;
    char *stored;           /* the cursor as stored ("" when none) */
    char *cursor;           /* where the next page starts */
    side_page *page;
    int pages, full, last, failed;
    cb_err err;
    uint64_t *seen;         /* a full read: a hash of every id it listed */
    size_t nseen, capseen;
    fetch_ent *fetch;
    size_t nfetch, fnext;
    work **works;
    size_t nworks;
    int outstanding;
    void (*then)(unit *u);
};

enum { HELD_GUARD = 1, HELD_PERSON = 2 };

struct reconcile {
    reconcile_deps d;
    side_id from, to;
    int running, outstanding, failed, full;
    cb_err err;
    reconcile_done_fn done;
    void *ud;
    const person **sel;     /* the people of this pass */
    size_t nsel;
    char *held;             /* per person: HELD_* this pass */
    long *dels, *links0;    /* per person: deletions let through, links */
    char *counted;          /* per person: links0 known */
    char *chosen;           /* per person: in this pass */
    long *page_dels;        /* per person: the guard's count of a page */
    unit **units;
    size_t nunits;
    pend pending;
};

static const side_ops *OPS(reconcile *r, side_id s)
{
    return r->d.sides[s]->ops;
}

static size_t pidx(const reconcile *r, const person *p)
{
    return (size_t)(p - r->d.people->v);
}

static void *pend_new(reconcile *r, size_t size)
{
    pend *p = calloc(1, size);
    if (!p) return NULL;
    p->next = r->pending.next;
    p->prev = &r->pending;
    p->next->prev = p;
    r->pending.next = p;
    return p;
}

static void pend_free(void *ptr)
{
    pend *p = ptr;
    if (!p) return;
    p->prev->next = p->next;
    p->next->prev = p->prev;
    free(p);
}

/* ---- the link's two halves ---------------------------------------------- */

/* The Apple half is the link's key and the revision; the Exchange half is
 * mailbox, ItemId and ChangeKey. */
static const char *half_id(side_id h, const char *key, const link_rec *l)
{
    return h == SIDE_APPLE ? key : l->item_id;
}

static const char *half_version(side_id h, const link_rec *l, char buf[32])
{
    if (h == SIDE_EXCHANGE) return l->change_key;
    snprintf(buf, 32, "%lld", l->revision);
    return buf;
}

static void half_set(side_id h, link_rec *l, const char *mailbox, const char *id,
                     const char *version)
{
    if (h == SIDE_APPLE) {
        l->revision = strtoll(version, NULL, 10);
        return;
    }
    snprintf(l->mailbox, sizeof l->mailbox, "%s", mailbox);
    snprintf(l->item_id, sizeof l->item_id, "%s", id);
    snprintf(l->change_key, sizeof l->change_key, "%s", version);
}

/* The link of item id on half h: CB_OK, CB_ENOTFOUND or a store error. */
static int link_find(store_txn *t, side_id h, const person *p, const char *id,
                     char key[KEY_MAX], link_rec *l)
{
    key[0] = '\0';
    int rc = h == SIDE_APPLE ? (snprintf(key, KEY_MAX, "%s", id), CB_OK)
                             : store_link_by_item(t, p->smtp, id, key, NULL);
    if (rc == CB_OK) rc = store_link_get(t, key, l, NULL);
    if (rc != CB_OK) key[0] = '\0';
    return rc;
}

/* The item of half h is gone. The Apple half is the link's key: writing
 * that key again recreates it, so the link stays; without its Exchange
 * item a link means nothing, so it goes. */
static int link_lose(store_txn *t, side_id h, const char *key, link_rec *l, const char *version)
{
    if (h == SIDE_EXCHANGE) {
        int rc = store_link_del(t, key, NULL);
        return rc == CB_ENOTFOUND ? CB_OK : rc;
    }
    half_set(h, l, l->mailbox, key, version);
    return store_link_put(t, key, l, NULL);
}

/* What names an item of half h in failed: records. */
static void failed_name(side_id h, const person *p, const char *id, char out[KEY_MAX])
{
    if (h == SIDE_APPLE) snprintf(out, KEY_MAX, "%s", id);
    else key_exchange_item(p->smtp, id, out);
}

static key_kind rewrite_kind(side_id authority)
{
    return authority == SIDE_APPLE ? KEY_REPUSH : KEY_REFETCH;
}

/* A read failure is an error, never "Apple". */
static int authority_of(store_txn *t, const person *p, side_id *out)
{
    authority a;
    int rc = store_authority_get(t, p->owner_uid, &a, NULL);
    *out = a == AUTHORITY_EXCHANGE ? SIDE_EXCHANGE : SIDE_APPLE;
    return rc;
}

/* ---- counters and faults ------------------------------------------------ */

static void count_write(reconcile *r, side_op op)
{
    report *rep = r->d.rep;
    if (r->to == SIDE_APPLE) *(op == SIDE_DELETE ? &rep->ex_deleted : &rep->ex_written) += 1;
    else *(op == SIDE_CREATE ? &rep->created : op == SIDE_UPDATE ? &rep->updated
                                                                 : &rep->deleted) += 1;
}

/* The codes that say a side (or the process) cannot go on, not an item. */
static int side_fault(int code)
{
    return code == CB_EIO || code == CB_EREMOTE || code == CB_ENOMEM;
}

static void unit_fail(unit *u, const cb_err *e)
{
    if (!u->failed) u->err = *e;
    u->failed = 1;
}

/* p's calendar cannot be used now: reported once, nothing of theirs moves
 * (intents and cursor stay), everyone else goes on. */
static void hold_person(reconcile *r, const person *p, const char *why)
{
    if (r->held[pidx(r, p)] == HELD_PERSON) return;
    r->held[pidx(r, p)] = HELD_PERSON;
    rules_hold_report(r->d.rep, p->smtp, why);
}

/* A failure that reaches p (CB_EMAILBOX) or the whole unit. */
static void fault(unit *u, const person *p, const cb_err *e)
{
    if (e->code == CB_EMAILBOX && p) hold_person(u->r, p, e->msg);
    else unit_fail(u, e);
}

/* ---- planning ------------------------------------------------------------ */

static work *work_add(unit *u, const person *p, side_op op, const char *key,
                      const char *target_id, const side_change *c)
{
    reconcile *r = u->r;
    work **v = realloc(u->works, (u->nworks + 1) * sizeof *v);
    if (!v) return NULL;
    u->works = v;
    work *w = calloc(1, sizeof *w);
    if (!w || store_new_tag(w->in.tag, NULL) != CB_OK) {
        free(w);
        return NULL;
    }
    w->p = p;
    w->in.op = (intent_op)op;
    w->in.target = (int)r->to;
    snprintf(w->in.key, sizeof w->in.key, "%s", key);
    snprintf(w->in.mailbox, sizeof w->in.mailbox, "%s", p->smtp);
    snprintf(w->in.item_id, sizeof w->in.item_id, "%s", target_id);
    snprintf(w->in.from_id, sizeof w->in.from_id, "%s", c->id);
    snprintf(w->in.from_version, sizeof w->in.from_version, "%s", c->version);
    if (r->from == SIDE_APPLE) w->in.revision = strtoll(c->version, NULL, 10);
    w->changed = c->modified;
    v[u->nworks++] = w;
    return w;
}

static void work_free(work *w)
{
    if (!w) return;
    ews_event_free(w->ev);
    free(w);
}

static int fetch_add(unit *u, const side_change *c, const char *entry)
{
    /* A page may list one item twice (created, then changed): it is
     * fetched once, as it is now. */
    for (size_t i = 0; i < u->nfetch; i++) {
        fetch_ent *f = &u->fetch[i];
        if (f->p != c->p || strcmp(f->id, c->id)) continue;
        char *v = strdup(c->version), *e = entry ? strdup(entry) : NULL;
        if (!v || (entry && !e)) {
            free(v);
            free(e);
            return CB_ENOMEM;
        }
        free(f->version);
        f->version = v;
        if (e) free(f->entry), f->entry = e;
        return CB_OK;
    }
    fetch_ent *v = realloc(u->fetch, (u->nfetch + 1) * sizeof *v);
    if (!v) return CB_ENOMEM;
    u->fetch = v;
    fetch_ent *f = &v[u->nfetch];
    *f = (fetch_ent){c->p, strdup(c->id), strdup(c->version), c->modified,
                     entry ? strdup(entry) : NULL};
    if (!f->id || !f->version || (entry && !f->entry)) {
        free(f->id);
        free(f->version);
        free(f->entry);
        return CB_ENOMEM;
    }
    u->nfetch++;
    return CB_OK;
}

/* A queued rewrite that needs no write (or failed alone) is done. */
static int entry_done(store_txn *t, const char *entry)
{
    if (!entry || !*entry) return CB_OK;
    int rc = store_del(t, entry, NULL);
    return rc == CB_ENOTFOUND ? CB_OK : rc;
}

static int item_failed(unit *u, store_txn *t, const side_change *c, const char *entry,
                       const char *why)
{
    char name[KEY_MAX];
    failed_name(u->r->from, c->p, c->id, name);
    u->r->d.rep->failed++;
    report_add(u->r->d.rep, name, 1, "%s", why);
    int rc = store_failed_put(t, name, why, NULL);
    return rc ? rc : entry_done(t, entry);
}

/* The link key (the Apple half's id) of an item read from the other half
 * that no link names: the pending creation whose tag it carries, or where
 * the Apple side would place it. Its stamps are the mailbox owner's to
 * edit, so they only ever point into that person's own home: *outside is
 * set when the state names a key elsewhere (refused). */
static int key_for(unit *u, store_txn *t, const side_change *c, char key[KEY_MAX], int *outside,
                   cb_err *err)
{
    reconcile *r = u->r;
    const person *p = c->p;
    intent_rec in;
    key[0] = '\0';
    if (r->from == SIDE_APPLE) snprintf(key, KEY_MAX, "%s", c->id);
    else if (c->ev->tag && store_intent_get(t, c->ev->tag, &in, NULL) == CB_OK &&
             in.op == OP_CREATE && in.target == (int)r->from && !strcasecmp(in.mailbox, p->smtp))
        snprintf(key, KEY_MAX, "%s", in.key);
    else {
        int rc = OPS(r, SIDE_APPLE)->place(r->d.sides[SIDE_APPLE], p, c->ev, key, err);
        if (rc) return rc;
    }
    *outside = !key_source_owned(key, p->owner_uid);
    return CB_OK;
}

/* Content read on the person's authority side: unchanged, or written. */
static int carry(unit *u, store_txn *t, side_change *c, const char *lkey, link_rec *l,
                 const char *entry)
{
    reconcile *r = u->r;
    report *rep = r->d.rep;
    ews_event *ev = c->ev;
    cb_err e = {0};
    if (ev->expanded || !ev->n || ev->items[0]->role != ROLE_MAIN) {
        char why[600];
        snprintf(why, sizeof why, "event %s: %s; single items are shown by `calbridge "
                 "translate` but not carried by sync yet", ev->uid ? ev->uid : c->id,
                 ev->warnings ? ev->warnings : "no series");
        return item_failed(u, t, c, entry, why);
    }
    char key[KEY_MAX];
    int outside = 0;
    int rc = lkey ? (snprintf(key, sizeof key, "%s", lkey), CB_OK)
                  : key_for(u, t, c, key, &outside, &e);
    if (rc == CB_OK && outside) {
        char why[KEY_MAX + 100];
        snprintf(why, sizeof why, "%s item of %s is linked outside their own calendar (%s); "
                 "not written", OPS(r, r->from)->name, c->p->smtp, key);
        return item_failed(u, t, c, entry, why);
    }
    if (side_fault(rc)) return rc;   /* the side, not the item: the page stops */
    if (rc) return item_failed(u, t, c, entry, e.msg);
    char fp[17];
    ews_item_fingerprint(ev->items[0], fp);
    if (l && !entry && !strcmp(fp, l->fingerprint)) {
        rep->unchanged++;   /* same content: only remember the version */
        half_set(r->from, l, c->p->smtp, c->id, c->version);
        return store_link_put(t, key, l, NULL);
    }
    if (ev->warnings) report_add(rep, key, 0, "%s", ev->warnings);
    char target[KEY_MAX] = "";
    if (r->to == SIDE_APPLE) snprintf(target, sizeof target, "%s", key);
    else if (l) snprintf(target, sizeof target, "%s", half_id(r->to, key, l));
    else if ((rc = OPS(r, r->to)->place(r->d.sides[r->to], c->p, ev, target, &e)))
        return side_fault(rc) ? rc : item_failed(u, t, c, entry, e.msg);
    work *w = work_add(u, c->p, l ? SIDE_UPDATE : SIDE_CREATE, key, target, c);
    if (!w) return CB_ENOMEM;
    w->ev = ev;
    c->ev = NULL;
    memcpy(w->fp, fp, sizeof fp);
    if (!w->changed) w->changed = (double)ev->modified;
    if (entry) snprintf(w->entry, sizeof w->entry, "%s", entry);
    return CB_OK;
}

/* A change on the person's mirror side: the bridge's own write, or an
 * edit that the authority's version overwrites (a conflict). */
static int on_mirror(unit *u, store_txn *t, side_change *c, const char *key, link_rec *l)
{
    reconcile *r = u->r;
    report *rep = r->d.rep;
    char buf[32], name[KEY_MAX];
    if (l && *c->version && OPS(r, r->from)->covers(half_version(r->from, l, buf), c->version)) {
        rep->echoes++;
        return CB_OK;
    }
    int rc;
    if (c->deleted) {
        if (!l) return CB_OK;
        rc = rules_conflict(t, rep, r->from, key, "deleted", half_id(r->to, key, l), 1);
        return rc ? rc : link_lose(t, r->from, key, l, c->version);
    }
    if (c->skip) return CB_OK;
    if (!c->ev && !c->code) return fetch_add(u, c, NULL);
    char fp[17] = "";
    const ews_event *ev = c->ev;
    if (ev && ev->n && !ev->expanded && ev->items[0]->role == ROLE_MAIN)
        ews_item_fingerprint(ev->items[0], fp);
    if (!l) {
        /* A full read lists what was there before calbridge: not news. */
        failed_name(r->from, c->p, c->id, name);
        if (u->full)
            report_add(rep, name, 0, "an item made in %s for a person whose authority is %s; "
                       "left alone", OPS(r, r->from)->name, OPS(r, r->to)->name);
        return u->full ? CB_OK : rules_conflict(t, rep, r->from, name, "created", NULL, 0);
    }
    if (!strcmp(fp, l->fingerprint)) rep->echoes++;   /* written by us, seen late */
    else if (!*l->fingerprint) {   /* our own incomplete write: finished, not a conflict */
        rep->echoes++;
        if ((rc = rules_rewrite(t, r->from, key, half_id(r->to, key, l)))) return rc;
    } else if ((rc = rules_conflict(t, rep, r->from, key, "edited", half_id(r->to, key, l), 1)))
        return rc;
    half_set(r->from, l, c->p->smtp, c->id, c->version);
    return store_link_put(t, key, l, NULL);
}

/* Plans one change (or fetched item). entry: the queued rewrite it carries
 * (written whatever its content). Returns only faults that stop the unit;
 * a bad item is reported and fails alone. */
static int decide(unit *u, store_txn *t, side_change *c, const char *entry)
{
    reconcile *r = u->r;
    const person *p = c->p;
    if (r->held[pidx(r, p)] == HELD_PERSON) return CB_OK;
    side_id auth;
    int rc = authority_of(t, p, &auth);
    if (rc) return rc;   /* unknown authority: nothing is planned */
    if (entry && auth != r->from) return entry_done(t, entry);   /* moot since cutover */
    char key[KEY_MAX], buf[32];
    link_rec l;
    rc = link_find(t, r->from, p, c->id, key, &l);
    if (rc && rc != CB_ENOTFOUND) return rc;
    int linked = rc == CB_OK;
    if (auth != r->from) return on_mirror(u, t, c, key, linked ? &l : NULL);
    if (linked && !entry && *c->version &&
        OPS(r, r->from)->covers(half_version(r->from, &l, buf), c->version)) {
        r->d.rep->unchanged++;
        return CB_OK;
    }
    if (c->deleted) {
        char name[KEY_MAX];
        failed_name(r->from, p, c->id, name);
        if (!linked) return (rc = store_failed_clear(t, name, NULL)) ? rc : entry_done(t, entry);
        work *w = work_add(u, p, SIDE_DELETE, key, half_id(r->to, key, &l), c);
        if (!w) return CB_ENOMEM;
        if (entry) snprintf(w->entry, sizeof w->entry, "%s", entry);
        return CB_OK;
    }
    if (c->skip) {
        r->d.rep->skipped++;
        return entry_done(t, entry);
    }
    if (c->code) return item_failed(u, t, c, entry, c->why ? c->why : cb_strerror(c->code));
    if (!c->ev) return fetch_add(u, c, entry);
    return carry(u, t, c, linked ? key : NULL, linked ? &l : NULL, entry);
}

/* What a full read listed is kept as 64-bit hashes (FNV-1a): 8 bytes an
 * item, not a copy of each id. A ghost whose id shares a hash with a
 * listed one (odds about 1 in 2e13 per ghost at a million items) keeps its
 * link until the next full read: never is a live item taken for gone. */
static uint64_t id_hash(const char *id)
{
    return hash_str(HASH_BASIS, id);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* A unit reads one person, or everyone the pass chose. */
static int in_unit(const unit *u, const person *p)
{
    return u->n == 1 ? u->pp[0] == p : u->r->chosen[pidx(u->r, p)];
}

static const person *owner_of(const unit *u, const char *key)
{
    source_key sk;
    if (key_source_parse(key, &sk) != CB_OK) return NULL;
    const person *p = people_by_uid(u->r->d.people, sk.owner);
    return p && in_unit(u, p) ? p : NULL;
}

typedef struct ghost {
    const person *p;
    char *id;
} ghost;

typedef struct ghost_ctx {
    unit *u;
    ghost *v;
    size_t n;
    int rc;
} ghost_ctx;

/* A link of the unit's people whose item on the side read was not listed. */
static int add_ghost(void *ud, const char *key, const link_rec *l)
{
    ghost_ctx *g = ud;
    unit *u = g->u;
    const person *p = owner_of(u, key);
    if (!p || (u->r->from == SIDE_EXCHANGE && strcasecmp(l->mailbox, p->smtp))) return 0;
    const char *id = half_id(u->r->from, key, l);
    uint64_t h = id_hash(id);
    if (u->nseen && bsearch(&h, u->seen, u->nseen, sizeof *u->seen, cmp_u64)) return 0;
    ghost *v = realloc(g->v, (g->n + 1) * sizeof *v);
    if (!v || !(v[g->n].id = strdup(id))) {
        if (v) g->v = v;
        return g->rc = CB_ENOMEM;
    }
    g->v = v;
    v[g->n++].p = p;
    return 0;
}

/* Once a full read is complete, what it did not list is gone. */
static int plan_ghosts(unit *u, store_txn *t)
{
    if (u->nseen) qsort(u->seen, u->nseen, sizeof *u->seen, cmp_u64);
    ghost_ctx g = {u, NULL, 0, CB_OK};
    /* One person's read walks only their links: a walk of every link per
     * person was quadratic in a first sync of many people. */
    char prefix[KEY_MAX] = "";
    if (u->n == 1) key_source_prefix(u->pp[0]->owner_uid, prefix);
    int rc = store_link_each_prefix(t, prefix, add_ghost, &g, NULL);
    if (g.rc) rc = g.rc;
    for (size_t i = 0; i < g.n; i++) {
        side_change c = {.p = g.v[i].p, .id = g.v[i].id, .version = "", .deleted = 1};
        if (rc == CB_OK) rc = decide(u, t, &c, NULL);
        free(g.v[i].id);
    }
    free(g.v);
    return rc;
}

typedef struct entry_list {
    char **name, **value;
    size_t n;
    int rc;
} entry_list;

static int collect_entry(void *ud, const char *name, const char *value)
{
    entry_list *l = ud;
    char **a = realloc(l->name, (l->n + 1) * sizeof *a), **b;
    if (a) l->name = a;
    b = a ? realloc(l->value, (l->n + 1) * sizeof *b) : NULL;
    if (b) l->value = b;
    if (!a || !b || !(a[l->n] = strdup(name)) || !(b[l->n] = strdup(value))) {
        if (a && b) free(a[l->n]);
        return l->rc = CB_ENOMEM;
    }
    l->n++;
    return 0;
}

/* Rewrites queued for this side's people (conflicts found on their mirror
 * side): fetched and written whatever their content. */
static int plan_rewrites(unit *u, store_txn *t)
{
    reconcile *r = u->r;
    char prefix[KEY_MAX];
    key_prefix(rewrite_kind(r->from), NULL, prefix);
    entry_list l = {0};
    int rc = store_each(t, prefix, collect_entry, &l, NULL);
    if (l.rc) rc = l.rc;
    for (size_t i = 0; i < l.n; i++) {
        const char *key = key_arg(rewrite_kind(r->from), l.name[i]);
        const person *p = owner_of(u, key);
        const char *id = r->from == SIDE_APPLE ? key : l.value[i];
        side_change c = {.p = p, .id = (char *)id, .version = ""};
        side_id auth;
        if (rc == CB_OK && p && (rc = authority_of(t, p, &auth)) == CB_OK)
            rc = auth != r->from || !*id ? entry_done(t, l.name[i]) : fetch_add(u, &c, l.name[i]);
        free(l.name[i]);
        free(l.value[i]);
    }
    free(l.name);
    free(l.value);
    return rc;
}

/* The mass-delete guard, per person over the whole pass. The page's
 * deletions are counted in one walk over its works (page_dels, zero between
 * calls; -1 marks a person held), not once per person. */
static void guard(unit *u, store_txn *t)
{
    reconcile *r = u->r;
    long *page = r->page_dels;
    int dropped = 0;
    for (size_t j = 0; j < u->nworks; j++)
        if (u->works[j]->in.op == OP_DELETE) page[pidx(r, u->works[j]->p)]++;
    for (size_t i = 0; i < u->n; i++) {
        const person *p = u->pp[i];
        size_t x = pidx(r, p);
        long dels = page[x];
        if (dels <= 0) continue;
        /* Counted once a pass, as the pass found them: what earlier pages
         * deleted counts too (fewer than mass_delete_min can go before the
         * guard sees a mass). */
        if (!r->counted[x] && r->dels[x] + dels >= r->d.cfg->mass_delete_min) {
            if (store_link_count(t, p->owner_uid, &r->links0[x], NULL) != CB_OK) r->links0[x] = -1;
            else r->links0[x] += r->dels[x];
            r->counted[x] = 1;
        }
        if (!rules_guard_holds(r->d.cfg, r->d.force_delete, r->dels[x] + dels, r->links0[x])) {
            r->dels[x] += dels;
            continue;
        }
        rules_guard_report(r->d.rep, r->d.cfg, p->smtp, r->dels[x] + dels, r->links0[x]);
        if (!r->held[x]) r->held[x] = HELD_GUARD;
        page[x] = -1;
        dropped = 1;
    }
    size_t k = 0;
    for (size_t j = 0; j < u->nworks; j++) {
        work *w = u->works[j];
        size_t x = pidx(r, w->p);
        int drop = dropped && w->in.op == OP_DELETE && page[x] < 0;
        if (w->in.op == OP_DELETE && !drop) page[x] = 0;
        if (drop) work_free(w);
        else u->works[k++] = w;
    }
    u->nworks = k;
    for (size_t i = 0; dropped && i < u->n; i++) page[pidx(r, u->pp[i])] = 0;
}

static int put_intents(unit *u, store_txn *t)
{
    int rc = CB_OK;
    for (size_t i = 0; i < u->nworks && rc == CB_OK; i++)
        rc = store_intent_put(t, &u->works[i]->in, NULL);
    return rc;
}

static int cmp_fetch(const void *a, const void *b)
{
    const fetch_ent *x = a, *y = b;
    return (x->p > y->p) - (x->p < y->p);
}

static int plan_page(unit *u, cb_err *err)
{
    reconcile *r = u->r;
    side_page *pg = u->page;
    store_txn *t;
    int rc = store_begin(r->d.st, 1, &t, err);
    if (rc) return rc;
    for (size_t i = 0; i < pg->n && rc == CB_OK; i++) {
        if (!pg->v[i].p || !in_unit(u, pg->v[i].p)) continue;
        *(r->from == SIDE_APPLE ? &r->d.rep->read : &r->d.rep->ex_read) += 1;
        rc = decide(u, t, &pg->v[i], NULL);
    }
    if (rc == CB_OK && u->full && u->last) rc = plan_ghosts(u, t);
    if (rc == CB_OK && u->pages == 0) rc = plan_rewrites(u, t);
    if (rc == CB_OK) guard(u, t);
    if (rc == CB_OK) rc = put_intents(u, t);
    if (rc != CB_OK) {
        store_abort(t);
        return err->msg[0] ? rc : cb_errf(err, rc, "planning the changes of %s failed: %s",
                                          OPS(r, r->from)->name, cb_strerror(rc));
    }
    if (u->nfetch > 1) qsort(u->fetch, u->nfetch, sizeof *u->fetch, cmp_fetch);
    return store_commit(t, err);
}

/* ---- effect and commit ---------------------------------------------------- */

static void apply_done(unit *u);
static void submit(unit *u, work **wk, size_t n);

/* Links the item a look-up by tag found for intent in, and drops the
 * intent, in one transaction (never the intent alone: the item would be
 * orphaned and created a second time). */
/* The link of key as it is, or an empty one; a read failure is returned. */
static int link_or_new(store_txn *t, const char *key, link_rec *l)
{
    int rc = store_link_get(t, key, l, NULL);
    if (rc == CB_ENOTFOUND) memset(l, 0, sizeof *l);
    return rc == CB_ENOTFOUND ? CB_OK : rc;
}

static int adopt(reconcile *r, const intent_rec *in, const char *id, const char *version,
                 cb_err *err)
{
    store_txn *t;
    link_rec l;
    int rc = store_begin(r->d.st, 1, &t, err);
    if (rc) return rc;
    if ((rc = link_or_new(t, in->key, &l))) {
        store_abort(t);
        return cb_errf(err, rc, "reading the link of %s failed", in->key);
    }
    char rev[32];
    snprintf(rev, sizeof rev, "%lld", in->revision);
    side_id target = in->target == SIDE_APPLE ? SIDE_APPLE : SIDE_EXCHANGE;
    half_set(target, &l, in->mailbox, id, version);
    half_set(!target, &l, in->mailbox, in->from_id, *in->from_version ? in->from_version : rev);
    /* What followed the lost answer (a series' exceptions, travel time)
     * was never sent: the adopted item claims no content and is written
     * whole again (only what differs goes out), not left as it is until
     * the event changes. */
    l.fingerprint[0] = '\0';
    rc = store_link_put(t, in->key, &l, err);
    if (rc == CB_OK && in->op == OP_CREATE) rc = rules_rewrite(t, target, in->key, id);
    if (rc == CB_OK) rc = store_intent_del(t, in->tag, err);
    rc = rc == CB_OK ? store_commit(t, err) : (store_abort(t), rc);
    if (rc == CB_OK) r->d.rep->adopted++;
    return rc;
}

static void on_lookup(void *ud, int found, const char *id, const char *version,
                      const cb_err *err)
{
    lookup *lk = ud;
    unit *u = lk->u;
    work *w = lk->w;
    cb_err e = {0};
    pend_free(lk);
    if (err) fault(u, w->p, err);
    else if (found && adopt(u->r, &w->in, id, version, &e) != CB_OK) unit_fail(u, &e);
    else if (!found) submit(u, &w, 1);   /* it never arrived: sent again, alone */
    apply_done(u);
}

/* A creation whose answer was lost may have been applied: it is looked up
 * by its tag before anything is sent again. */
static void look_up(unit *u, work *w)
{
    reconcile *r = u->r;
    cb_err e = {0};
    lookup *lk = w->lookups++ < 3 ? pend_new(r, sizeof *lk) : NULL;
    if (!lk) {
        cb_errf(&e, CB_EIO, "%s: the answer to its creation was lost again; looked up on the "
                "next pass", w->in.key);
        unit_fail(u, &e);
        return;
    }
    lk->u = u;
    lk->w = w;
    u->outstanding++;
    if (OPS(r, r->to)->find_tag(r->d.sides[r->to], w->p, w->in.tag, on_lookup, lk, &e) != CB_OK) {
        pend_free(lk);
        u->outstanding--;
        fault(u, w->p, &e);
    }
}

/* Records one applied write in t. */
static int applied(unit *u, store_txn *t, work *w, const side_write *sw)
{
    reconcile *r = u->r;
    char name[KEY_MAX];
    failed_name(r->from, w->p, w->in.from_id, name);
    int rc;
    if (w->in.op == OP_DELETE) {
        rc = store_link_del(t, w->in.key, NULL);
        if (rc == CB_ENOTFOUND) rc = CB_OK;
    } else {
        link_rec l;
        if ((rc = link_or_new(t, w->in.key, &l))) return rc;
        half_set(r->from, &l, w->p->smtp, w->in.from_id, w->in.from_version);
        half_set(r->to, &l, w->p->smtp, *sw->new_id ? sw->new_id : w->in.item_id, sw->version);
        snprintf(l.fingerprint, sizeof l.fingerprint, "%s", sw->incomplete ? "" : w->fp);
        rc = store_link_put(t, w->in.key, &l, NULL);
        if (*sw->msg) report_add(r->d.rep, w->in.key, 1, "%s", sw->msg);
        /* Applied in part (a series' exceptions, its travel time): written
         * whole again, queued as a rewrite, not left until the event
         * changes. */
        if (rc == CB_OK && sw->incomplete)
            rc = rules_rewrite(t, r->to, w->in.key, *sw->new_id ? sw->new_id : w->in.item_id);
    }
    /* Written but for a part the other side refused for what it asks (an
     * occurrence moved past its neighbour): listed until the event changes. */
    int partial = w->in.op != OP_DELETE && *sw->msg && !sw->incomplete;
    if (rc == CB_OK)
        rc = partial ? store_failed_put(t, name, sw->msg, NULL) : store_failed_clear(t, name, NULL);
    if (rc == CB_OK) rc = store_lag_put(t, w->p->owner_uid,
                                        r->to == SIDE_EXCHANGE ? "to-exchange" : "to-apple",
                                        w->changed, NULL);
    if (rc == CB_OK) count_write(r, (side_op)w->in.op);
    return rc;
}

/* What follows a write's answer once the batch's results are committed. */
typedef enum { AFTER_NOTHING, AFTER_LOOK_UP, AFTER_RESEND } after_write;

/* Records one write's result in t; a state-store failure is returned (the
 * caller aborts t and every intent of the batch stays for recovery). *then
 * says whether the item must be looked up (its answer was lost) or sent
 * again (refused busy). */
static int result(unit *u, store_txn *t, work *w, const side_write *sw, after_write *then)
{
    reconcile *r = u->r;
    report *rep = r->d.rep;
    cb_err e;
    int rc;
    switch (sw->code) {
    case CB_OK:
        rc = applied(u, t, w, sw);
        break;
    case CB_ENOTFOUND:
        if (w->in.op == OP_DELETE) {
            rc = applied(u, t, w, sw);
            break;
        }
        /* Deleted on the written side: the link goes, so that the next
         * change of the event (or a full read) writes it again. */
        rc = store_link_del(t, w->in.key, NULL);
        if (rc == CB_ENOTFOUND) rc = CB_OK;
        rep->failed++;
        report_add(rep, w->in.key, 1, "item was deleted in %s; re-created on its next change",
                   OPS(r, r->to)->name);
        break;
    case CB_ELOST:
        *then = AFTER_LOOK_UP;
        return CB_OK;
    case CB_EBUSY:   /* not applied: the intent and the cursor stay */
        /* Sent again alone, after the side's back-off, a few times in this
         * pass; then the pass ends for this unit and the next one resumes. */
        if (w->busy++ < BUSY_AGAIN) {
            *then = AFTER_RESEND;
            return CB_OK;
        }
        cb_errf(&e, CB_EBUSY, "%s: %s: retried on the next pass", w->in.key, sw->msg);
        unit_fail(u, &e);
        return CB_OK;
    case CB_EMAILBOX:
    case CB_EIO:
    case CB_EREMOTE:
    case CB_ENOMEM:   /* the person or the side: the intent stays */
        cb_errf(&e, sw->code, "%s", *sw->msg ? sw->msg : cb_strerror(sw->code));
        fault(u, w->p, &e);
        return CB_OK;
    default: {   /* refused alone: nothing applied, so its intent goes */
        char name[KEY_MAX];
        failed_name(r->from, w->p, w->in.from_id, name);
        rep->failed++;
        /* Named as its owner finds it: the key, or mailbox and ItemId. */
        if (!strcmp(w->in.from_id, w->in.key)) report_add(rep, w->in.key, 1, "%s", sw->msg);
        else report_add(rep, w->in.key, 1, "%s item %s: %s", w->p->smtp, w->in.from_id, sw->msg);
        rc = store_failed_put(t, name, sw->msg, NULL);
    }
    }
    if (rc == CB_OK) rc = entry_done(t, w->entry);
    if (rc == CB_OK) rc = store_intent_del(t, w->in.tag, NULL);
    return rc;
}

static void on_applied(void *ud, side_write *sw, size_t n, const cb_err *err)
{
    (void)err;
    batch *b = ud;
    unit *u = b->u;
    store_txn *t;
    cb_err e = {0};
    after_write *then = calloc(n ? n : 1, sizeof *then);
    int rc = then ? store_begin(u->r->d.st, 1, &t, &e) : cb_errf(&e, CB_ENOMEM, "out of memory");
    for (size_t i = 0; rc == CB_OK && i < n; i++) rc = result(u, t, b->wk[i], &sw[i], &then[i]);
    if (then && rc == CB_OK) rc = store_commit(t, &e);
    else if (then) store_abort(t);
    if (rc != CB_OK) {
        if (!e.msg[0]) cb_errf(&e, rc, "recording the answers of %s in the state failed",
                               OPS(u->r, u->r->to)->name);
        unit_fail(u, &e);   /* the batch's intents stay for recovery */
    }
    for (size_t i = 0; rc == CB_OK && i < n; i++) {
        work *w = b->wk[i];
        if (then[i] == AFTER_LOOK_UP) look_up(u, w);
        else if (then[i] == AFTER_RESEND) submit(u, &w, 1);
    }
    free(then);
    pend_free(b);
    apply_done(u);
}

static void submit(unit *u, work **wk, size_t n)
{
    reconcile *r = u->r;
    cb_err e = {0};
    /* One allocation: the side's results, then the works they belong to. */
    batch *b = pend_new(r, sizeof *b + n * (sizeof *b->sw + sizeof *b->wk));
    if (!b) {
        unit_fail(u, &(cb_err){CB_ENOMEM, "out of memory"});
        return;
    }
    b->u = u;
    b->n = n;
    b->sw = (side_write *)(b + 1);
    b->wk = (work **)(b->sw + n);
    for (size_t i = 0; i < n; i++) {
        work *w = b->wk[i] = wk[i];
        b->sw[i] = (side_write){.op = (side_op)w->in.op, .id = w->in.item_id, .key = w->in.key,
                                .tag = w->in.tag, .ev = w->ev};
    }
    u->outstanding++;
    if (OPS(r, r->to)->apply(r->d.sides[r->to], wk[0]->p, b->sw, n, on_applied, b, &e) != CB_OK) {
        u->outstanding--;
        pend_free(b);
        fault(u, wk[0]->p, &e);   /* the intents stay */
    }
}

static void works_free(unit *u)
{
    for (size_t i = 0; i < u->nworks; i++) work_free(u->works[i]);
    free(u->works);
    u->works = NULL;
    u->nworks = 0;
}

static void apply_done(unit *u)
{
    if (--u->outstanding) return;
    works_free(u);
    u->then(u);
}

/* Sends the planned works, batched per person and operation, all at once
 * (the side orders them per person); then(u) once every answer is in. */
static void apply_works(unit *u, void (*then)(unit *))
{
    reconcile *r = u->r;
    size_t max = (size_t)r->d.cfg->batch_size, n = 0;
    if (max > 100) max = 100;
    work **b = calloc(max ? max : 1, sizeof *b);
    char *taken = calloc(u->nworks + 1, 1);
    u->then = then;
    u->outstanding = 1;   /* held until every batch is sent */
    if (!b || !taken) unit_fail(u, &(cb_err){CB_ENOMEM, "out of memory"});
    for (size_t i = 0; b && taken && i < u->nworks; i++) {
        if (taken[i]) continue;
        n = 0;
        for (size_t j = i; j < u->nworks && n < max; j++) {
            work *w = u->works[j];
            if (taken[j] || w->p != u->works[i]->p || w->in.op != u->works[i]->in.op) continue;
            taken[j] = 1;
            if (r->held[pidx(r, w->p)] != HELD_PERSON) b[n++] = w;
        }
        if (n) submit(u, b, n);
    }
    free(b);
    free(taken);
    apply_done(u);
}

/* ---- reading, page by page ---------------------------------------------- */

static void unit_end(unit *u);
static void unit_read(unit *u);

static void cursor_name(const unit *u, char out[KEY_MAX])
{
    if (OPS(u->r, u->r->from)->per_person) key_name(KEY_SYNCSTATE, u->pp[0]->smtp, out);
    else snprintf(out, KEY_MAX, "%s", KEY_CURSOR_APPLE);
}

static void fetch_free(unit *u)
{
    for (size_t i = 0; i < u->nfetch; i++) {
        free(u->fetch[i].id);
        free(u->fetch[i].version);
        free(u->fetch[i].entry);
    }
    free(u->fetch);
    u->fetch = NULL;
    u->nfetch = u->fnext = 0;
}

/* Everything of the page is carried: the cursor may move, unless someone
 * of it was held back (their changes are read again). */
static void page_end(unit *u)
{
    reconcile *r = u->r;
    side_page_free(u->page);
    u->page = NULL;
    fetch_free(u);
    int held = 0;
    for (size_t i = 0; i < u->n; i++) held |= r->held[pidx(r, u->pp[i])] != 0;
    if (u->failed || held) {
        unit_end(u);
        return;
    }
    cb_err e = {0};
    if (strcmp(u->stored, u->cursor)) {   /* an idle pass writes (and fsyncs) nothing */
        store_txn *t;
        char name[KEY_MAX];
        cursor_name(u, name);
        int rc = store_begin(r->d.st, 1, &t, &e);
        if (rc == CB_OK) rc = store_put(t, name, u->cursor, &e);
        rc = rc == CB_OK ? store_commit(t, &e) : (store_abort(t), rc);
        char *s = rc == CB_OK ? strdup(u->cursor) : NULL;
        if (rc) unit_fail(u, &e);
        if (s) free(u->stored), u->stored = s;
    }
    if (u->failed || u->last) unit_end(u);
    else if (++u->pages < RECONCILE_MAX_PAGES || OPS(r, r->from)->pages_finite) unit_read(u);
    else {
        report_add(r->d.rep, u->n == 1 ? u->pp[0]->smtp : OPS(r, r->from)->name, 0,
                   "%s did not reach the end after %d pages; the rest is read on the next pass",
                   OPS(r, r->from)->name, RECONCILE_MAX_PAGES);
        unit_end(u);
    }
}

static void fetch_next(unit *u);

static void on_fetched(void *ud, side_item *v, size_t n, const cb_err *err)
{
    fetch_req *fr = ud;
    unit *u = fr->u;
    size_t start = fr->start, want = fr->n;
    pend_free(fr);
    u->fnext = start + want;
    const person *p = u->fetch[start].p;
    if (!v) {
        fault(u, p, err);
        fetch_next(u);
        return;
    }
    store_txn *t;
    cb_err e = {0};
    int rc = store_begin(u->r->d.st, 1, &t, &e);
    for (size_t i = 0; rc == CB_OK && i < n && i < want; i++) {
        fetch_ent *f = &u->fetch[start + i];
        side_item *it = &v[i];
        int code = it->skip ? CB_OK : it->code == CB_OK && !it->ev ? CB_EPARSE : it->code;
        if (code == CB_EBUSY || code == CB_EMAILBOX || side_fault(code)) {
            cb_err fe;
            cb_errf(&fe, code, "%s", it->why ? it->why : cb_strerror(code));
            fault(u, p, &fe);   /* not read now: the cursor stays */
            continue;
        }
        side_change c = {.p = p, .id = f->id, .version = f->version, .modified = f->modified,
                         .deleted = code == CB_ENOTFOUND, .ev = it->ev, .skip = it->skip,
                         .code = code == CB_ENOTFOUND ? CB_OK : code, .why = it->why};
        rc = decide(u, t, &c, f->entry);
        it->ev = c.ev;   /* whatever decide did not take */
    }
    if (rc == CB_OK) rc = put_intents(u, t);
    rc = rc == CB_OK ? store_commit(t, &e) : (store_abort(t), rc);
    side_items_free(v, n);
    if (rc) {
        if (!e.msg[0]) cb_errf(&e, rc, "planning what %s holds failed", OPS(u->r, u->r->from)->name);
        works_free(u);
        unit_fail(u, &e);
        fetch_next(u);
        return;
    }
    apply_works(u, fetch_next);
}

/* Content the side did not send with its changes, a batch at a time. */
static void fetch_next(unit *u)
{
    reconcile *r = u->r;
    while (!u->failed && u->fnext < u->nfetch &&
           r->held[pidx(r, u->fetch[u->fnext].p)] == HELD_PERSON)
        u->fnext++;
    if (u->failed || u->fnext >= u->nfetch) {
        page_end(u);
        return;
    }
    size_t max = (size_t)r->d.cfg->batch_size, n = 0;
    if (max > 100) max = 100;
    const char *ids[100];
    const person *p = u->fetch[u->fnext].p;
    while (u->fnext + n < u->nfetch && n < max && u->fetch[u->fnext + n].p == p) {
        ids[n] = u->fetch[u->fnext + n].id;
        n++;
    }
    cb_err e = {0};
    fetch_req *fr = pend_new(r, sizeof *fr);
    if (fr) fr->u = u, fr->start = u->fnext, fr->n = n;
    if (!fr) {
        unit_fail(u, &(cb_err){CB_ENOMEM, "out of memory"});
        page_end(u);
    } else if (OPS(r, r->from)->fetch(r->d.sides[r->from], p, ids, n, on_fetched, fr, &e) != CB_OK) {
        pend_free(fr);
        u->fnext += n;
        fault(u, p, &e);
        fetch_next(u);
    }
}

static int remember_seen(unit *u)
{
    side_page *pg = u->page;
    if (u->nseen + pg->n > u->capseen) {
        size_t cap = u->capseen ? u->capseen : pg->n > 16 ? pg->n : 16;
        while (cap < u->nseen + pg->n) cap *= 2;
        uint64_t *v = realloc(u->seen, cap * sizeof *v);
        if (!v) return CB_ENOMEM;
        u->seen = v;
        u->capseen = cap;
    }
    for (size_t i = 0; i < pg->n; i++)
        if (!pg->v[i].deleted) u->seen[u->nseen++] = id_hash(pg->v[i].id);
    return CB_OK;
}

static void on_page(void *ud, side_page *pg, const cb_err *err)
{
    unit *u = ud;
    reconcile *r = u->r;
    cb_err e = {0};
    if (!pg) {
        fault(u, u->n == 1 ? u->pp[0] : NULL, err);
        unit_end(u);
        return;
    }
    u->page = pg;
    if (pg->note) report_add(r->d.rep, u->n == 1 ? u->pp[0]->smtp : OPS(r, r->from)->name, 0,
                             "%s", pg->note);
    if (pg->full) u->full = 1;
    u->last = pg->last;
    char *next = strdup(pg->cursor ? pg->cursor : "");
    int rc = next ? CB_OK : CB_ENOMEM;
    if (next) free(u->cursor), u->cursor = next;
    if (rc == CB_OK && u->full) rc = remember_seen(u);
    if (rc != CB_OK) cb_errf(&e, rc, "out of memory");
    else rc = plan_page(u, &e);
    if (rc != CB_OK) {
        works_free(u);
        unit_fail(u, &e);
        page_end(u);
        return;
    }
    apply_works(u, fetch_next);
}

static void unit_read(unit *u)
{
    reconcile *r = u->r;
    cb_err e = {0};
    if (OPS(r, r->from)->read(r->d.sides[r->from], u->pp, u->n, *u->cursor ? u->cursor : NULL,
                              on_page, u, &e) != CB_OK) {
        fault(u, u->n == 1 ? u->pp[0] : NULL, &e);
        unit_end(u);
    }
}

static void unit_free(unit *u)
{
    if (!u) return;
    side_page_free(u->page);
    fetch_free(u);
    works_free(u);
    free(u->seen);
    free(u->stored);
    free(u->cursor);
    free(u->pp);
    free(u);
}

/* ---- the pass ---------------------------------------------------------- */

static void pass_free(reconcile *r)
{
    for (size_t i = 0; i < r->nunits; i++) unit_free(r->units[i]);
    free(r->units);
    r->units = NULL;
    r->nunits = 0;
    while (r->pending.next != &r->pending) pend_free(r->pending.next);
}

static void pass_step(reconcile *r)
{
    if (--r->outstanding) return;
    pass_free(r);
    r->running = 0;
    if (r->failed) {
        store_txn *t;
        /* Best effort: the error reaches the caller either way; this copy
         * is only what `status` shows later. */
        if (store_begin(r->d.st, 1, &t, NULL) == CB_OK) {
            if (store_put(t, KEY_LAST_ERROR, r->err.msg, NULL) == CB_OK) (void)store_commit(t, NULL);
            else store_abort(t);
        }
    }
    r->done(r->ud, r->failed ? r->err.code : CB_OK, r->failed ? &r->err : NULL);
}

static void unit_end(unit *u)
{
    reconcile *r = u->r;
    /* A pass keeps its units to the end: what one listed is not needed
     * past its own (10,000 people read at once). */
    free(u->seen);
    u->seen = NULL;
    u->nseen = u->capseen = 0;
    if (u->failed) {
        if (!r->failed) r->err = u->err;
        r->failed = 1;
        if (u->n == 1) {   /* that person only; the others went on */
            r->d.rep->failed++;
            report_add(r->d.rep, u->pp[0]->smtp, 1, "%s", u->err.msg);
        }
    }
    pass_step(r);
}

static unit *unit_new(reconcile *r, const person *const *pp, size_t n, cb_err *err)
{
    unit *u = calloc(1, sizeof *u);
    if (!u || !(u->pp = calloc(n ? n : 1, sizeof *u->pp))) {
        free(u);
        cb_errf(err, CB_ENOMEM, "out of memory");
        return NULL;
    }
    u->r = r;
    u->n = n;
    memcpy(u->pp, pp, n * sizeof *pp);
    char name[KEY_MAX], *buf = malloc(65536);
    store_txn *t;
    cursor_name(u, name);
    int rc = buf ? store_begin(r->d.st, 0, &t, err) : cb_errf(err, CB_ENOMEM, "out of memory");
    if (rc == CB_OK) {
        rc = store_get(t, name, buf, 65536, err);
        if (rc == CB_ENOTFOUND) rc = CB_OK, *buf = '\0';
        store_abort(t);
    }
    if (rc == CB_OK && (!(u->stored = strdup(buf)) || !(u->cursor = strdup(r->full ? "" : buf))))
        rc = cb_errf(err, CB_ENOMEM, "out of memory");
    free(buf);
    if (rc) {
        unit_free(u);
        return NULL;
    }
    return u;
}

static void start_units(reconcile *r)
{
    int per = OPS(r, r->from)->per_person;
    size_t n = per ? r->nsel : 1;
    r->units = calloc(n, sizeof *r->units);
    r->outstanding = 1;   /* held until every unit has started */
    for (size_t i = 0; r->units && i < n; i++) {
        if (per && r->held[pidx(r, r->sel[i])] == HELD_PERSON) continue;
        cb_err e = {0};
        unit *u = unit_new(r, per ? &r->sel[i] : r->sel, per ? 1 : r->nsel, &e);
        if (!u) {
            if (!r->failed) r->err = e;
            r->failed = 1;
            continue;
        }
        r->units[r->nunits++] = u;
        r->outstanding++;
        unit_read(u);
    }
    if (!r->units) {
        r->failed = 1;
        cb_errf(&r->err, CB_ENOMEM, "out of memory");
    }
    pass_step(r);
}

/* ---- recovery ------------------------------------------------------------ */

static void recovered_one(reconcile *r)
{
    if (--r->outstanding) return;
    if (r->failed) {
        r->outstanding = 1;
        pass_step(r);
    } else {
        start_units(r);
    }
}

static void on_recovered(void *ud, int found, const char *id, const char *version,
                         const cb_err *err)
{
    recovery *rv = ud;
    reconcile *r = rv->r;
    cb_err e = {0};
    if (err && err->code == CB_EMAILBOX) hold_person(r, rv->p, err->msg);   /* its intent waits */
    else if (err) e = *err;
    else if (found) adopt(r, &rv->in, id, version, &e);
    else {
        store_txn *t;
        if (store_begin(r->d.st, 1, &t, &e) == CB_OK) {
            if (store_intent_del(t, rv->in.tag, &e) == CB_OK) store_commit(t, &e);
            else store_abort(t);
        }
    }
    if (e.code) {
        if (!r->failed) r->err = e;
        r->failed = 1;
    }
    pend_free(rv);
    recovered_one(r);
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

/* Creations are looked up by tag; everything else is dropped: updates and
 * deletions are planned again from the same change. */
static int recover(reconcile *r, cb_err *err)
{
    store_txn *t;
    intent_list l = {0};
    int rc = store_begin(r->d.st, 1, &t, err);
    if (rc) return rc;
    rc = store_intent_each(t, collect_intent, &l, err);
    for (size_t i = 0; i < l.n && rc == CB_OK; i++)
        if (l.v[i].op != OP_CREATE || !people_by_smtp(r->d.people, l.v[i].mailbox))
            rc = store_intent_del(t, l.v[i].tag, err);
    rc = rc == CB_OK ? store_commit(t, err) : (store_abort(t), rc);
    r->outstanding = 1;   /* held until every look-up is sent */
    for (size_t i = 0; i < l.n && rc == CB_OK; i++) {
        const person *p = people_by_smtp(r->d.people, l.v[i].mailbox);
        if (l.v[i].op != OP_CREATE || !p) continue;
        side_id s = l.v[i].target == SIDE_APPLE ? SIDE_APPLE : SIDE_EXCHANGE;
        recovery *rv = pend_new(r, sizeof *rv);
        if (!rv) {
            rc = cb_errf(err, CB_ENOMEM, "out of memory");
            break;
        }
        rv->r = r;
        rv->in = l.v[i];
        rv->p = p;
        r->outstanding++;
        if (OPS(r, s)->find_tag(r->d.sides[s], p, rv->in.tag, on_recovered, rv, err) != CB_OK) {
            r->outstanding--;
            pend_free(rv);
            if (err->code == CB_EMAILBOX) hold_person(r, p, err->msg);
            else rc = err->code ? err->code : CB_EIO;
        }
    }
    free(l.v);
    if (rc) {
        r->failed = 1;
        r->err = *err;
    }
    recovered_one(r);
    return CB_OK;
}

/* ---- the contract -------------------------------------------------------- */

int reconcile_new(const reconcile_deps *deps, reconcile **out, cb_err *err)
{
    *out = NULL;
    reconcile *r = calloc(1, sizeof *r);
    size_t n = deps->people->n + 1;
    if (!r || !(r->held = calloc(n, 1)) || !(r->counted = calloc(n, 1)) ||
        !(r->dels = calloc(n, sizeof *r->dels)) || !(r->links0 = calloc(n, sizeof *r->links0)) ||
        !(r->sel = calloc(n, sizeof *r->sel)) || !(r->chosen = calloc(n, 1)) ||
        !(r->page_dels = calloc(n, sizeof *r->page_dels))) {
        reconcile_free(r);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    r->d = *deps;
    r->pending.next = r->pending.prev = &r->pending;
    *out = r;
    return CB_OK;
}

void reconcile_free(reconcile *r)
{
    if (!r) return;
    if (r->pending.next) pass_free(r);
    free(r->held);
    free(r->counted);
    free(r->dels);
    free(r->links0);
    free(r->sel);
    free(r->chosen);
    free(r->page_dels);
    free(r);
}

int reconcile_pass(reconcile *r, side_id from, const char *const *owners, size_t n, int full,
                   reconcile_done_fn done, void *ud, cb_err *err)
{
    if (r->running) return cb_errf(err, CB_EBUSY, "a pass is already running");
    r->full = full;
    const people *pp = r->d.people;
    r->from = from;
    r->to = from == SIDE_APPLE ? SIDE_EXCHANGE : SIDE_APPLE;
    r->nsel = 0;
    memset(r->chosen, 0, pp->n);
    for (size_t i = 0; i < (owners ? n : pp->n); i++) {
        const person *p = owners ? people_by_uid(pp, owners[i]) : &pp->v[i];
        if (p && !r->chosen[pidx(r, p)]) r->sel[r->nsel++] = p, r->chosen[pidx(r, p)] = 1;
    }
    memset(r->held, 0, pp->n);
    memset(r->counted, 0, pp->n);
    memset(r->dels, 0, pp->n * sizeof *r->dels);
    memset(r->links0, 0, pp->n * sizeof *r->links0);
    r->running = 1;
    r->failed = 0;
    memset(&r->err, 0, sizeof r->err);
    r->done = done;
    r->ud = ud;
    if (from == SIDE_APPLE) r->d.rep->people = (long)r->nsel;
    int rc = recover(r, err);
    if (rc) r->running = 0;   /* not started: done will not be called */
    return rc;
}

typedef struct queued_ctx {
    reconcile *r;
    side_id from;
    char *flags;
    int n;
} queued_ctx;

static int mark_queued(void *ud, const char *name, const char *value)
{
    (void)value;
    queued_ctx *q = ud;
    source_key sk;
    const char *key = key_arg(rewrite_kind(q->from), name);
    const person *p = key && key_source_parse(key, &sk) == CB_OK
                          ? people_by_uid(q->r->d.people, sk.owner) : NULL;
    if (!p) return 0;
    size_t i = pidx(q->r, p);
    if (q->flags && !q->flags[i]) q->flags[i] = 1;
    q->n++;
    return 0;
}

int reconcile_queued(reconcile *r, side_id from, char *flags, cb_err *err)
{
    store_txn *t;
    char prefix[KEY_MAX];
    key_prefix(rewrite_kind(from), NULL, prefix);
    queued_ctx q = {r, from, flags, 0};
    int rc = store_begin(r->d.st, 0, &t, err);
    if (rc) return rc;
    rc = store_each(t, prefix, mark_queued, &q, err);
    store_abort(t);
    return rc ? rc : q.n;
}
