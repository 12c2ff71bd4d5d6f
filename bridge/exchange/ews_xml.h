/* ews_xml.h — the SOAP envelope around calbridge's EWS requests, and the
 * parser for the answers.
 *
 * Requests: ews_xml_envelope() wraps an operation element (ews_ops.h) with
 * RequestServerVersion and, when
 * impersonating, ExchangeImpersonation/ConnectingSID/PrimarySmtpAddress.
 *
 * Responses: ews_xml_parse() reads any EWS response body into an
 * ews_response: one ews_msg per response message, in order (so a batch's
 * answers line up with its items), the items a FindItem returned, or the
 * SOAP fault (code and BackOffMilliseconds). Input is untrusted: the parser
 * does not resolve entities or fetch anything, and caps what it copies.
 */
#ifndef EWS_XML_H
#define EWS_XML_H

#include <stddef.h>
#include "../../mapping/cb_err.h"
#include "../../mapping/sbuf.h"

typedef struct ews_msg {
    int ok;                 /* ResponseClass Success (or Warning) */
    char code[64];          /* ResponseCode */
    char text[256];         /* MessageText */
    char item_id[512];      /* first ItemId in the message, if any */
    char change_key[512];
    char subscription_id[512];  /* Subscribe */
    char connection_status[16]; /* GetStreamingEvents: OK, Closed, or empty */
} ews_msg;

/* A subscription a GetStreamingEvents envelope speaks of: notified with
 * events (StatusEvent not counted), or named in ErrorSubscriptionIds. */
typedef struct ews_notice {
    char subscription_id[512];
    int events;
    int error;
} ews_notice;

/* One SyncFolderItems change. */
typedef struct ews_change {
    char kind;              /* 'C'reate, 'U'pdate, 'D'elete */
    char item_id[512];
    char change_key[512];
} ews_change;

typedef struct ews_found {
    char item_id[512];
    char change_key[512];
    char source[1024];      /* calbridge-source stamp */
    char tag[64];           /* calbridge-tag stamp */
} ews_found;

typedef struct ews_response {
    int fault;              /* a SOAP fault instead of response messages */
    char fault_code[64];    /* e.g. ErrorServerBusy */
    char fault_text[256];
    long backoff_ms;        /* BackOffMilliseconds, 0 if absent */
    ews_msg *msgs;
    size_t nmsgs;
    ews_found *found;
    size_t nfound;
    char *sync_state;       /* SyncFolderItems: the new SyncState (owned) */
    int sync_last;          /* IncludesLastItemInRange */
    ews_change *changes;
    size_t nchanges;
    ews_notice *notices;    /* GetStreamingEvents */
    size_t nnotices;
    char backend_cookie[256];   /* X-BackEndOverrideCookie the answer set (routed requests) */
    const char *raw;        /* the response body, as received (not owned) */
    size_t raw_len;
} ews_response;

void ews_xml_envelope(sbuf *b, const char *server_version,
                      const char *impersonate, const char *operation_xml);

/* The most bytes an answer to operation_xml may have before it is refused
 * unread: a few MB for writes, more for reads that carry item bodies. */
size_t ews_xml_answer_limit(const char *operation_xml);

/* CB_EPARSE if xml is not a SOAP envelope with a body, carries a DTD, nests
 * deeper than libxml2's limit or is over XML_IN_MAX (see xml_in.h). */
int ews_xml_parse(const char *xml, size_t len, ews_response **out, cb_err *err);
void ews_response_free(ews_response *r);

#endif
