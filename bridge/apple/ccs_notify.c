#include "ccs_notify.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../mapping/sbuf.h"

#define MAX_PENDING 10000     /* calendars remembered when CalendarServer is away */
#define MAX_ANSWER 65536      /* a multistatus answer is read up to this */

struct ccs_notify {
    ccs_notify_mode mode;
    char *url, *user, *password, *host;
    int tls_verify;
    long timeout_ms;
    unsigned long serial;     /* makes every PROPPATCH's value new */
    pg_calendar *pending;     /* not told yet */
    size_t npending;
};

int ccs_notify_open(const ccs_notify_opts *o, ccs_notify **out, cb_err *err)
{
    *out = NULL;
    ccs_notify *n = calloc(1, sizeof *n);
    if (!n) return cb_errf(err, CB_ENOMEM, "out of memory");
    n->mode = o->mode;
    n->tls_verify = o->tls_verify;
    n->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    const char *src[4] = {o->url, o->user, o->password, o->host};
    char **dst[4] = {&n->url, &n->user, &n->password, &n->host};
    for (int i = 0; i < 4; i++)
        if (src[i] && !(*dst[i] = strdup(src[i]))) {
            ccs_notify_close(n);
            return cb_errf(err, CB_ENOMEM, "out of memory");
        }
    if ((n->mode == CCS_NOTIFY_CALDAV && !n->url) || (n->mode == CCS_NOTIFY_QUEUE && !n->host)) {
        ccs_notify_close(n);
        return cb_errf(err, CB_EINVAL, "notify: caldav needs a URL, queue a host name");
    }
    *out = n;
    return CB_OK;
}

void ccs_notify_close(ccs_notify *n)
{
    if (!n) return;
    free(n->url);
    free(n->user);
    if (n->password) memset(n->password, 0, strlen(n->password));
    free(n->password);
    free(n->host);
    free(n->pending);
    free(n);
}

static size_t on_answer(char *p, size_t size, size_t k, void *ud)
{
    sbuf *b = ud;
    if (b->len < MAX_ANSWER) sbuf_catn(b, p, size * k);
    return size * k;
}

/* The calendar's URL, as CalendarServer names it for its owner. */
static char *calendar_url(const ccs_notify *n, CURL *c, const pg_calendar *cal)
{
    char *o = curl_easy_escape(c, cal->owner, 0), *m = curl_easy_escape(c, cal->name, 0);
    sbuf u;
    sbuf_init(&u);
    if (o && m)
        sbuf_printf(&u, "%s%scalendars/__uids__/%s/%s/", n->url,
                    n->url[strlen(n->url) - 1] == '/' ? "" : "/", o, m);
    curl_free(o);
    curl_free(m);
    return sbuf_take(&u);
}

/* One PROPPATCH; CB_OK when CalendarServer answered that the property was
 * set (207 Multi-Status with a 200 propstat). why says otherwise. */
static int proppatch(ccs_notify *n, const pg_calendar *cal, char *why, size_t size)
{
    CURL *c = curl_easy_init();
    char *url = c ? calendar_url(n, c, cal) : NULL;
    sbuf body, answer;
    sbuf_init(&body);
    sbuf_init(&answer);
    sbuf_printf(&body, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:propertyupdate "
                       "xmlns:D=\"DAV:\" xmlns:X=\"urn:x-calbridge:\"><D:set><D:prop><X:mirrored>"
                       "%lld-%lu</X:mirrored></D:prop></D:set></D:propertyupdate>",
                (long long)time(NULL), ++n->serial);
    int rc = CB_EIO;
    if (!url || sbuf_failed(&body)) {
        snprintf(why, size, "out of memory");
    } else {
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/xml; charset=utf-8");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PROPPATCH");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.s);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)(CURLAUTH_BASIC | CURLAUTH_DIGEST));
        curl_easy_setopt(c, CURLOPT_USERNAME, n->user ? n->user : "");
        curl_easy_setopt(c, CURLOPT_PASSWORD, n->password ? n->password : "");
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, n->timeout_ms);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, (long)n->tls_verify);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, n->tls_verify ? 2L : 0L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_answer);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &answer);
        long status = 0;
        CURLcode cc = curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(h);
        /* The answer is CalendarServer's (or whoever answers at that URL):
         * only looked at, never trusted further. */
        if (cc != CURLE_OK) snprintf(why, size, "%s", curl_easy_strerror(cc));
        else if (status != 207) snprintf(why, size, "HTTP %ld", status);
        else if (!answer.s || !strstr(answer.s, " 200 ")) snprintf(why, size, "property not set");
        else rc = CB_OK;
    }
    free(url);
    sbuf_free(&body);
    sbuf_free(&answer);
    if (c) curl_easy_cleanup(c);
    return rc;
}

static int listed(const pg_calendar *v, size_t n, const pg_calendar *c)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v[i].owner, c->owner) && !strcmp(v[i].name, c->name)) return 1;
    return 0;
}

static int remember(ccs_notify *n, const pg_calendar *cal)
{
    if (listed(n->pending, n->npending, cal) || n->npending >= MAX_PENDING) return 0;
    pg_calendar *v = realloc(n->pending, (n->npending + 1) * sizeof *v);
    if (!v) return -1;
    n->pending = v;
    v[n->npending++] = *cal;
    return 0;
}


/* Tries each of all; those that fail become the pending ones, reported
 * when they were not pending already (was). */
static int send_caldav(ccs_notify *n, const pg_calendar *all, size_t k, const pg_calendar *was,
                       size_t nwas, cb_err *err)
{
    for (size_t i = 0; i < k; i++) {
        char why[256];
        if (proppatch(n, &all[i], why, sizeof why) == CB_OK) continue;
        if (!listed(was, nwas, &all[i]))
            fprintf(stderr, "calbridge: CalendarServer not told of the change to %s's calendar "
                    "%s (PROPPATCH: %s); Apple clients see it on their next poll; trying again "
                    "after the next batch\n", all[i].owner, all[i].name, why);
        if (remember(n, &all[i])) return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    return CB_OK;
}

int ccs_notify_send(ccs_notify *n, pg_sink *sink, size_t *pending, cb_err *err)
{
    *pending = n ? n->npending : 0;
    if (!n || n->mode == CCS_NOTIFY_NONE) return CB_OK;
    pg_calendar *now = NULL;
    size_t k = 0;
    cb_err e = {0};
    if (pg_sink_touched(sink, &now, &k, &e) != CB_OK)
        fprintf(stderr, "calbridge: the calendars a batch wrote could not be listed: %s\n", e.msg);
    /* Those left over and this batch's, each once; the pending list starts
     * again from what fails now. */
    pg_calendar *was = n->pending, *all = malloc((k + n->npending + 1) * sizeof *all);
    size_t nwas = n->npending, m = 0;
    if (!all) {
        free(now);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nwas; i++) all[m++] = was[i];
    for (size_t i = 0; i < k; i++)
        if (!listed(all, m, &now[i])) all[m++] = now[i];
    free(now);
    n->pending = NULL;
    n->npending = 0;
    int rc = CB_OK;
    if (n->mode == CCS_NOTIFY_CALDAV) {
        rc = send_caldav(n, all, m, was, nwas, err);
    } else if (m && pg_sink_queue_push(sink, n->host, all, m, &e) != CB_OK) {
        if (!nwas)
            fprintf(stderr, "calbridge: CalendarServer's push not queued for %zu calendar(s): "
                    "%s; trying again after the next batch\n", m, e.msg);
        for (size_t i = 0; rc == CB_OK && i < m; i++)
            if (remember(n, &all[i])) rc = cb_errf(err, CB_ENOMEM, "out of memory");
    }
    free(was);
    free(all);
    *pending = n->npending;
    return rc;
}
