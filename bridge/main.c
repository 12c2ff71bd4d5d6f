/* calbridge — keeps Apple CalendarServer and Exchange calendars consistent
 * while people move in waves. This file is the command line: it owns the
 * process-wide objects and hands them to the modules.
 */
#include <event2/event.h>
#include <curl/curl.h>
#include <getopt.h>
#include <libxml/parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../mapping/ews_item.h"
#include "../mapping/people.h"
#include "../mapping/tzmap.h"
#include "../state/store.h"
#include "config.h"
#include "ews_client.h"
#include "ews_xml.h"
#include "pg_source.h"
#include "report.h"
#include "sync.h"
#include "translate.h"

#define DEFAULT_CONF "/etc/calbridge/calbridge.conf"

static const char USAGE[] =
    "usage: calbridge [-c FILE] COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  sync [--once]      mirror Apple-authoritative people into Exchange;\n"
    "                     --once runs one pass and prints a summary\n"
    "  status             people, cursor, pending intents, links, last error\n"
    "  translate FILE.ics print the EWS requests an event becomes; with\n"
    "                     --reverse, the iCalendar an EWS item becomes\n"
    "                     (no network, no database)\n"
    "\n"
    "options:\n"
    "  -c, --config FILE  configuration (default " DEFAULT_CONF ")\n"
    "  -h, --help         this text; `calbridge COMMAND --help` for a command\n";

typedef struct app {
    config *cfg;
    people *people;
    tzmap *tz;
    store *st;
    struct event_base *base;
    int once, stop, rc;
    sync_ctx *sync;
    report rep;
    struct event *timer;
} app;

static int fail(const char *what, const cb_err *e)
{
    fprintf(stderr, "calbridge: %s%s%s\n", what ? what : "", what ? ": " : "", e->msg);
    return 1;
}

static int load_common(app *a, const char *conf, int need_store)
{
    cb_err e = {0};
    if (config_load(conf, &a->cfg, &e)) return fail(NULL, &e);
    if (people_load(a->cfg->people_map, &a->people, &e)) return fail("people map", &e);
    if (tzmap_load(TZMAP_CLDR_PATH, TZMAP_TZDATA_PATH, &a->tz, &e)) return fail(NULL, &e);
    if (need_store && store_open(a->cfg->state_dir, &a->st, &e)) return fail(NULL, &e);
    return 0;
}

static void free_app(app *a)
{
    if (a->timer) event_free(a->timer);
    sync_free(a->sync);
    report_free(&a->rep);
    store_close(a->st);
    tzmap_free(a->tz);
    people_free(a->people);
    config_free(a->cfg);
    if (a->base) event_base_free(a->base);
}

/* ---- sync ------------------------------------------------------------- */

static void start_pass(app *a);

static void on_pass(void *ud, int rc, const cb_err *err)
{
    app *a = ud;
    if (rc != CB_OK) fprintf(stderr, "calbridge: pass stopped: %s\n", err->msg);
    if (a->once) {
        report_print(&a->rep, stdout, 50);
        a->rc = rc != CB_OK ? 1 : a->rep.failed ? 3 : 0;
        event_base_loopexit(a->base, NULL);
        return;
    }
    if (a->rep.created + a->rep.updated + a->rep.deleted + a->rep.failed)
        fprintf(stderr, "calbridge: pass: %ld created, %ld updated, %ld deleted, %ld failed\n",
                a->rep.created, a->rep.updated, a->rep.deleted, a->rep.failed);
    report_free(&a->rep);
    if (a->stop) {
        event_base_loopexit(a->base, NULL);
        return;
    }
    struct timeval tv = {a->cfg->poll_interval_ms / 1000, (a->cfg->poll_interval_ms % 1000) * 1000};
    evtimer_add(a->timer, &tv);
}

static void start_pass(app *a)
{
    cb_err e = {0};
    if (sync_pass(a->sync, on_pass, a, &e) != CB_OK) on_pass(a, e.code ? e.code : CB_EIO, &e);
}

static void on_timer(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    start_pass(ud);
}

static void on_signal(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    app *a = ud;
    a->stop = 1;
    /* Between passes nothing is in flight; during one, state is crash-safe
     * anyway, but finishing the pass avoids redoing its work. */
    if (evtimer_pending(a->timer, NULL)) event_base_loopexit(a->base, NULL);
}

static int cmd_sync(const char *conf, int argc, char **argv)
{
    app a = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--once")) a.once = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: calbridge [-c FILE] sync [--once]\n\n"
                   "Mirrors every Apple-authoritative person in the people map into their\n"
                   "Exchange calendar: a first pass creates every event, later passes carry\n"
                   "new, modified and deleted events in place. Without --once it keeps\n"
                   "polling every [apple] poll_interval seconds until SIGINT or SIGTERM.\n"
                   "Exit status with --once: 0 all carried, 3 some events failed (listed),\n"
                   "1 the pass could not complete (it resumes safely next time).\n");
            return 0;
        } else {
            fprintf(stderr, "calbridge sync: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    if (load_common(&a, conf, 1)) {
        free_app(&a);
        return 1;
    }
    cb_err e = {0};
    pg_source *pg = NULL;
    ews_client *ews = NULL;
    a.base = event_base_new();
    report_init(&a.rep);
    int rc = 1;
    if (pg_source_open(a.cfg->apple_dsn, &pg, &e) || ews_client_new(a.base, a.cfg, &ews, &e)) {
        fail(NULL, &e);
        goto out;
    }
    sync_deps d = {a.cfg, a.people, a.tz, a.st, pg, ews, &a.rep};
    if (sync_new(&d, &a.sync, &e)) {
        fail(NULL, &e);
        goto out;
    }
    a.timer = evtimer_new(a.base, on_timer, &a);
    struct event *si = evsignal_new(a.base, SIGINT, on_signal, &a);
    struct event *st = evsignal_new(a.base, SIGTERM, on_signal, &a);
    event_add(si, NULL);
    event_add(st, NULL);
    start_pass(&a);
    event_base_dispatch(a.base);
    event_free(si);
    event_free(st);
    rc = a.rc;
out:
    ews_client_free(ews);
    pg_source_close(pg);
    free_app(&a);
    return rc;
}

/* ---- status ----------------------------------------------------------- */

static int count_intent(void *ud, const intent_rec *in)
{
    (void)in;
    (*(long *)ud)++;
    return 0;
}

static int count_link(void *ud, const char *key, const link_rec *l)
{
    (void)key;
    (void)l;
    (*(long *)ud)++;
    return 0;
}

static void print_plan(app *a)
{
    pg_source *pg;
    cb_err e;
    char *text = NULL;
    const char **owners = calloc(a->people->n + 1, sizeof *owners);
    for (size_t i = 0; owners && i < a->people->n; i++) owners[i] = a->people->v[i].owner_uid;
    if (!owners || pg_source_open(a->cfg->apple_dsn, &pg, &e)) {
        free(owners);
        fail("plan", &e);
        return;
    }
    /* Plan from the stored cursor: the poll the bridge really runs next. */
    pg_cursor cur = {0};
    store_txn *t;
    char buf[96];
    if (store_begin(a->st, 0, &t, NULL) == CB_OK) {
        if (store_get(t, SYNC_CURSOR_KEY, buf, sizeof buf, NULL) == CB_OK) pg_cursor_parse(buf, &cur);
        store_abort(t);
    }
    if (pg_source_explain(pg, owners, a->people->n, cur.rev, &text, &e) == CB_OK)
        printf("change poll plan:\n%s", text);
    else
        fail("plan", &e);
    free(text);
    free(owners);
    pg_source_close(pg);
}

static int cmd_status(const char *conf, int argc, char **argv)
{
    int plan = argc > 1 && !strcmp(argv[1], "--plan");
    if (argc > 1 && !plan) {
        printf("usage: calbridge [-c FILE] status [--plan]\n\nPrints the people, the Apple cursor, "
               "pending intents, links and the last error;\n--plan also prints PostgreSQL's plan "
               "for the change poll.\n");
        return strcmp(argv[1], "--help") && strcmp(argv[1], "-h") ? 2 : 0;
    }
    app a = {0};
    if (load_common(&a, conf, 1)) {
        free_app(&a);
        return 1;
    }
    if (plan) print_plan(&a);
    store_txn *t;
    cb_err e;
    if (store_begin(a.st, 0, &t, &e)) {
        free_app(&a);
        return fail(NULL, &e);
    }
    char cursor[96] = "none (the first pass scans everything)", last[512] = "none";
    store_get(t, SYNC_CURSOR_KEY, cursor, sizeof cursor, NULL);
    store_get(t, "meta:last_error", last, sizeof last, NULL);
    long intents = 0, links = 0;
    store_intent_each(t, count_intent, &intents, NULL);
    store_link_each(t, count_link, &links, NULL);
    store_abort(t);
    printf("people          %zu\n", a.people->n);
    for (size_t i = 0; i < a.people->n; i++)
        printf("  %s  %s  wave %d  %s  authority apple\n", a.people->v[i].owner_uid,
               a.people->v[i].smtp, a.people->v[i].wave, person_kind_name(a.people->v[i].kind));
    printf("cursor          %s\n", cursor);
    printf("pending intents %ld\n", intents);
    printf("links           %ld\n", links);
    printf("last error      %s\n", last);
    free_app(&a);
    return 0;
}

int main(int argc, char **argv)
{
    const char *conf = getenv("CALBRIDGE_CONFIG") ? getenv("CALBRIDGE_CONFIG") : DEFAULT_CONF;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) conf = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(USAGE, stdout);
            return 0;
        } else {
            fprintf(stderr, "calbridge: unknown option '%s'\n%s", argv[i], USAGE);
            return 2;
        }
    }
    if (i >= argc) {
        fputs(USAGE, stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *cmd = argv[i];
    int rc;
    if (!strcmp(cmd, "sync")) rc = cmd_sync(conf, argc - i, argv + i);
    else if (!strcmp(cmd, "status")) rc = cmd_status(conf, argc - i, argv + i);
    else if (!strcmp(cmd, "translate")) rc = translate_main(argc - i, argv + i, stdout, stderr);
    else {
        fprintf(stderr, "calbridge: unknown command '%s'\n%s", cmd, USAGE);
        rc = 2;
    }
    curl_global_cleanup();
    xmlCleanupParser();
    return rc;
}
