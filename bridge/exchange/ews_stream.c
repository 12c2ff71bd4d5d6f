#include "ews_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../mapping/sbuf.h"
#include "autodiscover.h"
#include "ews_client.h"
#include "ews_xml.h"

/* An envelope larger than this is hostile (real ones are a few KB; a
 * refused one only costs a reconnect and a catch-up), and the cap also
 * bounds the rescans of a partial envelope. */
#define MAX_PENDING (2L * 1024 * 1024)
#define SUBSCRIBE_RETRY_MS 1000
#define SUBSCRIBE_RETRY_CAP_MS 300000
#define COOKIE_MAX 256

typedef struct sub {
    const person *p;
    char id[512];           /* SubscriptionId, empty while (re)subscribing */
    int group;
    int pending;            /* a Subscribe is in flight */
    int refused;            /* its mailbox refused: never the anchor */
} sub;

typedef struct group {
    ews_stream *s;
    int index;
    size_t first, n;        /* its members: subs[first .. first + n) */
    size_t anchor;          /* index in subs */
    char key[AUTODISCOVER_KEY_MAX];   /* GroupingInformation|ExternalEwsUrl */
    char cookie[COOKIE_MAX];          /* X-BackEndOverrideCookie of the anchor's answer */
    ews_hanging *conn;
    struct event *watchdog, *retry, *resub;
    sbuf pending;           /* bytes of an envelope not yet complete */
    int saw_closed;
    int failures;           /* consecutive failed connections */
    int sub_failures;       /* consecutive failed Subscribes */
} group;

struct ews_stream {
    struct event_base *base;
    const config *cfg;
    const people *people;
    const side_memo *memo;
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
static void group_subscribe(group *g);
static void gather(group *g);

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
    for (size_t i = 0; id && *id && i < s->nsubs; i++)
        if (!strcmp(s->subs[i].id, id)) return &s->subs[i];
    return NULL;
}

static const char *anchor_of(const group *g)
{
    return g->s->subs[g->anchor].p->smtp;
}

/* ---- the memo: subscriptions kept across restarts --------------------- */

/* "<group key>\t<anchor>\t<cookie>\t<SubscriptionId>" under stream:<smtp> */
static void memo_save(ews_stream *s, const sub *u)
{
    if (!s->memo) return;
    const group *g = &s->groups[u->group];
    char name[300], *v = NULL;
    snprintf(name, sizeof name, "stream:%s", u->p->smtp);
    if (u->id[0] && asprintf(&v, "%s\t%s\t%s\t%s", g->key, anchor_of(g), g->cookie, u->id) < 0)
        v = NULL;
    s->memo->put(s->memo->ud, name, v ? v : "");
    free(v);
}

typedef struct kept {
    char key[AUTODISCOVER_KEY_MAX], anchor[256], cookie[COOKIE_MAX], id[512];
} kept;

static int memo_load(ews_stream *s, const sub *u, kept *k)
{
    char name[300], v[2048];
    snprintf(name, sizeof name, "stream:%s", u->p->smtp);
    if (!s->memo || s->memo->get(s->memo->ud, name, v, sizeof v)) return 0;
    char *f[4], *save = NULL;
    f[0] = strtok_r(v, "\t", &save);
    for (int i = 1; i < 4; i++) f[i] = f[i - 1] ? strtok_r(NULL, "\t", &save) : NULL;
    /* An empty cookie leaves three fields: the id is then the last. */
    if (f[2] && !f[3]) f[3] = f[2], f[2] = "";
    if (!f[0] || !f[1] || !f[3]) return 0;
    snprintf(k->key, sizeof k->key, "%s", f[0]);
    snprintf(k->anchor, sizeof k->anchor, "%s", f[1]);
    snprintf(k->cookie, sizeof k->cookie, "%s", f[2]);
    snprintf(k->id, sizeof k->id, "%s", f[3]);
    return 1;
}

/* ---- Unsubscribe ------------------------------------------------------ */

static void on_unsubscribed(void *ud, const ews_response *r, const cb_err *err)
{
    (void)err;
    ews_stream *s = ud;
    if (r && r->nmsgs && r->msgs[0].ok) s->stats.unsubscribed++;
}

/* A subscription being replaced is removed first (Exchange Online counts
 * them against 20 per mailbox); routed as it was made, or its server
 * would not know it. Its answer changes nothing. */
static void unsubscribe(ews_stream *s, const char *smtp, const char *id, const char *anchor,
                        const char *cookie)
{
    sbuf x;
    sbuf_init(&x);
    sbuf_cat(&x, "<m:Unsubscribe><m:SubscriptionId>");
    sbuf_xml(&x, id);
    sbuf_cat(&x, "</m:SubscriptionId></m:Unsubscribe>");
    ews_route rt = {anchor, cookie};
    if (!sbuf_failed(&x)) ews_client_submit_routed(s->ews, smtp, &rt, x.s, on_unsubscribed, s, NULL);
    sbuf_free(&x);
}

/* Every member's subscription is dropped: the group's server changed. */
static void group_unsubscribe_all(group *g, const char *old_cookie)
{
    ews_stream *s = g->s;
    for (size_t i = g->first; i < g->first + g->n; i++) {
        sub *u = &s->subs[i];
        if (!u->id[0]) continue;
        unsubscribe(s, u->p->smtp, u->id, anchor_of(g), old_cookie);
        u->id[0] = '\0';
        memo_save(s, u);
        s->changed(s->ud, u->p->smtp);
    }
}

/* ---- Subscribe -------------------------------------------------------- */

typedef struct sub_req {
    ews_stream *s;
    size_t index;
} sub_req;

static void subscribe_failed(group *g, sub *u, const ews_response *r, const cb_err *err)
{
    ews_stream *s = g->s;
    s->stats.subscribe_failed++;
    const char *why = r && r->nmsgs ? r->msgs[0].code : err ? err->msg : "no answer";
    if (err && err->code == CB_EMAILBOX && !u->refused) {
        /* This mailbox refuses: the group goes on without it. */
        u->refused = 1;
        if ((size_t)(u - s->subs) == g->anchor) {
            for (size_t i = g->first; i < g->first + g->n; i++)
                if (!s->subs[i].refused) {
                    char old[COOKIE_MAX];
                    snprintf(old, sizeof old, "%s", g->cookie);
                    group_unsubscribe_all(g, old);
                    g->anchor = i;
                    g->cookie[0] = '\0';
                    break;
                }
        }
    }
    int ms = SUBSCRIBE_RETRY_MS;
    for (int i = 0; i < g->sub_failures && ms < SUBSCRIBE_RETRY_CAP_MS; i++) ms *= 2;
    if (ms > SUBSCRIBE_RETRY_CAP_MS) ms = SUBSCRIBE_RETRY_CAP_MS;
    g->sub_failures++;
    fprintf(stderr, "calbridge: Subscribe for %s failed: %s; tried again in %d s\n", u->p->smtp,
            why, ms / 1000);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    if (!evtimer_pending(g->resub, NULL)) evtimer_add(g->resub, &tv);
}

/* The anchor's answer names the server every member must live on. */
static void anchor_subscribed(group *g, const ews_response *r)
{
    if (!strcmp(g->cookie, r->backend_cookie)) return;
    char old[COOKIE_MAX];
    snprintf(old, sizeof old, "%s", g->cookie);
    if (old[0]) {
        /* The anchor landed elsewhere: every other member moves too. */
        sub *a = &g->s->subs[g->anchor];
        char id[sizeof a->id];
        snprintf(id, sizeof id, "%s", a->id);
        a->id[0] = '\0';
        group_unsubscribe_all(g, old);
        snprintf(a->id, sizeof a->id, "%s", id);
    }
    snprintf(g->cookie, sizeof g->cookie, "%s", r->backend_cookie);
}

static void on_subscribed(void *ud, const ews_response *r, const cb_err *err)
{
    sub_req *q = ud;
    ews_stream *s = q->s;
    sub *u = &s->subs[q->index];
    free(q);
    u->pending = 0;
    if (s->stopped) return;
    group *g = &s->groups[u->group];
    if (!r || !r->nmsgs || !r->msgs[0].ok || !r->msgs[0].subscription_id[0]) {
        subscribe_failed(g, u, r, err);
        return;
    }
    snprintf(u->id, sizeof u->id, "%s", r->msgs[0].subscription_id);
    s->stats.subscribed++;
    g->sub_failures = 0;
    /* A new subscription sees only what happens from now on: what changed
     * since the person was last read (the read its loss set off may have
     * run before it existed) is read now. */
    s->changed(s->ud, u->p->smtp);
    if ((size_t)(u - s->subs) == g->anchor) anchor_subscribed(g, r);
    memo_save(s, u);
    group_subscribe(g);
    gather(g);
}

static void subscribe(group *g, sub *u)
{
    ews_stream *s = g->s;
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
    ews_route rt = {anchor_of(g), g->cookie};
    if (ews_client_submit_routed(s->ews, u->p->smtp, &rt, op, on_subscribed, q, NULL) != CB_OK)
        free(q);
    else
        u->pending = 1;
}

/* The anchor first (its answer sets the cookie), then everyone missing. */
static void group_subscribe(group *g)
{
    ews_stream *s = g->s;
    sub *a = &s->subs[g->anchor];
    if (s->stopped || a->refused) return;
    if (!a->id[0]) {
        if (!a->pending) subscribe(g, a);
        return;
    }
    for (size_t i = g->first; i < g->first + g->n; i++) {
        sub *u = &s->subs[i];
        if (!u->id[0] && !u->pending && !u->refused) subscribe(g, u);
    }
}

static void on_resub(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    group_subscribe(ud);
}

/* A subscription the server no longer knows: subscribe again and catch up. */
static void lost(group *g, sub *u)
{
    u->id[0] = '\0';
    g->s->stats.resubscribed++;
    memo_save(g->s, u);
    g->s->changed(g->s->ud, u->p->smtp);
    group_subscribe(g);
}

/* ---- stream envelopes ------------------------------------------------- */

static int kills_subscription(const char *code)
{
    return !strcmp(code, "ErrorSubscriptionNotFound") || !strcmp(code, "ErrorInvalidSubscription") ||
           !strcmp(code, "ErrorExpiredSubscription") ||
           !strcmp(code, "ErrorSubscriptionAccessDenied");
}

static void on_stream_error(group *g, const ews_response *r)
{
    ews_stream *s = g->s;
    const char *code = r->msgs[0].code;
    int missed = !strcmp(code, "ErrorMissedNotificationEvents");
    if (!missed && !kills_subscription(code)) return;   /* the connection's end says more */
    int named = 0;
    for (size_t i = 0; i < r->nnotices; i++) {
        sub *u = r->notices[i].error ? sub_by_id(s, r->notices[i].subscription_id) : NULL;
        if (!u || u->group != g->index) continue;
        named++;
        if (missed) s->stats.missed++, s->changed(s->ud, u->p->smtp);
        else lost(g, u);
    }
    for (size_t i = g->first; !named && i < g->first + g->n; i++) {
        sub *u = &s->subs[i];
        if (missed) s->stats.missed++, s->changed(s->ud, u->p->smtp);
        else if (u->id[0]) lost(g, u);
    }
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
    if (!events && m->ok && !strcmp(m->connection_status, "OK")) s->stats.heartbeats++;
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
    for (size_t i = g->first; i < g->first + g->n; i++) s->changed(s->ud, s->subs[i].p->smtp);
}

static void drop_conn(group *g)
{
    ews_client_stream_cancel(g->conn);
    g->conn = NULL;
    evtimer_del(g->watchdog);
    sbuf_free(&g->pending);
}

static void reconnect_later(group *g)
{
    /* A connection that keeps failing may hold subscriptions its server no
     * longer knows without saying so readably: replace them all. */
    if (g->failures == 3) {
        group_unsubscribe_all(g, g->cookie);
        g->cookie[0] = '\0';
        group_subscribe(g);
    }
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

/* New ids do not join a running connection: it is re-opened, once the
 * group's other answers had a moment to arrive. */
static void gather(group *g)
{
    if (g->conn) drop_conn(g);
    evtimer_del(g->retry);
    struct timeval tv = {0, 100000};
    evtimer_add(g->retry, &tv);
}

static void connect_group(group *g)
{
    ews_stream *s = g->s;
    if (g->conn || s->stopped || !s->subs[g->anchor].id[0]) return;
    sbuf x;
    sbuf_init(&x);
    sbuf_cat(&x, "<m:GetStreamingEvents><m:SubscriptionIds>");
    for (size_t i = g->first; i < g->first + g->n; i++) {
        if (!s->subs[i].id[0]) continue;
        sbuf_cat(&x, "<t:SubscriptionId>");
        sbuf_xml(&x, s->subs[i].id);
        sbuf_cat(&x, "</t:SubscriptionId>");
    }
    sbuf_printf(&x, "</m:SubscriptionIds><m:ConnectionTimeout>%d</m:ConnectionTimeout>"
                    "</m:GetStreamingEvents>", s->cfg->stream_minutes);
    cb_err e;
    g->saw_closed = 0;
    /* The server ends the stream itself; a minute more lets its Closed in. */
    long timeout = (s->cfg->stream_minutes + 1) * 60000L;
    ews_route rt = {anchor_of(g), g->cookie};
    if (!sbuf_failed(&x) && ews_client_stream(s->ews, anchor_of(g), &rt, x.s, timeout, on_chunk,
                                              on_end, g, &g->conn, &e) == CB_OK) {
        s->stats.connections++;
        arm_watchdog(g);
    } else {
        g->failures++;
        reconnect_later(g);
    }
    sbuf_free(&x);
}

/* ---- grouping --------------------------------------------------------- */

typedef struct order {
    const char *key;
    const person *p;
} order;

static int by_key_then_address(const void *a, const void *b)
{
    const order *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->p->smtp, y->p->smtp);
}

/* Autodiscover's pair per person ("" where it gave none). */
static char **grouping_keys(ews_stream *s)
{
    size_t n = s->people->n;
    char **key = calloc(n + 1, sizeof *key);
    const char **smtp = calloc(n + 1, sizeof *smtp);
    cb_err e = {0};
    if (key && smtp && s->cfg->autodiscover_url) {
        for (size_t i = 0; i < n; i++) smtp[i] = s->people->v[i].smtp;
        if (autodiscover_groups(s->ews, s->cfg->autodiscover_url, smtp, n, key, &e) != CB_OK)
            fprintf(stderr, "calbridge: Autodiscover (%s): %s; streaming subscriptions are "
                            "grouped by address, and may miss server affinity\n",
                    s->cfg->autodiscover_url, e.msg);
    }
    free(smtp);
    return key;
}

static void group_members(ews_stream *s, char **key)
{
    size_t n = s->people->n;
    order *o = calloc(n + 1, sizeof *o);
    if (!o) return;
    for (size_t i = 0; i < n; i++) o[i] = (order){key && key[i] ? key[i] : "", &s->people->v[i]};
    qsort(o, n, sizeof *o, by_key_then_address);
    for (size_t i = 0; i < n; i++) {
        int fresh = !i || strcmp(o[i].key, o[i - 1].key) ||
                    s->groups[s->ngroups - 1].n == EWS_STREAM_GROUP;
        if (fresh) {
            group *g = &s->groups[s->ngroups++];
            g->first = g->anchor = i;
            snprintf(g->key, sizeof g->key, "%s", o[i].key);
        }
        s->subs[i] = (sub){.p = o[i].p, .group = (int)s->ngroups - 1};
        s->groups[s->ngroups - 1].n++;
    }
    free(o);
}

/* What the memo kept is used again when it was made for this very group
 * (same pair, same anchor, the anchor's cookie); anything else is
 * unsubscribed as it was routed. */
static void reuse_kept(group *g)
{
    ews_stream *s = g->s;
    kept a, k;
    int anchor_ok = memo_load(s, &s->subs[g->anchor], &a) && !strcmp(a.key, g->key) &&
                    !strcmp(a.anchor, anchor_of(g));
    if (anchor_ok) snprintf(g->cookie, sizeof g->cookie, "%s", a.cookie);
    for (size_t i = g->first; i < g->first + g->n; i++) {
        sub *u = &s->subs[i];
        if (!memo_load(s, u, &k)) continue;
        if (anchor_ok && !strcmp(k.key, g->key) && !strcmp(k.anchor, a.anchor) &&
            !strcmp(k.cookie, a.cookie)) {
            snprintf(u->id, sizeof u->id, "%s", k.id);
            s->stats.reused++;
        } else {
            unsubscribe(s, u->p->smtp, k.id, k.anchor, k.cookie);
            memo_save(s, u);
        }
    }
}

/* ---- public ----------------------------------------------------------- */

int ews_stream_new(struct event_base *base, const config *cfg, const people *people,
                   const side_memo *memo, ews_stream_fn changed, void *ud, ews_stream **out,
                   cb_err *err)
{
    *out = NULL;
    ews_stream *s = calloc(1, sizeof *s);
    if (!s) return cb_errf(err, CB_ENOMEM, "out of memory");
    *s = (ews_stream){.base = base, .cfg = cfg, .people = people, .memo = memo,
                      .changed = changed, .ud = ud};
    s->nsubs = people->n;
    s->subs = calloc(s->nsubs + 1, sizeof *s->subs);
    s->groups = calloc(s->nsubs + 1, sizeof *s->groups);   /* at most one each */
    int rc = s->subs && s->groups ? ews_client_new(base, cfg, &s->ews, err)
                                  : cb_errf(err, CB_ENOMEM, "out of memory");
    for (size_t i = 0; rc == CB_OK && i < s->nsubs; i++) {
        group *g = &s->groups[i];
        g->s = s;
        g->index = (int)i;
        sbuf_init(&g->pending);
        g->watchdog = evtimer_new(base, on_watchdog, g);
        g->retry = evtimer_new(base, on_retry, g);
        g->resub = evtimer_new(base, on_resub, g);
        if (!g->watchdog || !g->retry || !g->resub) rc = cb_errf(err, CB_ENOMEM, "out of memory");
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
    char **key = grouping_keys(s);
    group_members(s, key);
    for (size_t i = 0; key && i < s->people->n; i++) free(key[i]);
    free(key);
    s->stats.groups = (long)s->ngroups;
    for (size_t i = 0; i < s->ngroups; i++) {
        reuse_kept(&s->groups[i]);
        if (s->subs[s->groups[i].anchor].id[0]) connect_group(&s->groups[i]);
        group_subscribe(&s->groups[i]);
    }
}

void ews_stream_stop(ews_stream *s)
{
    if (!s) return;
    s->stopped = 1;
    for (size_t i = 0; i < s->nsubs; i++) {
        group *g = &s->groups[i];
        drop_conn(g);
        if (g->retry) evtimer_del(g->retry);
        if (g->resub) evtimer_del(g->resub);
    }
}

void ews_stream_free(ews_stream *s)
{
    if (!s) return;
    if (s->groups) ews_stream_stop(s);
    for (size_t i = 0; s->groups && i < s->nsubs; i++) {
        group *g = &s->groups[i];
        if (g->watchdog) event_free(g->watchdog);
        if (g->retry) event_free(g->retry);
        if (g->resub) event_free(g->resub);
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
