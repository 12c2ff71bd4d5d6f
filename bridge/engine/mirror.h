/* mirror.h — the Exchange -> Apple engine. One pass reads what changed in
 * people's Exchange calendar folders and
 *   - for people whose authority is Exchange, writes it into their Apple
 *     home (pg_sink), as CalendarServer would have stored it;
 *   - for people whose authority is Apple, recognises edits made on their
 *     Exchange side: each is a conflict, recorded (`status --conflicts`),
 *     and queued ("repush:<key>") so the next Apple -> Exchange pass
 *     overwrites it with the Apple version.
 *
 * Per person:
 *   1. SyncFolderItems (IdOnly) from the stored SyncState, page by page
 *      (each page written and its SyncState stored before the next; at
 *      most 100 a pass). ErrorInvalidSyncStateData drops the state and
 *      starts over: a full read, which matches existing links, re-creates
 *      nothing, and, once complete, deletes (behind the guard) the links
 *      whose items it did not list: items deleted while the state was lost.
 *   2. Plan. A change whose ChangeKey is the linked one is the bridge's own
 *      write (no echo). An ItemId deleted anywhere in the list is deleted.
 *      If the deletions would remove more than the configured share of the
 *      person's mirrored items, the person stops here and is reported
 *      (mirror_deps.force_delete overrides).
 *   3. GetItem in batches. An item whose content fingerprint equals the
 *      link's is an echo too (Exchange changes ChangeKeys on its own).
 *      "refetch:<key>" entries (Apple-side conflicts found by the sync
 *      engine) are fetched and written whatever their fingerprint.
 *   4. Per batch one PostgreSQL transaction, then one LMDB transaction with
 *      the links. The SyncState is stored last: a crash repeats the pass,
 *      and every write is idempotent (an item always lands on the same
 *      resource name).
 * Bad items fail alone and are reported.
 */
#ifndef MIRROR_H
#define MIRROR_H

#include "../../mapping/people.h"
#include "../../mapping/tzmap.h"
#include "../../state/store.h"
#include "../cli/config.h"
#include "../exchange/ews_client.h"
#include "../apple/pg_sink.h"
#include "../cli/report.h"

typedef struct mirror mirror;

typedef struct mirror_deps {
    const config *cfg;
    const people *people;
    const tzmap *tz;
    store *st;
    pg_sink *sink;
    ews_client *ews;
    report *rep;
    int force_delete;
} mirror_deps;

typedef void (*mirror_done_fn)(void *ud, int rc, const cb_err *err);

int mirror_new(const mirror_deps *deps, mirror **out, cb_err *err);
void mirror_free(mirror *m);

/* Starts a pass over owners (n of them; NULL means every person in the
 * map). done is called once when every person has finished; rc is CB_OK
 * unless some person could not complete (err names the first). */
int mirror_pass(mirror *m, const char *const *owners, size_t n, mirror_done_fn done, void *ud,
                cb_err *err);

#endif
