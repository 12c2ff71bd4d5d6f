/* ews_client.h — asynchronous EWS requests over libcurl's multi interface,
 * driven by the caller's libevent loop.
 *
 * Requests are queued per mailbox and run one at a time per mailbox (so a
 * mailbox sees its changes in order), with at most max_in_flight requests
 * in flight overall. Each carries RequestServerVersion, the
 * ExchangeImpersonation header when impersonation is on, and
 * X-AnchorMailbox. Failures are handled here, not by the caller:
 *   - ErrorServerBusy (SOAP fault, or inside a 200) pauses that mailbox for
 *     BackOffMilliseconds, then the same request is sent again;
 *   - HTTP 429 and 503 pause that mailbox for Retry-After (at most 10 min);
 *   - HTTP 401 and 403 pause the whole client, 1 min doubling to 1 h: while
 *     paused every request (streams included) fails at once, without a
 *     login, so an account lockout policy is never tripped;
 *   - HTTP 5xx, timeouts, resets and refused connections are retried with
 *     capped exponential backoff (0.25 s doubling to 30 s), at most
 *     EWS_MAX_ATTEMPTS times — except a CreateItem, which may have been
 *     applied before its answer was lost: it reaches the callback at once;
 *   - a SOAP fault about one mailbox (impersonation refused, mailbox missing,
 *     moving or over quota) reaches the callback as CB_EMAILBOX;
 *   - a SOAP fault about the request's content (ErrorSchemaValidation,
 *     ErrorInvalidRequest) reaches the callback as CB_EREJECTED, so that a
 *     batch can be split to find the item at fault;
 *   - everything else reaches the callback.
 * The callback gets the parsed response (owned by the client, valid during
 * the call) or NULL with err set when the request finally failed.
 */
#ifndef EWS_CLIENT_H
#define EWS_CLIENT_H

#include <event2/event.h>
#include "../../mapping/cb_err.h"
#include "../cli/config.h"
#include "ews_xml.h"

#define EWS_MAX_ATTEMPTS 12

typedef struct ews_client ews_client;
typedef void (*ews_done_fn)(void *ud, const ews_response *r, const cb_err *err);

int ews_client_new(struct event_base *base, const config *cfg, ews_client **out,
                   cb_err *err);
void ews_client_free(ews_client *c);
/* Nothing more is sent for mailbox for ms (at most Retry-After's cap): the
 * back-off Exchange asked for in an answer that was otherwise read, such
 * as ErrorServerBusy for some items of a batch. */
void ews_client_pause(ews_client *c, const char *mailbox, long ms);

/* Queues operation_xml (an element such as <m:CreateItem>, copied) for
 * mailbox. done is called exactly once. */
int ews_client_submit(ews_client *c, const char *mailbox, const char *operation_xml,
                      ews_done_fn done, void *ud, cb_err *err);

/* Affinity with one mailbox server, for a group of subscriptions ("Maintain
 * affinity between a group of subscriptions and the Mailbox server"): the
 * request carries X-AnchorMailbox of anchor (not of the mailbox it
 * impersonates), X-PreferServerAffinity: true and, when cookie is not "",
 * the X-BackEndOverrideCookie an earlier answer set. The answer's own
 * cookie is in ews_response.backend_cookie. */
typedef struct ews_route {
    const char *anchor;
    const char *cookie;
} ews_route;
int ews_client_submit_routed(ews_client *c, const char *mailbox, const ews_route *route,
                             const char *operation_xml, ews_done_fn done, void *ud,
                             cb_err *err);

/* One blocking POST of body (an Autodiscover request) to url with the
 * client's credentials, at most 30 s; the answer (at most 4 MB) in *answer,
 * the HTTP status in *status. For start-up lookups only. */
int ews_client_post_now(ews_client *c, const char *url, const char *body, sbuf *answer,
                        long *status, cb_err *err);

/* A hanging request (GetStreamingEvents): sent at once, outside the
 * mailbox queues and the in-flight limit, impersonating mailbox and routed
 * as route says (NULL: X-AnchorMailbox of mailbox). chunk gets the body as it arrives (returning
 * non-zero aborts); end is called once when the server closes (err NULL)
 * or the connection fails — unless cancelled first. No retries: the
 * caller decides. */
typedef struct ews_hanging ews_hanging;
typedef int (*ews_chunk_fn)(void *ud, const char *data, size_t len);
typedef void (*ews_end_fn)(void *ud, const cb_err *err);
int ews_client_stream(ews_client *c, const char *mailbox, const ews_route *route,
                      const char *operation_xml,
                      long timeout_ms, ews_chunk_fn chunk, ews_end_fn end, void *ud,
                      ews_hanging **out, cb_err *err);
/* Closes the connection; end is not called. */
void ews_client_stream_cancel(ews_hanging *h);

/* Requests queued or in flight. */
size_t ews_client_pending(const ews_client *c);

typedef struct ews_client_stats {
    long requests, retries, busy, backoff_ms_total;
} ews_client_stats;
ews_client_stats ews_client_get_stats(const ews_client *c);

#endif
