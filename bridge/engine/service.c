#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reconcile.h"
#include "../../state/keys.h"

typedef struct memo_ctx {   /* side_memo's ud: the store, under the side's name */
    struct service *sv;
    const char *side;
} memo_ctx;

struct service {
    service_deps d;
    memo_ctx memo_ctx[2];
    side_memo memo[2];
    reconcile *eng;
    char *dirty;            /* one flag per person in the map */
    int any_dirty, first, in_cycle, running, stopping, mirror_all, subscribed, full;
    long long last_full;    /* monotonic ms of the last everyone pass */
    struct event *timer;
    service_done_fn done;
    void *ud;
    const char **owners;    /* the Exchange pass's people */
    size_t nowners;
};

#define STOP_GRACE_MS 3000   /* how long a stop waits for the cycle under way */

static long long mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void on_timer(evutil_socket_t fd, short what, void *ud);

int service_open(const service_deps *deps, service **out, cb_err *err)
{
    *out = NULL;
    service *sv = calloc(1, sizeof *sv);
    if (!sv) return cb_errf(err, CB_ENOMEM, "out of memory");
    sv->d = *deps;
    sv->first = 1;
    size_t n = deps->people->n;
    reconcile_deps rd = {deps->cfg, deps->people, deps->st, deps->rep,
                         {deps->sides[SIDE_APPLE], deps->sides[SIDE_EXCHANGE]}, deps->force_delete};
    int rc;
    if (!(sv->dirty = calloc(n + 1, 1)) || !(sv->owners = calloc(n + 1, sizeof *sv->owners)))
        rc = cb_errf(err, CB_ENOMEM, "out of memory");
    else
        rc = reconcile_new(&rd, &sv->eng, err);
    if (rc == CB_OK && !(sv->timer = evtimer_new(deps->base, on_timer, sv)))
        rc = cb_errf(err, CB_ENOMEM, "out of memory");
    if (rc) {
        service_close(sv);
        return rc;
    }
    *out = sv;
    return CB_OK;
}

void service_close(service *sv)
{
    if (!sv) return;
    if (sv->timer) event_free(sv->timer);
    reconcile_free(sv->eng);
    free(sv->dirty);
    free(sv->owners);
    free(sv);
}

/* ---- one cycle -------------------------------------------------------- */

static void cycle_end(service *sv, int rc, const cb_err *err)
{
    sv->in_cycle = 0;
    service_done_fn done = sv->done;
    sv->done = NULL;
    if (done) done(sv->ud, rc, err);
}

/* The time of the last full read, kept in the state; a failure only means
 * it is done again. */
static void reconciled_at(service *sv, long long when)
{
    store_txn *t;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", when);
    if (store_begin(sv->d.st, 1, &t, NULL) != CB_OK) return;
    if (store_put(t, KEY_RECONCILED, buf, NULL) == CB_OK) (void)store_commit(t, NULL);
    else store_abort(t);
}

/* Whether the periodic reconciliation is due: every Exchange calendar read
 * in full, so that items gone without a change Exchange reports (a mailbox
 * restored, an administrator's purge) are found. The time is kept in the
 * state, so the interval spans restarts; the first time only starts it. */
static int reconcile_due(service *sv)
{
    long long iv = sv->d.cfg->reconcile_interval_s, now = (long long)time(NULL);
    if (iv <= 0) return 0;
    store_txn *t;
    char buf[32];
    if (store_begin(sv->d.st, 0, &t, NULL) != CB_OK) return 0;
    int rc = store_get(t, KEY_RECONCILED, buf, sizeof buf, NULL);
    store_abort(t);
    if (rc == CB_ENOTFOUND) reconciled_at(sv, now);
    if (rc != CB_OK) return 0;   /* first time, or unreadable: the next cycle tries again */
    return now - strtoll(buf, NULL, 10) >= iv;
}

static void on_resync(void *ud, int rc, const cb_err *err)
{
    cycle_end(ud, rc, err);
}

/* Edits found in Exchange for Apple-authoritative people are overwritten
 * in the same cycle rather than the next one. A queue that cannot be read
 * says "maybe": the extra pass costs little. */
static void on_exchange(void *ud, int rc, const cb_err *err)
{
    service *sv = ud;
    cb_err e = {0};
    if (rc == CB_OK && sv->full) reconciled_at(sv, (long long)time(NULL));
    if (rc != CB_OK || reconcile_queued(sv->eng, SIDE_APPLE, NULL, NULL) == 0)
        cycle_end(sv, rc, err);
    else if (reconcile_pass(sv->eng, SIDE_APPLE, NULL, 0, 0, on_resync, sv, &e) != CB_OK)
        cycle_end(sv, e.code, &e);
}

/* The people whose Exchange calendars this cycle reads: dirty ones
 * (signals, and rewrites the Apple pass just queued for them), or
 * everyone. */
static void pick_owners(service *sv, int all)
{
    const people *pp = sv->d.people;
    long long now = mono_ms();
    if (sv->first || now - sv->last_full >= sv->d.cfg->resync_interval_ms) all = 1;
    if (reconcile_queued(sv->eng, SIDE_EXCHANGE, sv->dirty, NULL) < 0) all = 1;
    sv->nowners = 0;
    for (size_t i = 0; i < pp->n; i++)
        if (all || sv->dirty[i]) sv->owners[sv->nowners++] = pp->v[i].owner_uid;
    if (all) sv->last_full = now;
    memset(sv->dirty, 0, pp->n);
    sv->any_dirty = 0;
    sv->first = 0;
}

static void on_apple(void *ud, int rc, const cb_err *err)
{
    service *sv = ud;
    if (rc != CB_OK) {
        cycle_end(sv, rc, err);
        return;
    }
    cb_err e = {0};
    sv->full = reconcile_due(sv);
    pick_owners(sv, sv->mirror_all || sv->full);
    if (!sv->nowners) {
        cycle_end(sv, CB_OK, NULL);
        return;
    }
    if (reconcile_pass(sv->eng, SIDE_EXCHANGE, sv->owners, sv->nowners, sv->full, on_exchange, sv,
                       &e))
        cycle_end(sv, e.code ? e.code : CB_EIO, &e);
}

int service_cycle(service *sv, int mirror_all, service_done_fn done, void *ud, cb_err *err)
{
    if (sv->in_cycle) return cb_errf(err, CB_EBUSY, "a cycle is already running");
    sv->in_cycle = 1;
    sv->done = done;
    sv->ud = ud;
    sv->mirror_all = mirror_all;
    int rc = reconcile_pass(sv->eng, SIDE_APPLE, NULL, 0, 0, on_apple, sv, err);
    if (rc != CB_OK) sv->in_cycle = 0;
    return rc;
}

/* ---- running ---------------------------------------------------------- */

static void arm(service *sv, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(sv->timer, &tv);
}

static void on_cycle(void *ud, int rc, const cb_err *err)
{
    service *sv = ud;
    report *rep = sv->d.rep;
    if (rc != CB_OK) fprintf(stderr, "calbridge: cycle stopped: %s\n", err->msg);
    if (rep->created + rep->updated + rep->deleted + rep->failed + rep->ex_written +
        rep->ex_deleted + rep->conflicts)
        fprintf(stderr, "calbridge: cycle: to Exchange %ld created, %ld updated, %ld deleted; "
                        "to Apple %ld written, %ld deleted; %ld conflicts, %ld failed\n",
                rep->created, rep->updated, rep->deleted, rep->ex_written, rep->ex_deleted,
                rep->conflicts, rep->failed);
    report_free(rep);
    if (sv->stopping) {
        event_base_loopexit(sv->d.base, NULL);
        return;
    }
    arm(sv, sv->any_dirty ? sv->d.cfg->debounce_ms : sv->d.cfg->poll_interval_ms);
}

static void on_timer(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    service *sv = ud;
    cb_err e = {0};
    if (sv->stopping) {   /* the cycle did not end within the grace */
        fprintf(stderr, "calbridge: stopping in the middle of a cycle; what it committed "
                        "stays, the rest is done by the next start\n");
        event_base_loopexit(sv->d.base, NULL);
        return;
    }
    if (service_cycle(sv, 0, on_cycle, sv, &e) != CB_OK) on_cycle(sv, e.code, &e);
}

void service_mark_dirty(service *sv, const char *smtp)
{
    const person *p = people_by_smtp(sv->d.people, smtp);
    if (!p) return;
    sv->dirty[p - sv->d.people->v] = 1;
    /* A notification shortens the wait; a burst is absorbed by the debounce. */
    if (sv->running && !sv->in_cycle && !sv->any_dirty) {
        evtimer_del(sv->timer);
        arm(sv, sv->d.cfg->debounce_ms);
    }
    sv->any_dirty = 1;
}

static void on_signal(void *ud, const person *p)
{
    service_mark_dirty(ud, p->smtp);
}

/* side_memo over the store: "memo:<side>:<name>", one short write each. */
static void memo_key(const memo_ctx *m, const char *name, char out[KEY_MAX])
{
    char arg[KEY_MAX];
    snprintf(arg, sizeof arg, "%s:%s", m->side, name);
    key_name(KEY_MEMO, arg, out);
}

static int memo_get(void *ud, const char *name, char *buf, size_t size)
{
    memo_ctx *m = ud;
    char key[KEY_MAX];
    memo_key(m, name, key);
    store_txn *t;
    if (store_begin(m->sv->d.st, 0, &t, NULL) != CB_OK) return -1;
    int rc = store_get(t, key, buf, size, NULL);
    store_abort(t);
    return rc == CB_OK ? 0 : -1;
}

static int memo_put(void *ud, const char *name, const char *value)
{
    memo_ctx *m = ud;
    char key[KEY_MAX];
    memo_key(m, name, key);
    store_txn *t;
    if (store_begin(m->sv->d.st, 1, &t, NULL) != CB_OK) return -1;
    int rc = *value ? store_put(t, key, value, NULL) : store_del(t, key, NULL);
    if (rc != CB_OK && rc != CB_ENOTFOUND) {
        store_abort(t);
        return -1;
    }
    return store_commit(t, NULL) == CB_OK ? 0 : -1;
}

int service_run(service *sv, cb_err *err)
{
    for (int i = 0; i < 2; i++) {
        side *s = sv->d.sides[i];
        if (!s->ops->subscribe) continue;   /* polled */
        sv->memo_ctx[i] = (memo_ctx){sv, s->ops->name};
        sv->memo[i] = (side_memo){memo_get, memo_put, &sv->memo_ctx[i]};
        int rc = s->ops->subscribe(s, on_signal, sv, &sv->memo[i], err);
        if (rc) return rc;
        sv->subscribed |= 1 << i;
    }
    sv->running = 1;
    arm(sv, 0);
    return CB_OK;
}

void service_stop(service *sv)
{
    sv->stopping = 1;
    for (int i = 0; i < 2; i++)
        if (sv->subscribed & (1 << i)) sv->d.sides[i]->ops->unsubscribe(sv->d.sides[i], stderr);
    sv->subscribed = 0;
    /* Between cycles nothing is in flight. During one, finishing it avoids
     * redoing its work, but a long cycle (an initial sync, Exchange asking
     * to back off) must not hold a stop: after a grace the loop ends, and
     * the journal makes that as safe as a crash. */
    if (!sv->in_cycle) {
        event_base_loopexit(sv->d.base, NULL);
        return;
    }
    evtimer_del(sv->timer);
    arm(sv, STOP_GRACE_MS);
}
