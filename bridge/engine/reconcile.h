/* reconcile.h — the engine: one pass reads what changed on one side and
 * makes the other side match, for each person whose authority that side
 * is; what changed on a person's mirror side is an echo of the bridge's
 * own write or a conflict. The same code runs Apple -> Exchange and
 * Exchange -> Apple; it speaks to both only through side.h, and keeps its
 * state in the store (state/store.h) under the names state/keys.h builds.
 *
 * A pass over side `from`:
 *   1. recovery: every intent left pending by an earlier run: a creation is
 *      looked up on its side by its tag (found: linked, "adopted"); every
 *      other intent is dropped — its change, which no cursor has passed,
 *      is read and planned again;
 *   2. read, per cursor (one for everyone, or one per person: side_ops.
 *      per_person), page by page, at most RECONCILE_MAX_PAGES a pass;
 *   3. plan, per change, in one LMDB transaction with the intents:
 *      - authority: from the store; a read failure stops the page, it is
 *        never taken for a default;
 *      - on the person's authority side: a version the link already covers,
 *        or content whose fingerprint the link holds, is unchanged; else a
 *        create, update or delete of the mirror item is planned;
 *      - on the mirror side: the bridge's own write (echo: covered version
 *        or same fingerprint), or a conflict: recorded, and the authority's
 *        version queued (rewrite) to be written back on its side's pass;
 *      - a complete full read deletes (or, on a mirror side, records as
 *        conflicts) the links whose items it did not list;
 *      - the mass-delete guard: a person whose deletions would exceed the
 *        configured share keeps them (and the cursor stays) unless
 *        force_delete;
 *      content the side did not read with the change is fetched in batches
 *      and planned the same way;
 *   4. effect: writes batched per person and operation (batch_size);
 *   5. commit, per batch answer: one LMDB transaction links what was
 *      applied and clears the intents. A busy item keeps its intent and
 *      the cursor; a lost creation answer is looked up by tag before the
 *      item is sent again; a person fault holds that person back (their
 *      cursor stays, everyone else goes on); a side fault stops the read;
 *   6. the cursor moves once its page is carried and nobody of it is held.
 * Bad items fail alone and are reported (report.h, failed: records).
 */
#ifndef RECONCILE_H
#define RECONCILE_H

#include "../../mapping/people.h"
#include "../../state/store.h"
#include "../cli/config.h"
#include "../cli/report.h"
#include "../side.h"

#define RECONCILE_MAX_PAGES 100

typedef struct reconcile reconcile;

typedef struct reconcile_deps {
    const config *cfg;      /* batch_size, mass_delete_min, mass_delete_percent */
    const people *people;
    store *st;
    report *rep;            /* counters and entries accumulate here */
    side *sides[2];         /* by side_id; not owned */
    int force_delete;       /* let the mass-delete guard's deletions through */
} reconcile_deps;

typedef void (*reconcile_done_fn)(void *ud, int rc, const cb_err *err);

int reconcile_new(const reconcile_deps *deps, reconcile **out, cb_err *err);
/* Frees r; a pass still running is abandoned (what it committed stays,
 * the rest is recovered by the next pass). */
void reconcile_free(reconcile *r);

/* Starts a pass reading side `from` for owners (n of them; NULL: everyone
 * in the map). full: read everything, not from the stored cursors (the
 * periodic reconciliation: items that vanished without a change the side
 * reports are found as gone). done is called once: rc CB_OK, or the first
 * error of a person or of the side (err says which; the rest went on where
 * it could). CB_EBUSY when a pass is already running. */
int reconcile_pass(reconcile *r, side_id from, const char *const *owners, size_t n, int full,
                   reconcile_done_fn done, void *ud, cb_err *err);

/* The people who have writes queued for a pass over side `from` (a
 * conflict found on their mirror side): flags[i] set for people->v[i]
 * (flags may be NULL). Returns how many, or a store error (< 0). */
int reconcile_queued(reconcile *r, side_id from, char *flags, cb_err *err);

#endif
