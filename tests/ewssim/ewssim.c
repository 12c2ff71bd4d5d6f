/* ewssim — a small stateful Exchange Web Services endpoint for tests.
 *
 * It serves POST /EWS/Exchange.asmx: checks Basic (or bearer) auth, reads
 * the impersonated mailbox from the ExchangeImpersonation header, validates
 * the request body against the official EWS schemas (answering a failure
 * with the ErrorSchemaValidation fault Exchange sends), and runs the
 * operation in sim_ops. It models Exchange, not calbridge, and links
 * nothing of it: its string buffer (sim_buf.c), its recurrence expansion,
 * InstanceIndex and time zones (sim_recur.c, from Microsoft's documentation
 * and CLDR's windowsZones.xml) are its own, so that the tests compare
 * calbridge with an independent reading of the documentation. Test hooks
 * live under /sim/:
 *   GET  /sim/dump     one line per item (see sim_store_dump)
 *   GET  /sim/log      one line per request: ms op mailbox outcome anchor send
 *   POST /sim/reset    forget every item and the log
 *   POST /sim/control?busy=N&backoff=MS&fail500=N&drop=N
 *                      the next N requests get ErrorServerBusy (with
 *                      BackOffMilliseconds), a bare HTTP 500, or a dropped
 *                      connection
 *   POST /sim/control?dropstream=N   the next N stream writes stop half-way
 *                      through an envelope and the connection is cut
 *   POST /sim/control?expire=1       every subscription expires (open
 *                      streams get the error envelope and Closed)
 *   POST /sim/control?badsync=1      every SyncState becomes invalid
 *   POST /sim/control?touch=SMTP     every calendar item of SMTP gets a new
 *                      ChangeKey, content untouched, as Exchange's own
 *                      processing does (a reminder firing; "ChangeKey":
 *                      it changes with any change to the item)
 *   POST /sim/control?vanish=SMTP    every calendar item of SMTP is gone
 *                      with no change logged and SyncStates still valid (a
 *                      mailbox restored from an older backup)
 * State lives in memory: a restarted simulator is an Exchange whose store
 * was lost (ItemIds, subscription ids and SyncStates are drawn from its
 * start time, so the old ones are unknown to it; tests/it/t_f3).
 * Times are stored and answered in UTC, as Exchange keeps them; a Start or
 * End sent without an offset is read in the item's StartTimeZone.
 *   POST /sim/control?reject=TEXT    a request whose text contains TEXT is
 *                      refused whole with ErrorSchemaValidation, as Exchange
 *                      refuses a value it does not take ("reject=" ends it)
 *   POST /sim/control?endless=1      SyncFolderItems never says
 *                      IncludesLastItemInRange (a hostile or broken server);
 *                      endless=2 also changes the SyncState on every answer
 *   POST /sim/control?faultmailbox=SMTP  every request impersonating SMTP
 *                      gets the ErrorImpersonateUserDenied SOAP fault ("" ends
 *                      it), as Exchange answers an impersonation it refuses
 *                      ("Configure impersonation", learn.microsoft.com/
 *                      exchange/client-developer/exchange-web-services/how-to-
 *                      configure-impersonation; ResponseCodeType)
 *   POST /sim/control?itembusy=N     the next N items written answer
 *                      ErrorServerBusy inside an HTTP 200 (not applied)
 *   POST /sim/control?dropafter=N    the next N requests are applied, then
 *                      the connection is cut before the answer (what a client
 *                      meets when a load balancer or the 1-minute batch limit
 *                      cuts it: "EWS throttling in Exchange")
 *   POST /sim/control?unavailable=N&retryafter=S  (HTTP 503 is IIS's queue
 *                      being full, "EWS throttling in Exchange"; RFC 9110
 *                      Retry-After) the next N requests get
 *                      HTTP 503 with Retry-After: S (status=429: HTTP 429 Too
 *                      Many Requests instead, RFC 6585)
 *   POST /sim/control?chaos=N&seed=S  N per mille of calbridge's requests
 *                      (by User-Agent; the tests' own are spared) meet, at
 *                      random (seeded: the same run after run), one of busy,
 *                      unavailable, itembusy or dropafter above, and as
 *                      many answered requests bump one item's ChangeKey in
 *                      their mailbox (a reminder firing): the faults on, at
 *                      a rate the test sets (make it-chaos)
 *   POST /sim/control?heartbeat=MS&minute=MS  stream heartbeat interval
 *                      (default 5000) and the length of a ConnectionTimeout
 *                      minute (default 60000), so tests need not wait
 *   POST /sim/control?groups=N       mailbox sites (GroupingInformation;
 *                      default 2, at most 8), two mailbox servers each: a
 *                      request reaches the server its X-BackEndOverrideCookie
 *                      names, else either server of its X-AnchorMailbox's
 *                      site in turn; X-PreferServerAffinity: true is answered
 *                      with the cookie; a subscription lives on the server
 *                      its Subscribe reached (its own site's, if that was
 *                      another site), and a GetStreamingEvents or
 *                      Unsubscribe on another server does not find it
 *                      ("Maintain affinity between a group of subscriptions
 *                      and the Mailbox server"; sim_route.h). Limits as
 *                      Exchange Online's: 20 subscriptions per mailbox
 *                      (ErrorExceededSubscriptionCount), 10 open streams
 *                      per mailbox (ErrorExceededConnectionCount)
 *   POST /sim/control?budget=N&window=MS  each mailbox may make N requests
 *                      per window (default 60000 ms; budget=0 no limit); the
 *                      next ones answer ErrorServerBusy with the time left
 *                      as BackOffMilliseconds, as a throttling policy's
 *                      budget does (charged to the target mailbox)
 *   POST /sim/control?missed=N       the next N notifications are lost and
 *                      answered ErrorMissedNotificationEvents instead
 *   POST /sim/control?autodiscover=0 the Autodiscover service answers 404
 *   POST /sim/control?basic=0        Basic authentication is off, as
 *                      Set-WebServicesVirtualDirectory -BasicAuthentication
 *                      $false leaves it: NTLM (sim_ntlm.h, NTLMv2 only, the
 *                      --user account) or a bearer token
 * POST /autodiscover/autodiscover.svc is SOAP Autodiscover's GetUserSettings
 * (GroupingInformation, ExternalEwsUrl); no schema of it is in ../shared,
 * so the request is checked by hand for what the documentation requires.
 * GetStreamingEvents answers as Exchange does: one chunked 200 response
 * carrying envelope after envelope (notifications, ConnectionStatus OK
 * heartbeats, a last Closed), envelopes split across chunk boundaries and
 * several to a chunk.
 * With --client ID:SECRET, POST .../oauth2/v2.0/token is the Microsoft
 * identity platform's client credentials endpoint, and EWS takes the bearer
 * tokens it issued until they expire:
 *   POST /sim/control?tokenttl=S     tokens issued from now last S seconds
 *   POST /sim/control?expiretokens=1 every issued token expires now
 * Usage: ewssim [--port N] [--port-file F] [--schema ews.xsd] [--user U:P]
 *               [--token T] [--client ID:SECRET]
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <libxml/parser.h>
#include <libxml/xmlschemas.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sim_ops.h"
#include "sim_route.h"
#include "sim_ntlm.h"
#include <openssl/evp.h>

#define WINDOWS_ZONES "/usr/share/unicode/cldr/common/supplemental/windowsZones.xml"

#define NS_SOAP "http://schemas.xmlsoap.org/soap/envelope/"
#define NS_T "http://schemas.microsoft.com/exchange/services/2006/types"

typedef struct stream stream;

typedef struct sim {
    struct event_base *base;
    sim_store *store;
    sim_route route;
    stream *streams;
    int missed;             /* the next N notifications are lost */
    int no_autodiscover;    /* answers 404, as where it is not published */
    int no_basic;           /* Basic authentication off on the virtual directory */
    struct ntlm_conn {      /* NTLM authenticates a connection, not a request */
        struct evhttp_connection *c;
        char peer[64];
        uint8_t challenge[8];
        int state;          /* 1 challenged, 2 authenticated */
    } ntlm[64];
    unsigned ntlm_next;
    int port;
    int heartbeat_ms, minute_ms, drop_stream;
    xmlSchemaPtr schema;
    char *basic;        /* "user:password" */
    char *token;        /* a fixed bearer token */
    char *client;       /* "id:secret": the OAuth2 token endpoint is on */
    long token_ttl_ms;
    struct issued {
        char value[48];
        long expires;   /* now_ms() */
    } issued[256];
    int nissued;
    unsigned long next_token;
    int busy, fail500, drop, backoff_ms, unavailable, retry_after_s, drop_after;
    int chaos;                  /* per mille of requests that meet a fault */
    int budget, budget_ms;      /* requests a mailbox may make per window; 0 no limit */
    int too_many;               /* unavailable answers 429, not 503 */
    struct spent {
        char mailbox[256];
        long since;             /* now_ms() the window began */
        int n;
    } spent[256];
    int chaos_itembusy;         /* this request's first item written answers busy */
    unsigned long long rng;     /* xorshift state: the same faults every run */
    char reject[256];
    char fault_mailbox[256];
    sim_buf log;
    struct timespec t0;
    char schema_error[1024];
} sim;

static long now_ms(const sim *s)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - s->t0.tv_sec) * 1000 + (t.tv_nsec - s->t0.tv_nsec) / 1000000;
}

static void reply(struct evhttp_request *req, int code, const char *type, const char *body)
{
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", out);
    evbuffer_free(out);
}

static void soap_reply(struct evhttp_request *req, int code, const char *body)
{
    sim_buf b;
    sim_buf_init(&b);
    sim_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                    "<s:Envelope xmlns:s=\"%s\"><s:Header><h:ServerVersionInfo "
                    "MajorVersion=\"15\" MinorVersion=\"1\" MajorBuildNumber=\"2507\" "
                    "MinorBuildNumber=\"6\" Version=\"V2017_07_11\" "
                    "xmlns:h=\"%s\" xmlns=\"%s\"/></s:Header><s:Body>%s</s:Body></s:Envelope>",
                NS_SOAP, NS_T, NS_T, body);
    reply(req, code, "text/xml; charset=utf-8", b.s);
    sim_buf_free(&b);
}

static void fault(struct evhttp_request *req, const char *code, const char *text,
                  const char *extra)
{
    sim_buf b;
    sim_buf_init(&b);
    sim_buf_printf(&b, "<s:Fault><faultcode xmlns:a=\"%s\">a:%s</faultcode>"
                    "<faultstring xml:lang=\"en-US\">", NS_T, code);
    sim_buf_xml(&b, text);
    sim_buf_printf(&b, "</faultstring><detail><e:ResponseCode "
                    "xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">%s"
                    "</e:ResponseCode><e:Message "
                    "xmlns:e=\"http://schemas.microsoft.com/exchange/services/2006/errors\">",
                code);
    sim_buf_xml(&b, text);
    sim_buf_printf(&b, "</e:Message>%s</detail></s:Fault>", extra ? extra : "");
    soap_reply(req, 500, b.s);
    sim_buf_free(&b);
}

static void log_line(sim *s, const char *op, const char *mailbox, const char *outcome,
                     const char *anchor, const char *send)
{
    sim_buf_printf(&s->log, "%ld\t%s\t%s\t%s\t%s\t%s\n", now_ms(s), op ? op : "-",
                mailbox ? mailbox : "-", outcome, anchor ? anchor : "-", send ? send : "-");
}

static long now_ms(const sim *s);

/* 1 for a token this endpoint issued that has not expired; -1 for one that
 * has (Exchange Online answers 401 with error="invalid_token"). */
static int issued_ok(sim *s, const char *tok)
{
    for (int i = 0; i < s->nissued; i++)
        if (!strcmp(s->issued[i].value, tok)) return s->issued[i].expires > now_ms(s) ? 1 : -1;
    return 0;
}

static int auth_ok(sim *s, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (!h) return 0;
    if (s->client && !strncmp(h, "Bearer ", 7)) return issued_ok(s, h + 7) == 1;
    if (s->token && !strncmp(h, "Bearer ", 7)) return !strcmp(h + 7, s->token);
    if (!s->basic || s->no_basic || strncmp(h, "Basic ", 6)) return 0;
    static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char dec[512];
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    for (const char *c = h + 6; *c && *c != '=' && o < sizeof dec - 1; c++) {
        const char *p = strchr(B64, *c);
        if (!p) return 0;
        v = v << 6 | (unsigned)(p - B64);
        if ((bits += 6) >= 8) dec[o++] = (char)(v >> (bits -= 8) & 0xff);
    }
    dec[o] = '\0';
    return !strcmp(dec, s->basic);
}

/* The request's body, NUL-terminated (the caller frees it). */
static char *body_of(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = evbuffer_get_length(in);
    char *body = malloc(*len + 1);
    if (!body) abort();
    evbuffer_remove(in, body, *len);
    body[*len] = '\0';
    return body;
}

/* ---- NTLM (on-premises Windows authentication) ------------------------ */

static struct ntlm_conn *ntlm_conn_of(sim *s, struct evhttp_request *req, int create)
{
    struct evhttp_connection *c = evhttp_request_get_connection(req);
    char *addr = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(c, &addr, &port);
    char peer[64];
    snprintf(peer, sizeof peer, "%s:%u", addr ? addr : "?", port);
    for (size_t i = 0; i < sizeof s->ntlm / sizeof *s->ntlm; i++)
        if (s->ntlm[i].c == c && !strcmp(s->ntlm[i].peer, peer)) return &s->ntlm[i];
    if (!create) return NULL;
    struct ntlm_conn *n = &s->ntlm[s->ntlm_next++ % (sizeof s->ntlm / sizeof *s->ntlm)];
    *n = (struct ntlm_conn){.c = c};
    snprintf(n->peer, sizeof n->peer, "%s", peer);
    return n;
}

static size_t unbase64(const char *in, uint8_t *out, size_t cap)
{
    size_t n = strlen(in);
    if (n % 4 || n / 4 * 3 > cap) return 0;
    int got = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
    if (got < 0) return 0;
    return (size_t)got - (n && in[n - 1] == '=') - (n > 1 && in[n - 2] == '=');
}

static unsigned roll(sim *s);

/* The NTLM handshake on this connection: 1 when it is authenticated (this
 * request goes on), -1 when a 401 was sent (the challenge, or a refusal). */
static int ntlm_step(sim *s, struct evhttp_request *req, const char *h)
{
    struct ntlm_conn *n = ntlm_conn_of(s, req, h != NULL);
    if (n && n->state == 2 && (!h || strncmp(h, "NTLM ", 5))) return 1;
    uint8_t msg[SIM_NTLM_MAX], out[SIM_NTLM_MAX];
    size_t len = h ? unbase64(h + 5, msg, sizeof msg) : 0;
    char user[256] = "", *colon;
    snprintf(user, sizeof user, "%s", s->basic ? s->basic : "");
    if ((colon = strchr(user, ':'))) *colon++ = '\0';
    struct evkeyvalq *o = evhttp_request_get_output_headers(req);
    if (n && sim_ntlm_is(msg, len, 1)) {
        for (int i = 0; i < 8; i++) n->challenge[i] = (uint8_t)roll(s);
        n->state = 1;
        size_t cl = sim_ntlm_challenge(n->challenge, out);
        char b64[SIM_NTLM_MAX * 2] = "NTLM ";
        EVP_EncodeBlock((unsigned char *)b64 + 5, out, (int)cl);
        evhttp_add_header(o, "WWW-Authenticate", b64);
        log_line(s, NULL, NULL, "ntlm-challenge", NULL, NULL);
        reply(req, 401, "text/plain", "401 Unauthorized");
        return -1;
    }
    if (n && n->state == 1 && colon && sim_ntlm_verify(msg, len, n->challenge, user, colon)) {
        n->state = 2;
        log_line(s, NULL, NULL, "ntlm-authenticated", NULL, NULL);
        return 1;
    }
    if (n) n->state = 0;
    log_line(s, NULL, NULL, "ntlm-refused", NULL, NULL);
    evhttp_add_header(o, "WWW-Authenticate", "Negotiate");
    evhttp_add_header(o, "WWW-Authenticate", "NTLM");
    reply(req, 401, "text/plain", "401 Unauthorized");
    return -1;
}

/* Basic, bearer or an NTLM connection: 1 to go on, 0 refused (not yet
 * answered), -1 answered (NTLM's 401). */
static int authenticated(sim *s, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    struct ntlm_conn *n = ntlm_conn_of(s, req, 0);
    if ((h && !strncmp(h, "NTLM ", 5)) || (n && n->state == 2 && !h)) return ntlm_step(s, req, h);
    return auth_ok(s, req);
}

/* The request's body as XML (NULL when it is not), nothing fetched. */
static xmlDoc *doc_of(struct evhttp_request *req)
{
    size_t len;
    char *body = body_of(req, &len);
    xmlDoc *doc = xmlReadMemory(body, (int)len, "request.xml", NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    free(body);
    return doc;
}

static xmlNode *first_elem(xmlNode *n)
{
    while (n && n->type != XML_ELEMENT_NODE) n = n->next;
    return n;
}

static xmlNode *named(xmlNode *parent, const char *name)
{
    for (xmlNode *c = parent ? parent->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name)) return c;
    return NULL;
}

static void on_schema_error(void *ud, xmlErrorPtr e)
{
    sim *s = ud;
    if (s->schema_error[0]) return;
    snprintf(s->schema_error, sizeof s->schema_error, "%s", e->message ? e->message : "invalid");
    size_t n = strlen(s->schema_error);
    while (n && s->schema_error[n - 1] == '\n') s->schema_error[--n] = '\0';
}

/* 0 when valid; otherwise fills s->schema_error. */
static int validate(sim *s, xmlNode *body_child)
{
    if (!s->schema) return 0;
    xmlSchemaValidCtxtPtr v = xmlSchemaNewValidCtxt(s->schema);
    s->schema_error[0] = '\0';
    xmlSchemaSetValidStructuredErrors(v, on_schema_error, s);
    int rc = xmlSchemaValidateOneElement(v, body_child);
    xmlSchemaFreeValidCtxt(v);
    if (rc && !s->schema_error[0]) snprintf(s->schema_error, sizeof s->schema_error, "invalid");
    return rc;
}

static char *impersonated(xmlNode *header)
{
    xmlNode *sid = named(named(header, "ExchangeImpersonation"), "ConnectingSID");
    xmlNode *addr = named(sid, "PrimarySmtpAddress");
    if (!addr) addr = named(sid, "SmtpAddress");
    if (!addr) addr = named(sid, "PrincipalName");
    char *v = addr ? (char *)xmlNodeGetContent(addr) : NULL;
    for (char *c = v; c && *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    return v;
}

static char *own_mailbox(const sim *s)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s->basic ? s->basic : "service@example.org");
    char *colon = strchr(buf, ':');
    if (colon) *colon = '\0';
    if (!strchr(buf, '@')) strncat(buf, "@example.org", sizeof buf - strlen(buf) - 1);
    return strdup(buf);
}

/* The connection is cut: the client sees a reset, no answer. */
static void drop_connection(struct evhttp_request *req)
{
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evhttp_request_get_connection(req));
    shutdown(bufferevent_getfd(bev), SHUT_RDWR);
    evhttp_send_reply(req, 500, "Dropped", NULL);
}

static int is_client(struct evhttp_request *req)
{
    const char *ua = evhttp_find_header(evhttp_request_get_input_headers(req), "User-Agent");
    return ua && !strncmp(ua, "calbridge", 9);
}

static unsigned roll(sim *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return (unsigned)(s->rng % 1000);
}

/* chaos: a request meets, at random, one of the faults a loaded Exchange
 * answers with ("EWS throttling in Exchange"): ErrorServerBusy with a
 * back-off, HTTP 503 with Retry-After, ErrorServerBusy for the next item
 * written inside a 200, or its answer lost after it was applied. */
static void chaos_due(sim *s, struct evhttp_request *req)
{
    /* Only the client under test meets them: the tests' own requests (curl,
     * exchangelib) set the scene and must not fail. */
    if (!s->chaos || !is_client(req) || (int)roll(s) >= s->chaos) return;
    switch (roll(s) % 4) {
    case 0: s->busy = 1, s->backoff_ms = s->backoff_ms ? s->backoff_ms : 200; break;
    case 1: s->unavailable = 1, s->retry_after_s = s->retry_after_s ? s->retry_after_s : 1; break;
    case 2: s->chaos_itembusy = 1; break;   /* if this request writes (below) */
    default: s->drop_after = 1;
    }
}

/* Applies an injected fault, if one is due; returns 1 when it answered. */
static int inject(sim *s, struct evhttp_request *req)
{
    if (s->drop > 0) {
        s->drop--;
        log_line(s, NULL, NULL, "drop", NULL, NULL);
        drop_connection(req);
        return 1;
    }
    if (s->unavailable > 0) {
        s->unavailable--;
        char ra[16];
        snprintf(ra, sizeof ra, "%d", s->retry_after_s);
        int code = s->too_many ? 429 : 503;
        log_line(s, NULL, NULL, code == 429 ? "http429" : "http503", NULL, NULL);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", ra);
        reply(req, code, "text/html", code == 429 ? "<html><body>Too Many Requests</body></html>"
                                                  : "<html><body>Service Unavailable</body></html>");
        return 1;
    }
    if (s->fail500 > 0) {
        s->fail500--;
        log_line(s, NULL, NULL, "http500", NULL, NULL);
        reply(req, 500, "text/html", "<html><body>Internal Server Error</body></html>");
        return 1;
    }
    if (s->busy > 0) {
        s->busy--;
        char extra[256];
        snprintf(extra, sizeof extra, "<t:MessageXml xmlns:t=\"%s\"><t:Value "
                 "Name=\"BackOffMilliseconds\">%d</t:Value></t:MessageXml>", NS_T, s->backoff_ms);
        log_line(s, NULL, NULL, "busy", NULL, NULL);
        fault(req, "ErrorServerBusy",
              "The server cannot service this request right now. Try again later.", extra);
        return 1;
    }
    return 0;
}

static const char *send_attr(xmlNode *op)
{
    static char v[64];
    const char *names[] = {"SendMeetingInvitations", "SendMeetingInvitationsOrCancellations",
                           "SendMeetingCancellations"};
    for (size_t i = 0; i < 3; i++) {
        xmlChar *a = xmlGetProp(op, BAD_CAST names[i]);
        if (a) {
            snprintf(v, sizeof v, "%s", (char *)a);
            xmlFree(a);
            return v;
        }
    }
    return NULL;
}

static void stream_start(sim *s, struct evhttp_request *req, xmlNode *op, const char *mailbox,
                         int server, const char *anchor);

static int contains_text(xmlNode *op, const char *what)
{
    xmlChar *t = xmlNodeGetContent(op);
    int found = t && strstr((const char *)t, what);
    xmlFree(t);
    return found;
}

/* 1 when mailbox has spent its budget for the current window; *wait then
 * says how long until the next one. */
static int over_budget(sim *s, const char *mailbox, long *wait)
{
    if (!s->budget) return 0;
    long now = now_ms(s);
    struct spent *e = NULL, *oldest = &s->spent[0];
    for (size_t i = 0; i < sizeof s->spent / sizeof *s->spent && !e; i++) {
        if (!strcasecmp(s->spent[i].mailbox, mailbox)) e = &s->spent[i];
        else if (s->spent[i].since < oldest->since) oldest = &s->spent[i];
    }
    if (!e) {
        e = oldest;
        snprintf(e->mailbox, sizeof e->mailbox, "%s", mailbox);
        e->since = now, e->n = 0;
    }
    if (now - e->since >= s->budget_ms) e->since = now, e->n = 0;
    if (++e->n <= s->budget) return 0;
    *wait = s->budget_ms - (now - e->since);
    return 1;
}

static void handle_ews(sim *s, struct evhttp_request *req)
{
    int who = authenticated(s, req);
    if (who < 0) return;
    if (!who) {
        const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
        int expired = s->client && h && !strncmp(h, "Bearer ", 7) && issued_ok(s, h + 7) == -1;
        log_line(s, NULL, NULL, expired ? "token-expired" : "unauthorized", NULL, NULL);
        /* RFC 6750 §3: a bearer token refused says why. */
        struct evkeyvalq *o = evhttp_request_get_output_headers(req);
        /* As IIS lists the providers the virtual directory has on. */
        if (s->client)
            evhttp_add_header(o, "WWW-Authenticate", expired ? "Bearer error=\"invalid_token\", "
                              "error_description=\"The access token has expired\"" : "Bearer");
        evhttp_add_header(o, "WWW-Authenticate", "Negotiate");
        evhttp_add_header(o, "WWW-Authenticate", "NTLM");
        if (!s->no_basic) evhttp_add_header(o, "WWW-Authenticate", "Basic realm=\"ewssim\"");
        reply(req, 401, "text/plain", "401 Unauthorized");
        return;
    }
    chaos_due(s, req);
    if (inject(s, req)) return;
    xmlDoc *doc = doc_of(req);
    xmlNode *env = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNode *op = first_elem(named(env, "Body") ? named(env, "Body")->children : NULL);
    if (!op) {
        log_line(s, NULL, NULL, "malformed", NULL, NULL);
        fault(req, "ErrorInvalidRequest", "The request is invalid.", NULL);
        xmlFreeDoc(doc);
        return;
    }
    char *mailbox = impersonated(named(env, "Header"));
    const char *anchor_h = evhttp_find_header(evhttp_request_get_input_headers(req), "X-AnchorMailbox");
    const char *anchor = !mailbox ? "-" : !anchor_h ? "missing"
                         : !strcasecmp(anchor_h, mailbox) ? "ok" : "mismatch";
    if (!mailbox) mailbox = own_mailbox(s);
    struct evkeyvalq *hin = evhttp_request_get_input_headers(req);
    int server = sim_route_server(&s->route, evhttp_find_header(hin, "Cookie"),
                                  anchor_h ? anchor_h : mailbox);
    if (!strcmp((const char *)op->name, "Subscribe")) server = sim_route_home(&s->route, server, mailbox);
    sim_store_set_server(s->store, server);
    char where[64];
    sim_route_name(server, where, sizeof where);
    const char *prefer = evhttp_find_header(hin, "X-PreferServerAffinity");
    if (prefer && !strcasecmp(prefer, "true")) {
        char cookie[160];
        sim_route_cookie(server, cookie, sizeof cookie);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie", cookie);
    }
    long wait = 0;
    if (validate(s, op)) {
        char text[1200];
        snprintf(text, sizeof text, "The request failed schema validation: %s", s->schema_error);
        log_line(s, (const char *)op->name, mailbox, "schema", anchor, s->schema_error);
        fault(req, "ErrorSchemaValidation", text, NULL);
    } else if (strcmp((const char *)op->name, "GetStreamingEvents") && over_budget(s, mailbox, &wait)) {
        /* A throttling policy's budget, charged to the target mailbox
         * under impersonation: ErrorServerBusy with the time until the
         * budget recovers ("EWS throttling in Exchange"). */
        char extra[256];
        snprintf(extra, sizeof extra, "<t:MessageXml xmlns:t=\"%s\"><t:Value "
                 "Name=\"BackOffMilliseconds\">%ld</t:Value></t:MessageXml>", NS_T, wait);
        log_line(s, (const char *)op->name, mailbox, "budget", anchor, NULL);
        fault(req, "ErrorServerBusy", "The server cannot service this request right now. "
              "Try again later.", extra);
    } else if (s->fault_mailbox[0] && !strcasecmp(mailbox, s->fault_mailbox)) {
        log_line(s, (const char *)op->name, mailbox, "impersonation-denied", anchor, NULL);
        fault(req, "ErrorImpersonateUserDenied", "The account does not have permission to "
              "impersonate the requested user.", NULL);
    } else if (s->reject[0] && contains_text(op, s->reject)) {
        log_line(s, (const char *)op->name, mailbox, "rejected", anchor, NULL);
        fault(req, "ErrorSchemaValidation", "The request failed schema validation: a value "
              "is out of range.", NULL);
    } else if (!strcmp((const char *)op->name, "GetStreamingEvents")) {
        stream_start(s, req, op, mailbox, server, anchor);
    } else {
        sim_buf out;
        sim_buf_init(&out);
        int writes = !strcmp((const char *)op->name, "CreateItem") ||
                     !strcmp((const char *)op->name, "UpdateItem") ||
                     !strcmp((const char *)op->name, "DeleteItem");
        if (s->chaos_itembusy && writes) sim_store_set_item_busy(s->store, 1);
        const char *name = sim_ops_dispatch(s->store, mailbox, op, &out);
        if (s->chaos_itembusy) sim_store_set_item_busy(s->store, 0);
        s->chaos_itembusy = 0;
        if (name && s->drop_after > 0) {
            s->drop_after--;
            log_line(s, name, mailbox, "applied-dropped", anchor, send_attr(op));
            drop_connection(req);
        } else if (name) {
            int err = out.s && strstr(out.s, "ResponseClass=\"Error\"");
            int subs = !strcmp(name, "Subscribe") || !strcmp(name, "Unsubscribe");
            log_line(s, name, mailbox, err ? "item-error" : "ok", anchor, subs ? where : send_attr(op));
            soap_reply(req, 200, out.s);
            /* Exchange's own processing changes an item's ChangeKey now and
             * then (a reminder firing). */
            if (s->chaos && is_client(req) && (int)roll(s) < s->chaos &&
                sim_store_touch_one(s->store, mailbox, roll(s)))
                log_line(s, NULL, mailbox, "touched", NULL, NULL);
        } else {
            log_line(s, (const char *)op->name, mailbox, "unsupported", anchor, NULL);
            fault(req, "ErrorInvalidRequest", "This operation is not simulated.", NULL);
        }
        sim_buf_free(&out);
    }
    xmlFree(mailbox);
    xmlFreeDoc(doc);
}

/* ---- streaming -------------------------------------------------------- */

struct stream {
    stream *next;
    sim *s;
    struct evhttp_request *req;
    char **ids;
    size_t n;
    long deadline, last_sent;
    struct event *tick;
    char mailbox[256];
    int server;             /* the mailbox server it reached */
};

/* HangingConnectionLimit: open streams charged to one mailbox (Exchange
 * Online's 10; "EWS throttling in Exchange"). */
#define HANGING_LIMIT 10

static void envelope(sim_buf *b, const char *cls, const char *code, const char *inner,
                     const char *status)
{
    sim_buf_printf(b, "<Envelope xmlns=\"%s\"><soap11:Header xmlns:soap11=\"%s\"><ServerVersionInfo "
                   "MajorVersion=\"15\" MinorVersion=\"1\" MajorBuildNumber=\"2507\" "
                   "MinorBuildNumber=\"6\" Version=\"V2017_07_11\" xmlns=\"%s\"/></soap11:Header>"
                   "<soap11:Body xmlns:soap11=\"%s\"><m:GetStreamingEventsResponse "
                   "xmlns:m=\"http://schemas.microsoft.com/exchange/services/2006/messages\" "
                   "xmlns:t=\"%s\"><m:ResponseMessages><m:GetStreamingEventsResponseMessage "
                   "ResponseClass=\"%s\">",
                NS_SOAP, NS_SOAP, NS_T, NS_SOAP, NS_T, cls);
    if (strcmp(code, "NoError"))
        sim_buf_cat(b, "<m:MessageText>The subscription is no longer valid.</m:MessageText>");
    sim_buf_printf(b, "<m:ResponseCode>%s</m:ResponseCode>%s", code, inner ? inner : "");
    if (status) sim_buf_printf(b, "<m:ConnectionStatus>%s</m:ConnectionStatus>", status);
    sim_buf_cat(b, "</m:GetStreamingEventsResponseMessage></m:ResponseMessages>"
                "</m:GetStreamingEventsResponse></soap11:Body></Envelope>");
}

static void stream_free(stream *st)
{
    sim *s = st->s;
    for (stream **p = &s->streams; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    event_free(st->tick);
    for (size_t i = 0; i < st->n; i++) free(st->ids[i]);
    free(st->ids);
    free(st);
}

static void on_stream_close(struct evhttp_connection *c, void *ud)
{
    (void)c;
    stream_free(ud);   /* the client went away; libevent frees the request */
}

/* Writes b as two chunks cut in the middle: clients must reassemble. */
static void stream_write(stream *st, const sim_buf *b)
{
    size_t half = b->len / 2;
    struct evbuffer *o = evbuffer_new();
    evbuffer_add(o, b->s, half);
    evhttp_send_reply_chunk(st->req, o);
    evbuffer_add(o, b->s + half, b->len - half);
    evhttp_send_reply_chunk(st->req, o);
    evbuffer_free(o);
    st->last_sent = now_ms(st->s);
}

static void stream_end(stream *st)
{
    evhttp_connection_set_closecb(evhttp_request_get_connection(st->req), NULL, NULL);
    evhttp_send_reply_end(st->req);
    stream_free(st);
}

/* The first half of an envelope, then the connection is cut. */
static void stream_drop(stream *st)
{
    sim_buf b;
    sim_buf_init(&b);
    envelope(&b, "Success", "NoError", NULL, "OK");
    struct evbuffer *o = evbuffer_new();
    evbuffer_add(o, b.s, b.len / 2);
    evhttp_send_reply_chunk(st->req, o);
    evbuffer_free(o);
    sim_buf_free(&b);
    log_line(st->s, "GetStreamingEvents", st->mailbox, "stream-dropped", NULL, NULL);
    struct evhttp_connection *c = evhttp_request_get_connection(st->req);
    evhttp_connection_set_closecb(c, NULL, NULL);
    stream_free(st);
    evhttp_connection_free(c);
}

/* 1 when some subscription of the stream is gone: error envelope sent. */
static int stream_check(stream *st, sim_buf *b)
{
    sim_buf bad;
    sim_buf_init(&bad);
    for (size_t i = 0; i < st->n; i++)
        if (sim_store_sub_server(st->s->store, st->ids[i]) != st->server)
            sim_buf_printf(&bad, "<t:SubscriptionId>%s</t:SubscriptionId>", st->ids[i]);
    if (!bad.len) return 0;
    sim_buf inner;
    sim_buf_init(&inner);
    sim_buf_printf(&inner, "<m:ErrorSubscriptionIds>%s</m:ErrorSubscriptionIds>", bad.s);
    log_line(st->s, "GetStreamingEvents", st->mailbox, "subscription-not-found", NULL, NULL);
    envelope(b, "Error", "ErrorSubscriptionNotFound", inner.s, "Closed");
    sim_buf_free(&inner);
    sim_buf_free(&bad);
    return 1;
}

static void on_stream_tick(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    stream *st = ud;
    sim *s = st->s;
    if (s->drop_stream > 0) {
        s->drop_stream--;
        stream_drop(st);
        return;
    }
    sim_buf b;
    sim_buf_init(&b);
    int closing = stream_check(st, &b);
    for (size_t i = 0; i < st->n && !closing; i++) {
        sim_buf notes;
        sim_buf_init(&notes);
        sim_buf_cat(&notes, "<m:Notifications>");
        if (sim_store_sub_events(s->store, st->ids[i], &notes) && s->missed > 0) {
            /* "ErrorMissedNotificationEvents: missed events, but will
             * continue service on this connection" (GetStreamingEvents). */
            s->missed--;
            sim_buf ids;
            sim_buf_init(&ids);
            sim_buf_printf(&ids, "<m:ErrorSubscriptionIds><t:SubscriptionId>%s</t:SubscriptionId>"
                           "</m:ErrorSubscriptionIds>", st->ids[i]);
            envelope(&b, "Error", "ErrorMissedNotificationEvents", ids.s, "OK");
            log_line(s, "GetStreamingEvents", st->mailbox, "stream-missed", NULL, NULL);
            sim_buf_free(&ids);
        } else if (notes.len > 17) {
            sim_buf_cat(&notes, "</m:Notifications>");
            envelope(&b, "Success", "NoError", notes.s, NULL);
        }
        sim_buf_free(&notes);
    }
    long now = now_ms(s);
    if (!closing && now >= st->deadline) {
        envelope(&b, "Success", "NoError", NULL, "Closed");
        closing = 1;
    } else if (!b.len && now - st->last_sent >= s->heartbeat_ms) {
        envelope(&b, "Success", "NoError", NULL, "OK");
    }
    if (b.len) {
        log_line(s, "GetStreamingEvents", st->mailbox, closing ? "stream-closed" : "stream-data",
                 NULL, NULL);
        stream_write(st, &b);
    }
    sim_buf_free(&b);
    if (closing) stream_end(st);
}

static void stream_start(sim *s, struct evhttp_request *req, xmlNode *op, const char *mailbox,
                         int server, const char *anchor)
{
    char where[64];
    sim_route_name(server, where, sizeof where);
    int hanging = 0;
    for (stream *o = s->streams; o; o = o->next) hanging += !strcasecmp(o->mailbox, mailbox);
    if (hanging >= HANGING_LIMIT) {
        log_line(s, "GetStreamingEvents", mailbox, "connection-limit", anchor, where);
        soap_reply(req, 200, "<m:GetStreamingEventsResponse xmlns:m=\"http://schemas.microsoft.com/"
                   "exchange/services/2006/messages\"><m:ResponseMessages>"
                   "<m:GetStreamingEventsResponseMessage ResponseClass=\"Error\"><m:MessageText>"
                   "You have exceeded the available concurrent connections for your account."
                   "</m:MessageText><m:ResponseCode>ErrorExceededConnectionCount</m:ResponseCode>"
                   "</m:GetStreamingEventsResponseMessage></m:ResponseMessages>"
                   "</m:GetStreamingEventsResponse>");
        return;
    }
    log_line(s, "GetStreamingEvents", mailbox, "stream-open", anchor, where);
    stream *st = calloc(1, sizeof *st);
    if (!st) abort();
    st->s = s;
    st->req = req;
    st->server = server;
    snprintf(st->mailbox, sizeof st->mailbox, "%s", mailbox);
    for (xmlNode *c = named(op, "SubscriptionIds") ? named(op, "SubscriptionIds")->children : NULL;
         c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        char **v = realloc(st->ids, (st->n + 1) * sizeof *v);
        if (!v) abort();
        st->ids = v;
        v[st->n++] = (char *)xmlNodeGetContent(c);
    }
    xmlNode *t = named(op, "ConnectionTimeout");
    xmlChar *tv = t ? xmlNodeGetContent(t) : NULL;
    st->deadline = now_ms(s) + (tv ? atol((char *)tv) : 30) * s->minute_ms;
    xmlFree(tv);
    st->last_sent = now_ms(s);
    st->tick = event_new(s->base, -1, EV_PERSIST, on_stream_tick, st);
    st->next = s->streams;
    s->streams = st;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/xml; charset=utf-8");
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-NoBuffering", "1");
    evhttp_send_reply_start(req, 200, "OK");
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_stream_close, st);
    struct timeval every = {0, 100000};
    event_add(st->tick, &every);
    on_stream_tick(-1, 0, st);
}

static void handle_control(sim *s, struct evhttp_request *req)
{
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (evhttp_parse_query_str(query ? query : "", &q) < 0) {
        reply(req, 400, "text/plain", "bad query\n");
        return;
    }
    const char *v;
    if ((v = evhttp_find_header(&q, "busy"))) s->busy = atoi(v);
    if ((v = evhttp_find_header(&q, "backoff"))) s->backoff_ms = atoi(v);
    if ((v = evhttp_find_header(&q, "fail500"))) s->fail500 = atoi(v);
    if ((v = evhttp_find_header(&q, "drop"))) s->drop = atoi(v);
    if ((v = evhttp_find_header(&q, "reject"))) snprintf(s->reject, sizeof s->reject, "%s", v);
    if ((v = evhttp_find_header(&q, "faultmailbox")))
        snprintf(s->fault_mailbox, sizeof s->fault_mailbox, "%s", v);
    if ((v = evhttp_find_header(&q, "endless"))) sim_store_set_endless(s->store, atoi(v));
    if ((v = evhttp_find_header(&q, "unavailable"))) s->unavailable = atoi(v);
    if ((v = evhttp_find_header(&q, "itembusy"))) sim_store_set_item_busy(s->store, atoi(v));
    if ((v = evhttp_find_header(&q, "dropafter"))) s->drop_after = atoi(v);
    if ((v = evhttp_find_header(&q, "retryafter"))) s->retry_after_s = atoi(v);
    if ((v = evhttp_find_header(&q, "status"))) s->too_many = atoi(v) == 429;
    if ((v = evhttp_find_header(&q, "chaos"))) s->chaos = atoi(v);
    if ((v = evhttp_find_header(&q, "seed"))) s->rng = strtoull(v, NULL, 10) * 2654435761ULL + 1;
    if ((v = evhttp_find_header(&q, "dropstream"))) s->drop_stream = atoi(v);
    if ((v = evhttp_find_header(&q, "missed"))) s->missed = atoi(v);
    if ((v = evhttp_find_header(&q, "autodiscover"))) s->no_autodiscover = !atoi(v);
    if ((v = evhttp_find_header(&q, "basic"))) s->no_basic = !atoi(v);
    if ((v = evhttp_find_header(&q, "budget"))) s->budget = atoi(v);
    if ((v = evhttp_find_header(&q, "window"))) s->budget_ms = atoi(v);
    if ((v = evhttp_find_header(&q, "groups")) && atoi(v) > 0)
        s->route.groups = atoi(v) < SIM_GROUPS_MAX ? atoi(v) : SIM_GROUPS_MAX;
    if ((v = evhttp_find_header(&q, "heartbeat"))) s->heartbeat_ms = atoi(v);
    if ((v = evhttp_find_header(&q, "minute"))) s->minute_ms = atoi(v);
    if ((v = evhttp_find_header(&q, "expire")) && atoi(v)) {
        sim_store_expire_subs(s->store);
        log_line(s, NULL, NULL, "subscriptions-expired", NULL, NULL);
    }
    if ((v = evhttp_find_header(&q, "badsync")) && atoi(v)) {
        sim_store_invalidate_sync(s->store);
        log_line(s, NULL, NULL, "syncstates-invalidated", NULL, NULL);
    }
    if ((v = evhttp_find_header(&q, "tokenttl"))) s->token_ttl_ms = atol(v) * 1000;
    if ((v = evhttp_find_header(&q, "expiretokens")) && atoi(v))
        for (int i = 0; i < s->nissued; i++) s->issued[i].expires = 0;
    if ((v = evhttp_find_header(&q, "vanish")) && *v) {
        sim_store_vanish(s->store, v);
        log_line(s, NULL, v, "vanished", NULL, NULL);
    }
    if ((v = evhttp_find_header(&q, "touch")) && *v) {
        sim_store_touch(s->store, v);
        log_line(s, NULL, v, "touched", NULL, NULL);
    }
    evhttp_clear_headers(&q);
    char out[128];
    snprintf(out, sizeof out, "busy=%d backoff=%d fail500=%d drop=%d\n", s->busy,
             s->backoff_ms, s->fail500, s->drop);
    reply(req, 200, "text/plain", out);
}

static void token_error(struct evhttp_request *req, int code, const char *error, const char *desc)
{
    char body[512];
    snprintf(body, sizeof body, "{\"error\":\"%s\",\"error_description\":\"%s\"}", error, desc);
    reply(req, code, "application/json", body);
}

/* The Microsoft identity platform's token endpoint for the client
 * credentials grant ("OAuth 2.0 client credentials flow", RFC 6749 §4.4):
 * a form with grant_type, client_id, client_secret and a ".default" scope;
 * errors as JSON (invalid_request, unsupported_grant_type, invalid_client,
 * invalid_scope). */
static void handle_token(sim *s, struct evhttp_request *req)
{
    size_t len;
    char *body = body_of(req, &len);
    struct evkeyvalq q = {0};
    int parsed = evhttp_parse_query_str(body, &q) == 0;
    free(body);
    const char *grant = parsed ? evhttp_find_header(&q, "grant_type") : NULL;
    const char *id = parsed ? evhttp_find_header(&q, "client_id") : NULL;
    const char *secret = parsed ? evhttp_find_header(&q, "client_secret") : NULL;
    const char *scope = parsed ? evhttp_find_header(&q, "scope") : NULL;
    size_t idlen = strcspn(s->client, ":");
    if (!grant || !id || !scope) {
        token_error(req, 400, "invalid_request", "AADSTS900144: The request body must contain "
                    "grant_type, client_id and scope.");
    } else if (strcmp(grant, "client_credentials")) {
        token_error(req, 400, "unsupported_grant_type", "AADSTS70003: unsupported grant type.");
    } else if (strlen(id) != idlen || strncmp(id, s->client, idlen) || !secret ||
               strcmp(secret, s->client + idlen + (s->client[idlen] ? 1 : 0))) {
        token_error(req, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
    } else if (strlen(scope) < 9 || strcmp(scope + strlen(scope) - 9, "/.default")) {
        token_error(req, 400, "invalid_scope", "AADSTS1002012: The scope must end in /.default "
                    "for the client credentials flow.");
    } else {
        struct issued *t = &s->issued[s->nissued < 256 ? s->nissued++ : (int)(s->next_token % 256)];
        snprintf(t->value, sizeof t->value, "simtok-%lu-%ld", ++s->next_token, now_ms(s));
        t->expires = now_ms(s) + s->token_ttl_ms;
        char out[256];
        snprintf(out, sizeof out, "{\"token_type\":\"Bearer\",\"expires_in\":%ld,"
                 "\"ext_expires_in\":%ld,\"access_token\":\"%s\"}", s->token_ttl_ms / 1000,
                 s->token_ttl_ms / 1000, t->value);
        log_line(s, "token", id, "issued", NULL, NULL);
        reply(req, 200, "application/json", out);
        evhttp_clear_headers(&q);
        return;
    }
    log_line(s, "token", id ? id : "-", "refused", NULL, NULL);
    evhttp_clear_headers(&q);
}


/* ---- Autodiscover ----------------------------------------------------- */

#define NS_AD "http://schemas.microsoft.com/exchange/2010/Autodiscover"
#define NS_WSA "http://www.w3.org/2005/08/addressing"

/* The SOAP Autodiscover service's GetUserSettings ("GetUserSettings
 * operation (SOAP)"; at most 100 users a request): GroupingInformation and
 * ExternalEwsUrl, what "Maintain affinity" groups mailboxes by. Its schema
 * is not among ../shared's, so the request is checked by hand for what the
 * documentation requires: the Action header and the message's parts. */
static void handle_autodiscover(sim *s, struct evhttp_request *req, int port)
{
    xmlDoc *doc = doc_of(req);
    xmlNode *env = doc ? xmlDocGetRootElement(doc) : NULL;
    xmlNode *action = named(named(env, "Header"), "Action");
    xmlChar *act = action ? xmlNodeGetContent(action) : NULL;
    xmlNode *msg = named(named(env, "Body"), "GetUserSettingsRequestMessage");
    xmlNode *request = named(msg, "Request");
    xmlNode *users = named(request, "Users");
    int n = 0;
    for (xmlNode *u = users ? users->children : NULL; u; u = u->next) n += u->type == XML_ELEMENT_NODE;
    if (!act || strcmp((char *)act, NS_AD "/Autodiscover/GetUserSettings") || !users ||
        !named(request, "RequestedSettings") || !n || n > 100 ||
        !msg->ns || strcmp((const char *)msg->ns->href, NS_AD)) {
        log_line(s, "GetUserSettings", NULL, "malformed", NULL, NULL);
        reply(req, 400, "text/plain", "Bad Request\n");
        xmlFree(act);
        xmlFreeDoc(doc);
        return;
    }
    sim_buf b;
    sim_buf_init(&b);
    sim_buf_printf(&b, "<?xml version=\"1.0\" encoding=\"utf-8\"?><s:Envelope xmlns:s=\"%s\" "
                   "xmlns:a=\"%s\"><s:Header><a:Action s:mustUnderstand=\"1\">%s/Autodiscover/"
                   "GetUserSettingsResponse</a:Action></s:Header><s:Body>"
                   "<GetUserSettingsResponseMessage xmlns=\"%s\"><Response xmlns:i=\"http://www.w3."
                   "org/2001/XMLSchema-instance\"><ErrorCode>NoError</ErrorCode><ErrorMessage/>"
                   "<UserResponses>", NS_SOAP, NS_WSA, NS_AD, NS_AD);
    for (xmlNode *u = users->children; u; u = u->next) {
        if (u->type != XML_ELEMENT_NODE) continue;
        xmlChar *mbx = named(u, "Mailbox") ? xmlNodeGetContent(named(u, "Mailbox")) : NULL;
        char grouping[32];
        sim_route_grouping(&s->route, mbx ? (char *)mbx : "", grouping, sizeof grouping);
        sim_buf_printf(&b, "<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error."
                       "</ErrorMessage><RedirectTarget i:nil=\"true\"/><UserSettingErrors/>"
                       "<UserSettings><UserSetting i:type=\"StringSetting\"><Name>"
                       "GroupingInformation</Name><Value>%s</Value></UserSetting>"
                       "<UserSetting i:type=\"StringSetting\"><Name>ExternalEwsUrl</Name>"
                       "<Value>http://127.0.0.1:%d/EWS/Exchange.asmx</Value></UserSetting>"
                       "</UserSettings></UserResponse>", grouping, port);
        log_line(s, "GetUserSettings", mbx ? (char *)mbx : "-", "ok", NULL, grouping);
        xmlFree(mbx);
    }
    sim_buf_cat(&b, "</UserResponses></Response></GetUserSettingsResponseMessage></s:Body>"
                "</s:Envelope>");
    reply(req, 200, "text/xml; charset=utf-8", b.s);
    sim_buf_free(&b);
    xmlFree(act);
    xmlFreeDoc(doc);
}

static void on_request(struct evhttp_request *req, void *ud)
{
    sim *s = ud;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (!path) path = "/";
    if (!strcasecmp(path, "/EWS/Exchange.asmx") &&
        evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        handle_ews(s, req);
    } else if (!strcasecmp(path, "/autodiscover/autodiscover.svc") && !s->no_autodiscover &&
               evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        int who = authenticated(s, req);
        if (who > 0) handle_autodiscover(s, req, s->port);
        else if (!who) reply(req, 401, "text/plain", "401 Unauthorized");
    } else if (s->client && strlen(path) >= 18 && !strcmp(path + strlen(path) - 18, "/oauth2/v2.0/token") &&
               evhttp_request_get_command(req) == EVHTTP_REQ_POST) {
        handle_token(s, req);
    } else if (!strcmp(path, "/sim/dump")) {
        sim_buf b;
        sim_buf_init(&b);
        sim_store_dump(s->store, &b);
        reply(req, 200, "text/plain", b.s ? b.s : "");
        sim_buf_free(&b);
    } else if (!strcmp(path, "/sim/log")) {
        reply(req, 200, "text/plain", s->log.s ? s->log.s : "");
    } else if (!strcmp(path, "/sim/reset")) {
        sim_store_reset(s->store);
        sim_buf_free(&s->log);
        reply(req, 200, "text/plain", "reset\n");
    } else if (!strcmp(path, "/sim/control")) {
        handle_control(s, req);
    } else {
        reply(req, 404, "text/plain", "not found\n");
    }
}

static void on_signal(evutil_socket_t fd, short ev, void *base)
{
    (void)fd;
    (void)ev;
    event_base_loopexit(base, NULL);
}

int main(int argc, char **argv)
{
    sim s = {0};
    int port = 0;
    const char *port_file = NULL, *schema_path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--port") && v) port = atoi(argv[++i]);
        else if (!strcmp(a, "--port-file") && v) port_file = argv[++i];
        else if (!strcmp(a, "--schema") && v) schema_path = argv[++i];
        else if (!strcmp(a, "--user") && v) s.basic = argv[++i];
        else if (!strcmp(a, "--token") && v) s.token = argv[++i];
        else if (!strcmp(a, "--client") && v) s.client = argv[++i];
        else {
            fprintf(stderr, "usage: ewssim [--port N] [--port-file F] [--schema ews.xsd] "
                            "[--user U:P] [--token T]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    clock_gettime(CLOCK_MONOTONIC, &s.t0);
    s.rng = 88172645463325252ULL;   /* chaos without a seed: still one fixed sequence */
    s.backoff_ms = 1000;
    if (schema_path) {
        xmlSchemaParserCtxtPtr pc = xmlSchemaNewParserCtxt(schema_path);
        s.schema = pc ? xmlSchemaParse(pc) : NULL;
        xmlSchemaFreeParserCtxt(pc);
        if (!s.schema) {
            fprintf(stderr, "ewssim: cannot compile schema %s\n", schema_path);
            return 1;
        }
    } else {
        fprintf(stderr, "ewssim: no --schema given: requests are NOT validated\n");
    }
    s.heartbeat_ms = 5000;
    s.budget_ms = 60000;
    s.route.groups = 2;   /* two sites, two mailbox servers each: affinity matters */
    s.token_ttl_ms = 3600000;
    s.minute_ms = 60000;
    /* Windows time zone Ids, as CLDR (Debian's unicode-cldr-core) names them. */
    sim_zones *tz = sim_zones_load(WINDOWS_ZONES);
    if (!tz) {
        fprintf(stderr, "ewssim: cannot read %s\n", WINDOWS_ZONES);
        return 1;
    }
    s.store = sim_store_new(tz);
    struct event_base *base = event_base_new();
    s.base = base;
    struct evhttp *http = evhttp_new(base);
    evhttp_set_max_body_size(http, 64 * 1024 * 1024);
    evhttp_set_gencb(http, on_request, &s);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", (ev_uint16_t)port);
    if (!bs) {
        fprintf(stderr, "ewssim: cannot listen on 127.0.0.1:%d\n", port);
        return 1;
    }
    /* Answers leave at once: without TCP_NODELAY an answer over one
     * segment waits for the client's delayed ACK (31-43 ms at 16 KB) and
     * the benchmark measures Nagle, not calbridge. Linux gives accepted
     * sockets the listener's setting. */
    int one = 1;
    setsockopt(evhttp_bound_socket_get_fd(bs), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &sl);
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    s.port = port;
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (f) fprintf(f, "%d\n", port), fclose(f);
    }
    fprintf(stderr, "ewssim: listening on http://127.0.0.1:%d/EWS/Exchange.asmx\n", port);
    struct event *sig_int = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sig_term = evsignal_new(base, SIGTERM, on_signal, base);
    event_add(sig_int, NULL);
    event_add(sig_term, NULL);
    event_base_dispatch(base);
    event_free(sig_int);
    event_free(sig_term);
    evhttp_free(http);
    event_base_free(base);
    while (s.streams) stream_end(s.streams);   /* ends the replies libevent holds */
    sim_store_free(s.store);
    sim_zones_free(tz);
    sim_buf_free(&s.log);
    if (s.schema) xmlSchemaFree(s.schema);
    xmlCleanupParser();
    return 0;
}
