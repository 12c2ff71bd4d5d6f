/* cutover.h — moving people's authority from Apple to Exchange, the step
 * at the end of each migration wave.
 *
 * For the chosen people, resumable after a crash at any step (each
 * person's step is kept as "cutover:<owner>" in the state store):
 *   1. delta    two cycles of the service: the last Apple changes reach
 *               Exchange, and edits made in Exchange meanwhile are
 *               overwritten with the Apple version (conflicts, reported);
 *   2. compare  per person, through the sides: every Apple event the
 *               mapping carries has its linked Exchange item, and both have the same subject and
 *               expand to the same occurrences over the next year; the
 *               counts of each side are printed. A mismatch stops that
 *               person (reported); the others go on;
 *   3. flip     authority becomes exchange, and the person's SyncState is
 *               dropped, in one LMDB transaction for everyone who passed;
 *   4. mirror   a cycle that reads their Exchange calendars in full: items
 *               the bridge created match their links (same ItemIds, nothing
 *               re-created), items made in Exchange are written into Apple.
 * With dry_run only step 2 runs, and nothing is changed.
 * The caller holds the state lock (no service runs meanwhile).
 */
#ifndef CUTOVER_H
#define CUTOVER_H

#include <stdio.h>
#include "../../mapping/people.h"
#include "../../mapping/tzmap.h"
#include "../../state/store.h"
#include "../cli/config.h"
#include "../side.h"
#include "service.h"

typedef struct cutover_opts {
    const config *cfg;
    const people *people;
    const tzmap *tz;
    store *st;
    service *sv;
    side *sides[2];              /* by side_id: compared through them */
    struct event_base *base;
    const char *const *owners;   /* the people to cut over */
    size_t n;
    int dry_run;
    FILE *out;                   /* the readable report */
} cutover_opts;

/* Runs the cutover inside base's loop (dispatching it). Returns CB_OK when
 * it ran — *stopped then counts the people a mismatch stopped (the others
 * are cut over, or would be in a dry run) — or the error that stopped it
 * (err says why; what was committed stays, and a new run resumes). */
int cutover_run(const cutover_opts *o, size_t *stopped, cb_err *err);

#endif
