/* sim_ops.h — the simulator's mailbox store and its EWS operations.
 *
 * A sim_store keeps mailboxes (created on first use) with calendar, inbox
 * and deleteditems folders, and items: an ItemId, a ChangeKey that changes
 * on every update, and the CalendarItem XML as the client sent it, edited in
 * place by UpdateItem. An item created without a UID gets one, as Exchange
 * gives every calendar item. A series keeps its occurrences' changes: times
 * (listed under the master's ModifiedOccurrences, with an ItemId each) and
 * any other field set (GetItem of that ItemId answers the exception whole:
 * CalendarItemType Exception, RecurrenceId, its fields over the master's). Every change is appended to a per-folder change log,
 * which is what SyncFolderItems sync states point into.
 *
 * Subscribe/Unsubscribe keep streaming subscriptions, each a position in
 * that change log; GetUserAvailability answers MergedFreeBusy from the
 * calendar items, recurrences expanded as Exchange does (sim_recur.h, the
 * simulator's own: it links nothing of calbridge).
 *
 * sim_ops_dispatch() runs one already schema-validated request body element
 * for one mailbox and appends the response body (the element that goes into
 * soap:Body) to out.
 */
#ifndef SIM_OPS_H
#define SIM_OPS_H

#include <libxml/tree.h>
#include "sim_buf.h"
#include "sim_recur.h"

typedef struct sim_store sim_store;

/* zones places recurrences in time (GetUserAvailability, InstanceIndex). */
sim_store *sim_store_new(const sim_zones *zones);
void sim_store_free(sim_store *s);
void sim_store_reset(sim_store *s);

/* Returns the operation name handled ("CreateItem", ...), or NULL if the
 * operation is not simulated (out then holds nothing). */
const char *sim_ops_dispatch(sim_store *s, const char *mailbox, xmlNode *op,
                             sim_buf *out);

/* One line per item: mailbox, folder, ItemId, ChangeKey, source stamp, tag,
 * UID, Subject, Start, End, tab-separated. */
void sim_store_dump(sim_store *s, sim_buf *out);

/* EWSMaxSubscriptions: live subscriptions a mailbox may have (Exchange
 * Online's 20; "EWS throttling in Exchange"). */
#define SIM_MAX_SUBSCRIPTIONS 20

/* The mailbox server (sim_route.h) the request about to be dispatched
 * reached: a Subscribe's subscription lives there, and only there does
 * Unsubscribe find it. */
void sim_store_set_server(sim_store *s, int server);
/* Streaming: the server a live subscription lives on (-1: none, expired or
 * unknown); the Notification element for the changes since it was last
 * asked (returns how many events, 0 = none and nothing written); every
 * subscription expired at once; every SyncState made invalid. */
int sim_store_sub_server(sim_store *s, const char *id);
size_t sim_store_sub_events(sim_store *s, const char *id, sim_buf *out);
void sim_store_expire_subs(sim_store *s);
void sim_store_invalidate_sync(sim_store *s);
/* Exchange's own processing (a reminder firing, the Calendar Attendant):
 * every calendar item of mailbox gets a new ChangeKey and a change in the
 * log, its content untouched. */
void sim_store_touch(sim_store *s, const char *mailbox);
/* One calendar item of mailbox (the pick-th, modulo their number) gets a
 * new ChangeKey, as a reminder firing gives it; 0 when it has none. */
int sim_store_touch_one(sim_store *s, const char *mailbox, unsigned pick);
/* Every calendar item of mailbox is gone with no change logged, SyncStates
 * still valid: what a mailbox restored from an older backup, or items
 * purged by an administrator, look like to a SyncFolderItems client. */
void sim_store_vanish(sim_store *s, const char *mailbox);
/* on: every SyncFolderItems answers IncludesLastItemInRange false; on > 1:
 * and its SyncState changes every time even with nothing new. */
void sim_store_set_endless(sim_store *s, int on);
/* The next n items of CreateItem/UpdateItem/DeleteItem answer ErrorServerBusy
 * inside the 200 answer, not applied. */
void sim_store_set_item_busy(sim_store *s, int n);

#endif
