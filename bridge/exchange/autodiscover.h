/* autodiscover.h — where each mailbox lives, from the SOAP Autodiscover
 * service: GetUserSettings for GroupingInformation and ExternalEwsUrl, the
 * pair "Maintain affinity between a group of subscriptions and the Mailbox
 * server" groups streaming subscriptions by (learn.microsoft.com,
 * exchange-web-services; "GetUserSettings operation (SOAP)").
 *
 * The answer is untrusted: it only decides which subscriptions share a
 * connection, never whose calendar is read, and a key is at most
 * AUTODISCOVER_KEY_MAX bytes of printable text.
 */
#ifndef AUTODISCOVER_H
#define AUTODISCOVER_H

#include <stddef.h>
#include "../../mapping/cb_err.h"
#include "../../mapping/sbuf.h"
#include "ews_client.h"

#define AUTODISCOVER_USERS 100      /* users in one request (the service's limit) */
#define AUTODISCOVER_KEY_MAX 600

/* For each smtp[i], key[i] becomes "<GroupingInformation>|<ExternalEwsUrl>"
 * (malloc'd, the caller frees), or stays NULL when the service gave no such
 * setting for that mailbox. Returns CB_OK when every request was answered;
 * otherwise the first failure (later requests are not tried), keys already
 * found stay filled. Blocking: one POST per AUTODISCOVER_USERS mailboxes. */
int autodiscover_groups(ews_client *c, const char *url, const char *const *smtp, size_t n,
                        char **key, cb_err *err);

/* The GetUserSettingsRequestMessage envelope for n mailboxes, and the
 * reading of its answer into key[0..n) (UserResponses come in the order of
 * the request's Users). Exposed for the unit test. */
void autodiscover_request(sbuf *b, const char *url, const char *const *smtp, size_t n);
int autodiscover_parse(const char *xml, size_t len, size_t n, char **key, cb_err *err);

#endif
