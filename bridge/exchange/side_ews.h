/* side_ews.h — Exchange through EWS as a calendar side (side.h).
 *
 *   read      SyncFolderItems (IdOnly) on the person's calendar from their
 *             SyncState, a page of at most 512 changes; a SyncState Exchange
 *             refuses (ErrorInvalidSyncStateData) starts a full read; a page
 *             that moves nothing is the last, whatever the server says;
 *   fetch     GetItem with every property the mapping reads; a batch one
 *             item spoils is fetched again item by item;
 *   apply     CreateItem / UpdateItem / DeleteItem (SendToNone, updates in
 *             place, deletions to Deleted Items); a series' deleted and
 *             modified occurrences once its master exists, then the master's
 *             ChangeKey; a request refused for its content is split so that
 *             only the guilty item fails; per-item answers that mean "later"
 *             (ErrorServerBusy and kin) are CB_EBUSY; a CreateItem whose
 *             answer was lost is CB_ELOST;
 *   find_tag  FindItem on calbridge's tag stamp;
 *   subscribe streaming notifications (ews_stream.h).
 * Retries, throttling and impersonation are ews_client.h's.
 */
#ifndef SIDE_EWS_H
#define SIDE_EWS_H

#include <event2/event.h>
#include "../../mapping/tzmap.h"
#include "../cli/config.h"
#include "../side.h"

int side_ews_open(struct event_base *base, const config *cfg, const people *people,
                  const tzmap *tz, side **out, cb_err *err);

#endif
