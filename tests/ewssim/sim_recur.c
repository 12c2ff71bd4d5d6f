#include "sim_recur.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct zone_map {
    char *windows, *iana;
} zone_map;

struct sim_zones {
    zone_map *v;
    size_t n;
};

static const char *const DAYS[] = {"Sunday", "Monday", "Tuesday", "Wednesday",
                                   "Thursday", "Friday", "Saturday"};
static const char *const MONTHS[] = {"January", "February", "March", "April", "May", "June",
                                     "July", "August", "September", "October", "November",
                                     "December"};

/* ---- CLDR's Windows zone names ------------------------------------------- */

static void collect_zones(sim_zones *z, xmlNode *n)
{
    for (; n; n = n->next) {
        if (n->type != XML_ELEMENT_NODE) continue;
        if (!strcmp((const char *)n->name, "mapZone")) {
            char *terr = (char *)xmlGetProp(n, BAD_CAST "territory");
            char *win = (char *)xmlGetProp(n, BAD_CAST "other");
            char *type = (char *)xmlGetProp(n, BAD_CAST "type");
            if (terr && win && type && !strcmp(terr, "001")) {
                zone_map *v = realloc(z->v, (z->n + 1) * sizeof *v);
                if (!v) abort();
                z->v = v;
                char *sp = strchr(type, ' ');   /* the first zone is the canonical one */
                v[z->n].windows = strdup(win);
                v[z->n].iana = strndup(type, sp ? (size_t)(sp - type) : strlen(type));
                z->n++;
            }
            xmlFree(terr), xmlFree(win), xmlFree(type);
        }
        collect_zones(z, n->children);
    }
}

sim_zones *sim_zones_load(const char *path)
{
    xmlDoc *d = xmlReadFile(path, NULL, XML_PARSE_NONET);
    if (!d) return NULL;
    sim_zones *z = calloc(1, sizeof *z);
    if (!z) abort();
    collect_zones(z, xmlDocGetRootElement(d));
    xmlFreeDoc(d);
    return z;
}

void sim_zones_free(sim_zones *z)
{
    if (!z) return;
    for (size_t i = 0; i < z->n; i++) free(z->v[i].windows), free(z->v[i].iana);
    free(z->v);
    free(z);
}

static const char *iana_of(const sim_zones *z, const char *windows)
{
    for (size_t i = 0; z && windows && i < z->n; i++)
        if (!strcmp(z->v[i].windows, windows)) return z->v[i].iana;
    return NULL;
}

/* ---- civil dates (proleptic Gregorian, days since 1970-01-01) ------------ */

static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, int *y, int *m, int *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int weekday(long long days)   /* 0 = Sunday */
{
    int w = (int)((days + 4) % 7);
    return w < 0 ? w + 7 : w;
}

static int month_days(int y, int m)
{
    static const int D[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : D[m - 1];
}

int sim_xs_parse(const char *s, long long *out)
{
    int y, mo, d, h, mi, sec, n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6) return -1;
    const char *r = s + n;
    if (*r == '.') r += strspn(r + 1, "0123456789") + 1;
    long long t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    int oh, om;
    if ((*r == '+' || *r == '-') && sscanf(r + 1, "%2d:%2d", &oh, &om) == 2)
        t -= (*r == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    *out = t;
    return 0;
}

void sim_xs_format(long long t, char out[32])
{
    long long days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
    int secs = (int)(t - days * 86400), y, m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, secs / 3600, secs / 60 % 60,
             secs % 60);
}

/* ---- XML of the stored fields --------------------------------------------- */

static xmlDoc *field_doc(const char *xml)
{
    if (!xml) return NULL;
    size_t len = strlen(xml) + 200;
    char *w = malloc(len);
    if (!w) abort();
    snprintf(w, len, "<r xmlns:t=\"http://schemas.microsoft.com/exchange/services/2006/types\">"
                     "%s</r>", xml);
    xmlDoc *d = xmlReadMemory(w, (int)strlen(w), NULL, NULL, XML_PARSE_NONET);
    free(w);
    return d;
}

static xmlNode *first_el(xmlNode *n)
{
    for (; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE) return n;
    return NULL;
}

static xmlNode *kid(xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, name)) return c;
    return NULL;
}

/* The text of child name of n, copied into out ("" when absent). */
static const char *kid_text(xmlNode *n, const char *name, char *out, size_t size)
{
    xmlNode *c = kid(n, name);
    char *t = c ? (char *)xmlNodeGetContent(c) : NULL;
    snprintf(out, size, "%s", t ? t : "");
    xmlFree(t);
    return out;
}

/* The root's element's text ("<t:Start>x</t:Start>" -> x). */
static int field_text(const char *xml, char *out, size_t size)
{
    xmlDoc *d = field_doc(xml);
    xmlNode *e = d ? first_el(xmlDocGetRootElement(d)->children) : NULL;
    char *t = e ? (char *)xmlNodeGetContent(e) : NULL;
    snprintf(out, size, "%s", t ? t : "");
    xmlFree(t);
    xmlFreeDoc(d);
    return e ? 0 : -1;
}

/* ---- time zones ----------------------------------------------------------- */

typedef struct rule {
    int month, dow, occurrence, secs;   /* occurrence -1: the last */
} rule;

typedef struct zone {
    const char *iana;       /* from the C library */
    int custom;             /* from a TimeZoneDefinition */
    int std_off, dst_off;   /* seconds east of UTC */
    int has_dst;
    rule to_dst, to_std;
} zone;

/* xs:duration such as "-P0DT1H0M0.0S" or "PT2H30M" -> seconds. */
static int duration(const char *s)
{
    int sign = 1, total = 0, in_time = 0;
    if (*s == '-') sign = -1, s++;
    if (*s++ != 'P') return 0;
    while (*s) {
        if (*s == 'T') {
            in_time = 1;
            s++;
            continue;
        }
        char *end;
        double v = strtod(s, &end);
        if (end == s) break;
        int mult = *end == 'D' ? 86400 : *end == 'H' ? 3600 : *end == 'M' ? (in_time ? 60 : 0)
                   : *end == 'S' ? 1 : 0;
        total += (int)(v * mult);
        s = *end ? end + 1 : end;
    }
    return sign * total;
}

static int day_named(const char *name)
{
    for (int i = 0; i < 7; i++)
        if (!strcmp(name, DAYS[i])) return i;
    return -1;
}

/* The day of month of the occurrence-th dow (-1 or 5: the last). */
static int nth_weekday(int y, int m, int dow, int occurrence)
{
    int first = weekday(days_from_civil(y, m, 1));
    int day = 1 + (dow - first + 7) % 7 + 7 * ((occurrence < 1 || occurrence > 4 ? 5 : occurrence) - 1);
    while (day > month_days(y, m)) day -= 7;
    return day;
}

static long long rule_local(int y, const rule *r)
{
    return days_from_civil(y, r->month, nth_weekday(y, r->month, r->dow, r->occurrence)) * 86400 +
           r->secs;
}

static int in_dst(const zone *z, int y, long long local)
{
    if (!z->has_dst) return 0;
    long long a = rule_local(y, &z->to_dst), b = rule_local(y, &z->to_std);
    return a < b ? local >= a && local < b : local >= a || local < b;
}

/* A TimeZoneDefinition: its periods' biases (Bias is added to local time
 * to get UTC) and the recurring transitions of its (first) group. */
static void custom_zone(xmlNode *tz, zone *z)
{
    char ids[4][64] = {{0}}, buf[64];
    int bias[4] = {0}, np = 0;
    for (xmlNode *p = kid(kid(tz, "Periods"), "Period"); p && np < 4; p = p->next) {
        if (p->type != XML_ELEMENT_NODE) continue;
        char *id = (char *)xmlGetProp(p, BAD_CAST "Id"), *b = (char *)xmlGetProp(p, BAD_CAST "Bias");
        snprintf(ids[np], sizeof ids[np], "%s", id ? id : "");
        bias[np++] = b ? duration(b) : 0;
        xmlFree(id), xmlFree(b);
    }
    z->custom = 1;
    z->std_off = np ? -bias[0] : 0;
    rule r[2];
    int to[2], nr = 0;
    xmlNode *g = kid(kid(tz, "TransitionsGroups"), "TransitionsGroup");
    for (xmlNode *t = g ? g->children : NULL; t; t = t->next) {
        if (t->type != XML_ELEMENT_NODE) continue;
        kid_text(t, "To", buf, sizeof buf);
        int k = 0;
        while (k < np && strcmp(ids[k], buf)) k++;
        if (k == np) continue;
        if (strcmp((const char *)t->name, "RecurringDayTransition") || nr == 2) {
            z->std_off = -bias[k];   /* a plain transition: that period always */
            continue;
        }
        r[nr].month = atoi(kid_text(t, "Month", buf, sizeof buf));
        r[nr].dow = day_named(kid_text(t, "DayOfWeek", buf, sizeof buf));
        r[nr].occurrence = atoi(kid_text(t, "Occurrence", buf, sizeof buf));
        r[nr].secs = duration(kid_text(t, "TimeOffset", buf, sizeof buf));
        to[nr++] = -bias[k];
    }
    if (nr == 2 && r[0].dow >= 0 && r[1].dow >= 0 && to[0] != to[1]) {
        int d = to[0] > to[1] ? 0 : 1;   /* daylight is the larger offset */
        z->has_dst = 1;
        z->dst_off = to[d];
        z->std_off = to[!d];
        z->to_dst = r[d];
        z->to_std = r[!d];
    }
}

static void read_zone(const sim_zones *zs, const char *xml, zone *z)
{
    memset(z, 0, sizeof *z);
    xmlDoc *d = field_doc(xml);
    xmlNode *tz = d ? first_el(xmlDocGetRootElement(d)->children) : NULL;
    char *id = tz ? (char *)xmlGetProp(tz, BAD_CAST "Id") : NULL;
    if ((z->iana = iana_of(zs, id)) == NULL && tz && kid(tz, "Periods")) custom_zone(tz, z);
    xmlFree(id);
    xmlFreeDoc(d);
}

/* The C library's zone for one conversion; TZ is put back after. */
static long long with_tz(const char *iana, struct tm *tm, long long t, int to_utc)
{
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    setenv("TZ", iana, 1);
    tzset();
    if (to_utc) {
        tm->tm_isdst = -1;
        t = (long long)mktime(tm);
    } else {
        time_t tt = (time_t)t;
        localtime_r(&tt, tm);
    }
    if (saved) setenv("TZ", saved, 1);
    else unsetenv("TZ");
    tzset();
    free(saved);
    return t;
}

static long long local_to_utc(const zone *z, long long day, int secs)
{
    long long local = day * 86400 + secs;
    if (z->iana) {
        int y, m, d;
        civil_from_days(day, &y, &m, &d);
        struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d,
                        .tm_hour = secs / 3600, .tm_min = secs / 60 % 60, .tm_sec = secs % 60};
        return with_tz(z->iana, &tm, 0, 1);
    }
    if (!z->custom) return local;
    int y, m, d;
    civil_from_days(day, &y, &m, &d);
    return local - (in_dst(z, y, local) ? z->dst_off : z->std_off);
}

static void utc_to_local(const zone *z, long long t, long long *day, int *secs)
{
    long long local = t;
    if (z->iana) {
        struct tm tm;
        with_tz(z->iana, &tm, t, 0);
        local = days_from_civil(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday) * 86400 +
                tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
    } else if (z->custom) {
        local = t + z->std_off;
        long long dd = local >= 0 ? local / 86400 : (local - 86399) / 86400;
        int y, m, d;
        civil_from_days(dd, &y, &m, &d);
        if (in_dst(z, y, t + z->dst_off)) local = t + z->dst_off;
    }
    *day = local >= 0 ? local / 86400 : (local - 86399) / 86400;
    *secs = (int)(local - *day * 86400);
}

/* ---- patterns --------------------------------------------------------------- */

enum { DAILY, WEEKLY, ABS_MONTHLY, REL_MONTHLY, ABS_YEARLY, REL_YEARLY };
enum { KIND_DAY = 7, KIND_WEEKDAY, KIND_WEEKEND };

typedef struct pattern {
    int kind, interval, days_mask, first_dow, day_of_month, month, index, day_kind;
    long long start_day, end_day;   /* end_day -1: none */
    int count;                      /* 0: none */
} pattern;

/* The index-th (-1: last) day of month m matching day_kind. */
static int relative_day(int y, int m, int day_kind, int index)
{
    int match[31], n = 0;
    for (int d = 1; d <= month_days(y, m); d++) {
        int w = weekday(days_from_civil(y, m, d));
        int ok = day_kind == KIND_DAY || (day_kind == KIND_WEEKDAY && w >= 1 && w <= 5) ||
                 (day_kind == KIND_WEEKEND && (w == 0 || w == 6)) || day_kind == w;
        if (ok) match[n++] = d;
    }
    if (!n) return 1;
    return index < 1 || index > n ? match[n - 1] : match[index - 1];
}

static int index_named(const char *s)
{
    static const char *const N[] = {"First", "Second", "Third", "Fourth"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, N[i])) return i + 1;
    return -1;   /* Last */
}

static int day_kind_named(const char *s)
{
    if (!strcmp(s, "Day")) return KIND_DAY;
    if (!strcmp(s, "Weekday")) return KIND_WEEKDAY;
    if (!strcmp(s, "WeekendDay")) return KIND_WEEKEND;
    int d = day_named(s);
    return d < 0 ? KIND_DAY : d;
}

static int month_named(const char *s)
{
    for (int i = 0; i < 12; i++)
        if (!strcmp(s, MONTHS[i])) return i + 1;
    return 1;
}

static long long date_of(const char *s)
{
    int y = 1970, m = 1, d = 1;
    sscanf(s, "%4d-%2d-%2d", &y, &m, &d);
    return days_from_civil(y, m, d);
}

static int read_pattern(const char *xml, pattern *p)
{
    memset(p, 0, sizeof *p);
    p->end_day = -1;
    p->interval = 1;
    xmlDoc *d = field_doc(xml);
    xmlNode *rec = d ? first_el(xmlDocGetRootElement(d)->children) : NULL;
    static const char *const KINDS[] = {"DailyRecurrence", "WeeklyRecurrence",
                                        "AbsoluteMonthlyRecurrence", "RelativeMonthlyRecurrence",
                                        "AbsoluteYearlyRecurrence", "RelativeYearlyRecurrence"};
    int found = 0;
    char buf[128];
    for (xmlNode *c = rec ? rec->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        const char *name = (const char *)c->name;
        for (int k = 0; k < 6; k++)
            if (!strcmp(name, KINDS[k])) {
                found = 1;
                p->kind = k;
                int iv = atoi(kid_text(c, "Interval", buf, sizeof buf));
                p->interval = iv > 0 ? iv : 1;
                p->day_of_month = atoi(kid_text(c, "DayOfMonth", buf, sizeof buf));
                p->month = month_named(kid_text(c, "Month", buf, sizeof buf));
                p->index = index_named(kid_text(c, "DayOfWeekIndex", buf, sizeof buf));
                p->first_dow = day_named(kid_text(c, "FirstDayOfWeek", buf, sizeof buf));
                if (p->first_dow < 0) p->first_dow = 0;
                kid_text(c, "DaysOfWeek", buf, sizeof buf);
                p->day_kind = day_kind_named(buf);
                for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " "))
                    if (day_named(tok) >= 0) p->days_mask |= 1 << day_named(tok);
            }
        if (strstr(name, "Recurrence") && !strcmp(name + strlen(name) - 10, "Recurrence") &&
            kid(c, "StartDate")) {   /* the range */
            p->start_day = date_of(kid_text(c, "StartDate", buf, sizeof buf));
            if (kid(c, "EndDate")) p->end_day = date_of(kid_text(c, "EndDate", buf, sizeof buf));
            if (kid(c, "NumberOfOccurrences"))
                p->count = atoi(kid_text(c, "NumberOfOccurrences", buf, sizeof buf));
        }
    }
    xmlFreeDoc(d);
    return found ? 0 : -1;
}

typedef struct emit {
    const zone *z;
    const pattern *p;
    int tod;
    long long dur, until;
    size_t max, n;
    sim_span *out;
} emit;

/* Adds the occurrence on day; 0 when the expansion is over. */
static int add(emit *e, long long day)
{
    const pattern *p = e->p;
    if (day < p->start_day) return 1;
    if ((p->end_day >= 0 && day > p->end_day) || (p->count && e->n >= (size_t)p->count) ||
        e->n >= e->max)
        return 0;
    long long s = local_to_utc(e->z, day, e->tod);
    if (s > e->until) return 0;
    e->out[e->n++] = (sim_span){s, s + e->dur};
    return 1;
}

/* Every candidate day in order, until add() says stop (or 200 years). */
static void expand(emit *e)
{
    const pattern *p = e->p;
    int y0, m0, d0;
    civil_from_days(p->start_day, &y0, &m0, &d0);
    long long horizon = p->start_day + 200 * 366;
    if (p->kind == DAILY) {
        for (long long day = p->start_day; day < horizon; day += p->interval)
            if (!add(e, day)) return;
    } else if (p->kind == WEEKLY) {
        long long week = p->start_day - (weekday(p->start_day) - p->first_dow + 7) % 7;
        for (; week < horizon; week += 7LL * p->interval)
            for (int k = 0; k < 7; k++)
                if ((p->days_mask >> ((p->first_dow + k) % 7) & 1) && !add(e, week + k)) return;
    } else if (p->kind == ABS_MONTHLY || p->kind == REL_MONTHLY) {
        for (int k = 0; k < 2400; k += p->interval) {
            int y = y0 + (m0 - 1 + k) / 12, m = (m0 - 1 + k) % 12 + 1;
            int day = p->kind == ABS_MONTHLY
                          ? (p->day_of_month > month_days(y, m) ? month_days(y, m) : p->day_of_month)
                          : relative_day(y, m, p->day_kind, p->index);
            if (!add(e, days_from_civil(y, m, day))) return;
        }
    } else {
        for (int y = y0; y < y0 + 200; y++) {
            int m = p->month;
            int day = p->kind == ABS_YEARLY
                          ? (p->day_of_month > month_days(y, m) ? month_days(y, m) : p->day_of_month)
                          : relative_day(y, m, p->day_kind, p->index);
            if (!add(e, days_from_civil(y, m, day))) return;
        }
    }
}

/* A Start or End: with Z or an offset it is UTC; without, it is wall time
 * in the item's StartTimeZone ("Time zones and EWS": a dateTime without an
 * offset is read in the time zone the request gives for it). */
static int item_time(const zone *zn, const char *xml, long long *out)
{
    char buf[64];
    if (field_text(xml, buf, sizeof buf) || sim_xs_parse(buf, out)) return -1;
    size_t n = strlen(buf);
    int zoned = n && (buf[n - 1] == 'Z' || (n > 6 && (buf[n - 6] == '+' || buf[n - 6] == '-')));
    if (!zoned) {
        long long day = *out >= 0 ? *out / 86400 : (*out - 86399) / 86400;
        *out = local_to_utc(zn, day, (int)(*out - day * 86400));
    }
    return 0;
}

int sim_recur_utc(const sim_zones *z, const char *start_tz, const char *xml, long long *out)
{
    zone zn;
    read_zone(z, start_tz, &zn);
    return item_time(&zn, xml, out);
}

size_t sim_recur_expand(const sim_zones *z, const sim_times *t, long long until, size_t max,
                        sim_span *out)
{
    long long start, end;
    zone zn;
    read_zone(z, t->start_tz, &zn);
    if (!max || item_time(&zn, t->start, &start) || item_time(&zn, t->end, &end)) return 0;
    pattern p;
    if (!t->recurrence || read_pattern(t->recurrence, &p)) {
        out[0] = (sim_span){start, end};
        return start <= until;
    }
    long long day;
    emit e = {&zn, &p, 0, end - start, until, max, 0, out};
    utc_to_local(&zn, start, &day, &e.tod);
    expand(&e);
    return e.n;
}
