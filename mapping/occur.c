#include "occur.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ical_zone.h"

static int push(occur_list *l, occur o)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        occur *v = realloc(l->v, cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = o;
    return 0;
}

void occur_free(occur_list *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int by_start(const void *a, const void *b)
{
    const occur *x = a, *y = b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

void occur_sort(occur_list *l)
{
    if (l->n) qsort(l->v, l->n, sizeof *l->v, by_start);
}

void occur_format_xs(long long t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int occur_compare(const occur_list *a, const occur_list *b, char *msg, size_t len)
{
    size_t n = a->n < b->n ? a->n : b->n;
    char s1[32], e1[32], s2[32], e2[32];
    for (size_t i = 0; i < n; i++) {
        if (a->v[i].start == b->v[i].start && a->v[i].end == b->v[i].end) continue;
        occur_format_xs(a->v[i].start, s1), occur_format_xs(a->v[i].end, e1);
        occur_format_xs(b->v[i].start, s2), occur_format_xs(b->v[i].end, e2);
        snprintf(msg, len, "occurrence %zu: %s..%s against %s..%s", i + 1, s1, e1, s2, e2);
        return -1;
    }
    if (a->n != b->n) {
        const occur *x = a->n > b->n ? &a->v[n] : &b->v[n];
        occur_format_xs(x->start, s1);
        snprintf(msg, len, "%zu occurrences against %zu (first extra: %s)", a->n, b->n, s1);
        return -1;
    }
    return 0;
}

int occur_parse_xs(const char *s, icaltimezone *zone, long long *out)
{
    struct icaltimetype t = icaltime_null_time();
    char z = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &t.year, &t.month, &t.day, &t.hour,
               &t.minute, &t.second, &z) < 6)
        return -1;
    t.zone = z == 'Z' || !zone ? icaltimezone_get_utc_timezone() : zone;
    *out = (long long)icaltime_as_timet_with_zone(t, (icaltimezone *)t.zone);
    return 0;
}

/* ---- iCalendar side ----------------------------------------------------- */

typedef struct series {
    icalcomponent *cal, *master;
    const map_ctx *ctx;
    tzdef_cache *zones;
    ical_zone z;
    struct icaltimetype start;   /* wall time in z */
    long long dur;               /* seconds, or days when all-day */
    int all_day;
} series;

static struct icaltimetype wall_in_series(const series *s, icalproperty *p,
                                          struct icaltimetype t)
{
    return ical_zone_wall_in(s->cal, p, t, s->ctx, s->zones, &s->z);
}

static long long to_utc(const series *s, struct icaltimetype wall)
{
    wall.is_date = 0;
    wall.zone = s->z.zone;
    return (long long)icaltime_as_timet_with_zone(wall, s->z.zone);
}

static occur make(const series *s, struct icaltimetype wall, icalcomponent *comp)
{
    occur o = {0};
    o.start = o.orig = to_utc(s, wall);
    if (s->all_day) {
        struct icaltimetype e = wall;
        icaltime_adjust(&e, (int)s->dur, 0, 0, 0);
        o.end = to_utc(s, e);
    } else {
        o.end = o.start + s->dur;
    }
    o.all_day = s->all_day;
    o.comp = comp;
    return o;
}

static int series_init(series *s, icalcomponent *cal, icalcomponent *master,
                       const map_ctx *ctx, tzdef_cache *zones, cb_err *err)
{
    memset(s, 0, sizeof *s);
    s->cal = cal, s->master = master, s->ctx = ctx, s->zones = zones;
    icalproperty *dp = icalcomponent_get_first_property(master, ICAL_DTSTART_PROPERTY);
    if (!dp) return cb_errf(err, CB_EPARSE, "no DTSTART");
    if (ical_zone_resolve(cal, dp, ctx, zones, &s->z) != 0)
        return cb_errf(err, CB_EPARSE, "no zone");
    s->start = ical_zone_wall(dp, &s->z);
    s->all_day = s->start.is_date;
    icalproperty *ep = icalcomponent_get_first_property(master, ICAL_DTEND_PROPERTY);
    icalproperty *du = icalcomponent_get_first_property(master, ICAL_DURATION_PROPERTY);
    if (ep) {
        struct icaltimetype e = wall_in_series(s, ep, icalproperty_get_dtend(ep));
        s->dur = s->all_day ? recur_days((recur_date){e.year, e.month, e.day}) -
                                  recur_days((recur_date){s->start.year, s->start.month, s->start.day})
                            : to_utc(s, e) - to_utc(s, s->start);
    } else if (du) {
        struct icaldurationtype d = icalproperty_get_duration(du);
        s->dur = s->all_day ? icaldurationtype_as_int(d) / 86400 : icaldurationtype_as_int(d);
    } else {
        s->dur = s->all_day ? 1 : 0;
    }
    if (s->all_day && s->dur < 1) s->dur = 1;
    if (s->dur < 0) return cb_errf(err, CB_EPARSE, "DTEND is before DTSTART");
    return CB_OK;
}

static int same_instance(const series *s, struct icaltimetype a, struct icaltimetype b)
{
    if (a.is_date || b.is_date || s->all_day)
        return a.year == b.year && a.month == b.month && a.day == b.day;
    return icaltime_compare(a, b) == 0;
}

static int excluded(const series *s, struct icaltimetype wall)
{
    for (icalproperty *p = icalcomponent_get_first_property(s->master, ICAL_EXDATE_PROPERTY); p;
         p = icalcomponent_get_next_property(s->master, ICAL_EXDATE_PROPERTY))
        if (same_instance(s, wall_in_series(s, p, icalproperty_get_exdate(p)), wall)) return 1;
    return 0;
}

int occur_rule_too_costly(const struct icalrecurrencetype *rule)
{
    if (rule->freq != ICAL_SECONDLY_RECURRENCE && rule->freq != ICAL_MINUTELY_RECURRENCE) return 0;
    return rule->by_day[0] != ICAL_RECURRENCE_ARRAY_MAX ||
           rule->by_month_day[0] != ICAL_RECURRENCE_ARRAY_MAX ||
           rule->by_year_day[0] != ICAL_RECURRENCE_ARRAY_MAX ||
           rule->by_week_no[0] != ICAL_RECURRENCE_ARRAY_MAX ||
           rule->by_month[0] != ICAL_RECURRENCE_ARRAY_MAX ||
           rule->by_set_pos[0] != ICAL_RECURRENCE_ARRAY_MAX;
}

/* Instances from DTSTART, RRULE and RDATE, as wall times, before to. */
static int collect(const series *s, long long to, size_t max, struct icaltimetype **out,
                   size_t *n)
{
    size_t cap = 64;
    struct icaltimetype *v = malloc(cap * sizeof *v);
    if (!v) return -1;
    *n = 0;
    v[(*n)++] = s->start;
    icalproperty *rp = icalcomponent_get_first_property(s->master, ICAL_RRULE_PROPERTY);
    for (; rp; rp = icalcomponent_get_next_property(s->master, ICAL_RRULE_PROPERTY)) {
        struct icalrecurrencetype rule = icalproperty_get_rrule(rp);
        if (occur_rule_too_costly(&rule)) continue;   /* refused by the mapping */
        icalrecur_iterator *it = icalrecur_iterator_new(rule, s->start);
        for (struct icaltimetype t; it && !icaltime_is_null_time(t = icalrecur_iterator_next(it));) {
            t.zone = s->z.zone;
            if (to_utc(s, t) >= to || *n > max) break;
            if (same_instance(s, t, s->start)) continue;
            if (*n == cap) {
                struct icaltimetype *w = realloc(v, (cap *= 2) * sizeof *v);
                if (!w) break;
                v = w;
            }
            v[(*n)++] = t;
        }
        if (it) icalrecur_iterator_free(it);
    }
    for (icalproperty *p = icalcomponent_get_first_property(s->master, ICAL_RDATE_PROPERTY); p;
         p = icalcomponent_get_next_property(s->master, ICAL_RDATE_PROPERTY)) {
        struct icaldatetimeperiodtype dp = icalproperty_get_rdate(p);
        struct icaltimetype t = icaltime_is_null_time(dp.time) ? dp.period.start : dp.time;
        if (*n == cap) {
            struct icaltimetype *w = realloc(v, (cap *= 2) * sizeof *v);
            if (!w) break;
            v = w;
        }
        v[(*n)++] = wall_in_series(s, p, t);
    }
    *out = v;
    return 0;
}

static icalcomponent *override_for(icalcomponent *cal, const series *s, const char *uid,
                                   struct icaltimetype wall)
{
    icalcomponent *c;
    for (icalcompiter ci = icalcomponent_begin_component(cal, ICAL_VEVENT_COMPONENT);
         (c = icalcompiter_deref(&ci)) != NULL; icalcompiter_next(&ci)) {
        icalproperty *rid = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
        const char *u = icalcomponent_get_uid(c);
        if (!rid || !u || strcmp(u, uid)) continue;
        if (same_instance(s, wall_in_series(s, rid, icalproperty_get_recurrenceid(rid)), wall))
            return c;
    }
    return NULL;
}

/* The override's own times replace the instance's. */
static occur overridden(const series *s, icalcomponent *c, occur o)
{
    series os;
    cb_err e;
    if (series_init(&os, s->cal, c, s->ctx, s->zones, &e) != CB_OK) return o;
    occur r = make(&os, os.start, c);
    tzdef_free(os.z.tzd);
    r.orig = o.orig;
    return r;
}

/* Overrides without a master (an attendee invited to some occurrences):
 * each is an occurrence of its own. */
static int orphans(icalcomponent *cal, const char *uid, const map_ctx *ctx, tzdef_cache *zones,
                   long long from, long long to, occur_list *out, cb_err *err)
{
    int found = 0;
    icalcomponent *c;
    for (icalcompiter ci = icalcomponent_begin_component(cal, ICAL_VEVENT_COMPONENT);
         (c = icalcompiter_deref(&ci)) != NULL; icalcompiter_next(&ci)) {
        const char *u = icalcomponent_get_uid(c);
        if (!u || strcmp(u, uid)) continue;
        series s;
        int rc = series_init(&s, cal, c, ctx, zones, err);
        if (rc) return rc;
        occur o = make(&s, s.start, c);
        tzdef_free(s.z.tzd);
        found = 1;
        if (o.orig >= from && o.orig < to && push(out, o) < 0)
            return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    return found ? CB_OK : cb_errf(err, CB_ENOTFOUND, "event %s: no VEVENT", uid);
}

int occur_ical(icalcomponent *cal, const char *uid, const map_ctx *ctx, tzdef_cache *zones,
               long long from, long long to, size_t max, occur_list *out, cb_err *err)
{
    icalcomponent *master = NULL;
    icalcomponent *c;
    for (icalcompiter ci = icalcomponent_begin_component(cal, ICAL_VEVENT_COMPONENT);
         (c = icalcompiter_deref(&ci)) != NULL && !master; icalcompiter_next(&ci)) {
        const char *u = icalcomponent_get_uid(c);
        if (u && !strcmp(u, uid) && !icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY))
            master = c;
    }
    if (!master) return orphans(cal, uid, ctx, zones, from, to, out, err);
    series s;
    int rc = series_init(&s, cal, master, ctx, zones, err);
    if (rc) return rc;
    struct icaltimetype *v = NULL;
    size_t n = 0;
    if (collect(&s, to, max, &v, &n) < 0) rc = cb_errf(err, CB_ENOMEM, "out of memory");
    else if (n > max)
        rc = cb_errf(err, CB_EUNSUPPORTED, "event %s: more than %zu occurrences", uid, max);
    for (size_t i = 0; i < n && rc == CB_OK; i++) {
        int dup = 0;
        for (size_t j = 0; j < i && !dup; j++) dup = same_instance(&s, v[i], v[j]);
        if (dup || excluded(&s, v[i])) continue;
        occur o = make(&s, v[i], master);
        if (o.orig < from || o.orig >= to) continue;
        icalcomponent *ov = override_for(cal, &s, uid, v[i]);
        if (ov) o = overridden(&s, ov, o);
        if (push(out, o) < 0) rc = cb_errf(err, CB_ENOMEM, "out of memory");
    }
    free(v);
    tzdef_free(s.z.tzd);
    return rc;
}

/* ---- Exchange side ------------------------------------------------------ */

static const ews_occurrence *change_of(const ews_item *it, int index)
{
    for (size_t i = 0; i < it->nocc; i++)
        if (it->occ[i].index == index) return &it->occ[i];
    return NULL;
}

static int item_times(const ews_item *it, icaltimezone *z, occur *o)
{
    if (occur_parse_xs(it->start, z, &o->start) || occur_parse_xs(it->end, z, &o->end))
        return -1;
    o->orig = o->start;
    o->all_day = it->all_day;
    return 0;
}

static int expand_series(const ews_item *it, icaltimezone *z, long long from, long long to,
                         occur_list *out)
{
    occur first;
    if (item_times(it, z, &first) < 0) return -1;
    struct icaltimetype w = icaltime_from_timet_with_zone((time_t)first.start, 0, z);
    long long dur = first.end - first.start;
    struct icaltimetype lim = icaltime_from_timet_with_zone((time_t)to, 0, z);
    recur_date through = recur_from_days(recur_days((recur_date){lim.year, lim.month, lim.day}) + 1);
    size_t max = (size_t)(recur_days(through) - recur_days(it->recur.start) + 2);
    recur_date *d = malloc(max * sizeof *d);
    if (!d) return -1;
    size_t n = recur_dates(&it->recur, through, d, max);
    for (size_t i = 0; i < n; i++) {
        struct icaltimetype t = w;
        t.year = d[i].y, t.month = d[i].m, t.day = d[i].d;
        t.zone = z;
        occur o = {0};
        o.start = o.orig = (long long)icaltime_as_timet_with_zone(t, z);
        if (it->all_day) {
            struct icaltimetype e = t;
            icaltime_adjust(&e, (int)(dur / 86400), 0, 0, 0);
            o.end = (long long)icaltime_as_timet_with_zone(e, z);
        } else {
            o.end = o.start + dur;
        }
        o.all_day = it->all_day;
        if (o.orig < from || o.orig >= to) continue;
        const ews_occurrence *c = change_of(it, (int)i + 1);
        if (c && !c->item) continue;
        if (c && item_times(c->item, z, &o) < 0) continue;
        o.orig = o.start;
        if (push(out, o) < 0) {
            free(d);
            return -1;
        }
    }
    free(d);
    return 0;
}

int occur_ews(const ews_event *ev, const tzmap *m, tzdef_cache *zones, long long from,
              long long to, occur_list *out, cb_err *err)
{
    for (size_t i = 0; i < ev->n; i++) {
        const ews_item *it = ev->items[i];
        if (it->role == ROLE_TRAVEL || it->role == ROLE_RETURN) continue;
        icaltimezone *z = ews_item_zone(it, m, zones);
        if (!z) return cb_errf(err, CB_EPARSE, "event %s: zone cannot be built", ev->uid);
        if (it->has_recurrence) {
            if (expand_series(it, z, from, to, out) < 0)
                return cb_errf(err, CB_EPARSE, "event %s: bad times", ev->uid);
            continue;
        }
        occur o;
        if (item_times(it, z, &o) < 0) return cb_errf(err, CB_EPARSE, "event %s: bad times", ev->uid);
        if (o.orig >= from && o.orig < to && push(out, o) < 0)
            return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    return CB_OK;
}
