/* ews_ops.h — every EWS operation element calbridge sends, built here and
 * nowhere else (ews_client wraps it in the SOAP envelope). Writes never
 * invite or notify anyone (SendToNone), deletions go to Deleted Items, and
 * updates overwrite (calbridge's side is the authority for what it writes).
 */
#ifndef EWS_OPS_H
#define EWS_OPS_H

#include "../../mapping/sbuf.h"

typedef enum { EWS_WRITE_CREATE, EWS_WRITE_UPDATE, EWS_WRITE_DELETE } ews_write;

/* The opening and the closing of a CreateItem (into the calendar), an
 * UpdateItem or a DeleteItem; the caller writes the CalendarItems,
 * ItemChanges or ItemIds (OccurrenceItemIds too) in between. */
void ews_ops_open(sbuf *b, ews_write w);
void ews_ops_close(sbuf *b, ews_write w);
/* <t:ItemId Id="..."/>, for a DeleteItem. */
void ews_ops_item_id(sbuf *b, const char *item_id);

/* A GetItem (IdOnly) of one item: its current ChangeKey. */
void ews_ops_get_change_key(sbuf *b, const char *item_id);
/* A FindItem for the calendar items stamped with tag (property calbridge-tag),
 * returning their stamps. */
void ews_ops_find_by_tag(sbuf *b, const char *tag);
/* A FindItem for every calbridge-stamped item in the calendar. */
void ews_ops_find_stamped(sbuf *b);
/* FindItem in the calendar: the items whose calbridge-source stamp is one
 * of sources (n of them). */
void ews_ops_find_by_sources(sbuf *b, const char *const *sources, size_t n);
/* A GetItem for n ItemIds with every property the mapping reads: the
 * calendar fields, the occurrence lists and calbridge's stamps. */
void ews_ops_get_items(sbuf *b, const char *const *ids, size_t n);
/* A SyncFolderItems (IdOnly) on the calendar from sync_state (NULL or ""
 * for the first sync). */
void ews_ops_sync_folder(sbuf *b, const char *sync_state, int max_changes);

#endif
