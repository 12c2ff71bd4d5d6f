#include "sides.h"

#include "apple/side_apple.h"
#include "exchange/side_ews.h"

int sides_open(struct event_base *base, const config *cfg, const people *people,
               const tzmap *tz, side *out[2], cb_err *err)
{
    out[SIDE_APPLE] = out[SIDE_EXCHANGE] = NULL;
    ccs_notify_opts notify = {cfg->notify, cfg->caldav_url, cfg->caldav_user, cfg->caldav_secret,
                              cfg->tls_verify, cfg->timeout_ms, cfg->server_hostname};
    int rc = side_apple_open(cfg->apple_dsn, cfg->apple_write_dsn, people, tz, cfg->default_tz,
                             &notify, &out[SIDE_APPLE], err);
    if (rc == CB_OK) rc = side_ews_open(base, cfg, people, tz, &out[SIDE_EXCHANGE], err);
    if (rc) sides_close(out);
    return rc;
}

void sides_close(side *s[2])
{
    side_close(s[SIDE_EXCHANGE]);
    side_close(s[SIDE_APPLE]);
    s[SIDE_APPLE] = s[SIDE_EXCHANGE] = NULL;
}
