/* service.h — the running bridge: the two engines, their connections, and
 * the cycle that drives them inside one libevent loop.
 *
 * A cycle is an Apple -> Exchange pass (sync.h) followed by an Exchange ->
 * Apple pass (mirror.h). Cycles never overlap: the engines share the links
 * and hand work to each other between passes ("refetch:", "repush:").
 * The mirror pass of a cycle covers the people marked dirty since the last
 * one (stream notifications, see ews_stream.h), everyone when the resync
 * interval has passed, and everyone on the first cycle.
 */
#ifndef SERVICE_H
#define SERVICE_H

#include <event2/event.h>
#include "../../mapping/people.h"
#include "../../mapping/tzmap.h"
#include "../../state/store.h"
#include "../cli/config.h"
#include "../exchange/ews_client.h"
#include "../apple/pg_sink.h"
#include "../apple/pg_source.h"
#include "../cli/report.h"

typedef struct service service;

typedef struct service_deps {
    const config *cfg;
    const people *people;
    const tzmap *tz;
    store *st;
    struct event_base *base;
    report *rep;
    int force_delete;
} service_deps;

typedef void (*service_done_fn)(void *ud, int rc, const cb_err *err);

/* Connects to both databases' sides; nothing is read or written yet. */
int service_open(const service_deps *deps, service **out, cb_err *err);
void service_close(service *sv);

/* Runs one cycle; done is called once. mirror_all forces the mirror pass
 * over everyone. */
int service_cycle(service *sv, int mirror_all, service_done_fn done, void *ud, cb_err *err);

/* Marks a person (by SMTP address) for the next mirror pass, and starts a
 * cycle after the debounce delay when running. */
void service_mark_dirty(service *sv, const char *smtp);

/* Runs cycles on the poll timer, and streams, until service_stop(); errors
 * of a cycle are logged and retried on the next. */
int service_run(service *sv, cb_err *err);
/* Stops after the cycle in flight; prints the streams' counters. */
void service_stop(service *sv);

/* The EWS client and the Apple reader the cycles use (for cutover). */
ews_client *service_ews(service *sv);
/* The Apple writer, for the privilege check (pg_sink_check_privileges). */
pg_sink *service_sink(service *sv);
pg_source *service_source(service *sv);

#endif
