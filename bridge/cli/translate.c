#include "translate.h"
#include "../exchange/ews_ops.h"

#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../mapping/ews_in.h"
#include "../../mapping/ical_in.h"
#include "../../mapping/ical_out.h"
#include "../exchange/ews_xml.h"

static const char USAGE[] =
    "usage: calbridge translate [--people FILE] [--timezone ZONE] [--horizon DAYS]\n"
    "                           [--travel-subject TEMPLATE] FILE.ics\n"
    "       calbridge translate --reverse [--people FILE] ITEM.xml\n"
    "\n"
    "Prints the EWS requests FILE.ics becomes: one CreateItem with every item\n"
    "(the event, its travel-time appointments, or the single items a repeat\n"
    "Exchange cannot express becomes over DAYS days, default 730), then for\n"
    "each series the DeleteItem and UpdateItem on its occurrences, with\n"
    "MASTER:<uid> where the created master's ItemId goes.\n"
    "--reverse prints the iCalendar an EWS item (a GetItem response) becomes.\n"
    "Exit status 0 when everything mapped, 3 when something was left out or\n"
    "expanded (named on standard error), 1 when an event could not be mapped.\n";

typedef struct opts {
    const char *people, *zone, *file, *travel;
    int reverse, horizon;
} opts;

static char *slurp(const char *path, size_t *len, cb_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        cb_errf(e, CB_EIO, "%s: cannot open", path);
        return NULL;
    }
    sbuf b;
    sbuf_init(&b);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sbuf_catn(&b, chunk, n);
    fclose(f);
    *len = b.len;
    char *s = sbuf_take(&b);
    if (!s) cb_errf(e, CB_ENOMEM, "%s: out of memory", path);
    return s;
}

static int parse_opts(int argc, char **argv, opts *o, FILE *out, FILE *err)
{
    memset(o, 0, sizeof *o);
    o->zone = "UTC";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--people") && more) o->people = argv[++i];
        else if (!strcmp(a, "--timezone") && more) o->zone = argv[++i];
        else if (!strcmp(a, "--travel-subject") && more) o->travel = argv[++i];
        else if (!strcmp(a, "--horizon") && more) {
            long n;
            if (config_parse_long(argv[++i], 0, 3650, &n) != CB_OK)
                return fprintf(err, "calbridge translate: --horizon must be 0..3650 days\n"), 2;
            o->horizon = (int)n;
        }
        else if (!strcmp(a, "--reverse")) o->reverse = 1;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) return fputs(USAGE, out), 0;
        else if (a[0] == '-' || o->file) return fprintf(err, "calbridge translate: bad argument '%s'\n%s", a, USAGE), 2;
        else o->file = a;
    }
    if (!o->file) return fprintf(err, "calbridge translate: which file?\n%s", USAGE), 2;
    if (o->horizon < 0 || o->horizon > 3650)
        return fprintf(err, "calbridge translate: --horizon must be 0..3650 days\n"), 2;
    return -1;
}

static void envelope(FILE *out, const char *op)
{
    sbuf env;
    sbuf_init(&env);
    ews_xml_envelope(&env, "Exchange2016", NULL, op);
    fprintf(out, "%s\n", env.s ? env.s : "");
    sbuf_free(&env);
}

static void print_create(FILE *out, ical_in_result *r, size_t n)
{
    sbuf op;
    sbuf_init(&op);
    ews_ops_open(&op, EWS_WRITE_CREATE);
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; r[i].ev && k < r[i].ev->n; k++) {
            char key[600];
            snprintf(key, sizeof key, "translate:%s%s", r[i].uid, r[i].ev->items[k]->suffix);
            ews_item_write_create(r[i].ev->items[k], key, NULL, &op);
        }
    ews_ops_close(&op, EWS_WRITE_CREATE);
    envelope(out, op.s);
    sbuf_free(&op);
}

static void print_occurrences(FILE *out, const ews_item *it, const char *uid)
{
    if (!it->nocc) return;
    char master[600];
    snprintf(master, sizeof master, "MASTER:%s%s", uid, it->suffix);
    sbuf del, upd, op;
    sbuf_init(&del), sbuf_init(&upd), sbuf_init(&op);
    ews_item_write_occurrences(it, master, &del, &upd);
    const sbuf *body[2] = {&del, &upd};
    const ews_write ops[2] = {EWS_WRITE_DELETE, EWS_WRITE_UPDATE};
    for (int i = 0; i < 2; i++) {
        if (!body[i]->len) continue;
        sbuf_free(&op);
        sbuf_init(&op);
        ews_ops_open(&op, ops[i]);
        sbuf_cat(&op, body[i]->s);
        ews_ops_close(&op, ops[i]);
        envelope(out, op.s);
    }
    sbuf_free(&del), sbuf_free(&upd), sbuf_free(&op);
}

static int forward(const opts *o, const map_ctx *mc, const char *text, FILE *out, FILE *err)
{
    ical_in_result *r = NULL;
    size_t n = 0;
    cb_err e = {0};
    if (ical_in_map_all(text, mc, &r, &n, &e) != CB_OK) {
        fprintf(err, "calbridge translate: %s: %s\n", o->file, e.msg);
        return 1;
    }
    int rc = 0, any = 0;
    for (size_t i = 0; i < n; i++) any |= r[i].ev != NULL;
    if (any) print_create(out, r, n);
    for (size_t i = 0; i < n; i++) {
        if (!r[i].ev) {
            fprintf(err, "calbridge translate: %s: %s\n", o->file, r[i].err.msg);
            int skipped = r[i].err.code == CB_EUNSUPPORTED && strstr(r[i].err.msg, "skipped");
            if (!skipped) rc = 1;
            else if (rc == 0) rc = 3;
            continue;
        }
        for (size_t k = 0; k < r[i].ev->n; k++) print_occurrences(out, r[i].ev->items[k], r[i].uid);
        if (r[i].ev->warnings) {
            fprintf(err, "calbridge translate: %s: event %s: %s\n", o->file, r[i].uid,
                    r[i].ev->warnings);
            if (!rc) rc = 3;
        }
    }
    ical_in_results_free(r, n);
    return rc;
}

static int reverse(const opts *o, const map_ctx *mc, const char *text, size_t len, FILE *out,
                   FILE *err)
{
    ews_event **ev = NULL;
    size_t n = 0;
    cb_err e = {0};
    if (ews_in_parse(text, len, mc->tz, &ev, &n, &e) != CB_OK) {
        fprintf(err, "calbridge translate: %s: %s\n", o->file, e.msg);
        return 1;
    }
    char *ics = ical_out_calendar(ev, n, mc, &e);
    ews_in_events_free(ev, n);
    if (!ics) {
        fprintf(err, "calbridge translate: %s: %s\n", o->file, e.msg);
        return 1;
    }
    fputs(ics, out);
    free(ics);
    return 0;
}

int translate_main(int argc, char **argv, FILE *out, FILE *err)
{
    opts o;
    int rc = parse_opts(argc, argv, &o, out, err);
    if (rc >= 0) return rc;
    cb_err e = {0};
    people *p = NULL;
    tzmap *tz = NULL;
    size_t len = 0;
    char *text = NULL;
    if ((o.people && people_load(o.people, &p, &e)) ||
        tzmap_load(TZMAP_CLDR_PATH, TZMAP_TZDATA_PATH, &tz, &e) ||
        !(text = slurp(o.file, &len, &e))) {
        fprintf(err, "calbridge translate: %s\n", e.msg);
        rc = 1;
    } else {
        map_ctx mc = {p, tz, o.zone, o.horizon ? o.horizon : ICAL_IN_DEFAULT_HORIZON,
                      (long long)time(NULL), o.travel, NULL};
        rc = o.reverse ? reverse(&o, &mc, text, len, out, err) : forward(&o, &mc, text, out, err);
    }
    free(text);
    tzmap_free(tz);
    people_free(p);
    return rc;
}
