/* oauth2.h — the access token for auth = oauth2: the OAuth 2.0 client
 * credentials grant (RFC 6749 §4.4) as the Microsoft identity platform
 * takes it (POST to the token endpoint with client_id, client_secret,
 * scope ".../.default", grant_type=client_credentials; a JSON answer with
 * access_token and expires_in), parsed with jansson.
 *
 * The token is cached and fetched again five minutes before it expires, or
 * at once after oauth2_invalidate (a 401 from Exchange). A fetch is one
 * blocking POST of at most 10 s: it happens once an hour, and the client
 * pauses logins when it fails, so a dead token endpoint is not hammered.
 */
#ifndef OAUTH2_H
#define OAUTH2_H

#include "../../mapping/cb_err.h"
#include "../cli/config.h"

typedef struct oauth2 oauth2;

int oauth2_new(const config *cfg, oauth2 **out, cb_err *err);
void oauth2_free(oauth2 *o);

/* "Authorization: Bearer <token>" for a request sent now (owned by o,
 * valid until the next call). CB_EREMOTE when the endpoint refuses
 * (its error and description in err), CB_EIO when it cannot be reached,
 * CB_EPARSE when its answer is not a token. */
int oauth2_header(oauth2 *o, const char **header, cb_err *err);

/* The cached token was refused: the next oauth2_header fetches one. */
void oauth2_invalidate(oauth2 *o);

#endif
