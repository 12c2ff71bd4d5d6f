/* ews_stream.h — Exchange streaming notifications for every person's
 * calendar folder, done as "Maintain affinity between a group of
 * subscriptions and the Mailbox server in Exchange" describes (research/
 * ews-production-gaps.md §2.2).
 *
 * At start, Autodiscover (GetUserSettings) gives each mailbox's
 * GroupingInformation and ExternalEwsUrl; mailboxes with the same pair
 * form groups of at most EWS_STREAM_GROUP, ordered by address, and the
 * first is the group's anchor. (Without an Autodiscover answer, people are
 * grouped by address alone.) The anchor is subscribed first, with
 * X-AnchorMailbox of itself and X-PreferServerAffinity; the
 * X-BackEndOverrideCookie its answer sets goes, with the anchor's
 * X-AnchorMailbox, on every other member's Subscribe and on the group's one
 * GetStreamingEvents connection (impersonating the anchor, so that the
 * connection is charged to it).
 *
 * Subscription ids are kept in the side's memo with their group and
 * cookie, so that a restart opens the connections again without new
 * subscriptions (Exchange Online allows 20 per mailbox). A subscription
 * that is replaced (its group's server changed, its connection kept
 * failing, the person left its group) is unsubscribed first. A Subscribe
 * that fails is tried again, 1 s doubling to 5 min; a mailbox that refuses
 * (impersonation denied, gone) is not an anchor.
 *
 * The stream only says *when*: every notification, and every event that
 * may have lost some (a connection dropped mid-envelope, a heartbeat
 * missing for [coexistence] heartbeat, ErrorMissedNotificationEvents, an
 * expired or unknown subscription), calls changed(ud, smtp) for the people
 * concerned, and the caller reads *what* with SyncFolderItems. ConnectionStatus
 * Closed re-opens the same subscriptions at once; ErrorSubscriptionNotFound
 * re-subscribes the people it names (all of the group if none is named).
 */
#ifndef EWS_STREAM_H
#define EWS_STREAM_H

#include <event2/event.h>
#include "../../mapping/people.h"
#include "../cli/config.h"
#include "../side.h"

#define EWS_STREAM_GROUP 200

typedef struct ews_stream ews_stream;
typedef void (*ews_stream_fn)(void *ud, const char *smtp);

typedef struct ews_stream_stats {
    long subscribed, reused, unsubscribed, subscribe_failed, connections, envelopes,
        notifications, heartbeats, closed, dropped, resubscribed, missed;
    long groups;
} ews_stream_stats;

/* memo may be NULL (nothing kept across restarts). */
int ews_stream_new(struct event_base *base, const config *cfg, const people *people,
                   const side_memo *memo, ews_stream_fn changed, void *ud, ews_stream **out,
                   cb_err *err);
void ews_stream_free(ews_stream *s);

/* Groups everyone (Autodiscover: blocking, one request per 100 people),
 * subscribes or re-uses what the memo kept, then opens the connections. */
void ews_stream_start(ews_stream *s);
/* Closes the connections; the subscriptions stay for the next start. */
void ews_stream_stop(ews_stream *s);

ews_stream_stats ews_stream_get_stats(const ews_stream *s);

/* Splits complete SOAP envelopes off the front of buf (len bytes): returns
 * the length of the first complete envelope, 0 if none is complete yet.
 * Exposed for the unit test. */
size_t ews_stream_envelope_len(const char *buf, size_t len);

#endif
