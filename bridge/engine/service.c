#include "service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../exchange/ews_stream.h"
#include "../../state/keys.h"
#include "mirror.h"
#include "sync.h"

struct service {
    service_deps d;
    pg_source *pg;
    pg_sink *sink;
    ews_client *ews;
    sync_ctx *sync;
    mirror *mirror;
    ews_stream *stream;
    char *dirty;            /* one flag per person in the map */
    int any_dirty, first, in_cycle, running, stopping, mirror_all;
    long long last_full;    /* monotonic ms of the last everyone pass */
    struct event *timer;
    service_done_fn done;
    void *ud;
    const char **owners;    /* the mirror pass's people */
    size_t nowners;
};

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
    const config *cfg = deps->cfg;
    size_t n = deps->people->n;
    int rc;
    if (!(sv->dirty = calloc(n + 1, 1)) || !(sv->owners = calloc(n + 1, sizeof *sv->owners)))
        rc = cb_errf(err, CB_ENOMEM, "out of memory");
    else if ((rc = pg_source_open(cfg->apple_dsn, &sv->pg, err)) ||
             (rc = pg_sink_open(cfg->apple_write_dsn, deps->tz, cfg->default_tz, &sv->sink, err)) ||
             (rc = ews_client_new(deps->base, cfg, &sv->ews, err)))
        ;
    else {
        sync_deps sd = {cfg, deps->people, deps->tz, deps->st, sv->pg, sv->ews, deps->rep,
                        deps->force_delete};
        mirror_deps md = {cfg, deps->people, deps->tz, deps->st, sv->sink, sv->ews, deps->rep,
                          deps->force_delete};
        if (!(rc = sync_new(&sd, &sv->sync, err))) rc = mirror_new(&md, &sv->mirror, err);
    }
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
    ews_stream_free(sv->stream);
    if (sv->timer) event_free(sv->timer);
    mirror_free(sv->mirror);
    sync_free(sv->sync);
    ews_client_free(sv->ews);
    pg_sink_close(sv->sink);
    pg_source_close(sv->pg);
    free(sv->dirty);
    free(sv->owners);
    free(sv);
}

ews_client *service_ews(service *sv) { return sv->ews; }
pg_source *service_source(service *sv) { return sv->pg; }
pg_sink *service_sink(service *sv) { return sv->sink; }

/* ---- one cycle -------------------------------------------------------- */

static void cycle_end(service *sv, int rc, const cb_err *err)
{
    sv->in_cycle = 0;
    service_done_fn done = sv->done;
    sv->done = NULL;
    if (done) done(sv->ud, rc, err);
}

static int has_prefix_entry(void *ud, const char *name, const char *value)
{
    (void)name;
    (void)value;
    *(int *)ud = 1;
    return 1;
}

/* Whether the state holds work handed from one engine to the other. A
 * state that cannot be read says "maybe": the extra pass costs little. */
static int handed_over(service *sv, const char *prefix)
{
    store_txn *t;
    int found = 0;
    if (store_begin(sv->d.st, 0, &t, NULL) != CB_OK) return 1;
    int rc = store_each(t, prefix, has_prefix_entry, &found, NULL);
    store_abort(t);
    return found || (rc != CB_OK && rc != 1);
}

static void on_resync(void *ud, int rc, const cb_err *err)
{
    cycle_end(ud, rc, err);
}

/* Edits found in Exchange for Apple-authoritative people are overwritten
 * in the same cycle rather than the next one. */
static void on_mirror(void *ud, int rc, const cb_err *err)
{
    service *sv = ud;
    cb_err e = {0};
    char prefix[STORE_KEY_MAX];
    key_prefix(KEY_REPUSH, NULL, prefix);
    if (rc != CB_OK || !handed_over(sv, prefix)) cycle_end(sv, rc, err);
    else if (sync_pass(sv->sync, on_resync, sv, &e) != CB_OK) cycle_end(sv, e.code, &e);
}

static int mark_refetch(void *ud, const char *name, const char *value)
{
    (void)value;
    service *sv = ud;
    const char *key = key_arg(KEY_REFETCH, name);
    for (size_t i = 0; key && i < sv->d.people->n; i++)
        if (key_source_owned(key, sv->d.people->v[i].owner_uid)) sv->dirty[i] = 1;
    return 0;
}

/* The people whose folders this cycle reads: dirty ones (notifications,
 * and Apple-side conflicts the sync pass just queued), or everyone. */
static void pick_owners(service *sv, int all)
{
    const people *pp = sv->d.people;
    long long now = mono_ms();
    if (sv->first || now - sv->last_full >= sv->d.cfg->resync_interval_ms) all = 1;
    store_txn *t;
    char prefix[STORE_KEY_MAX];
    key_prefix(KEY_REFETCH, NULL, prefix);
    /* Queued refetches that cannot be read: read everyone instead. */
    if (store_begin(sv->d.st, 0, &t, NULL) != CB_OK) all = 1;
    else {
        if (store_each(t, prefix, mark_refetch, sv, NULL) != CB_OK) all = 1;
        store_abort(t);
    }
    sv->nowners = 0;
    for (size_t i = 0; i < pp->n; i++)
        if (all || sv->dirty[i]) sv->owners[sv->nowners++] = pp->v[i].owner_uid;
    if (all) sv->last_full = now;
    memset(sv->dirty, 0, pp->n);
    sv->any_dirty = 0;
    sv->first = 0;
}

static void on_sync(void *ud, int rc, const cb_err *err)
{
    service *sv = ud;
    if (rc != CB_OK) {
        cycle_end(sv, rc, err);
        return;
    }
    cb_err e = {0};
    pick_owners(sv, sv->mirror_all);
    if (!sv->nowners) {
        cycle_end(sv, CB_OK, NULL);
        return;
    }
    if (mirror_pass(sv->mirror, sv->owners, sv->nowners, on_mirror, sv, &e) != CB_OK)
        cycle_end(sv, e.code ? e.code : CB_EIO, &e);
}

int service_cycle(service *sv, int mirror_all, service_done_fn done, void *ud, cb_err *err)
{
    if (sv->in_cycle) return cb_errf(err, CB_EBUSY, "a cycle is already running");
    sv->in_cycle = 1;
    sv->done = done;
    sv->ud = ud;
    sv->mirror_all = mirror_all;
    int rc = sync_pass(sv->sync, on_sync, sv, err);
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

static void on_stream_event(void *ud, const char *smtp)
{
    service_mark_dirty(ud, smtp);
}

int service_run(service *sv, cb_err *err)
{
    int rc = ews_stream_new(sv->d.base, sv->d.cfg, sv->d.people, on_stream_event, sv, &sv->stream, err);
    if (rc) return rc;
    sv->running = 1;
    ews_stream_start(sv->stream);
    arm(sv, 0);
    return CB_OK;
}

void service_stop(service *sv)
{
    sv->stopping = 1;
    ews_stream_stop(sv->stream);
    if (sv->stream) {
        ews_stream_stats st = ews_stream_get_stats(sv->stream);
        fprintf(stderr, "calbridge: streams: %ld subscribed, %ld connections (%ld closed by the "
                        "server, %ld lost), %ld envelopes, %ld notifications, %ld heartbeats, "
                        "%ld re-subscribed\n", st.subscribed, st.connections, st.closed, st.dropped,
                st.envelopes, st.notifications, st.heartbeats, st.resubscribed);
    }
    /* Between cycles nothing is in flight; during one, state is crash-safe
     * anyway, but finishing it avoids redoing its work. */
    if (!sv->in_cycle) event_base_loopexit(sv->d.base, NULL);
}
