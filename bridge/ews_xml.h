/* ews_xml.h — the SOAP envelope around calbridge's EWS requests, and the
 * parser for the answers.
 *
 * Requests: ews_xml_envelope() wraps an operation element (built by the
 * caller, e.g. with ews_item writers) with RequestServerVersion and, when
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
#include "../mapping/cb_err.h"
#include "../mapping/sbuf.h"

typedef struct ews_msg {
    int ok;                 /* ResponseClass Success (or Warning) */
    char code[64];          /* ResponseCode */
    char text[256];         /* MessageText */
    char item_id[512];      /* first ItemId in the message, if any */
    char change_key[512];
} ews_msg;

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
} ews_response;

void ews_xml_envelope(sbuf *b, const char *server_version,
                      const char *impersonate, const char *operation_xml);

/* CB_EPARSE if xml is not a SOAP envelope with a body. */
int ews_xml_parse(const char *xml, size_t len, ews_response **out, cb_err *err);
void ews_response_free(ews_response *r);

/* A FindItem for the calendar items stamped with tag (property calbridge-tag),
 * returning their stamps. */
void ews_xml_find_by_tag(sbuf *b, const char *tag);
/* A FindItem for every calbridge-stamped item in the calendar. */
void ews_xml_find_stamped(sbuf *b);

#endif
