#include "ews_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../mapping/sbuf.h"
#include "ews_client.h"
#include "ews_xml.h"

/* An envelope larger than this is hostile (real ones are a few KB; a
 * refused one only costs a reconnect and a catch-up), and the cap also
 * bounds the rescans of a partial envelope. */
#define MAX_PENDING (2L * 1024 * 1024)

typedef struct sub {
    const person *p;
    char id[512];           /* SubscriptionId, empty while (re)subscribing */
    int group;
} sub;

typedef struct group {
    ews_stream *s;
    int index;
    ews_hanging *conn;
    struct event *watchdog, *retry;
    sbuf pending;           /* bytes of an envelope not yet complete */
    int saw_closed;
    int failures;           /* consecutive failed connections */
} group;

struct ews_stream {
    struct event_base *base;
    const config *cfg;
    const people *people;
    ews_stream_fn changed;
    void *ud;
    ews_client *ews;        /* its own: Subscribe must not queue behind syncs */
    sub *subs;
    size_t nsubs;
    group *groups;
    size_t ngroups;
    int stopped;
    ews_stream_stats stats;
};

static void connect_group(group *g);
static void subscribe(ews_stream *s, sub *u);

/* ---- envelopes -------------------------------------------------------- */

size_t ews_stream_envelope_len(const char *buf, size_t len)
{
    for (size_t i = 0; i + 2 < len; i++) {
        if (buf[i] != '<' || buf[i + 1] != '/') continue;
        size_t j = i + 2, name = j;
        while (j < len && buf[j] != '>' && buf[j] != ' ') {
            if (buf[j] == ':') name = j + 1;
            j++;
        }
        if (j >= len) return 0;
        if (j - name == 8 && !memcmp(buf + name, "Envelope", 8)) {
            while (j < len && buf[j] != '>') j++;
            return j < len ? j + 1 : 0;
        }
    }
    return 0;
}

static sub *sub_by_id(ews_stream *s, const char *id)
{
    for (size_t i = 0; id && i < s->nsubs; i++)
        if (!strcmp(s->subs[i].id, id)) return &s->subs[i];
    return NULL;
}

/* A subscription the server no longer knows: subscribe again and catch up. */
static void lost(ews_stream *s, sub *u)
{
    u->id[0] = '\0';
    s->stats.resubscribed++;
    s->changed(s->ud, u->p->smtp);
    subscribe(s, u);
}

/* An error envelope: the subscriptions it names, or the whole group. */
static void on_stream_error(group *g, const ews_response *r)
{
    ews_stream *s = g->s;
    int named = 0;
    for (size_t i = 0; i < r->nnotices; i++) {
        sub *u = r->notices[i].error ? sub_by_id(s, r->notices[i].subscription_id) : NULL;
        if (u) lost(s, u), named++;
    }
    for (size_t i = 0; !named && i < s->nsubs; i++)
        if (s->subs[i].group == g->index && s->subs[i].id[0]) lost(s, &s->subs[i]);
}

static void on_envelope(group *g, const char *xml, size_t len)
{
    ews_stream *s = g->s;
    ews_response *r = NULL;
    s->stats.envelopes++;
    if (ews_xml_parse(xml, len, &r, NULL) != CB_OK || !r->nmsgs) {
        ews_response_free(r);
        return;
    }
    const ews_msg *m = &r->msgs[0];
    if (!m->ok) on_stream_error(g, r);
    int events = 0;
    for (size_t i = 0; i < r->nnotices; i++) {
        sub *u = r->notices[i].events ? sub_by_id(s, r->notices[i].subscription_id) : NULL;
        if (!u) continue;
        events = 1;
        s->stats.notifications++;
        s->changed(s->ud, u->p->smtp);
    }
    if (!events && !strcmp(m->connection_status, "OK")) s->stats.heartbeats++;
    if (!strcmp(m->connection_status, "Closed")) g->saw_closed = 1;
    ews_response_free(r);
}

/* ---- connections ------------------------------------------------------ */

static void arm_watchdog(group *g)
{
    int ms = g->s->cfg->heartbeat_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(g->watchdog, &tv);
}

static int on_chunk(void *ud, const char *data, size_t len)
{
    group *g = ud;
    arm_watchdog(g);
    sbuf_catn(&g->pending, data, len);
    if (sbuf_failed(&g->pending) || g->pending.len > (size_t)MAX_PENDING) return -1;
    size_t n;
    while (g->pending.len && (n = ews_stream_envelope_len(g->pending.s, g->pending.len))) {
        on_envelope(g, g->pending.s, n);
        memmove(g->pending.s, g->pending.s + n, g->pending.len - n + 1);
        g->pending.len -= n;
    }
    return 0;
}

/* Anything but a clean Closed may have lost notifications: catch up. */
static void group_lost_events(group *g)
{
    ews_stream *s = g->s;
    s->stats.dropped++;
    for (size_t i = 0; i < s->nsubs; i++)
        if (s->subs[i].group == g->index) s->changed(s->ud, s->subs[i].p->smtp);
}

static void reconnect_later(group *g)
{
    /* A connection that keeps failing may hold subscriptions the server
     * no longer knows without saying so readably: subscribe anew. */
    if (g->failures == 3)
        for (size_t i = 0; i < g->s->nsubs; i++)
            if (g->s->subs[i].group == g->index && g->s->subs[i].id[0]) lost(g->s, &g->s->subs[i]);
    /* 1 s, doubling to a minute, while the server keeps refusing. */
    int ms = 1000;
    for (int i = 1; i < g->failures && ms < 60000; i++) ms *= 2;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(g->retry, &tv);
}

static void on_end(void *ud, const cb_err *err)
{
    group *g = ud;
    g->conn = NULL;
    evtimer_del(g->watchdog);
    sbuf_free(&g->pending);
    if (g->s->stopped) return;
    if (g->saw_closed && !err) {
        g->s->stats.closed++;
        g->failures = 0;
        connect_group(g);
        return;
    }
    g->failures++;
    group_lost_events(g);
    reconnect_later(g);
}

static void on_watchdog(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    group *g = ud;
    ews_client_stream_cancel(g->conn);   /* silent too long: presumed dead */
    on_end(g, &(cb_err){CB_EIO, "no heartbeat"});
}

static void on_retry(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    connect_group(ud);
}

static void connect_group(group *g)
{
    ews_stream *s = g->s;
    if (g->conn || s->stopped) return;
    sbuf x;
    sbuf_init(&x);
    sbuf_cat(&x, "<m:GetStreamingEvents><m:SubscriptionIds>");
    const char *anchor = NULL;
    for (size_t i = 0; i < s->nsubs; i++) {
        sub *u = &s->subs[i];
        if (u->group != g->index || !u->id[0]) continue;
        if (!anchor) anchor = u->p->smtp;
        sbuf_cat(&x, "<t:SubscriptionId>");
        sbuf_xml(&x, u->id);
        sbuf_cat(&x, "</t:SubscriptionId>");
    }
    sbuf_printf(&x, "</m:SubscriptionIds><m:ConnectionTimeout>%d</m:ConnectionTimeout>"
                    "</m:GetStreamingEvents>", s->cfg->stream_minutes);
    cb_err e;
    g->saw_closed = 0;
    /* The server ends the stream itself; a minute more lets its Closed in. */
    long timeout = (s->cfg->stream_minutes + 1) * 60000L;
    if (anchor && !sbuf_failed(&x) &&
        ews_client_stream(s->ews, anchor, x.s, timeout, on_chunk, on_end, g, &g->conn, &e) == CB_OK) {
        s->stats.connections++;
        arm_watchdog(g);
    } else if (anchor) {
        g->failures++;
        reconnect_later(g);
    }
    sbuf_free(&x);
}

/* ---- subscriptions ---------------------------------------------------- */

typedef struct sub_req {
    ews_stream *s;
    size_t index;
} sub_req;

static void on_subscribed(void *ud, const ews_response *r, const cb_err *err)
{
    sub_req *q = ud;
    ews_stream *s = q->s;
    sub *u = &s->subs[q->index];
    free(q);
    if (s->stopped) return;
    if (!r || !r->nmsgs || !r->msgs[0].ok || !r->msgs[0].subscription_id[0]) {
        fprintf(stderr, "calbridge: Subscribe for %s failed: %s; retried later\n", u->p->smtp,
                r && r->nmsgs ? r->msgs[0].code : err ? err->msg : "no answer");
        return;   /* the resync interval still covers this person */
    }
    snprintf(u->id, sizeof u->id, "%s", r->msgs[0].subscription_id);
    s->stats.subscribed++;
    group *g = &s->groups[u->group];
    if (g->conn) {
        /* A running connection does not take new ids: re-open it. */
        ews_client_stream_cancel(g->conn);
        g->conn = NULL;
        evtimer_del(g->watchdog);
        sbuf_free(&g->pending);
    }
    evtimer_del(g->retry);
    struct timeval tv = {0, 100000};   /* gather the group's other answers first */
    evtimer_add(g->retry, &tv);
}

static void subscribe(ews_stream *s, sub *u)
{
    sub_req *q = calloc(1, sizeof *q);
    if (!q) return;
    q->s = s;
    q->index = (size_t)(u - s->subs);
    const char *op = "<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds>"
                     "<t:DistinguishedFolderId Id=\"calendar\"/></t:FolderIds><t:EventTypes>"
                     "<t:EventType>CreatedEvent</t:EventType><t:EventType>DeletedEvent</t:EventType>"
                     "<t:EventType>ModifiedEvent</t:EventType><t:EventType>MovedEvent</t:EventType>"
                     "<t:EventType>CopiedEvent</t:EventType></t:EventTypes>"
                     "</m:StreamingSubscriptionRequest></m:Subscribe>";
    if (ews_client_submit(s->ews, u->p->smtp, op, on_subscribed, q, NULL) != CB_OK) free(q);
}

/* ---- public ----------------------------------------------------------- */

int ews_stream_new(struct event_base *base, const config *cfg, const people *people,
                   ews_stream_fn changed, void *ud, ews_stream **out, cb_err *err)
{
    *out = NULL;
    ews_stream *s = calloc(1, sizeof *s);
    if (!s) return cb_errf(err, CB_ENOMEM, "out of memory");
    *s = (ews_stream){.base = base, .cfg = cfg, .people = people, .changed = changed, .ud = ud};
    s->nsubs = people->n;
    s->ngroups = (people->n + EWS_STREAM_GROUP - 1) / EWS_STREAM_GROUP;
    s->subs = calloc(s->nsubs + 1, sizeof *s->subs);
    s->groups = calloc(s->ngroups + 1, sizeof *s->groups);
    int rc = s->subs && s->groups ? ews_client_new(base, cfg, &s->ews, err)
                                  : cb_errf(err, CB_ENOMEM, "out of memory");
    for (size_t i = 0; rc == CB_OK && i < s->ngroups; i++) {
        group *g = &s->groups[i];
        g->s = s;
        g->index = (int)i;
        sbuf_init(&g->pending);
        g->watchdog = evtimer_new(base, on_watchdog, g);
        g->retry = evtimer_new(base, on_retry, g);
        if (!g->watchdog || !g->retry) rc = cb_errf(err, CB_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < s->nsubs; i++) {
        s->subs[i].p = &people->v[i];
        s->subs[i].group = (int)(i / EWS_STREAM_GROUP);
    }
    if (rc) {
        ews_stream_free(s);
        return rc;
    }
    *out = s;
    return CB_OK;
}

void ews_stream_start(ews_stream *s)
{
    for (size_t i = 0; i < s->nsubs; i++) subscribe(s, &s->subs[i]);
}

void ews_stream_stop(ews_stream *s)
{
    if (!s) return;
    s->stopped = 1;
    for (size_t i = 0; i < s->ngroups; i++) {
        group *g = &s->groups[i];
        ews_client_stream_cancel(g->conn);
        g->conn = NULL;
        if (g->watchdog) evtimer_del(g->watchdog);
        if (g->retry) evtimer_del(g->retry);
    }
}

void ews_stream_free(ews_stream *s)
{
    if (!s) return;
    ews_stream_stop(s);
    for (size_t i = 0; i < s->ngroups; i++) {
        group *g = &s->groups[i];
        if (g->watchdog) event_free(g->watchdog);
        if (g->retry) event_free(g->retry);
        sbuf_free(&g->pending);
    }
    ews_client_free(s->ews);
    free(s->groups);
    free(s->subs);
    free(s);
}

ews_stream_stats ews_stream_get_stats(const ews_stream *s)
{
    return s->stats;
}
