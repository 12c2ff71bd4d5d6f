/* sim_ops.h — the simulator's mailbox store and its EWS operations.
 *
 * A sim_store keeps mailboxes (created on first use) with calendar, inbox
 * and deleteditems folders, and items: an ItemId, a ChangeKey that changes
 * on every update, and the CalendarItem XML as the client sent it, edited in
 * place by UpdateItem. Every change is appended to a per-folder change log,
 * which is what SyncFolderItems sync states point into.
 *
 * sim_ops_dispatch() runs one already schema-validated request body element
 * for one mailbox and appends the response body (the element that goes into
 * soap:Body) to out.
 */
#ifndef SIM_OPS_H
#define SIM_OPS_H

#include <libxml/tree.h>
#include "../../mapping/sbuf.h"

typedef struct sim_store sim_store;

sim_store *sim_store_new(void);
void sim_store_free(sim_store *s);
void sim_store_reset(sim_store *s);

/* Returns the operation name handled ("CreateItem", ...), or NULL if the
 * operation is not simulated (out then holds nothing). */
const char *sim_ops_dispatch(sim_store *s, const char *mailbox, xmlNode *op,
                             sbuf *out);

/* One line per item: mailbox, folder, ItemId, ChangeKey, source stamp, tag,
 * UID, Subject, Start, End, tab-separated. */
void sim_store_dump(sim_store *s, sbuf *out);

#endif
