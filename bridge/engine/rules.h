/* rules.h — the coexistence rules both directions share, written once:
 * the mass-delete guard, and what happens to an edit made on a person's
 * mirror side (recorded, and handed to the engine that writes the
 * authoritative version back). No EWS or libpq here.
 */
#ifndef RULES_H
#define RULES_H

#include "../../state/store.h"
#include "../cli/config.h"
#include "../cli/report.h"
#include "../side.h"

/* Whether a pass may delete `deletes` of a person's `links` mirrored items
 * (links < 0: they could not be counted). 1 = hold the deletions back:
 * at least mass_delete_min of them and over mass_delete_percent, or an
 * unknown count; force (--force-delete) lets them through. */
int rules_guard_holds(const config *cfg, int force, long deletes, long links);

/* Reports a person held back by the guard, the same way in both directions. */
void rules_guard_report(report *rep, const config *cfg, const char *smtp, long deletes,
                        long links);

/* Reports a person held back because their mailbox or home cannot be used
 * now (why), the same way in both directions: nothing of theirs is lost,
 * everyone else goes on. */
void rules_hold_report(report *rep, const char *smtp, const char *why);

/* An edit (what: "edited", "deleted", "created") made on side `edited` of
 * source key `key` while the other side is the person's authority: counted,
 * reported, kept for `status --conflicts`, and, when queue is set, queued
 * for the authority's next pass (refetch:<key> = the Exchange ItemId for
 * an Apple edit, repush:<key> for an Exchange one) so that the
 * authoritative version is written back.
 * Returns CB_OK or the state store's error. */
int rules_conflict(store_txn *t, report *rep, side_id edited, const char *key,
                   const char *what, const char *item_id, int queue);

/* Queues key to be written again from its authoritative side, with no
 * conflict recorded: calbridge's own last write of it was incomplete (a
 * series whose exceptions did not all apply), so a difference seen on the
 * mirror side is its own. */
int rules_rewrite(store_txn *t, side_id seen, const char *key, const char *item_id);

#endif
