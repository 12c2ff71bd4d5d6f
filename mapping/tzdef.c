#include "tzdef.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"

/* The newest observance of a kind: the one whose DTSTART is latest. */
static icalcomponent *newest(icalcomponent *vtz, icalcomponent_kind kind)
{
    icalcomponent *best = NULL;
    struct icaltimetype best_t = icaltime_null_time();
    for (icalcomponent *c = icalcomponent_get_first_component(vtz, kind); c;
         c = icalcomponent_get_next_component(vtz, kind)) {
        struct icaltimetype t = icalcomponent_get_dtstart(c);
        if (!best || icaltime_compare(t, best_t) > 0) {
            best = c;
            best_t = t;
        }
    }
    return best;
}

static int offset_to(icalcomponent *obs)
{
    icalproperty *p = icalcomponent_get_first_property(obs, ICAL_TZOFFSETTO_PROPERTY);
    return p ? icalproperty_get_tzoffsetto(p) : 0;
}

/* FREQ=YEARLY;BYMONTH=m;BYDAY=nDD, or BYDAY=DD;BYMONTHDAY=8..14 style. */
static int rule_of(icalcomponent *obs, tzdef_rule *r)
{
    icalproperty *p = icalcomponent_get_first_property(obs, ICAL_RRULE_PROPERTY);
    if (!p) return -1;
    struct icalrecurrencetype rr = icalproperty_get_rrule(p);
    if (rr.freq != ICAL_YEARLY_RECURRENCE || rr.by_month[0] == ICAL_RECURRENCE_ARRAY_MAX ||
        rr.by_month[1] != ICAL_RECURRENCE_ARRAY_MAX || rr.by_day[0] == ICAL_RECURRENCE_ARRAY_MAX ||
        rr.by_day[1] != ICAL_RECURRENCE_ARRAY_MAX)
        return -1;
    r->month = rr.by_month[0];
    r->dow = icalrecurrencetype_day_day_of_week(rr.by_day[0]) - 1;
    r->occurrence = icalrecurrencetype_day_position(rr.by_day[0]);
    if (r->occurrence == 0 && rr.by_month_day[0] != ICAL_RECURRENCE_ARRAY_MAX) {
        int first = rr.by_month_day[0];
        r->occurrence = first > 0 && (first - 1) % 7 == 0 ? (first - 1) / 7 + 1 : 0;
    }
    if (r->occurrence < -1 || r->occurrence == 0 || r->occurrence > 4) return -1;
    struct icaltimetype t = icalcomponent_get_dtstart(obs);
    r->seconds = t.hour * 3600 + t.minute * 60 + t.second;
    return 0;
}

int tzdef_from_vtimezone(icalcomponent *vtz, tzdef **out, char *why, size_t why_len)
{
    *out = NULL;
    icalcomponent *std = newest(vtz, ICAL_XSTANDARD_COMPONENT);
    icalcomponent *dst = newest(vtz, ICAL_XDAYLIGHT_COMPONENT);
    tzdef d = {0};
    if (!std && dst) {     /* a zone that is always "daylight" */
        std = dst;
        dst = NULL;
    }
    if (!std) return snprintf(why, why_len, "VTIMEZONE without observances"), -1;
    d.std_offset = offset_to(std);
    if (dst) {
        d.has_dst = 1;
        d.dst_offset = offset_to(dst);
        if (rule_of(dst, &d.to_dst) < 0 || rule_of(std, &d.to_std) < 0) {
            snprintf(why, why_len, "VTIMEZONE rules are not yearly n-th weekday rules");
            return -1;
        }
    }
    icalproperty *p = icalcomponent_get_first_property(vtz, ICAL_TZID_PROPERTY);
    const char *id = p ? icalproperty_get_tzid(p) : "Custom";
    d.id = strdup(id);
    *out = malloc(sizeof **out);
    if (!d.id || !*out) {
        free(d.id);
        free(*out);
        *out = NULL;
        return snprintf(why, why_len, "out of memory"), -1;
    }
    **out = d;
    return 0;
}

tzdef *tzdef_dup(const tzdef *d)
{
    if (!d) return NULL;
    tzdef *c = malloc(sizeof *c);
    if (!c) return NULL;
    *c = *d;
    c->id = strdup(d->id ? d->id : "Custom");
    if (!c->id) {
        free(c);
        return NULL;
    }
    return c;
}

void tzdef_free(tzdef *d)
{
    if (!d) return;
    free(d->id);
    free(d);
}

/* ---- durations ---------------------------------------------------------- */

int tzdef_parse_duration(const char *s, int *seconds)
{
    int sign = 1, in_time = 0;
    double total = 0;
    if (*s == '-') sign = -1, s++;
    if (*s++ != 'P') return -1;
    while (*s) {
        if (*s == 'T') {
            in_time = 1;
            s++;
            continue;
        }
        char *end;
        double v = strtod(s, &end);
        if (end == s) return -1;
        switch (*end) {
        case 'D': total += v * 86400; break;
        case 'H': total += v * 3600; break;
        case 'M': total += in_time ? v * 60 : v * 30 * 86400; break;
        case 'S': total += v; break;
        default: return -1;
        }
        s = end + 1;
    }
    /* Untrusted (an EWS Bias, a VTIMEZONE offset): no zone is off by more
     * than a day, and a float beyond int range must not be converted. */
    if (!(total >= 0 && total <= 7 * 86400.0)) return -1;
    *seconds = sign * (int)(total + 0.5);
    return 0;
}

void tzdef_write_duration(int seconds, sbuf *b)
{
    int a = seconds < 0 ? -seconds : seconds;
    sbuf_printf(b, "%sP0DT%dH%dM%d.0S", seconds < 0 ? "-" : "", a / 3600, a / 60 % 60, a % 60);
}

/* ---- writers ------------------------------------------------------------ */

static void write_transition(const tzdef_rule *r, const char *to, sbuf *b)
{
    sbuf_printf(b, "<t:RecurringDayTransition><t:To Kind=\"Period\">%s</t:To><t:TimeOffset>", to);
    tzdef_write_duration(r->seconds, b);
    sbuf_printf(b, "</t:TimeOffset><t:Month>%d</t:Month><t:DayOfWeek>%s</t:DayOfWeek>"
                   "<t:Occurrence>%d</t:Occurrence></t:RecurringDayTransition>",
                r->month, RECUR_DAY_NAMES[r->dow], r->occurrence);
}

/* EWS Bias is what is added to local time to get UTC: minus the offset. */
void tzdef_write(const tzdef *d, const char *element, sbuf *b)
{
    sbuf_printf(b, "<t:%s Id=\"", element);
    sbuf_xml(b, d->id);
    sbuf_cat(b, "\" Name=\"");
    sbuf_xml(b, d->id);
    sbuf_cat(b, "\"><t:Periods><t:Period Bias=\"");
    tzdef_write_duration(-d->std_offset, b);
    sbuf_cat(b, "\" Name=\"Standard\" Id=\"Std\"/>");
    if (d->has_dst) {
        sbuf_cat(b, "<t:Period Bias=\"");
        tzdef_write_duration(-d->dst_offset, b);
        sbuf_cat(b, "\" Name=\"Daylight\" Id=\"Dlt\"/>");
    }
    sbuf_cat(b, "</t:Periods><t:TransitionsGroups><t:TransitionsGroup Id=\"0\">");
    if (d->has_dst) {
        write_transition(&d->to_dst, "Dlt", b);
        write_transition(&d->to_std, "Std", b);
    } else {
        sbuf_cat(b, "<t:Transition><t:To Kind=\"Period\">Std</t:To></t:Transition>");
    }
    sbuf_cat(b, "</t:TransitionsGroup></t:TransitionsGroups><t:Transitions><t:Transition>"
                "<t:To Kind=\"Group\">0</t:To></t:Transition></t:Transitions>");
    sbuf_printf(b, "</t:%s>", element);
}

static void write_offset(const char *name, int secs, sbuf *b)
{
    int a = secs < 0 ? -secs : secs;
    sbuf_printf(b, "%s:%c%02d%02d\r\n", name, secs < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

/* DTSTART is the rule's first date in 1970, so libical's expansion of the
 * observance starts where the rule does. */
static void write_observance(const char *kind, const tzdef_rule *r, int from, int to, sbuf *b)
{
    sbuf_printf(b, "BEGIN:%s\r\n", kind);
    if (!r) {
        sbuf_cat(b, "DTSTART:19700101T000000\r\n");
    } else {
        int day = recur_nth_day(1970, r->month, r->dow, r->occurrence == -1 ? 5 : r->occurrence);
        sbuf_printf(b, "DTSTART:1970%02d%02dT%02d%02d%02d\r\n", r->month, day,
                    r->seconds / 3600, r->seconds / 60 % 60, r->seconds % 60);
        sbuf_printf(b, "RRULE:FREQ=YEARLY;BYMONTH=%d;BYDAY=%d%s\r\n", r->month,
                    r->occurrence, RECUR_ICAL_DAYS[r->dow]);
    }
    write_offset("TZOFFSETFROM", from, b);
    write_offset("TZOFFSETTO", to, b);
    sbuf_printf(b, "END:%s\r\n", kind);
}

void tzdef_to_vtimezone(const tzdef *d, sbuf *b)
{
    sbuf_printf(b, "BEGIN:VTIMEZONE\r\nTZID:%s\r\n", d->id);
    if (d->has_dst) {
        write_observance("DAYLIGHT", &d->to_dst, d->std_offset, d->dst_offset, b);
        write_observance("STANDARD", &d->to_std, d->dst_offset, d->std_offset, b);
    } else {
        write_observance("STANDARD", NULL, d->std_offset, d->std_offset, b);
    }
    sbuf_cat(b, "END:VTIMEZONE\r\n");
}

static int same_rule(const tzdef_rule *a, const tzdef_rule *b)
{
    return a->month == b->month && a->dow == b->dow && a->occurrence == b->occurrence &&
           a->seconds == b->seconds;
}

static int same_def(const tzdef *a, const tzdef *b)
{
    if (strcmp(a->id ? a->id : "", b->id ? b->id : "") || a->std_offset != b->std_offset ||
        a->has_dst != b->has_dst)
        return 0;
    return !a->has_dst || (a->dst_offset == b->dst_offset && same_rule(&a->to_dst, &b->to_dst) &&
                           same_rule(&a->to_std, &b->to_std));
}

static icaltimezone *build_zone(const tzdef *d)
{
    sbuf b;
    sbuf_init(&b);
    tzdef_to_vtimezone(d, &b);
    icalcomponent *c = b.s ? icalparser_parse_string(b.s) : NULL;
    sbuf_free(&b);
    icaltimezone *z = c ? icaltimezone_new() : NULL;
    if (z && icaltimezone_set_component(z, c)) return z;
    if (z) icaltimezone_free(z, 1);
    if (c) icalcomponent_free(c);
    return NULL;
}

icaltimezone *tzdef_zone(const tzdef *d, tzdef_cache *cache)
{
    for (size_t i = 0; i < cache->n; i++)
        if (same_def(cache->defs[i], d)) return cache->v[i];
    icaltimezone **v = realloc(cache->v, (cache->n + 1) * sizeof *v);
    if (v) cache->v = v;
    tzdef **defs = v ? realloc(cache->defs, (cache->n + 1) * sizeof *defs) : NULL;
    if (defs) cache->defs = defs;
    tzdef *copy = defs ? tzdef_dup(d) : NULL;
    icaltimezone *z = copy ? build_zone(d) : NULL;
    if (!z) {
        tzdef_free(copy);
        return NULL;
    }
    cache->v[cache->n] = z;
    cache->defs[cache->n++] = copy;
    return z;
}

void tzdef_cache_free(tzdef_cache *cache)
{
    for (size_t i = 0; i < cache->n; i++) {
        icaltimezone_free(cache->v[i], 1);
        tzdef_free(cache->defs[i]);
    }
    free(cache->v);
    free(cache->defs);
    cache->v = NULL;
    cache->defs = NULL;
    cache->n = 0;
}
