/* cutover.h — moving people's authority from Apple to Exchange, the step
 * at the end of each migration wave.
 *
 * For the chosen people, resumable after a crash at any step (each
 * person's step is kept as "cutover:<owner>" in the state store):
 *   1. delta    two cycles of the service: the last Apple changes reach
 *               Exchange, and edits made in Exchange meanwhile are
 *               overwritten with the Apple version (conflicts, reported);
 *   2. compare  per person: every Apple event the mapping carries has its
 *               linked Exchange item, and both have the same subject and
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
#include "service.h"

typedef struct cutover_opts {
    const config *cfg;
    const people *people;
    const tzmap *tz;
    store *st;
    service *sv;
    struct event_base *base;
    const char *const *owners;   /* the people to cut over */
    size_t n;
    int dry_run;
    FILE *out;                   /* the readable report */
} cutover_opts;

/* Runs the cutover inside base's loop (dispatching it). Returns 0 when
 * every person is cut over (or would be, dry run), 3 when some were
 * stopped by a mismatch, 1 when it could not run; err says why. */
int cutover_run(const cutover_opts *o, cb_err *err);

#endif
