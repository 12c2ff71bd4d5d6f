#include "oauth2.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../mapping/sbuf.h"

#define REFRESH_MARGIN_S 300
#define MAX_ANSWER 65536

struct oauth2 {
    const config *cfg;
    char *header;
    long long expires;      /* monotonic seconds */
    long long ttl;          /* the token's lifetime as issued */
};

static long long mono_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec;
}

int oauth2_new(const config *cfg, oauth2 **out, cb_err *err)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return cb_errf(err, CB_ENOMEM, "out of memory");
    (*out)->cfg = cfg;
    return CB_OK;
}

static void forget(oauth2 *o)
{
    if (o->header) memset(o->header, 0, strlen(o->header));
    free(o->header);
    o->header = NULL;
    o->expires = 0;
}

void oauth2_free(oauth2 *o)
{
    if (!o) return;
    forget(o);
    free(o);
}

void oauth2_invalidate(oauth2 *o)
{
    forget(o);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    sbuf *b = ud;
    if (b->len + size * n > MAX_ANSWER) return 0;   /* not a token answer: refused */
    sbuf_catn(b, p, size * n);
    return size * n;
}

/* The form body, each value escaped. */
static char *form(CURL *e, const config *cfg)
{
    const char *k[] = {"grant_type", "client_id", "client_secret", "scope"};
    const char *v[] = {"client_credentials", cfg->client_id, cfg->secret, cfg->scope};
    sbuf b;
    sbuf_init(&b);
    for (int i = 0; i < 4; i++) {
        char *x = curl_easy_escape(e, v[i], 0);
        sbuf_printf(&b, "%s%s=%s", i ? "&" : "", k[i], x ? x : "");
        curl_free(x);
    }
    return sbuf_failed(&b) ? (sbuf_free(&b), NULL) : sbuf_take(&b);
}

/* The token in the answer, or why there is none. */
static int take_token(oauth2 *o, long status, const sbuf *body, cb_err *err)
{
    json_error_t je;
    json_t *j = json_loadb(body->s ? body->s : "", body->len, 0, &je);
    const char *tok = NULL, *e = NULL, *desc = NULL;
    json_int_t ttl = 0;
    if (json_is_object(j)) {
        tok = json_string_value(json_object_get(j, "access_token"));
        e = json_string_value(json_object_get(j, "error"));
        desc = json_string_value(json_object_get(j, "error_description"));
        ttl = json_integer_value(json_object_get(j, "expires_in"));
    }
    int rc;
    if (status != 200 || e)
        rc = cb_errf(err, CB_EREMOTE, "token endpoint: HTTP %ld: %s%s%.300s", status,
                     e ? e : "refused", desc ? ": " : "", desc ? desc : "");
    else if (!tok || !*tok || ttl <= 0)
        rc = cb_errf(err, CB_EPARSE, "token endpoint: the answer holds no access_token with "
                     "expires_in");
    else {
        size_t n = strlen(tok) + 32;
        if ((o->header = malloc(n))) snprintf(o->header, n, "Authorization: Bearer %s", tok);
        o->expires = mono_s() + (long long)ttl;
        o->ttl = (long long)ttl;
        rc = o->header ? CB_OK : cb_errf(err, CB_ENOMEM, "out of memory");
    }
    json_decref(j);
    return rc;
}

static int fetch(oauth2 *o, cb_err *err)
{
    const config *cfg = o->cfg;
    CURL *e = curl_easy_init();
    if (!e) return cb_errf(err, CB_ENOMEM, "out of memory");
    char *body = form(e, cfg);
    sbuf ans;
    sbuf_init(&ans);
    char ebuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(e, CURLOPT_URL, cfg->token_url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &ans);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, cfg->tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, cfg->tls_verify ? 2L : 0L);
    CURLcode res = body ? curl_easy_perform(e) : CURLE_OUT_OF_MEMORY;
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    int rc = res != CURLE_OK ? cb_errf(err, CB_EIO, "token endpoint %s: %s", cfg->token_url,
                                       *ebuf ? ebuf : curl_easy_strerror(res))
                             : take_token(o, status, &ans, err);
    if (body) memset(body, 0, strlen(body));   /* it holds the client secret */
    free(body);
    sbuf_free(&ans);
    curl_easy_cleanup(e);
    return rc;
}

int oauth2_header(oauth2 *o, const char **header, cb_err *err)
{
    /* Five minutes early, or half the lifetime of a short-lived token. */
    long long margin = o->ttl < 2 * REFRESH_MARGIN_S ? o->ttl / 2 : REFRESH_MARGIN_S;
    if (!o->header || mono_s() >= o->expires - margin) {
        forget(o);
        int rc = fetch(o, err);
        if (rc) return rc;
    }
    *header = o->header;
    return CB_OK;
}
