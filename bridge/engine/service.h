/* service.h — the running bridge: the engine, its two sides, and the
 * cycle that drives them inside one libevent loop.
 *
 * A cycle is a pass over the Apple side followed by a pass over the
 * Exchange side (reconcile.h), and a second Apple pass when the Exchange
 * pass queued rewrites for it (edits in Exchange of Apple-authoritative
 * events are overwritten in the same cycle). Cycles never overlap. The
 * Exchange pass covers the people marked dirty since the last one (change
 * signals, rewrites queued for them), everyone when the resync interval
 * has passed, and everyone on the first cycle.
 */
#ifndef SERVICE_H
#define SERVICE_H

#include <event2/event.h>
#include "../../mapping/people.h"
#include "../../state/store.h"
#include "../cli/config.h"
#include "../cli/report.h"
#include "../side.h"

typedef struct service service;

typedef struct service_deps {
    const config *cfg;
    const people *people;
    store *st;
    struct event_base *base;
    report *rep;
    int force_delete;
    side *sides[2];         /* by side_id; not owned */
} service_deps;

typedef void (*service_done_fn)(void *ud, int rc, const cb_err *err);

int service_open(const service_deps *deps, service **out, cb_err *err);
void service_close(service *sv);

/* Runs one cycle; done is called once. mirror_all forces the Exchange pass
 * over everyone. */
int service_cycle(service *sv, int mirror_all, service_done_fn done, void *ud, cb_err *err);

/* Marks a person (by SMTP address) for the next Exchange pass, and starts
 * a cycle after the debounce delay when running. */
void service_mark_dirty(service *sv, const char *smtp);

/* Runs cycles on the poll timer, with the sides' change signals, until
 * service_stop(); errors of a cycle are logged and retried on the next. */
int service_run(service *sv, cb_err *err);
/* Stops after the cycle in flight; prints the signals' counters. */
void service_stop(service *sv);

#endif
