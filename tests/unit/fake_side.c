#include "fake_side.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../state/keys.h"

typedef struct item {
    char id[128], uid[128], subject[128], tag[40];
    const person *p;
    long long ver;
    int alive;
} item;

struct fake {
    side base;
    side_ops ops;
    fake_world *w;
    const people *pp;
    side_id half;
    size_t page_max;
    item *v;
    size_t n;
    long long seq;
    long writes, made;
    fake_faults faults;
};

enum { READ, FETCH, APPLY, FIND };

typedef struct call {
    struct call *next;
    int kind;
    fake *f;
    const person **pp;
    size_t n;
    char *cursor;
    char **ids;
    side_write *wr;
    char tag[40];
    void *done, *ud;
} call;

struct fake_world {
    call *head, *tail;
    long step, crash_at;
    int after_effect, crashed;
};

fake_world *world_new(void)
{
    return calloc(1, sizeof(fake_world));
}

static void call_free(call *c)
{
    for (size_t i = 0; c->ids && i < c->n; i++) free(c->ids[i]);
    free(c->ids);
    free(c->pp);
    free(c->cursor);
    free(c);
}

static void queue_clear(fake_world *w)
{
    while (w->head) {
        call *c = w->head;
        w->head = c->next;
        call_free(c);
    }
    w->tail = NULL;
}

void world_free(fake_world *w)
{
    if (!w) return;
    queue_clear(w);
    free(w);
}

void world_crash_at(fake_world *w, long k, int after_effect)
{
    w->crash_at = w->step + k;
    w->after_effect = after_effect;
}

int world_crashed(const fake_world *w)
{
    return w->crashed;
}

long world_steps(const fake_world *w)
{
    return w->step;
}

void world_revive(fake_world *w)
{
    queue_clear(w);
    w->crashed = 0;
    w->crash_at = 0;
}

static int enqueue(fake *f, call *c)
{
    c->f = f;
    if (f->w->tail) f->w->tail->next = c;
    else f->w->head = c;
    f->w->tail = c;
    return CB_OK;
}

/* ---- content ---- */

static item *find(fake *f, const char *id)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].alive && !strcmp(f->v[i].id, id)) return &f->v[i];
    return NULL;
}

static ews_event *event_of(const fake *f, const item *it)
{
    ews_event *ev = calloc(1, sizeof *ev);
    ews_item *x = ews_item_new();
    char ver[32];
    snprintf(ver, sizeof ver, "%lld", it->ver);
    x->role = ROLE_MAIN;
    x->subject = strdup(it->subject);
    snprintf(x->start, sizeof x->start, "2030-01-01T10:00:00Z");
    snprintf(x->end, sizeof x->end, "2030-01-01T11:00:00Z");
    ev->uid = strdup(it->uid);
    ews_event_add(ev, x);
    if (f->half == SIDE_EXCHANGE) {
        ev->item_id = strdup(it->id);
        ev->change_key = strdup(ver);
        if (*it->tag) ev->tag = strdup(it->tag);
    }
    return ev;
}

static item *add(fake *f, const person *p, const char *id, const char *uid)
{
    item *v = realloc(f->v, (f->n + 1) * sizeof *v);
    if (!v) abort();
    f->v = v;
    item *it = &v[f->n++];
    memset(it, 0, sizeof *it);
    it->p = p;
    it->alive = 1;
    f->made++;
    if (id && *id) snprintf(it->id, sizeof it->id, "%s", id);
    else if (f->half == SIDE_APPLE) snprintf(it->id, sizeof it->id, "%s/1/u%ld.ics", p->owner_uid, f->made);
    else snprintf(it->id, sizeof it->id, "X%ld", f->made);
    if (uid) snprintf(it->uid, sizeof it->uid, "%s", uid);
    else snprintf(it->uid, sizeof it->uid, "uid-%d-%ld", (int)f->half, f->made);
    return it;
}

const char *fake_put(fake *f, const person *p, const char *id, const char *subject)
{
    item *it = id ? find(f, id) : NULL;
    if (!it) it = add(f, p, id, NULL);
    snprintf(it->subject, sizeof it->subject, "%s", subject);
    it->ver = ++f->seq;
    return it->id;
}

int fake_del(fake *f, const char *id)
{
    item *it = find(f, id);
    if (!it) return CB_ENOTFOUND;
    it->alive = 0;
    it->ver = ++f->seq;
    return CB_OK;
}

const char *fake_find(fake *f, const person *p, const char *subject)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].alive && f->v[i].p == p && !strcmp(f->v[i].subject, subject)) return f->v[i].id;
    return NULL;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char *fake_subjects(fake *f, const person *p)
{
    const char **s = calloc(f->n + 1, sizeof *s);
    size_t n = 0, len = 1;
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].alive && f->v[i].p == p) s[n++] = f->v[i].subject, len += strlen(f->v[i].subject) + 1;
    qsort(s, n, sizeof *s, cmp_str);
    char *out = calloc(len, 1);
    for (size_t i = 0; i < n; i++) strcat(strcat(out, s[i]), "\n");
    free(s);
    return out;
}

size_t fake_count(fake *f, const person *p)
{
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++) n += f->v[i].alive && f->v[i].p == p;
    return n;
}

long fake_writes(const fake *f)
{
    return f->writes;
}

fake_faults *fake_faults_of(fake *f)
{
    return &f->faults;
}

/* ---- answering ---- */

static int cmp_ver(const void *a, const void *b)
{
    const item *x = *(item *const *)a, *y = *(item *const *)b;
    return (x->ver > y->ver) - (x->ver < y->ver);
}

static int asked(const call *c, const person *p)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->pp[i] == p) return 1;
    return 0;
}

static void answer_read(call *c)
{
    fake *f = c->f;
    side_read_fn done = (side_read_fn)c->done;
    if (f->faults.side_down || (c->n == 1 && f->faults.down == c->pp[0])) {
        cb_err e = {f->faults.side_down ? CB_EIO : CB_EMAILBOX, "fake: unusable"};
        done(c->ud, NULL, &e);
        return;
    }
    long long since = c->cursor ? atoll(c->cursor) : 0;
    item **v = calloc(f->n + 1, sizeof *v);
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        if (asked(c, f->v[i].p) && f->v[i].ver > since && (f->v[i].alive || c->cursor))
            v[n++] = &f->v[i];
    qsort(v, n, sizeof *v, cmp_ver);
    side_page *pg = calloc(1, sizeof *pg);
    size_t take = n < f->page_max ? n : f->page_max;
    pg->v = calloc(take + 1, sizeof *pg->v);
    char ver[32];
    for (size_t i = 0; i < take; i++) {
        side_change *ch = &pg->v[pg->n++];
        snprintf(ver, sizeof ver, "%lld", v[i]->ver);
        ch->p = v[i]->p;
        ch->id = strdup(v[i]->id);
        ch->version = strdup(ver);
        ch->deleted = !v[i]->alive;
        if (f->half == SIDE_APPLE && v[i]->alive) ch->ev = event_of(f, v[i]);
    }
    snprintf(ver, sizeof ver, "%lld", take ? v[take - 1]->ver : since);
    pg->cursor = strdup(ver);
    pg->last = take == n;
    pg->full = !c->cursor;
    free(v);
    done(c->ud, pg, NULL);
}

static void answer_fetch(call *c)
{
    fake *f = c->f;
    side_fetch_fn done = (side_fetch_fn)c->done;
    if (f->faults.side_down || f->faults.down == c->pp[0]) {
        cb_err e = {f->faults.side_down ? CB_EIO : CB_EMAILBOX, "fake: unusable"};
        done(c->ud, NULL, 0, &e);
        return;
    }
    side_item *v = calloc(c->n + 1, sizeof *v);
    for (size_t i = 0; i < c->n; i++) {
        item *it = find(f, c->ids[i]);
        v[i].id = strdup(c->ids[i]);
        v[i].code = it ? CB_OK : CB_ENOTFOUND;
        if (it) {
            char ver[32];
            snprintf(ver, sizeof ver, "%lld", it->ver);
            v[i].version = strdup(ver);
            v[i].ev = event_of(f, it);
        }
    }
    done(c->ud, v, c->n, NULL);
}

static void result(side_write *w, int code, const char *msg)
{
    w->code = code;
    snprintf(w->msg, sizeof w->msg, "%s", msg);
}

/* The writes' effect; the answer is sent only when respond. */
static void answer_apply(call *c, int respond)
{
    fake *f = c->f;
    side_write *w = c->wr;
    const person *p = c->pp[0];
    int busy = f->faults.busy > 0, lose = 0;
    if (busy) f->faults.busy--;
    for (size_t i = 0; i < c->n; i++) {
        const char *subj = w[i].ev ? w[i].ev->items[0]->subject : "";
        item *it = w[i].op == SIDE_CREATE ? NULL : find(f, w[i].id);
        char ver[32];
        if (f->faults.side_down) result(&w[i], CB_EIO, "fake: down");
        else if (f->faults.down == p) result(&w[i], CB_EMAILBOX, "fake: mailbox unusable");
        else if (busy) result(&w[i], CB_EBUSY, "ErrorServerBusy: fake");
        else if (f->faults.bad_subject && !strcmp(subj, f->faults.bad_subject))
            result(&w[i], CB_EREJECTED, "ErrorInvalidRequest: fake refuses it");
        else if (w[i].op != SIDE_CREATE && !it) result(&w[i], CB_ENOTFOUND, "ErrorItemNotFound");
        else {
            if (w[i].op == SIDE_CREATE) {
                it = f->half == SIDE_APPLE ? find(f, w[i].id) : NULL;   /* placed: idempotent */
                if (!it) it = add(f, p, w[i].id, w[i].ev->uid);
                snprintf(it->tag, sizeof it->tag, "%s", w[i].tag);
                lose = f->faults.lose > 0;
            }
            if (w[i].op == SIDE_DELETE) it->alive = 0;
            else snprintf(it->subject, sizeof it->subject, "%s", subj);
            it->ver = ++f->seq;
            f->writes++;
            snprintf(ver, sizeof ver, "%lld", it->ver);
            w[i].code = lose ? CB_ELOST : CB_OK;
            snprintf(w[i].new_id, sizeof w[i].new_id, "%s", it->id);
            snprintf(w[i].version, sizeof w[i].version, "%s", ver);
        }
    }
    if (lose) f->faults.lose--;
    if (respond) ((side_apply_fn)c->done)(c->ud, w, c->n, NULL);
}

static void answer_find(call *c)
{
    fake *f = c->f;
    side_found_fn done = (side_found_fn)c->done;
    if (f->faults.side_down || f->faults.down == c->pp[0]) {
        cb_err e = {f->faults.side_down ? CB_EIO : CB_EMAILBOX, "fake: unusable"};
        done(c->ud, 0, NULL, NULL, &e);
        return;
    }
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].alive && f->v[i].p == c->pp[0] && !strcmp(f->v[i].tag, c->tag)) {
            char ver[32];
            snprintf(ver, sizeof ver, "%lld", f->v[i].ver);
            done(c->ud, 1, f->v[i].id, ver, NULL);
            return;
        }
    done(c->ud, 0, NULL, NULL, NULL);
}

long world_run(fake_world *w)
{
    long n = 0;
    while (w->head && !w->crashed) {
        call *c = w->head;
        w->head = c->next;
        if (!w->head) w->tail = NULL;
        w->step++;
        n++;
        if (w->crash_at && w->step >= w->crash_at) {
            if (c->kind == APPLY && w->after_effect) answer_apply(c, 0);
            w->crashed = 1;
        } else if (c->kind == READ) answer_read(c);
        else if (c->kind == FETCH) answer_fetch(c);
        else if (c->kind == APPLY) answer_apply(c, 1);
        else answer_find(c);
        call_free(c);
    }
    if (w->crashed) queue_clear(w);
    return n;
}

/* ---- the contract ---- */

static call *call_new(int kind, const person *const *pp, size_t n, void *done, void *ud)
{
    call *c = calloc(1, sizeof *c);
    c->kind = kind;
    c->pp = calloc(n + 1, sizeof *c->pp);
    memcpy(c->pp, pp, n * sizeof *pp);
    c->n = n;
    c->done = done;
    c->ud = ud;
    return c;
}

static int f_read(side *s, const person *const *pp, size_t n, const char *cursor,
                  side_read_fn done, void *ud, cb_err *err)
{
    (void)err;
    call *c = call_new(READ, pp, n, (void *)done, ud);
    if (cursor) c->cursor = strdup(cursor);
    return enqueue((fake *)s, c);
}

static int f_fetch(side *s, const person *p, const char *const *ids, size_t n,
                   side_fetch_fn done, void *ud, cb_err *err)
{
    (void)err;
    call *c = call_new(FETCH, &p, 1, (void *)done, ud);
    c->n = n;
    c->ids = calloc(n + 1, sizeof *c->ids);
    for (size_t i = 0; i < n; i++) c->ids[i] = strdup(ids[i]);
    return enqueue((fake *)s, c);
}

static int f_apply(side *s, const person *p, side_write *w, size_t n, side_apply_fn done,
                   void *ud, cb_err *err)
{
    (void)err;
    call *c = call_new(APPLY, &p, 1, (void *)done, ud);
    c->n = n;
    c->wr = w;
    return enqueue((fake *)s, c);
}

static int f_find(side *s, const person *p, const char *tag, side_found_fn done, void *ud,
                  cb_err *err)
{
    (void)err;
    call *c = call_new(FIND, &p, 1, (void *)done, ud);
    c->n = 1;
    snprintf(c->tag, sizeof c->tag, "%s", tag);
    return enqueue((fake *)s, c);
}

static int f_place(side *s, const person *p, const ews_event *ev, char id[1024], cb_err *err)
{
    (void)err;
    fake *f = (fake *)s;
    id[0] = '\0';
    if (f->half == SIDE_APPLE) snprintf(id, 1024, "%s/1/%s.ics", p->owner_uid, ev->uid ? ev->uid : "x");
    return CB_OK;
}

static int f_covers(const char *have, const char *seen)
{
    return atoll(seen) > 0 && atoll(have) >= atoll(seen);
}

static void f_close(side *s)
{
    fake *f = (fake *)s;
    free(f->v);
    free(f);
}

fake *fake_new(fake_world *w, const people *pp, side_id half, size_t page_max)
{
    fake *f = calloc(1, sizeof *f);
    f->w = w;
    f->pp = pp;
    f->half = half;
    f->page_max = page_max;
    f->ops = (side_ops){.name = half == SIDE_APPLE ? "Apple" : "Exchange", .half = half,
                        .per_person = half == SIDE_EXCHANGE, .read = f_read, .fetch = f_fetch,
                        .apply = f_apply, .find_tag = f_find, .place = f_place,
                        .covers = f_covers, .close = f_close};
    f->base.ops = &f->ops;
    return f;
}

side *fake_side(fake *f)
{
    return &f->base;
}
