#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <ini.h>
#include <libical/ical.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../apple/ccs_notify.h"

#define SECRET_MAX 16384

typedef struct parse_ctx {
    config *c;
    const char *path;
    char first_error[400];  /* the handler's message for ini_parse's line */
    char *password_file, *token_file, *client_secret_file, *caldav_password_file;
    int notify_set;         /* [apple] notify was given */
    int no_autodiscover;    /* [exchange] autodiscover_url = none */
} parse_ctx;

/* Keeps only the first message: ini_parse reports the first failing line. */
static void fail(parse_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void fail(parse_ctx *x, const char *fmt, ...)
{
    if (x->first_error[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->first_error, sizeof x->first_error, fmt, ap);
    va_end(ap);
}

static int set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
    return *dst != NULL;
}

int config_parse_long(const char *s, long lo, long hi, long *out)
{
    /* strtol alone would take " 12" and "+12"; a number here is digits. */
    if (!s || !(*s == '-' || (*s >= '0' && *s <= '9'))) return CB_EINVAL;
    char *end;
    errno = 0;
    long n = strtol(s, &end, 10);
    if (end == s || *end || errno || n < lo || n > hi) return CB_EINVAL;
    *out = n;
    return CB_OK;
}

static int set_int(parse_ctx *x, int *dst, const char *key, const char *v,
                   long lo, long hi, long scale)
{
    long n;
    if (config_parse_long(v, lo, hi, &n) != CB_OK) {
        fail(x, "%s must be a whole number from %ld to %ld, not '%s'",
                 key, lo, hi, v);
        return 0;
    }
    *dst = (int)(n * scale);
    return 1;
}

static int set_bool(parse_ctx *x, int *dst, const char *key, const char *v)
{
    if (!strcasecmp(v, "yes") || !strcasecmp(v, "true") || !strcmp(v, "1"))
        *dst = 1;
    else if (!strcasecmp(v, "no") || !strcasecmp(v, "false") || !strcmp(v, "0"))
        *dst = 0;
    else {
        fail(x, "%s must be yes or no, not '%s'", key, v);
        return 0;
    }
    return 1;
}

static int on_apple(parse_ctx *x, const char *k, const char *v)
{
    if (!strcmp(k, "dsn")) return set_str(&x->c->apple_dsn, v);
    if (!strcmp(k, "write_dsn")) return set_str(&x->c->apple_write_dsn, v);
    if (!strcmp(k, "poll_interval"))
        return set_int(x, &x->c->poll_interval_ms, k, v, 1, 3600, 1000);
    if (!strcmp(k, "poll_interval_ms"))
        return set_int(x, &x->c->poll_interval_ms, k, v, 10, 3600000, 1);
    if (!strcmp(k, "caldav_url")) {
        if (strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) {
            fail(x, "caldav_url must start with https:// or http://, not '%s'", v);
            return 0;
        }
        return set_str(&x->c->caldav_url, v);
    }
    if (!strcmp(k, "caldav_user")) return set_str(&x->c->caldav_user, v);
    if (!strcmp(k, "caldav_password_file")) return set_str(&x->caldav_password_file, v);
    if (!strcmp(k, "server_hostname")) return set_str(&x->c->server_hostname, v);
    if (!strcmp(k, "notify")) {
        static const struct { const char *name; ccs_notify_mode mode; } MODES[] = {
            {"none", CCS_NOTIFY_NONE}, {"caldav", CCS_NOTIFY_CALDAV}, {"queue", CCS_NOTIFY_QUEUE}};
        for (size_t i = 0; i < sizeof MODES / sizeof *MODES; i++)
            if (!strcmp(v, MODES[i].name)) {
                x->c->notify = MODES[i].mode;
                x->notify_set = 1;
                return 1;
            }
        fail(x, "notify must be caldav, queue or none, not '%s'", v);
        return 0;
    }
    return -1;
}

static int on_auth(parse_ctx *x, const char *v)
{
    if (!strcmp(v, "basic")) x->c->auth = AUTH_BASIC;
    else if (!strcmp(v, "bearer")) x->c->auth = AUTH_BEARER;
    else if (!strcmp(v, "oauth2")) x->c->auth = AUTH_OAUTH2;
    else if (!strcmp(v, "ntlm")) x->c->auth = AUTH_NTLM;
    else if (!strcmp(v, "negotiate")) x->c->auth = AUTH_NEGOTIATE;
    else {
        fail(x, "auth must be basic, ntlm, negotiate, bearer or oauth2, not '%s'", v);
        return 0;
    }
    return 1;
}

/* EWS's ExchangeVersionType values from Exchange 2010 on: calbridge
 * writes StartTimeZone and EndTimeZone, which older versions refuse. */
static int on_server_version(parse_ctx *x, const char *v)
{
    static const char *const OK[] = {
        "Exchange2010", "Exchange2010_SP1", "Exchange2010_SP2", "Exchange2012", "Exchange2013",
        "Exchange2013_SP1", "Exchange2015", "Exchange2016", "V2015_10_05", "V2016_01_06",
        "V2016_04_13", "V2016_07_13", "V2016_10_10", "V2017_01_07", "V2017_04_14",
        "V2017_07_11", "V2017_10_09", "V2018_01_08"};
    for (size_t i = 0; i < sizeof OK / sizeof *OK; i++)
        if (!strcmp(v, OK[i])) return set_str(&x->c->server_version, v);
    fail(x, "server_version must be an EWS version from Exchange2010 on (such as "
            "Exchange2016), not '%s'", v);
    return 0;
}

static int on_exchange(parse_ctx *x, const char *k, const char *v)
{
    config *c = x->c;
    if (!strcmp(k, "url")) {
        if (strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) {
            fail(x,     "url must start with https:// or http://, not '%s'", v);
            return 0;
        }
        return set_str(&c->ews_url, v);
    }
    if (!strcmp(k, "autodiscover_url")) {
        if (!strcmp(v, "none")) {
            x->no_autodiscover = 1;
            return 1;
        }
        if (strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) {
            fail(x, "autodiscover_url must start with https:// or http://, or be none, not '%s'", v);
            return 0;
        }
        return set_str(&c->autodiscover_url, v);
    }
    if (!strcmp(k, "auth")) return on_auth(x, v);
    if (!strcmp(k, "username")) return set_str(&c->username, v);
    if (!strcmp(k, "password_file")) return set_str(&x->password_file, v);
    if (!strcmp(k, "token_file")) return set_str(&x->token_file, v);
    if (!strcmp(k, "client_id")) return set_str(&c->client_id, v);
    if (!strcmp(k, "client_secret_file")) return set_str(&x->client_secret_file, v);
    if (!strcmp(k, "scope")) return set_str(&c->scope, v);
    if (!strcmp(k, "tenant") || !strcmp(k, "token_url")) {
        /* A tenant names Microsoft's endpoint; token_url any other. */
        char url[512];
        if (!strcmp(k, "tenant"))
            snprintf(url, sizeof url, "https://login.microsoftonline.com/%s/oauth2/v2.0/token", v);
        else if (strncmp(v, "https://", 8) && strncmp(v, "http://", 7)) {
            fail(x, "token_url must start with https:// or http://, not '%s'", v);
            return 0;
        }
        return set_str(&c->token_url, !strcmp(k, "tenant") ? url : v);
    }
    if (!strcmp(k, "impersonation")) {
        if (!set_bool(x, &c->impersonation, k, v)) return 0;
        /* Delegate access would need each person's mailbox in every folder
         * reference; without it every event lands in the service account's
         * own calendar (ews-production-gaps.md, row 14). */
        if (!c->impersonation)
            fail(x, "impersonation = no (delegate access) is not supported: every person's "
                    "events would go into the service account's own calendar; grant it "
                    "ApplicationImpersonation (or full_access_as_app) and keep impersonation "
                    "= yes");
        return c->impersonation;
    }
    if (!strcmp(k, "tls_verify")) return set_bool(x, &c->tls_verify, k, v);
    if (!strcmp(k, "allow_insecure")) return set_bool(x, &c->allow_insecure, k, v);
    if (!strcmp(k, "server_version")) return on_server_version(x, v);
    if (!strcmp(k, "batch_size"))
        return set_int(x, &c->batch_size, k, v, 1, 100, 1);
    if (!strcmp(k, "max_in_flight"))
        return set_int(x, &c->max_in_flight, k, v, 1, 27, 1);
    if (!strcmp(k, "timeout"))
        return set_int(x, &c->timeout_ms, k, v, 1, 3600, 1000);
    return -1;
}

static int on_coexistence(parse_ctx *x, const char *k, const char *v)
{
    config *c = x->c;
    if (!strcmp(k, "mass_delete_percent"))
        return set_int(x, &c->mass_delete_percent, k, v, 1, 100, 1);
    if (!strcmp(k, "mass_delete_min")) return set_int(x, &c->mass_delete_min, k, v, 1, 1000000, 1);
    if (!strcmp(k, "stream_minutes")) return set_int(x, &c->stream_minutes, k, v, 1, 30, 1);
    if (!strcmp(k, "heartbeat")) return set_int(x, &c->heartbeat_ms, k, v, 1, 3600, 1000);
    if (!strcmp(k, "heartbeat_ms")) return set_int(x, &c->heartbeat_ms, k, v, 100, 3600000, 1);
    if (!strcmp(k, "debounce_ms")) return set_int(x, &c->debounce_ms, k, v, 0, 60000, 1);
    if (!strcmp(k, "resync_interval"))
        return set_int(x, &c->resync_interval_ms, k, v, 10, 86400, 1000);
    if (!strcmp(k, "reconcile_interval"))
        return set_int(x, &c->reconcile_interval_s, k, v, 0, 2592000, 1);
    return -1;
}

static int handler(void *user, const char *section, const char *name,
                   const char *value)
{
    parse_ctx *x = user;
    int r = -1;
    if (!strcmp(section, "apple")) r = on_apple(x, name, value);
    else if (!strcmp(section, "exchange")) r = on_exchange(x, name, value);
    else if (!strcmp(section, "coexistence")) r = on_coexistence(x, name, value);
    else if (!strcmp(section, "state") && !strcmp(name, "dir"))
        r = set_str(&x->c->state_dir, value);
    else if (!strcmp(section, "people") && !strcmp(name, "map"))
        r = set_str(&x->c->people_map, value);
    else if (!strcmp(section, "people") && !strcmp(name, "default_timezone"))
        r = set_str(&x->c->default_tz, value);
    if (r < 0)
        fail(x, "unknown key '%s' in section [%s]", name, section);
    return r > 0;
}

/* Reads a secret file; trailing newlines are not part of the secret. */
static int read_secret(const char *path, char **out, cb_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cb_errf(err, CB_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
        fclose(f);
        return cb_errf(err, CB_EINVAL, "%s: readable by group or others (mode %03o); a secret "
                       "must be the owner's alone: chmod 600 it", path,
                       (unsigned)(st.st_mode & 0777));
    }
    char *buf = calloc(1, SECRET_MAX + 1);
    size_t n = buf ? fread(buf, 1, SECRET_MAX + 1, f) : 0;
    fclose(f);
    if (!buf) return cb_errf(err, CB_ENOMEM, "out of memory");
    if (n > SECRET_MAX) {
        free(buf);
        return cb_errf(err, CB_EINVAL, "%s: longer than %d bytes", path, SECRET_MAX);
    }
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    if (!n) {
        free(buf);
        return cb_errf(err, CB_EINVAL, "%s: is empty", path);
    }
    *out = buf;
    return CB_OK;
}

static int require(const char *path, const char *v, const char *what, cb_err *err)
{
    if (v && *v) return CB_OK;
    return cb_errf(err, CB_EINVAL, "%s: %s is required", path, what);
}

static int url_has_host(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host && *host;
    curl_free(host);
    curl_url_cleanup(u);
    return ok;
}

/* What can only be judged with every key read: the URL's host, the zone,
 * and settings that expose the credentials, which need allow_insecure. */
/* Autodiscover's SOAP endpoint on the EWS host, where Exchange serves it. */
static int default_autodiscover(config *c)
{
    CURLU *u = curl_url();
    char *url = NULL;
    int ok = u && curl_url_set(u, CURLUPART_URL, c->ews_url, 0) == CURLUE_OK &&
             curl_url_set(u, CURLUPART_PATH, "/autodiscover/autodiscover.svc", 0) == CURLUE_OK &&
             curl_url_set(u, CURLUPART_QUERY, NULL, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_URL, &url, 0) == CURLUE_OK;
    if (ok) ok = set_str(&c->autodiscover_url, url);
    curl_free(url);
    curl_url_cleanup(u);
    return ok;
}

static int check_edges(parse_ctx *x, cb_err *err)
{
    config *c = x->c;
    if (!url_has_host(c->ews_url))
        return cb_errf(err, CB_EINVAL, "%s: [exchange] url '%s' has no host", x->path, c->ews_url);
    if (!x->no_autodiscover && !c->autodiscover_url && !default_autodiscover(c))
        return cb_errf(err, CB_ENOMEM, "out of memory");
    if (strcmp(c->default_tz, "UTC") && !icaltimezone_get_builtin_timezone(c->default_tz))
        return cb_errf(err, CB_EINVAL, "%s: [people] default_timezone '%s' is not a known IANA "
                       "zone (e.g. Europe/Berlin)", x->path, c->default_tz);
    int clear = !strncmp(c->ews_url, "http://", 7) ||
                (c->token_url && !strncmp(c->token_url, "http://", 7)) ||
                (c->autodiscover_url && !strncmp(c->autodiscover_url, "http://", 7)) ||
                (c->notify == CCS_NOTIFY_CALDAV && !strncmp(c->caldav_url, "http://", 7));
    const char *why = clear ? "url is http://: the credentials cross the network in clear"
                      : !c->tls_verify ? "tls_verify = no: any server can pose as Exchange" : NULL;
    if (!why) return CB_OK;
    if (!c->allow_insecure)
        return cb_errf(err, CB_EINVAL, "%s: [exchange] %s; use https:// with tls_verify = yes, "
                       "or set allow_insecure = yes if that is really meant", x->path, why);
    snprintf(c->warning, sizeof c->warning, "[exchange] %s (allow_insecure = yes)", why);
    return CB_OK;
}

/* How CalendarServer hears of mirror writes (ccs_notify.h): CalDAV when
 * its URL is given, unless said otherwise. */
static int finish_notify(parse_ctx *x, cb_err *err)
{
    config *c = x->c;
    const char *p = x->path;
    int rc;
    if (!x->notify_set && c->caldav_url) c->notify = CCS_NOTIFY_CALDAV;
    if (c->notify == CCS_NOTIFY_CALDAV) {
        if ((rc = require(p, c->caldav_url, "[apple] caldav_url (notify = caldav)", err)) ||
            (rc = require(p, c->caldav_user, "[apple] caldav_user (notify = caldav)", err)) ||
            (rc = require(p, x->caldav_password_file,
                          "[apple] caldav_password_file (notify = caldav)", err)))
            return rc;
        return read_secret(x->caldav_password_file, &c->caldav_secret, err);
    }
    if (c->notify == CCS_NOTIFY_QUEUE) return require(p, c->server_hostname, "[apple] server_hostname (notify = queue)", err);
    return CB_OK;
}

static int finish(parse_ctx *x, cb_err *err)
{
    config *c = x->c;
    const char *p = x->path;
    int rc;
    if ((rc = require(p, c->apple_dsn, "[apple] dsn", err)) ||
        (rc = require(p, c->ews_url, "[exchange] url", err)) ||
        (rc = require(p, c->state_dir, "[state] dir", err)) ||
        (rc = require(p, c->people_map, "[people] map", err)))
        return rc;
    if (c->auth == AUTH_BASIC || c->auth == AUTH_NTLM) {
        const char *how = c->auth == AUTH_BASIC ? "basic" : "ntlm";
        char what[64];
        snprintf(what, sizeof what, "[exchange] username (auth = %s)", how);
        if ((rc = require(p, c->username, what, err))) return rc;
        snprintf(what, sizeof what, "[exchange] password_file (auth = %s)", how);
        if ((rc = require(p, x->password_file, what, err))) return rc;
        rc = read_secret(x->password_file, &c->secret, err);
    } else if (c->auth == AUTH_OAUTH2) {
        if ((rc = require(p, c->client_id, "[exchange] client_id (auth = oauth2)", err)) ||
            (rc = require(p, c->token_url, "[exchange] tenant or token_url (auth = oauth2)", err)) ||
            (rc = require(p, x->client_secret_file,
                          "[exchange] client_secret_file (auth = oauth2)", err)))
            return rc;
        rc = read_secret(x->client_secret_file, &c->secret, err);
        if (rc == CB_OK && !c->scope && !(c->scope = strdup("https://outlook.office365.com/.default")))
            rc = cb_errf(err, CB_ENOMEM, "out of memory");
    } else if (!(rc = require(p, x->token_file, "[exchange] token_file (auth = bearer)", err))) {
        rc = read_secret(x->token_file, &c->secret, err);
    }
    if (rc == CB_OK && !c->apple_write_dsn && !(c->apple_write_dsn = strdup(c->apple_dsn)))
        rc = cb_errf(err, CB_ENOMEM, "out of memory");
    if (rc == CB_OK) rc = finish_notify(x, err);
    return rc ? rc : check_edges(x, err);
}

int config_load(const char *path, config **out, cb_err *err)
{
    *out = NULL;
    config *c = calloc(1, sizeof *c);
    if (!c) return cb_errf(err, CB_ENOMEM, "out of memory");
    /* An idle poll is one prepared statement (pg_source.c): once a second
     * costs PostgreSQL little and keeps Apple -> Exchange within seconds. */
    c->poll_interval_ms = 1000;
    c->impersonation = 1;
    c->tls_verify = 1;
    c->batch_size = 10;
    c->max_in_flight = 4;
    c->timeout_ms = 60000;
    c->mass_delete_percent = 20;
    c->mass_delete_min = 10;
    c->stream_minutes = 29;
    c->heartbeat_ms = 90000;   /* twice Exchange's 45 s heartbeat, as Microsoft's client */
    c->debounce_ms = 500;   /* a burst of notifications is one read still */
    c->resync_interval_ms = 900000;
    c->reconcile_interval_s = 86400;
    c->server_version = strdup("Exchange2016");
    c->default_tz = strdup("UTC");
    parse_ctx x = {.c = c, .path = path};
    int line = ini_parse(path, handler, &x);
    int rc = CB_OK;
    if (line == -1)
        rc = cb_errf(err, CB_EIO, "%s: %s", path, strerror(errno ? errno : ENOENT));
    else if (line == -2)
        rc = cb_errf(err, CB_ENOMEM, "%s: out of memory", path);
    else if (line > 0)
        rc = cb_errf(err, CB_EINVAL, "%s:%d: %s", path, line,
                     x.first_error[0] ? x.first_error : "syntax error");
    else
        rc = finish(&x, err);
    free(x.password_file);
    free(x.token_file);
    free(x.client_secret_file);
    free(x.caldav_password_file);
    if (rc != CB_OK) {
        config_free(c);
        return rc;
    }
    *out = c;
    return CB_OK;
}

void config_free(config *c)
{
    if (!c) return;
    free(c->apple_dsn);
    free(c->apple_write_dsn);
    free(c->caldav_url);
    free(c->caldav_user);
    if (c->caldav_secret) memset(c->caldav_secret, 0, strlen(c->caldav_secret));
    free(c->caldav_secret);
    free(c->server_hostname);
    free(c->ews_url);
    free(c->username);
    free(c->client_id);
    free(c->token_url);
    free(c->autodiscover_url);
    free(c->scope);
    if (c->secret) memset(c->secret, 0, strlen(c->secret));
    free(c->secret);
    free(c->server_version);
    free(c->state_dir);
    free(c->people_map);
    free(c->default_tz);
    free(c);
}
