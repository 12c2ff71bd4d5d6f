/* ews_in.h — Exchange calendar items (EWS XML) back to ews_events.
 *
 * Reads every <t:CalendarItem> of a document — a GetItem response, or the
 * stored form ews_item_write_stored() writes — and groups them: each
 * master or single item becomes an event; exceptions (CalendarItemType
 * Exception) join their master by UID as modified occurrences, and the
 * master's DeletedOccurrences become deleted ones. Travel blocks calbridge
 * made are recognised by their stamp and kept apart from the event.
 */
#ifndef EWS_IN_H
#define EWS_IN_H

#include "ews_item.h"

/* Events in document order. CB_EPARSE when xml is not XML or holds no
 * calendar item. */
int ews_in_parse(const char *xml, size_t len, const tzmap *m, ews_event ***out, size_t *n,
                 cb_err *err);
/* The same over several documents read as one: a GetItem of masters and
 * the GetItem of their exceptions' ItemIds. */
int ews_in_parse_many(const char *const *xml, const size_t *len, size_t ndocs, const tzmap *m,
                      ews_event ***out, size_t *n, cb_err *err);

/* The ItemIds a GetItem answer lists under its masters' ModifiedOccurrences
 * (at most EWS_IN_MAX_EXCEPTIONS; Exchange gives an exception's subject,
 * location, body and the rest only to a GetItem of its own ItemId). *ids
 * and its strings are the caller's to free. */
#define EWS_IN_MAX_EXCEPTIONS 2000
int ews_in_modified_ids(const char *xml, size_t len, char ***ids, size_t *n, cb_err *err);
void ews_in_events_free(ews_event **v, size_t n);

#endif
