/* sync.h — the Apple -> Exchange engine: one pass reads what changed in
 * CalendarServer and makes each mapped person's Exchange calendar match.
 *
 * A pass runs, inside the caller's libevent loop:
 *   1. recovery: every intent left pending by an earlier run is looked up in
 *      Exchange by its tag; a found item is adopted (linked), otherwise the
 *      intent is dropped and the change, which the cursor has not passed,
 *      is carried again below;
 *   2. read: a poll from the stored cursor, or a full scan on the first run
 *      and when CalendarServer has trimmed the revisions the cursor needs
 *      (the scan matches existing links, and deletes only linked items
 *      whose event is gone);
 *   3. plan and intent: each change becomes create / update / delete / no-op
 *      against its link; all intents of the pass are committed before any
 *      request is sent;
 *   4. effect: CreateItem / UpdateItem / DeleteItem batched per mailbox,
 *      SendToNone, updates in place on the linked ItemId;
 *   5. commit: per batch answer, one LMDB transaction links what succeeded
 *      and clears the intents; the cursor moves only when no intent is left.
 * People whose authority is Exchange are not carried: their Apple home is a
 * mirror (mirror.h). A change there that the bridge did not write (its
 * revision or content differs from the link) is a conflict: recorded, and
 * queued ("refetch:<key>") for the mirror to overwrite with Exchange's
 * version. "repush:<key>" entries, left by the mirror for edits made in
 * Exchange on Apple-authoritative people, are carried again here.
 * Mass-delete guard: a pass that would delete more than the configured
 * share of one person's items holds those deletions back (and the cursor
 * with them) and reports, unless force_delete.
 * Bad events fail alone and are reported in the report.
 */
#ifndef SYNC_H
#define SYNC_H

#include <event2/event.h>
#include "../../mapping/people.h"
#include "../../mapping/tzmap.h"
#include "../../state/store.h"
#include "../cli/config.h"
#include "../exchange/ews_client.h"
#include "../apple/pg_source.h"
#include "../cli/report.h"


typedef struct sync_ctx sync_ctx;

typedef struct sync_deps {
    const config *cfg;
    const people *people;
    const tzmap *tz;
    store *st;
    pg_source *pg;
    ews_client *ews;
    report *rep;        /* counters and per-event entries accumulate here */
    int force_delete;   /* override the mass-delete guard */
} sync_deps;

typedef void (*sync_done_fn)(void *ud, int rc, const cb_err *err);

int sync_new(const sync_deps *deps, sync_ctx **out, cb_err *err);
void sync_free(sync_ctx *s);

/* Starts a pass; done is called once when it has finished (rc CB_OK) or
 * stopped (rc < 0, err says why; what was committed stays committed). */
int sync_pass(sync_ctx *s, sync_done_fn done, void *ud, cb_err *err);

#endif
