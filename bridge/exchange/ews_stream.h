/* ews_stream.h — Exchange streaming notifications for every person's
 * calendar folder, as research/ews-report.md §3.1 describes.
 *
 * Each person is subscribed (Subscribe, StreamingSubscriptionRequest on the
 * calendar folder, impersonated). Subscriptions are grouped, at most 200 to
 * a GetStreamingEvents connection, sent with X-AnchorMailbox of the group's
 * first mailbox and a ConnectionTimeout of [coexistence] stream_minutes.
 * The response is one chunked HTTP body carrying one SOAP envelope after
 * another; envelopes are split off as they arrive.
 *
 * The stream only says *when*: every notification, and every event that
 * may have lost some (a connection dropped mid-envelope, a heartbeat
 * missing for [coexistence] heartbeat, an expired or unknown
 * subscription), calls changed(ud, smtp) for the people concerned, and the
 * caller reads *what* with SyncFolderItems. ConnectionStatus Closed
 * re-opens the same subscriptions at once; a subscription error
 * re-subscribes the people it names (all of the group if none is named).
 */
#ifndef EWS_STREAM_H
#define EWS_STREAM_H

#include <event2/event.h>
#include "../../mapping/people.h"
#include "../cli/config.h"

#define EWS_STREAM_GROUP 200

typedef struct ews_stream ews_stream;
typedef void (*ews_stream_fn)(void *ud, const char *smtp);

typedef struct ews_stream_stats {
    long subscribed, connections, envelopes, notifications, heartbeats, closed, dropped,
        resubscribed;
} ews_stream_stats;

int ews_stream_new(struct event_base *base, const config *cfg, const people *people,
                   ews_stream_fn changed, void *ud, ews_stream **out, cb_err *err);
void ews_stream_free(ews_stream *s);

/* Subscribes everyone, then opens the connections. */
void ews_stream_start(ews_stream *s);
/* Closes the connections (subscriptions expire on the server). */
void ews_stream_stop(ews_stream *s);

ews_stream_stats ews_stream_get_stats(const ews_stream *s);

/* Splits complete SOAP envelopes off the front of buf (len bytes): returns
 * the length of the first complete envelope, 0 if none is complete yet.
 * Exposed for the unit test. */
size_t ews_stream_envelope_len(const char *buf, size_t len);

#endif
