/* calbridge — keeps Apple CalendarServer and Exchange calendars consistent
 * while people move in waves. This file is the command line: it owns the
 * process-wide objects and hands them to the modules.
 */
#include <event2/event.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <getopt.h>
#include <libxml/parser.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../mapping/ews_item.h"
#include "../../mapping/people.h"
#include "../../mapping/tzmap.h"
#include "../../state/store.h"
#include "../../state/keys.h"
#include "config.h"
#include "../apple/pg_source.h"
#include "report.h"
#include "../engine/cutover.h"
#include "../engine/service.h"
#include "../sides.h"
#include "translate.h"

#define DEFAULT_CONF "/etc/calbridge/calbridge.conf"

static const char USAGE[] =
    "usage: calbridge [-c FILE] COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  sync [--once]      keep both sides consistent: each person mirrored from\n"
    "                     their authoritative side; --once runs one cycle and\n"
    "                     prints a summary\n"
    "  cutover --wave N | --person UID [--dry-run] [--force-delete]\n"
    "                     final delta, comparison, then the people's authority\n"
    "                     flips to Exchange (resumable)\n"
    "  status [--conflicts] people, authority, links, cursor, last error\n"
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
    int once, rc;
    service *sv;
    side *sides[2];
    report rep;
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
    struct stat sd;
    if (need_store && stat(a->cfg->state_dir, &sd) == 0 && (sd.st_mode & 022)) {
        fprintf(stderr, "calbridge: %s: the state directory is writable by group or others "
                        "(mode %03o): anyone could rewrite whose calendar an item belongs to; "
                        "chmod 700 it\n", a->cfg->state_dir, (unsigned)(sd.st_mode & 0777));
        return 1;
    }
    if (need_store && store_open(a->cfg->state_dir, &a->st, &e)) return fail(NULL, &e);
    return 0;
}

static void free_app(app *a)
{
    service_close(a->sv);
    sides_close(a->sides);
    report_free(&a->rep);
    store_close(a->st);
    tzmap_free(a->tz);
    people_free(a->people);
    config_free(a->cfg);
    if (a->base) event_base_free(a->base);
}

/* Whether anybody's Apple home is a mirror (their authority is Exchange). */
static int anyone_on_exchange(app *a, cb_err *e)
{
    store_txn *t;
    int any = 0;
    if (store_begin(a->st, 0, &t, e) != CB_OK) return -1;
    for (size_t i = 0; i < a->people->n && any >= 0; i++) {
        authority au;
        if (store_authority_get(t, a->people->v[i].owner_uid, &au, e) != CB_OK) any = -1;
        else any |= au == AUTHORITY_EXCHANGE;
    }
    store_abort(t);
    return any;
}

/* The writer's privileges: required when someone's home is (or is about
 * to become) a mirror, else only a warning. */
static int check_writer(app *a, int needed)
{
    cb_err e = {0}, w = {0};
    side *ap = a->sides[SIDE_APPLE];
    if (ap->ops->check(ap, &w) == CB_OK) return 0;
    int any = needed ? 1 : anyone_on_exchange(a, &e);
    if (any < 0) return fail(NULL, &e);
    if (any) return fail(NULL, &w);
    fprintf(stderr, "calbridge: warning: %s (nobody is on Exchange yet)\n", w.msg);
    return 0;
}

/* Loads everything and opens the service (databases, EWS). writer_needed:
 * the Apple writer's privileges must be there even if nobody needs them yet. */
static int open_service(app *a, const char *conf, int force_delete, int writer_needed)
{
    if (load_common(a, conf, 1)) return 1;
    if (a->cfg->warning[0]) fprintf(stderr, "calbridge: warning: %s\n", a->cfg->warning);
    a->base = event_base_new();
    report_init(&a->rep);
    a->rep.people = (long)a->people->n;
    cb_err e = {0};
    if (!a->base) return fail(NULL, &(cb_err){CB_ENOMEM, "out of memory"});
    if (sides_open(a->base, a->cfg, a->people, a->tz, a->sides, &e)) return fail(NULL, &e);
    service_deps d = {a->cfg, a->people, a->st, a->base, &a->rep, force_delete,
                      {a->sides[SIDE_APPLE], a->sides[SIDE_EXCHANGE]}};
    if (service_open(&d, &a->sv, &e)) return fail(NULL, &e);
    return check_writer(a, writer_needed);
}

/* One process at a time drives the engine: the service and a cutover
 * share the state and must not interleave their passes. */
static int lock_state(const config *cfg)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/calbridge.lock", cfg->state_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        fprintf(stderr, "calbridge: %s is in use by another calbridge (sync or cutover); "
                        "stop it first\n", cfg->state_dir);
        if (fd >= 0) close(fd);
        return 1;
    }
    return 0;   /* held until the process exits */
}

/* ---- sync ------------------------------------------------------------- */

static void on_once(void *ud, int rc, const cb_err *err)
{
    app *a = ud;
    if (rc != CB_OK) fprintf(stderr, "calbridge: pass stopped: %s\n", err->msg);
    report_print(&a->rep, stdout, 50);
    a->rc = rc != CB_OK ? 1 : a->rep.failed || a->rep.held_back ? 3 : 0;
    event_base_loopexit(a->base, NULL);
}

static void on_signal(evutil_socket_t fd, short what, void *ud)
{
    (void)fd;
    (void)what;
    service_stop(ud);
}

static int run_service(app *a)
{
    cb_err e = {0};
    if (service_run(a->sv, &e)) return fail(NULL, &e);
    struct event *si = evsignal_new(a->base, SIGINT, on_signal, a->sv);
    struct event *st = evsignal_new(a->base, SIGTERM, on_signal, a->sv);
    event_add(si, NULL);
    event_add(st, NULL);
    event_base_dispatch(a->base);
    event_free(si);
    event_free(st);
    return 0;
}

static int cmd_sync(const char *conf, int argc, char **argv)
{
    app a = {0};
    int force = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--once")) a.once = 1;
        else if (!strcmp(argv[i], "--force-delete")) force = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: calbridge [-c FILE] sync [--once] [--force-delete]\n\n"
                   "Keeps both sides consistent. People whose authority is Apple (everyone\n"
                   "before their wave's cutover) are mirrored into their Exchange calendar;\n"
                   "people whose authority is Exchange are mirrored back into their Apple\n"
                   "home, driven by streaming notifications. Edits made on a mirror side are\n"
                   "overwritten by the authoritative version and recorded (status --conflicts).\n"
                   "Without --once it runs until SIGINT or SIGTERM, which let the cycle under\n"
                   "way finish for up to 3 s (what it committed stays either way).\n"
                   "--force-delete lets a pass delete more than [coexistence]\n"
                   "mass_delete_percent of one person's items.\n"
                   "Exit status with --once: 0 all carried, 3 some events failed (listed),\n"
                   "1 the pass could not complete (it resumes safely next time).\n");
            return 0;
        } else {
            fprintf(stderr, "calbridge sync: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    int rc = 1;
    if (open_service(&a, conf, force, 0) == 0 && lock_state(a.cfg) == 0) {
        cb_err e = {0};
        if (!a.once) rc = run_service(&a);
        else if (service_cycle(a.sv, 1, on_once, &a, &e)) rc = fail(NULL, &e);
        else {
            event_base_dispatch(a.base);
            rc = a.rc;
        }
    }
    free_app(&a);
    return rc;
}

/* ---- cutover ---------------------------------------------------------- */

static int cmd_cutover(const char *conf, int argc, char **argv)
{
    int wave = -1, dry = 0, force = 0;
    const char *uid = NULL;
    for (int i = 1; i < argc; i++) {
        long n;
        if (!strcmp(argv[i], "--wave") && i + 1 < argc) {
            if (config_parse_long(argv[++i], 0, 1000000, &n) != CB_OK) {
                fprintf(stderr, "calbridge cutover: --wave takes a wave number, not '%s'\n", argv[i]);
                return 2;
            }
            wave = (int)n;
        }
        else if (!strcmp(argv[i], "--person") && i + 1 < argc) uid = argv[++i];
        else if (!strcmp(argv[i], "--dry-run")) dry = 1;
        else if (!strcmp(argv[i], "--force-delete")) force = 1;
        else {
            int help = !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
            fprintf(help ? stdout : stderr,
                    "usage: calbridge [-c FILE] cutover (--wave N | --person UID) [--dry-run] "
                    "[--force-delete]\n\n"
                    "Carries the last Apple changes of those people into Exchange, checks that\n"
                    "both sides agree for each of them, flips their authority to Exchange, and\n"
                    "mirrors their Exchange calendars back into Apple from then on. A person\n"
                    "whose sides differ is not flipped (listed). Safe to run again after a\n"
                    "crash: it resumes. --dry-run only compares. Stop `calbridge sync` first.\n"
                    "Exit status: 0 all cut over, 3 some were stopped by a mismatch, 1 error.\n");
            return help ? 0 : 2;
        }
    }
    if ((wave < 0) == !uid) {
        fprintf(stderr, "calbridge cutover: give either --wave N or --person UID\n");
        return 2;
    }
    app a = {0};
    int rc = 1;
    if (open_service(&a, conf, force, !dry) == 0 && lock_state(a.cfg) == 0) {
        const char **owners = calloc(a.people->n + 1, sizeof *owners);
        size_t n = 0;
        for (size_t i = 0; owners && i < a.people->n; i++)
            if (uid ? !strcmp(a.people->v[i].owner_uid, uid) : a.people->v[i].wave == wave)
                owners[n++] = a.people->v[i].owner_uid;
        cb_err e = {0};
        if (!n) fprintf(stderr, "calbridge cutover: nobody in the people map matches\n");
        else {
            printf("cutover of %zu people%s:\n", n, dry ? " (dry run)" : "");
            cutover_opts o = {a.cfg, a.people, a.tz, a.st, a.sv,
                              {a.sides[SIDE_APPLE], a.sides[SIDE_EXCHANGE]}, a.base, owners, n,
                              dry, stdout};
            size_t stopped = 0;
            if (cutover_run(&o, &stopped, &e) != CB_OK) rc = fail("cutover", &e);
            else rc = stopped ? 3 : 0;
            if (a.rep.failed || a.rep.conflicts) report_print(&a.rep, stdout, 50);
        }
        free(owners);
    }
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

static int print_conflict(void *ud, const char *name, const char *value)
{
    (*(long *)ud)++;
    char when[32];
    const char *key;
    if (key_conflict_parse(name, when, &key) != CB_OK) when[0] = '\0', key = name;
    printf("  %-24s  %s\n      %s\n", when, key, value);
    return 0;
}

static int print_failed(void *ud, const char *name, const char *value)
{
    if ((*(long *)ud)++ < 50) printf("  %s\n      %s\n", key_arg(KEY_FAILED, name), value);
    return 0;
}

static int count_entry(void *ud, const char *name, const char *value)
{
    (void)name;
    (void)value;
    (*(long *)ud)++;
    return 0;
}

/* A state read that failed makes `status` say so and exit 1: what it
 * prints is then incomplete, never a default passed off as the state. */
static int readable(app *a, int rc)
{
    if (rc == CB_OK || rc == CB_ENOTFOUND) return 1;
    a->rc = 1;
    return 0;
}

/* Events that could not be carried stay listed until carried or gone. */
static void print_failed_list(app *a, store_txn *t)
{
    long n = 0, shown = 0;
    char prefix[STORE_KEY_MAX];
    key_prefix(KEY_FAILED, NULL, prefix);
    if (!readable(a, store_each(t, prefix, count_entry, &n, NULL))) n = -1;
    printf("not carried     %ld%s\n", n, n > 50 ? " (the first 50:)" : "");
    readable(a, store_each(t, prefix, print_failed, &shown, NULL));
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
        if (store_get(t, KEY_CURSOR_APPLE, buf, sizeof buf, NULL) == CB_OK) pg_cursor_parse(buf, &cur);
        store_abort(t);
    }
    if (pg_source_explain(pg, owners, a->people->n, cur.rev, &text, &e) == CB_OK)
        fputs(text, stdout);
    else
        fail("plan", &e);
    free(text);
    free(owners);
    pg_source_close(pg);
}

/* "3 s ago (lag 120 ms, to-apple)" from a lag:<owner> value. */
static void describe_lag(store_txn *t, const char *owner, char *out, size_t size)
{
    char name[STORE_KEY_MAX], v[96], dir[32] = "";
    long long at = 0;
    long lag = 0;
    key_name(KEY_LAG, owner, name);
    if (store_get(t, name, v, sizeof v, NULL) != CB_OK ||
        sscanf(v, "%lld %ld %31s", &at, &lag, dir) != 3) {
        snprintf(out, size, "-");
        return;
    }
    long long ago = (long long)time(NULL) - at;
    snprintf(out, size, "%llds ago, lag %ld ms %s", ago < 0 ? 0 : ago, lag, dir);
}

static void print_people(app *a, store_txn *t)
{
    size_t n = a->people->n;
    long *apple = calloc(n + 1, sizeof *apple), total = 0;
    const char **owners = calloc(n + 1, sizeof *owners);
    if (!readable(a, store_link_each(t, count_link, &total, NULL))) total = -1;
    int have_apple = 0;
    pg_source *pg = NULL;
    cb_err e;
    for (size_t i = 0; owners && i < n; i++) owners[i] = a->people->v[i].owner_uid;
    if (apple && owners && pg_source_open(a->cfg->apple_dsn, &pg, &e) == CB_OK)
        have_apple = pg_source_counts(pg, owners, n, apple, &e) == CB_OK;
    pg_source_close(pg);
    printf("people          %zu\n", n);
    printf("  %-36s %-26s %4s %-8s %-9s %6s %6s  %s\n", "owner", "mailbox", "wave", "kind",
           "authority", "apple", "linked", "last change");
    for (size_t i = 0; i < n; i++) {
        const person *p = &a->people->v[i];
        authority auth = AUTHORITY_APPLE;
        int known = readable(a, store_authority_get(t, p->owner_uid, &auth, NULL));
        char name[STORE_KEY_MAX], step[64] = "", lag[96], ap[16] = "?";
        key_name(KEY_CUTOVER, p->owner_uid, name);
        if (!readable(a, store_get(t, name, step, sizeof step, NULL))) snprintf(step, sizeof step, "?");
        describe_lag(t, p->owner_uid, lag, sizeof lag);
        if (have_apple) snprintf(ap, sizeof ap, "%ld", apple[i]);
        long linked = 0;
        if (!readable(a, store_link_count(t, p->owner_uid, &linked, NULL))) linked = -1;
        printf("  %-36s %-26s %4d %-8s %-9s %6s %6ld  %s%s%s\n", p->owner_uid, p->smtp, p->wave,
               person_kind_name(p->kind), known ? authority_name(auth) : "unreadable", ap, linked, lag,
               *step && strcmp(step, "done") ? "; cutover at " : "", strcmp(step, "done") ? step : "");
    }
    printf("links           %ld\n", total);
    free(apple);
    free(owners);
}

static int cmd_status(const char *conf, int argc, char **argv)
{
    int plan = argc > 1 && !strcmp(argv[1], "--plan");
    int conflicts = argc > 1 && !strcmp(argv[1], "--conflicts");
    if (argc > 1 && !plan && !conflicts) {
        printf("usage: calbridge [-c FILE] status [--plan | --conflicts]\n\nPrints the people "
               "with their authority and linked items, the Apple cursor,\npending intents and "
               "the last error. --plan also prints PostgreSQL's plans\nfor the change poll and the rescan; "
               "--conflicts lists the edits made on a mirror side\nthat were overwritten by "
               "the authoritative version.\n");
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
    if (conflicts) {
        long n = 0;
        printf("conflicts (edits on a mirror side, overwritten by the authoritative side):\n");
        char prefix[STORE_KEY_MAX];
        key_prefix(KEY_CONFLICT, NULL, prefix);
        readable(&a, store_each(t, prefix, print_conflict, &n, NULL));
        printf("%ld conflicts\n", n);
    } else {
        char cursor[96] = "none (the first pass scans everything)", last[512] = "none";
        readable(&a, store_get(t, KEY_CURSOR_APPLE, cursor, sizeof cursor, NULL));
        readable(&a, store_get(t, KEY_LAST_ERROR, last, sizeof last, NULL));
        long intents = 0;
        if (!readable(&a, store_intent_each(t, count_intent, &intents, NULL))) intents = -1;
        print_people(&a, t);
        print_failed_list(&a, t);
        printf("cursor          %s\n", cursor);
        printf("pending intents %ld\n", intents);
        printf("last error      %s\n", last);
    }
    store_abort(t);
    int rc = a.rc;
    if (rc) fprintf(stderr, "calbridge: status: part of the state could not be read; what is "
                            "shown as -1, ? or unreadable is unknown\n");
    free_app(&a);
    return rc;
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
    else if (!strcmp(cmd, "cutover")) rc = cmd_cutover(conf, argc - i, argv + i);
    else {
        fprintf(stderr, "calbridge: unknown command '%s'\n%s", cmd, USAGE);
        rc = 2;
    }
    curl_global_cleanup();
    xmlCleanupParser();
    return rc;
}
