#include "ews_client.h"
#include "oauth2.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../../mapping/hash.h"
#include "../../mapping/sbuf.h"

#define RETRY_BASE_MS 250
#define RETRY_CAP_MS 30000
#define RETRY_AFTER_CAP_MS 600000   /* a Retry-After beyond 10 min is not believed */
#define AUTH_PAUSE_MS 60000         /* after a 401/403, doubling to an hour: */
#define AUTH_PAUSE_CAP_MS 3600000   /* an account lockout policy counts logins */

typedef struct request request;
typedef struct mailbox_q mailbox_q;

struct request {
    request *next;
    mailbox_q *mq;
    char *body;             /* the whole envelope */
    ews_done_fn done;
    void *ud;
    int attempts;
    int token_retried;      /* a 401 met once: sent again with a fresh token */
    size_t max_answer;      /* bytes; a longer answer is refused unread */
    int once;               /* not idempotent (CreateItem): never re-sent */
    size_t body_len, body_at;   /* a once request's body, and how much of it
                                 * libcurl has taken */
    int too_big;
    CURL *easy;
    struct curl_slist *headers;
    sbuf resp;
    char errbuf[CURL_ERROR_SIZE];
    /* A hanging request (GetStreamingEvents): outside the mailbox queues,
     * its body handed over as it arrives. */
    ews_chunk_fn chunk;
    ews_end_fn end;
    char *anchor;           /* X-AnchorMailbox when not the queue's mailbox */
    char *cookie;           /* X-BackEndOverrideCookie to send; NULL none */
    int affinity;           /* X-PreferServerAffinity: true */
    char got_cookie[256];   /* the cookie the answer set */
    long timeout_ms;
    ews_client *c;
};

struct mailbox_q {
    mailbox_q *next;
    mailbox_q *wnext, *wprev;   /* in the client's waiting list while head */
    char *smtp;
    request *head, *tail;
    int busy;               /* a request is in flight */
    long long paused_until; /* monotonic ms */
};

struct ews_client {
    struct event_base *base;
    const config *cfg;
    CURLM *multi;
    struct event *curl_timer, *pump_timer;
    long long pump_at;      /* when pump_timer fires, 0 if idle */
    mailbox_q *mailboxes;
    /* Queues with requests, in the order they got their first: pump looks
     * at these, not at every mailbox (10,000 people, most idle). */
    mailbox_q *waiting, *waiting_tail;
    mailbox_q **byname;     /* open addressing on the lower-cased address */
    size_t bycap, byn;
    int in_flight;
    size_t pending;
    int hanging;
    char *auth_header;      /* auth = bearer */
    oauth2 *oauth;          /* auth = oauth2 */
    int stream_token_retried;   /* a stream met a 401 since its last good end */
    long long auth_until;   /* monotonic ms: no login is tried before */
    int auth_failures;
    char auth_error[128];
    ews_client_stats stats;
};

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void pump(ews_client *c);

/* ---- libcurl <-> libevent glue ---------------------------------------- */

typedef struct sock_ctx {
    struct event *ev;
    ews_client *c;
} sock_ctx;

static void check_done(ews_client *c);

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    ews_client *c = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    check_done(c);
}

static int on_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    ews_client *c = userp;
    sock_ctx *sc = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (sc) {
            event_free(sc->ev);
            free(sc);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    if (!sc) {
        sc = calloc(1, sizeof *sc);
        if (!sc) return -1;
        sc->c = c;
        curl_multi_assign(c->multi, s, sc);
    } else {
        event_free(sc->ev);
    }
    short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    sc->ev = event_new(c->base, s, kind, on_socket_event, c);
    event_add(sc->ev, NULL);
    return 0;
}

static void on_curl_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ews_client *c = arg;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(c);
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    ews_client *c = userp;
    if (timeout_ms < 0) {
        evtimer_del(c->curl_timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(c->curl_timer, &tv);
    return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    request *r = ud;
    size_t n = size * nmemb;
    if (r->chunk) return r->chunk(r->ud, ptr, n) == 0 ? n : 0;
    if (r->resp.len + n > r->max_answer) {
        r->too_big = 1;
        return 0;
    }
    sbuf_catn(&r->resp, ptr, n);
    return sbuf_failed(&r->resp) ? 0 : n;
}

/* Set-Cookie: X-BackEndOverrideCookie=<value>; ... — the value is kept
 * only if it looks like one (a server name, '~', digits): it is sent back
 * in a header, and the answer is not trusted. */
static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    request *r = ud;
    size_t n = size * nmemb;
    static const char NAME[] = "set-cookie:";
    static const char COOKIE[] = "X-BackEndOverrideCookie=";
    if (n < sizeof NAME || strncasecmp(line, NAME, sizeof NAME - 1)) return n;
    size_t i = sizeof NAME - 1;
    while (i < n && line[i] == ' ') i++;
    if (n - i < sizeof COOKIE || strncmp(line + i, COOKIE, sizeof COOKIE - 1)) return n;
    i += sizeof COOKIE - 1;
    size_t len = 0;
    while (i + len < n && len < sizeof r->got_cookie - 1 &&
           strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.~_-",
                  line[i + len]) && line[i + len])
        len++;
    if (i + len < n && line[i + len] != ';' && line[i + len] != '\r') return n;
    memcpy(r->got_cookie, line + i, len);
    r->got_cookie[len] = '\0';
    return n;
}

/* ---- queue ------------------------------------------------------------ */

static size_t name_slot(mailbox_q *const *tab, size_t cap, const char *smtp)
{
    size_t k = (size_t)hash_str_lower(HASH_BASIS, smtp) & (cap - 1);
    while (tab[k] && strcasecmp(tab[k]->smtp, smtp)) k = (k + 1) & (cap - 1);
    return k;
}

/* Keeps byname at most half full: every queue is indexed, none removed. */
static int name_grow(ews_client *c)
{
    if (c->byn * 2 < c->bycap) return 0;
    size_t cap = c->bycap ? c->bycap * 2 : 64;
    mailbox_q **tab = calloc(cap, sizeof *tab);
    if (!tab) return -1;
    for (mailbox_q *m = c->mailboxes; m; m = m->next) tab[name_slot(tab, cap, m->smtp)] = m;
    free(c->byname);
    c->byname = tab;
    c->bycap = cap;
    return 0;
}

static mailbox_q *queue_for(ews_client *c, const char *smtp)
{
    if (name_grow(c) < 0) return NULL;
    size_t k = name_slot(c->byname, c->bycap, smtp);
    if (c->byname[k]) return c->byname[k];
    mailbox_q *m = calloc(1, sizeof *m);
    if (!m || !(m->smtp = strdup(smtp))) {
        free(m);
        return NULL;
    }
    m->next = c->mailboxes;
    c->mailboxes = m;
    c->byname[k] = m;
    c->byn++;
    return m;
}

static void waiting_add(ews_client *c, mailbox_q *m)
{
    m->wnext = NULL;
    m->wprev = c->waiting_tail;
    if (c->waiting_tail) c->waiting_tail->wnext = m;
    else c->waiting = m;
    c->waiting_tail = m;
}

static void waiting_remove(ews_client *c, mailbox_q *m)
{
    if (m->wprev) m->wprev->wnext = m->wnext;
    else c->waiting = m->wnext;
    if (m->wnext) m->wnext->wprev = m->wprev;
    else c->waiting_tail = m->wprev;
    m->wnext = m->wprev = NULL;
}

static void request_free(request *r)
{
    if (!r) return;
    free(r->body);
    free(r->anchor);
    free(r->cookie);
    curl_slist_free_all(r->headers);
    sbuf_free(&r->resp);
    free(r);
}

/* The credentials, whichever kind: a bearer token's header, or the
 * user and password libcurl answers a challenge with. */
static int set_auth(ews_client *c, CURL *e, struct curl_slist **headers, cb_err *err)
{
    const config *cfg = c->cfg;
    const char *bearer = c->auth_header;
    if (cfg->auth == AUTH_OAUTH2 && oauth2_header(c->oauth, &bearer, err) != CB_OK) return err->code;
    if (bearer) *headers = curl_slist_append(*headers, bearer);
    if (cfg->auth == AUTH_BASIC || cfg->auth == AUTH_NTLM) {
        /* NTLM: libcurl's handshake (NTLMv2 when the server offers target
         * information, as Exchange does), "DOMAIN\\user" or a UPN. */
        curl_easy_setopt(e, CURLOPT_HTTPAUTH,
                         (long)(cfg->auth == AUTH_BASIC ? CURLAUTH_BASIC : CURLAUTH_NTLM));
        curl_easy_setopt(e, CURLOPT_USERNAME, cfg->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, cfg->secret);
    } else if (cfg->auth == AUTH_NEGOTIATE) {
        /* Kerberos through GSS-API: the service's own ticket (a keytab via
         * KRB5_CLIENT_KTNAME, or kinit), no password here. */
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_NEGOTIATE);
        curl_easy_setopt(e, CURLOPT_USERPWD, ":");
    }
    return CB_OK;
}

/* What every POST calbridge sends to Exchange carries, EWS and
 * Autodiscover alike: the body and headers of r, its answer into r. */
static void post_options(CURL *e, const config *cfg, const char *url, request *r, long timeout_ms)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    /* A stable name an EWS allow-list can match (README, Exchange Online). */
    curl_easy_setopt(e, CURLOPT_USERAGENT, "calbridge/1");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "https");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, cfg->tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, cfg->tls_verify ? 2L : 0L);
}

/* A once request's body goes through a read callback, so that libcurl
 * cannot send it twice: its seek callback refuses to rewind a body already
 * handed over whole. */
static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    request *r = ud;
    size_t n = r->body_len - r->body_at;
    if (n > size * nitems) n = size * nitems;
    memcpy(buf, r->body + r->body_at, n);
    r->body_at += n;
    return n;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
    request *r = ud;
    if (r->body_at == r->body_len || origin != SEEK_SET || offset != 0) return CURL_SEEKFUNC_FAIL;
    r->body_at = 0;
    return CURL_SEEKFUNC_OK;
}

/* libcurl sends a request again, unasked, when a reused connection closes
 * before any answer ("Connection died, retrying a fresh connect"): what a
 * load balancer cutting a CreateItem Exchange already applied looks like,
 * and the item would be made twice. A fresh connection per CreateItem did
 * not prevent it: NTLM and Negotiate authenticate a connection, so the
 * request follows the handshake on a connection libcurl counts as reused.
 * Hence the body is handed over once: a retry once libcurl has taken all
 * of it (rewound or not) gets no body again and fails, and the caller's
 * recovery looks the tag up instead; a body taken in part, which Exchange
 * cannot have applied, may be rewound and sent whole. So a CreateItem may
 * use a kept connection like any request (no TCP, TLS or NTLM handshake
 * per batch). */
static void send_once(CURL *e, request *r)
{
    r->body_len = strlen(r->body);
    r->body_at = 0;
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, r);
    curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
    curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
}

static int start(ews_client *c, request *r)
{
    const config *cfg = c->cfg;
    CURL *e = curl_easy_init();
    if (!e) return -1;
    char anchor[320], cookie[320];
    snprintf(anchor, sizeof anchor, "X-AnchorMailbox: %s", r->anchor ? r->anchor : r->mq->smtp);
    curl_slist_free_all(r->headers);
    r->headers = curl_slist_append(NULL, "Content-Type: text/xml; charset=utf-8");
    r->headers = curl_slist_append(r->headers, anchor);
    if (r->affinity) r->headers = curl_slist_append(r->headers, "X-PreferServerAffinity: true");
    if (r->cookie && *r->cookie) {
        snprintf(cookie, sizeof cookie, "Cookie: X-BackEndOverrideCookie=%s", r->cookie);
        r->headers = curl_slist_append(r->headers, cookie);
    }
    /* No "Expect: 100-continue" (libcurl's for a large body): IIS answers
     * it, but a body held back for it is one more round trip. */
    if (r->once) r->headers = curl_slist_append(r->headers, "Expect:");
    r->got_cookie[0] = '\0';
    cb_err te;
    if (set_auth(c, e, &r->headers, &te) != CB_OK) {
        curl_easy_cleanup(e);
        return -1;
    }
    sbuf_free(&r->resp);
    r->too_big = 0;
    post_options(e, cfg, cfg->ews_url, r,
                 r->timeout_ms ? r->timeout_ms : (long)cfg->timeout_ms);
    if (r->once) send_once(e, r);
    if (r->affinity) {
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    r->easy = e;
    r->errbuf[0] = '\0';
    r->attempts++;
    c->stats.requests++;
    if (r->mq) {
        r->mq->busy = 1;
        c->in_flight++;
    }
    curl_multi_add_handle(c->multi, e);
    return 0;
}

static void schedule_pump(ews_client *c, long long at)
{
    /* keep the earliest wake-up */
    if (c->pump_at && evtimer_pending(c->pump_timer, NULL) && c->pump_at <= at) return;
    long long d = at - now_ms();
    if (d < 0) d = 0;
    struct timeval tv = {(long)(d / 1000), (long)(d % 1000) * 1000};
    c->pump_at = at;
    evtimer_add(c->pump_timer, &tv);
}

static void finish(ews_client *c, request *r, ews_response *resp, const cb_err *err);
static void auth_refused(ews_client *c, long status);

/* The error every request meets while logins are paused. */
static int auth_paused(const ews_client *c, long long now, cb_err *err)
{
    return cb_errf(err, CB_EREMOTE, "%s; no login is tried for another %lld s", c->auth_error,
                   (c->auth_until - now + 999) / 1000);
}

/* While credentials are refused, queued requests fail at once, without a
 * login: only the pause's end tries again. At most the requests queued now
 * (a callback may queue more). */
static int fail_while_refused(ews_client *c, long long now)
{
    if (c->auth_until <= now) return 0;
    cb_err err;
    auth_paused(c, now, &err);
    for (size_t left = c->pending; left; left--) {
        mailbox_q *m = c->waiting;
        while (m && m->busy) m = m->wnext;
        if (!m) break;
        finish(c, m->head, NULL, &err);
    }
    return 1;
}

/* auth = oauth2: a token for the requests about to start. When the token
 * endpoint fails, logins pause as for refused credentials (and the queued
 * requests fail at once), so that it is not asked again and again. */
static int token_ready(ews_client *c, long long now)
{
    const char *h;
    cb_err e = {0};
    if (c->cfg->auth != AUTH_OAUTH2 || !c->pending || oauth2_header(c->oauth, &h, &e) == CB_OK)
        return 1;
    auth_refused(c, 0);
    snprintf(c->auth_error, sizeof c->auth_error, "%.120s", e.msg);
    fail_while_refused(c, now);
    return 0;
}

static void pump(ews_client *c)
{
    long long now = now_ms(), wake = 0;
    if (fail_while_refused(c, now) || !token_ready(c, now)) return;
    for (mailbox_q *m = c->waiting, *next; m && c->in_flight < c->cfg->max_in_flight; m = next) {
        next = m->wnext;
        if (m->busy) continue;
        if (m->paused_until > now) {
            if (!wake || m->paused_until < wake) wake = m->paused_until;
            continue;
        }
        request *r = m->head;
        if (start(c, r) < 0) {
            wake = now + RETRY_BASE_MS;
            continue;
        }
    }
    if (wake) schedule_pump(c, wake);
}

static void on_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    ews_client *c = arg;
    c->pump_at = 0;
    pump(c);
}

/* ---- completion ------------------------------------------------------- */

static void finish(ews_client *c, request *r, ews_response *resp, const cb_err *err)
{
    mailbox_q *m = r->mq;
    m->head = r->next;
    if (!m->head) {
        m->tail = NULL;
        waiting_remove(c, m);
    }
    c->pending--;
    if (resp) {
        resp->raw = r->resp.s ? r->resp.s : "";
        resp->raw_len = r->resp.len;
        snprintf(resp->backend_cookie, sizeof resp->backend_cookie, "%s", r->got_cookie);
    }
    r->done(r->ud, resp, err);
    request_free(r);
}

static long retry_delay(int attempts)
{
    long d = RETRY_BASE_MS;
    for (int i = 1; i < attempts && d < RETRY_CAP_MS; i++) d *= 2;
    return d < RETRY_CAP_MS ? d : RETRY_CAP_MS;
}

/* Returns 1 if the request was put back for another attempt. A CreateItem
 * whose answer was lost may have been applied: re-sending it could double
 * the item, so it goes back to the caller, whose recovery looks its tag up. */
static int retry(ews_client *c, request *r, long delay_ms)
{
    if (r->attempts >= EWS_MAX_ATTEMPTS || r->once) return 0;
    r->mq->paused_until = now_ms() + delay_ms;
    c->stats.retries++;
    schedule_pump(c, r->mq->paused_until);
    return 1;
}

static void complete_hanging(ews_client *c, request *r, CURLcode res, long status)
{
    cb_err err = {0};
    if (res != CURLE_OK)
        cb_errf(&err, CB_EIO, "EWS stream: %s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
    else if (status != 200)
        cb_errf(&err, CB_EREMOTE, "EWS stream: HTTP %ld", status);
    if (status == 401 && c->oauth && !c->stream_token_retried) {
        /* An expired token ends a stream like any 401: a fresh one for the
         * reconnect, and only a second refusal pauses logins. */
        oauth2_invalidate(c->oauth);
        c->stream_token_retried = 1;
    } else if (status == 401 || status == 403) {
        auth_refused(c, status);
    } else if (status == 200) {
        c->stream_token_retried = 0;
    }
    c->hanging--;
    r->end(r->ud, err.code ? &err : NULL);
    request_free(r);
}

/* 401/403: the whole client pauses, doubling each time (no more logins
 * than an administrator would make by hand). */
static void auth_refused(ews_client *c, long status)
{
    long pause = AUTH_PAUSE_MS;
    for (int i = 0; i < c->auth_failures && pause < AUTH_PAUSE_CAP_MS; i++) pause *= 2;
    if (pause > AUTH_PAUSE_CAP_MS) pause = AUTH_PAUSE_CAP_MS;
    c->auth_failures++;
    c->auth_until = now_ms() + pause;
    snprintf(c->auth_error, sizeof c->auth_error, "EWS: HTTP %ld: the service account's "
             "credentials were refused", status);
    schedule_pump(c, c->auth_until);
}

/* Faults about one mailbox (its rights, its existence, its state): that
 * person waits, everyone else goes on. */
static int mailbox_fault(const char *code)
{
    static const char *const CODES[] = {
        "ErrorImpersonateUserDenied", "ErrorImpersonationDenied", "ErrorNonExistentMailbox",
        "ErrorMailboxMoveInProgress", "ErrorMailboxStoreUnavailable", "ErrorQuotaExceeded",
        "ErrorAccessDenied", "ErrorMailboxConfiguration"};
    for (size_t i = 0; i < sizeof CODES / sizeof *CODES; i++)
        if (!strcmp(code, CODES[i])) return 1;
    return 0;
}

static void complete(ews_client *c, request *r, CURLcode res)
{
    long status = 0;
    curl_off_t retry_after = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &retry_after);
    curl_multi_remove_handle(c->multi, r->easy);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
    if (!r->mq) {
        complete_hanging(c, r, res, status);
        return;
    }
    r->mq->busy = 0;
    c->in_flight--;
    cb_err err = {0};
    ews_response *resp = NULL;
    if (r->too_big) {
        cb_errf(&err, CB_EREMOTE, "EWS %s: answer over %zu bytes; refused", r->mq->smtp,
                r->max_answer);
    } else if (res != CURLE_OK) {
        cb_errf(&err, CB_EIO, "EWS %s: %s", r->mq->smtp, r->errbuf[0] ? r->errbuf : curl_easy_strerror(res));
        if (retry(c, r, retry_delay(r->attempts))) return;
    } else if (ews_xml_parse(r->resp.s ? r->resp.s : "", r->resp.len, &resp, &err) == CB_OK &&
               (resp->fault || status != 200) &&
               (!strcmp(resp->fault_code, "ErrorServerBusy") || resp->backoff_ms > 0)) {
        long wait = resp->backoff_ms > 0 ? resp->backoff_ms : 1000;
        c->stats.busy++;
        c->stats.backoff_ms_total += wait;
        ews_response_free(resp);
        resp = NULL;
        r->attempts = 0;   /* throttling is not a failure of the request */
        r->mq->paused_until = now_ms() + wait;
        schedule_pump(c, r->mq->paused_until);
        return;
    } else if (status == 401 && c->cfg->auth == AUTH_OAUTH2 && !r->token_retried) {
        /* The token expired or was revoked early: one fresh token and the
         * same request again (refused before it was read, so even a
         * CreateItem is safe to send again). */
        ews_response_free(resp);
        oauth2_invalidate(c->oauth);
        r->token_retried = 1;
        r->mq->paused_until = now_ms();
        schedule_pump(c, r->mq->paused_until);
        return;
    } else if (status == 401 || status == 403) {
        auth_refused(c, status);
        auth_paused(c, now_ms(), &err);
        ews_response_free(resp);
        resp = NULL;
    } else if ((status == 429 || status == 503) && !(resp && resp->fault)) {
        /* Throttled at the HTTP level: wait as long as the server asks. */
        long long wait = retry_after > 0 ? (long long)retry_after * 1000 : retry_delay(r->attempts);
        if (wait > RETRY_AFTER_CAP_MS) wait = RETRY_AFTER_CAP_MS;
        ews_response_free(resp);
        c->stats.busy++;
        c->stats.backoff_ms_total += (long)wait;
        r->attempts = 0;
        r->mq->paused_until = now_ms() + wait;
        schedule_pump(c, r->mq->paused_until);
        return;
    } else if (status >= 500 && !(resp && resp->fault)) {
        cb_errf(&err, CB_EIO, "EWS %s: HTTP %ld", r->mq->smtp, status);
        ews_response_free(resp);
        resp = NULL;
        if (retry(c, r, retry_delay(r->attempts))) return;
    } else if (resp && resp->fault) {
        /* A request Exchange refuses for what it carries (schema): the
         * caller may split it to find the one item at fault. */
        int content = !strcmp(resp->fault_code, "ErrorSchemaValidation") ||
                      !strcmp(resp->fault_code, "ErrorInvalidRequest");
        cb_errf(&err, content ? CB_EREJECTED : mailbox_fault(resp->fault_code) ? CB_EMAILBOX
                                                                               : CB_EREMOTE,
                "EWS %s: %s: %s", r->mq->smtp, resp->fault_code, resp->fault_text);
        ews_response_free(resp);
        resp = NULL;
    } else if (status != 200) {
        cb_errf(&err, CB_EREMOTE, "EWS %s: HTTP %ld", r->mq->smtp, status);
        ews_response_free(resp);
        resp = NULL;
    }
    if (resp && status == 200) c->auth_failures = 0;
    finish(c, r, resp, resp ? NULL : &err);
    ews_response_free(resp);
}

static void check_done(ews_client *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        request *r;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        complete(c, r, msg->data.result);
    }
    pump(c);
}

/* ---- public ----------------------------------------------------------- */

int ews_client_new(struct event_base *base, const config *cfg, ews_client **out, cb_err *err)
{
    *out = NULL;
    ews_client *c = calloc(1, sizeof *c);
    if (!c) return cb_errf(err, CB_ENOMEM, "out of memory");
    c->base = base;
    c->cfg = cfg;
    c->multi = curl_multi_init();
    c->curl_timer = evtimer_new(base, on_curl_timer, c);
    c->pump_timer = evtimer_new(base, on_pump, c);
    if (cfg->auth == AUTH_BEARER) {
        size_t n = strlen(cfg->secret) + 32;
        c->auth_header = malloc(n);
        if (c->auth_header) snprintf(c->auth_header, n, "Authorization: Bearer %s", cfg->secret);
    }
    if (cfg->auth == AUTH_OAUTH2 && oauth2_new(cfg, &c->oauth, err) != CB_OK) c->oauth = NULL;
    if (!c->multi || !c->curl_timer || !c->pump_timer ||
        (cfg->auth == AUTH_BEARER && !c->auth_header) || (cfg->auth == AUTH_OAUTH2 && !c->oauth)) {
        ews_client_free(c);
        return cb_errf(err, CB_ENOMEM, "cannot set up the EWS client");
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    *out = c;
    return CB_OK;
}

void ews_client_free(ews_client *c)
{
    if (!c) return;
    for (mailbox_q *m = c->mailboxes, *next; m; m = next) {
        next = m->next;
        for (request *r = m->head, *rn; r; r = rn) {
            rn = r->next;
            if (r->easy) {
                curl_multi_remove_handle(c->multi, r->easy);
                curl_easy_cleanup(r->easy);
            }
            request_free(r);
        }
        free(m->smtp);
        free(m);
    }
    free(c->byname);
    if (c->multi) curl_multi_cleanup(c->multi);
    if (c->curl_timer) event_free(c->curl_timer);
    if (c->pump_timer) event_free(c->pump_timer);
    if (c->auth_header) memset(c->auth_header, 0, strlen(c->auth_header));
    free(c->auth_header);
    oauth2_free(c->oauth);
    free(c);
}

void ews_client_pause(ews_client *c, const char *mailbox, long ms)
{
    mailbox_q *m = queue_for(c, mailbox);
    if (!m) return;
    if (ms > RETRY_AFTER_CAP_MS) ms = RETRY_AFTER_CAP_MS;
    long long until = now_ms() + ms;
    if (until > m->paused_until) m->paused_until = until;
    c->stats.busy++;
    c->stats.backoff_ms_total += ms;
    schedule_pump(c, m->paused_until);
}

static request *queue_request(ews_client *c, const char *mailbox, const char *operation_xml,
                              ews_done_fn done, void *ud, cb_err *err)
{
    mailbox_q *m = queue_for(c, mailbox);
    request *r = calloc(1, sizeof *r);
    sbuf b;
    sbuf_init(&b);
    ews_xml_envelope(&b, c->cfg->server_version, c->cfg->impersonation ? mailbox : NULL,
                     operation_xml);
    if (r) r->body = sbuf_take(&b);
    else sbuf_free(&b);
    if (!m || !r || !r->body) {
        request_free(r);
        cb_errf(err, CB_ENOMEM, "out of memory");
        return NULL;
    }
    r->mq = m;
    r->max_answer = ews_xml_answer_limit(operation_xml);
    r->once = !strncmp(operation_xml, "<m:CreateItem", 13);
    r->done = done;
    r->ud = ud;
    if (m->tail) m->tail->next = r;
    else m->head = r, waiting_add(c, m);
    m->tail = r;
    c->pending++;
    schedule_pump(c, 0);
    return r;
}

int ews_client_submit(ews_client *c, const char *mailbox, const char *operation_xml,
                      ews_done_fn done, void *ud, cb_err *err)
{
    return queue_request(c, mailbox, operation_xml, done, ud, err) ? CB_OK : CB_ENOMEM;
}

/* Copies the route into r: the anchor and cookie outlive the caller's. */
static int set_route(request *r, const ews_route *route)
{
    r->affinity = 1;
    r->anchor = strdup(route->anchor);
    r->cookie = strdup(route->cookie ? route->cookie : "");
    return r->anchor && r->cookie ? 0 : -1;
}

int ews_client_submit_routed(ews_client *c, const char *mailbox, const ews_route *route,
                             const char *operation_xml, ews_done_fn done, void *ud,
                             cb_err *err)
{
    request *r = queue_request(c, mailbox, operation_xml, done, ud, err);
    if (!r) return CB_ENOMEM;
    if (set_route(r, route) < 0) {
        free(r->anchor), r->anchor = NULL;   /* sent unrouted rather than lost */
        r->affinity = 0;
    }
    return CB_OK;
}

int ews_client_stream(ews_client *c, const char *mailbox, const ews_route *route,
                      const char *operation_xml, long timeout_ms, ews_chunk_fn chunk,
                      ews_end_fn end, void *ud, ews_hanging **out, cb_err *err)
{
    *out = NULL;
    if (c->auth_until > now_ms()) return auth_paused(c, now_ms(), err);
    request *r = calloc(1, sizeof *r);
    sbuf b;
    sbuf_init(&b);
    ews_xml_envelope(&b, c->cfg->server_version, c->cfg->impersonation ? mailbox : NULL,
                     operation_xml);
    if (r) r->body = sbuf_take(&b);
    else sbuf_free(&b);
    if (r && route && set_route(r, route) < 0) free(r->anchor), r->anchor = NULL;
    else if (r && !route) r->anchor = strdup(mailbox);
    if (!r || !r->body || !r->anchor) {
        request_free(r);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    r->chunk = chunk;
    r->end = end;
    r->ud = ud;
    r->c = c;
    r->timeout_ms = timeout_ms;
    if (start(c, r) < 0) {
        request_free(r);
        return cb_errf(err, CB_EIO, "cannot start the EWS stream (no connection or no token)");
    }
    c->hanging++;
    *out = (ews_hanging *)r;
    return CB_OK;
}

void ews_client_stream_cancel(ews_hanging *h)
{
    request *r = (request *)h;
    if (!r) return;
    curl_multi_remove_handle(r->c->multi, r->easy);
    curl_easy_cleanup(r->easy);
    r->c->hanging--;
    request_free(r);
}

int ews_client_post_now(ews_client *c, const char *url, const char *body, sbuf *answer,
                        long *status, cb_err *err)
{
    request r = {.max_answer = 4u << 20, .body = (char *)body};
    CURL *e = curl_easy_init();
    r.headers = curl_slist_append(NULL, "Content-Type: text/xml; charset=utf-8");
    int rc = e && r.headers ? set_auth(c, e, &r.headers, err)
                            : cb_errf(err, CB_ENOMEM, "out of memory");
    if (rc == CB_OK) {
        post_options(e, c->cfg, url, &r, 30000L);
        CURLcode res = curl_easy_perform(e);
        *status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, status);
        if (res != CURLE_OK)
            rc = cb_errf(err, CB_EIO, "%s: %s", url, r.too_big ? "answer too large"
                                                 : r.errbuf[0] ? r.errbuf : curl_easy_strerror(res));
    }
    if (e) curl_easy_cleanup(e);
    curl_slist_free_all(r.headers);
    if (rc == CB_OK) *answer = r.resp;
    else sbuf_free(&r.resp);
    return rc;
}

size_t ews_client_pending(const ews_client *c)
{
    return c->pending;
}

ews_client_stats ews_client_get_stats(const ews_client *c)
{
    return c->stats;
}
