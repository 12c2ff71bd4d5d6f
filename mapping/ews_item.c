#include "ews_item.h"

#include <libical/ical.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const DAY_NAMES[] = {
    "Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday",
    "Saturday", "Day", "Weekday", "WeekendDay"};
static const char *const MONTH_NAMES[] = {
    "January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December"};
static const char *const WEEK_INDEX[] = {"", "First", "Second", "Third", "Fourth", "Last"};

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

static void warn(ews_item *it, const char *what)
{
    sbuf b;
    sbuf_init(&b);
    if (it->warnings) {
        sbuf_cat(&b, it->warnings);
        if (strstr(it->warnings, what)) { sbuf_free(&b); return; }
        sbuf_cat(&b, "; ");
    }
    sbuf_cat(&b, what);
    char *w = sbuf_take(&b);
    if (w) {
        free(it->warnings);
        it->warnings = w;
    }
}

/* ---- addresses -------------------------------------------------------- */

/* mailto:, urn:uuid:, urn:x-uid: and /principals/__uids__/GUID/ forms. */
static char *resolve_address(const char *cal_address, const people *p)
{
    if (!cal_address) return NULL;
    if (!strncasecmp(cal_address, "mailto:", 7)) {
        const char *a = cal_address + 7;
        return *a ? strdup(a) : NULL;
    }
    char uid[256] = "";
    if (!strncasecmp(cal_address, "urn:uuid:", 9))
        snprintf(uid, sizeof uid, "%s", cal_address + 9);
    else if (!strncasecmp(cal_address, "urn:x-uid:", 10))
        snprintf(uid, sizeof uid, "%s", cal_address + 10);
    else if (strstr(cal_address, "/__uids__/")) {
        snprintf(uid, sizeof uid, "%s", strstr(cal_address, "/__uids__/") + 10);
        char *slash = strchr(uid, '/');
        if (slash) *slash = '\0';
    }
    const person *who = *uid ? people_by_uid(p, uid) : NULL;
    return who ? strdup(who->smtp) : NULL;
}

static int add_attendee(ews_attendees *l, char *email, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcasecmp(l->v[i].email, email)) {
            free(email);
            return 0;
        }
    ews_attendee *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v) {
        free(email);
        return -1;
    }
    l->v = v;
    v[l->n].email = email;
    v[l->n].name = dup_or_null(name);
    l->n++;
    return 0;
}

static void free_attendees(ews_attendees *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].email);
        free(l->v[i].name);
    }
    free(l->v);
}

static int map_attendees(icalcomponent *ev, const map_ctx *ctx, ews_item *it)
{
    icalproperty *op = icalcomponent_get_first_property(ev, ICAL_ORGANIZER_PROPERTY);
    char *organizer = op ? resolve_address(icalproperty_get_organizer(op), ctx->people)
                         : NULL;
    int rc = 0;
    for (icalproperty *p = icalcomponent_get_first_property(ev, ICAL_ATTENDEE_PROPERTY);
         p && !rc; p = icalcomponent_get_next_property(ev, ICAL_ATTENDEE_PROPERTY)) {
        char *email = resolve_address(icalproperty_get_attendee(p), ctx->people);
        if (!email) {
            warn(it, "attendee with an unmapped principal address left out");
            continue;
        }
        if (organizer && !strcasecmp(email, organizer)) {
            free(email);
            continue;
        }
        icalparameter *cn = icalproperty_get_first_parameter(p, ICAL_CN_PARAMETER);
        const char *name = cn ? icalparameter_get_cn(cn) : NULL;
        icalparameter *cu = icalproperty_get_first_parameter(p, ICAL_CUTYPE_PARAMETER);
        icalparameter *role = icalproperty_get_first_parameter(p, ICAL_ROLE_PARAMETER);
        icalparameter_cutype cut = cu ? icalparameter_get_cutype(cu) : ICAL_CUTYPE_INDIVIDUAL;
        const person *who = ctx->people ? people_by_smtp(ctx->people, email) : NULL;
        ews_attendees *list = &it->required;
        if (cut == ICAL_CUTYPE_ROOM || cut == ICAL_CUTYPE_RESOURCE ||
            (who && who->kind != PERSON_USER))
            list = &it->resources;
        else if (role && (icalparameter_get_role(role) == ICAL_ROLE_OPTPARTICIPANT ||
                          icalparameter_get_role(role) == ICAL_ROLE_NONPARTICIPANT))
            list = &it->optional;
        rc = add_attendee(list, email, name);
    }
    free(organizer);
    return rc;
}

/* ---- time ------------------------------------------------------------- */

static void fmt_utc(struct icaltimetype t, char out[32])
{
    t = icaltime_convert_to_zone(t, icaltimezone_get_utc_timezone());
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", t.year, t.month, t.day,
             t.hour, t.minute, t.second);
}

static void fmt_date(struct icaltimetype t, char out[11])
{
    snprintf(out, 11, "%04d-%02d-%02d", t.year, t.month, t.day);
}

static const char *tzid_of(icalcomponent *ev, icalproperty_kind kind)
{
    icalproperty *p = icalcomponent_get_first_property(ev, kind);
    icalparameter *par = p ? icalproperty_get_first_parameter(p, ICAL_TZID_PARAMETER) : NULL;
    return par ? icalparameter_get_tzid(par) : NULL;
}

/* Floating times belong to the person's zone. */
static struct icaltimetype anchor(struct icaltimetype t, const map_ctx *ctx)
{
    if (!t.is_date && !t.zone && !icaltime_is_utc(t)) {
        icaltimezone *z = icaltimezone_get_builtin_timezone(ctx->default_tz);
        t = icaltime_set_timezone(&t, z ? z : icaltimezone_get_utc_timezone());
    }
    return t;
}

static int map_times(icalcomponent *ev, const map_ctx *ctx, ews_item *it,
                     struct icaltimetype *local_start, cb_err *err, const char *uid)
{
    struct icaltimetype s = icalcomponent_get_dtstart(ev);
    if (icaltime_is_null_time(s) || !icaltime_is_valid_time(s))
        return cb_errf(err, CB_EPARSE, "event %s: no valid DTSTART", uid);
    struct icaltimetype e = icalcomponent_get_dtend(ev);
    if (icaltime_is_null_time(e)) {
        e = s;
        if (s.is_date) icaltime_adjust(&e, 1, 0, 0, 0);
    }
    const char *tzid = tzid_of(ev, ICAL_DTSTART_PROPERTY);
    const char *zone = tzid ? tzid : (s.is_date || (!s.zone && !icaltime_is_utc(s)))
                                         ? ctx->default_tz : "UTC";
    it->tz = tzmap_windows(ctx->tz, zone);
    if (!it->tz && s.zone && icaltimezone_get_location((icaltimezone *)s.zone))
        it->tz = tzmap_windows(ctx->tz, icaltimezone_get_location((icaltimezone *)s.zone));
    if (!it->tz) {
        it->tz = tzmap_windows(ctx->tz, "Etc/UTC");
        warn(it, "time zone not known to Windows: times carried in UTC");
    }
    *local_start = s;
    if (s.is_date) {
        it->all_day = 1;
        if (icaltime_compare_date_only(e, s) <= 0) {
            e = s;
            icaltime_adjust(&e, 1, 0, 0, 0);
        }
        snprintf(it->start, sizeof it->start, "%04d-%02d-%02dT00:00:00", s.year, s.month, s.day);
        snprintf(it->end, sizeof it->end, "%04d-%02d-%02dT00:00:00", e.year, e.month, e.day);
        return CB_OK;
    }
    s = anchor(s, ctx);
    e = anchor(e, ctx);
    if (icaltime_compare(e, s) < 0)
        return cb_errf(err, CB_EPARSE, "event %s: DTEND is before DTSTART", uid);
    fmt_utc(s, it->start);
    fmt_utc(e, it->end);
    return CB_OK;
}

/* ---- recurrence ------------------------------------------------------- */

static int count_set(const short *a, int max)
{
    int n = 0;
    while (n < max && a[n] != ICAL_RECURRENCE_ARRAY_MAX) n++;
    return n;
}

/* A BYDAY set without ordinals as one DaysOfWeek value, or -1. */
static int day_set_value(const struct icalrecurrencetype *r, int n)
{
    unsigned mask = 0;
    for (int i = 0; i < n; i++) {
        if (icalrecurrencetype_day_position(r->by_day[i]) != 0) return -1;
        mask |= 1u << (icalrecurrencetype_day_day_of_week(r->by_day[i]) - 1);
    }
    if (mask == 0x7f) return DOW_DAY;
    if (mask == 0x3e) return DOW_WEEKDAY;
    if (mask == 0x41) return DOW_WEEKENDDAY;
    for (int d = 0; d < 7; d++)
        if (mask == 1u << d) return d;
    return -1;
}

static int week_index(int pos)
{
    return pos >= 1 && pos <= 4 ? pos : pos == -1 ? 5 : -1;
}

/* Relative monthly/yearly day: "2TU" or "TU,WE;BYSETPOS=3"; 0 on success. */
static int relative_day(const struct icalrecurrencetype *r, ews_recurrence *out)
{
    int nday = count_set(r->by_day, ICAL_BY_DAY_SIZE);
    int nset = count_set(r->by_set_pos, ICAL_BY_SETPOS_SIZE);
    if (nday == 1 && nset == 0) {
        int pos = icalrecurrencetype_day_position(r->by_day[0]);
        out->week_index = week_index(pos);
        out->day_of_week = icalrecurrencetype_day_day_of_week(r->by_day[0]) - 1;
        return out->week_index < 0 ? -1 : 0;
    }
    if (nday >= 1 && nset == 1) {
        out->day_of_week = day_set_value(r, nday);
        out->week_index = week_index(r->by_set_pos[0]);
        return out->day_of_week < 0 || out->week_index < 0 ? -1 : 0;
    }
    return -1;
}

static int map_monthly(const struct icalrecurrencetype *r, struct icaltimetype s,
                       ews_recurrence *o)
{
    int nday = count_set(r->by_day, ICAL_BY_DAY_SIZE);
    int nmd = count_set(r->by_month_day, ICAL_BY_MONTHDAY_SIZE);
    if (nday == 0 && nmd <= 1) {
        int d = nmd ? r->by_month_day[0] : s.day;
        if (d == -1) {
            o->kind = RECUR_REL_MONTHLY;
            o->day_of_week = DOW_DAY;
            o->week_index = 5;
            return 0;
        }
        o->kind = RECUR_ABS_MONTHLY;
        o->day_of_month = d;
        return d >= 1 && d <= 31 ? 0 : -1;
    }
    if (nmd) return -1;
    o->kind = RECUR_REL_MONTHLY;
    return relative_day(r, o);
}

static int map_rrule(const struct icalrecurrencetype *r, struct icaltimetype s,
                     ews_recurrence *o)
{
    if (r->by_second[0] != ICAL_RECURRENCE_ARRAY_MAX ||
        r->by_minute[0] != ICAL_RECURRENCE_ARRAY_MAX ||
        r->by_hour[0] != ICAL_RECURRENCE_ARRAY_MAX ||
        r->by_year_day[0] != ICAL_RECURRENCE_ARRAY_MAX ||
        r->by_week_no[0] != ICAL_RECURRENCE_ARRAY_MAX)
        return -1;
    int nday = count_set(r->by_day, ICAL_BY_DAY_SIZE);
    int nmonth = count_set(r->by_month, ICAL_BY_MONTH_SIZE);
    int nmd = count_set(r->by_month_day, ICAL_BY_MONTHDAY_SIZE);
    int nset = count_set(r->by_set_pos, ICAL_BY_SETPOS_SIZE);
    o->interval = r->interval > 0 ? r->interval : 1;
    o->first_day_of_week = r->week_start ? r->week_start - 1 : 1;
    switch (r->freq) {
    case ICAL_DAILY_RECURRENCE:
        if (nmonth || nmd || nset) return -1;
        if (nday == 0) {
            o->kind = RECUR_DAILY;
            return o->interval <= 999 ? 0 : -1;
        }
        if (o->interval != 1) return -1;
        /* daily on some weekdays is weekly on those days */
        __attribute__((fallthrough));
    case ICAL_WEEKLY_RECURRENCE:
        if (nmonth || nmd || nset || o->interval > 99) return -1;
        o->kind = RECUR_WEEKLY;
        for (int i = 0; i < nday; i++) {
            if (icalrecurrencetype_day_position(r->by_day[i])) return -1;
            o->days |= 1u << (icalrecurrencetype_day_day_of_week(r->by_day[i]) - 1);
        }
        if (!nday) o->days = 1u << (icaltime_day_of_week(s) - 1);
        return 0;
    case ICAL_MONTHLY_RECURRENCE:
        if (nmonth || o->interval > 99) return -1;
        return map_monthly(r, s, o);
    case ICAL_YEARLY_RECURRENCE:
        if (nmonth > 1) return -1;
        if (o->interval > 1) {
            /* every k years = every 12k months, from the start month */
            if (o->interval > 8 || (nmonth && r->by_month[0] != s.month)) return -1;
            o->interval *= 12;
            return map_monthly(r, s, o);
        }
        o->month = nmonth ? r->by_month[0] : s.month;
        if (nday == 0 && nmd <= 1) {
            o->kind = RECUR_ABS_YEARLY;
            o->day_of_month = nmd ? r->by_month_day[0] : s.day;
            return o->day_of_month >= 1 && o->day_of_month <= 31 ? 0 : -1;
        }
        if (nmd) return -1;
        o->kind = RECUR_REL_YEARLY;
        return relative_day(r, o);
    default:
        return -1;
    }
}

static int map_recurrence(icalcomponent *ev, struct icaltimetype local_start,
                          const map_ctx *ctx, ews_item *it, cb_err *err,
                          const char *uid)
{
    icalproperty *rp = icalcomponent_get_first_property(ev, ICAL_RRULE_PROPERTY);
    if (icalcomponent_get_first_property(ev, ICAL_RDATE_PROPERTY))
        warn(it, "RDATE not carried yet");
    if (!rp) return CB_OK;
    if (icalcomponent_get_next_property(ev, ICAL_RRULE_PROPERTY))
        return cb_errf(err, CB_EUNSUPPORTED, "event %s: several RRULEs", uid);
    struct icalrecurrencetype r = icalproperty_get_rrule(rp);
    ews_recurrence *o = &it->recur;
    memset(o, 0, sizeof *o);
    if (map_rrule(&r, local_start, o) < 0)
        return cb_errf(err, CB_EUNSUPPORTED,
                       "event %s: RRULE %s has no Exchange equivalent", uid,
                       icalrecurrencetype_as_string(&r));
    it->has_recurrence = 1;
    fmt_date(local_start, o->start_date);
    if (r.count > 0) {
        o->range = RANGE_NUMBERED;
        o->count = r.count;
    } else if (!icaltime_is_null_time(r.until)) {
        o->range = RANGE_END_DATE;
        struct icaltimetype u = r.until;
        if (!u.is_date) {
            /* UNTIL is UTC; EndDate is a date in the series' zone. */
            struct icaltimetype s = anchor(local_start, ctx);
            if (s.zone) u = icaltime_convert_to_zone(u, (icaltimezone *)s.zone);
        }
        fmt_date(u, o->end_date);
    } else {
        o->range = RANGE_NOEND;
    }
    if (icalcomponent_get_first_property(ev, ICAL_EXDATE_PROPERTY))
        warn(it, "EXDATE (deleted occurrences) not carried yet");
    return CB_OK;
}

/* ---- other fields ----------------------------------------------------- */

static void map_status(icalcomponent *ev, ews_item *it)
{
    it->busy = "Busy";
    icalproperty *p = icalcomponent_get_first_property(ev, ICAL_TRANSP_PROPERTY);
    if (p && icalproperty_get_transp(p) == ICAL_TRANSP_TRANSPARENT) it->busy = "Free";
    if (icalcomponent_get_status(ev) == ICAL_STATUS_TENTATIVE) it->busy = "Tentative";
    if (icalcomponent_get_status(ev) == ICAL_STATUS_CANCELLED) it->busy = "Free";
    for (p = icalcomponent_get_first_property(ev, ICAL_X_PROPERTY); p;
         p = icalcomponent_get_next_property(ev, ICAL_X_PROPERTY)) {
        if (strcasecmp(icalproperty_get_x_name(p), "X-MICROSOFT-CDO-BUSYSTATUS")) continue;
        const char *v = icalproperty_get_x(p);
        if (!v) continue;
        if (!strcasecmp(v, "FREE")) it->busy = "Free";
        else if (!strcasecmp(v, "TENTATIVE")) it->busy = "Tentative";
        else if (!strcasecmp(v, "BUSY")) it->busy = "Busy";
        else if (!strcasecmp(v, "OOF")) it->busy = "OOF";
        else if (!strcasecmp(v, "WORKINGELSEWHERE")) it->busy = "WorkingElsewhere";
    }
    it->sensitivity = "Normal";
    p = icalcomponent_get_first_property(ev, ICAL_CLASS_PROPERTY);
    if (p && icalproperty_get_class(p) == ICAL_CLASS_PRIVATE) it->sensitivity = "Private";
    if (p && icalproperty_get_class(p) == ICAL_CLASS_CONFIDENTIAL)
        it->sensitivity = "Confidential";
}

static void map_alarm(icalcomponent *ev, struct icaltimetype start, ews_item *it)
{
    it->reminder = -1;
    for (icalcomponent *a = icalcomponent_get_first_component(ev, ICAL_VALARM_COMPONENT);
         a; a = icalcomponent_get_next_component(ev, ICAL_VALARM_COMPONENT)) {
        icalproperty *tp = icalcomponent_get_first_property(a, ICAL_TRIGGER_PROPERTY);
        if (!tp) continue;
        struct icaltriggertype tr = icalproperty_get_trigger(tp);
        int minutes;
        if (!icaltime_is_null_time(tr.time)) {
            int secs = (int)(icaltime_as_timet_with_zone(start, start.zone) -
                             icaltime_as_timet_with_zone(tr.time, icaltimezone_get_utc_timezone()));
            minutes = secs / 60;
        } else {
            icalparameter *rel = icalproperty_get_first_parameter(tp, ICAL_RELATED_PARAMETER);
            if (rel && icalparameter_get_related(rel) == ICAL_RELATED_END) {
                warn(it, "alarm relative to the end not carried yet");
                continue;
            }
            minutes = -icaldurationtype_as_int(tr.duration) / 60;
        }
        if (minutes < 0) {
            warn(it, "alarm after the start not carried");
            continue;
        }
        it->reminder = minutes;
        if (icalcomponent_get_next_component(ev, ICAL_VALARM_COMPONENT))
            warn(it, "only the first alarm is carried");
        return;
    }
}

static int map_event(icalcomponent *ev, const map_ctx *ctx, ews_item *it, cb_err *err)
{
    const char *uid = icalcomponent_get_uid(ev);
    if (!uid || !*uid) return cb_errf(err, CB_EPARSE, "event without a UID");
    it->uid = strdup(uid);
    it->subject = dup_or_null(icalcomponent_get_summary(ev));
    it->body = dup_or_null(icalcomponent_get_description(ev));
    it->location = dup_or_null(icalcomponent_get_location(ev));
    struct icaltimetype local_start;
    int rc = map_times(ev, ctx, it, &local_start, err, uid);
    if (rc) return rc;
    map_status(ev, it);
    map_alarm(ev, anchor(local_start, ctx), it);
    if (map_attendees(ev, ctx, it) < 0) return cb_errf(err, CB_ENOMEM, "out of memory");
    if (icalcomponent_get_first_property(ev, ICAL_ATTACH_PROPERTY))
        warn(it, "attachments not carried yet");
    if (!it->uid) return cb_errf(err, CB_ENOMEM, "out of memory");
    return map_recurrence(ev, local_start, ctx, it, err, uid);
}

/* The master VEVENT of a resource: the one without RECURRENCE-ID. */
static icalcomponent *find_master(icalcomponent *cal, int *overrides, int *events)
{
    icalcomponent *master = NULL;
    *overrides = *events = 0;
    for (icalcomponent *c = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
         c; c = icalcomponent_get_next_component(cal, ICAL_VEVENT_COMPONENT)) {
        (*events)++;
        if (icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY)) (*overrides)++;
        else if (!master) master = c;
    }
    return master;
}

int ews_item_from_ical(const char *ics, const map_ctx *ctx, ews_item **out, cb_err *err)
{
    *out = NULL;
    icalcomponent *cal = icalparser_parse_string(ics);
    if (!cal) return cb_errf(err, CB_EPARSE, "not iCalendar data");
    if (icalcomponent_isa(cal) != ICAL_VCALENDAR_COMPONENT) {
        icalcomponent_free(cal);
        return cb_errf(err, CB_EPARSE, "not a VCALENDAR");
    }
    int overrides, events;
    icalcomponent *ev = find_master(cal, &overrides, &events);
    int rc;
    ews_item *it = calloc(1, sizeof *it);
    if (!it) rc = cb_errf(err, CB_ENOMEM, "out of memory");
    else if (!events)
        rc = cb_errf(err, CB_EUNSUPPORTED, "no VEVENT (only %s): skipped",
                     icalcomponent_get_first_component(cal, ICAL_VTODO_COMPONENT)
                         ? "VTODO" : "other components");
    else if (!ev)
        rc = cb_errf(err, CB_EUNSUPPORTED,
                     "event %s: overridden occurrences without their master not carried yet",
                     icalcomponent_get_uid(icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT)));
    else
        rc = map_event(ev, ctx, it, err);
    if (rc == CB_OK && overrides) warn(it, "modified occurrences not carried yet");
    icalcomponent_free(cal);
    if (rc != CB_OK) {
        ews_item_free(it);
        return rc;
    }
    *out = it;
    return CB_OK;
}

void ews_item_free(ews_item *it)
{
    if (!it) return;
    free(it->uid);
    free(it->subject);
    free(it->body);
    free(it->location);
    free_attendees(&it->required);
    free_attendees(&it->optional);
    free_attendees(&it->resources);
    free(it->warnings);
    free(it);
}

/* ---- writers ---------------------------------------------------------- */

static void elem(sbuf *b, const char *name, const char *text)
{
    sbuf_printf(b, "<t:%s>", name);
    sbuf_xml(b, text);
    sbuf_printf(b, "</t:%s>", name);
}

static void ext_prop(sbuf *b, const char *name, const char *value)
{
    sbuf_printf(b, "<t:ExtendedProperty><t:ExtendedFieldURI PropertySetId=\"%s\" "
                   "PropertyName=\"%s\" PropertyType=\"String\"/><t:Value>",
                EWS_PROPSET_GUID, name);
    sbuf_xml(b, value);
    sbuf_cat(b, "</t:Value></t:ExtendedProperty>");
}

static void write_attendees(sbuf *b, const char *name, const ews_attendees *l)
{
    sbuf_printf(b, "<t:%s>", name);
    for (size_t i = 0; i < l->n; i++) {
        sbuf_cat(b, "<t:Attendee><t:Mailbox>");
        if (l->v[i].name) elem(b, "Name", l->v[i].name);
        elem(b, "EmailAddress", l->v[i].email);
        sbuf_cat(b, "</t:Mailbox></t:Attendee>");
    }
    sbuf_printf(b, "</t:%s>", name);
}

static void write_pattern(sbuf *b, const ews_recurrence *r)
{
    switch (r->kind) {
    case RECUR_DAILY:
        sbuf_printf(b, "<t:DailyRecurrence><t:Interval>%d</t:Interval></t:DailyRecurrence>",
                    r->interval);
        break;
    case RECUR_WEEKLY:
        sbuf_printf(b, "<t:WeeklyRecurrence><t:Interval>%d</t:Interval><t:DaysOfWeek>",
                    r->interval);
        for (int d = 0, first = 1; d < 7; d++)
            if (r->days & (1u << d)) {
                sbuf_printf(b, "%s%s", first ? "" : " ", DAY_NAMES[d]);
                first = 0;
            }
        sbuf_printf(b, "</t:DaysOfWeek><t:FirstDayOfWeek>%s</t:FirstDayOfWeek>"
                       "</t:WeeklyRecurrence>", DAY_NAMES[r->first_day_of_week]);
        break;
    case RECUR_ABS_MONTHLY:
        sbuf_printf(b, "<t:AbsoluteMonthlyRecurrence><t:Interval>%d</t:Interval>"
                       "<t:DayOfMonth>%d</t:DayOfMonth></t:AbsoluteMonthlyRecurrence>",
                    r->interval, r->day_of_month);
        break;
    case RECUR_REL_MONTHLY:
        sbuf_printf(b, "<t:RelativeMonthlyRecurrence><t:Interval>%d</t:Interval>"
                       "<t:DaysOfWeek>%s</t:DaysOfWeek><t:DayOfWeekIndex>%s"
                       "</t:DayOfWeekIndex></t:RelativeMonthlyRecurrence>",
                    r->interval, DAY_NAMES[r->day_of_week], WEEK_INDEX[r->week_index]);
        break;
    case RECUR_ABS_YEARLY:
        sbuf_printf(b, "<t:AbsoluteYearlyRecurrence><t:DayOfMonth>%d</t:DayOfMonth>"
                       "<t:Month>%s</t:Month></t:AbsoluteYearlyRecurrence>",
                    r->day_of_month, MONTH_NAMES[r->month - 1]);
        break;
    case RECUR_REL_YEARLY:
        sbuf_printf(b, "<t:RelativeYearlyRecurrence><t:DaysOfWeek>%s</t:DaysOfWeek>"
                       "<t:DayOfWeekIndex>%s</t:DayOfWeekIndex><t:Month>%s</t:Month>"
                       "</t:RelativeYearlyRecurrence>",
                    DAY_NAMES[r->day_of_week], WEEK_INDEX[r->week_index],
                    MONTH_NAMES[r->month - 1]);
        break;
    }
}

static void write_recurrence(sbuf *b, const ews_recurrence *r)
{
    sbuf_cat(b, "<t:Recurrence>");
    write_pattern(b, r);
    if (r->range == RANGE_NUMBERED)
        sbuf_printf(b, "<t:NumberedRecurrence><t:StartDate>%s</t:StartDate>"
                       "<t:NumberOfOccurrences>%d</t:NumberOfOccurrences>"
                       "</t:NumberedRecurrence>", r->start_date, r->count);
    else if (r->range == RANGE_END_DATE)
        sbuf_printf(b, "<t:EndDateRecurrence><t:StartDate>%s</t:StartDate>"
                       "<t:EndDate>%s</t:EndDate></t:EndDateRecurrence>",
                    r->start_date, r->end_date);
    else
        sbuf_printf(b, "<t:NoEndRecurrence><t:StartDate>%s</t:StartDate>"
                       "</t:NoEndRecurrence>", r->start_date);
    sbuf_cat(b, "</t:Recurrence>");
}

static void write_tz(sbuf *b, const char *name, const char *tz)
{
    sbuf_printf(b, "<t:%s Id=\"", name);
    sbuf_xml(b, tz);
    sbuf_cat(b, "\"/>");
}

/* One writer per property, in schema order; both the create and the update
 * writer use them, so the two can never disagree about a value. */
typedef struct field {
    const char *uri;      /* FieldURI for UpdateItem */
    int (*present)(const ews_item *it);
    void (*write)(const ews_item *it, sbuf *b);
} field;

static int has_subject(const ews_item *it) { return it->subject != NULL; }
static int has_body(const ews_item *it) { return it->body != NULL; }
static int has_location(const ews_item *it) { return it->location != NULL; }
static int has_required(const ews_item *it) { return it->required.n > 0; }
static int has_optional(const ews_item *it) { return it->optional.n > 0; }
static int has_resources(const ews_item *it) { return it->resources.n > 0; }
static int has_recurrence(const ews_item *it) { return it->has_recurrence; }
static int always(const ews_item *it) { (void)it; return 1; }
static int has_reminder(const ews_item *it) { return it->reminder >= 0; }

static void w_subject(const ews_item *it, sbuf *b) { elem(b, "Subject", it->subject); }
static void w_sensitivity(const ews_item *it, sbuf *b) { elem(b, "Sensitivity", it->sensitivity); }
static void w_body(const ews_item *it, sbuf *b)
{
    sbuf_cat(b, "<t:Body BodyType=\"Text\">");
    sbuf_xml(b, it->body);
    sbuf_cat(b, "</t:Body>");
}
static void w_reminder_set(const ews_item *it, sbuf *b)
{
    elem(b, "ReminderIsSet", it->reminder >= 0 ? "true" : "false");
}
static void w_reminder_minutes(const ews_item *it, sbuf *b)
{
    sbuf_printf(b, "<t:ReminderMinutesBeforeStart>%d</t:ReminderMinutesBeforeStart>",
                it->reminder);
}
static void w_start(const ews_item *it, sbuf *b) { elem(b, "Start", it->start); }
static void w_end(const ews_item *it, sbuf *b) { elem(b, "End", it->end); }
static void w_all_day(const ews_item *it, sbuf *b)
{
    elem(b, "IsAllDayEvent", it->all_day ? "true" : "false");
}
static void w_busy(const ews_item *it, sbuf *b) { elem(b, "LegacyFreeBusyStatus", it->busy); }
static void w_location(const ews_item *it, sbuf *b) { elem(b, "Location", it->location); }
static void w_required(const ews_item *it, sbuf *b) { write_attendees(b, "RequiredAttendees", &it->required); }
static void w_optional(const ews_item *it, sbuf *b) { write_attendees(b, "OptionalAttendees", &it->optional); }
static void w_resources(const ews_item *it, sbuf *b) { write_attendees(b, "Resources", &it->resources); }
static void w_recurrence(const ews_item *it, sbuf *b) { write_recurrence(b, &it->recur); }
static void w_start_tz(const ews_item *it, sbuf *b) { write_tz(b, "StartTimeZone", it->tz); }
static void w_end_tz(const ews_item *it, sbuf *b) { write_tz(b, "EndTimeZone", it->tz); }

/* ItemType children, then (after the extended properties) CalendarItemType
 * children: EWS rejects any other order. */
static const field ITEM_FIELDS[] = {
    {"item:Subject", has_subject, w_subject},
    {"item:Sensitivity", always, w_sensitivity},
    {"item:Body", has_body, w_body},
    {"item:ReminderIsSet", always, w_reminder_set},
    {"item:ReminderMinutesBeforeStart", has_reminder, w_reminder_minutes},
};
static const field CALENDAR_FIELDS[] = {
    {"calendar:Start", always, w_start},
    {"calendar:End", always, w_end},
    {"calendar:IsAllDayEvent", always, w_all_day},
    {"calendar:LegacyFreeBusyStatus", always, w_busy},
    {"calendar:Location", has_location, w_location},
    {"calendar:RequiredAttendees", has_required, w_required},
    {"calendar:OptionalAttendees", has_optional, w_optional},
    {"calendar:Resources", has_resources, w_resources},
    {"calendar:Recurrence", has_recurrence, w_recurrence},
    {"calendar:StartTimeZone", always, w_start_tz},
    {"calendar:EndTimeZone", always, w_end_tz},
};
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

static void write_fields(const ews_item *it, const field *f, size_t n, sbuf *b)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].present(it)) f[i].write(it, b);
}

void ews_item_write_create(const ews_item *it, const char *source_key,
                           const char *tag, sbuf *b)
{
    sbuf_cat(b, "<t:CalendarItem>");
    write_fields(it, ITEM_FIELDS, NFIELDS(ITEM_FIELDS), b);
    if (source_key) ext_prop(b, EWS_PROP_SOURCE, source_key);
    if (tag) ext_prop(b, EWS_PROP_TAG, tag);
    elem(b, "UID", it->uid);
    write_fields(it, CALENDAR_FIELDS, NFIELDS(CALENDAR_FIELDS), b);
    sbuf_cat(b, "</t:CalendarItem>");
}

static void update_fields(const ews_item *it, const field *f, size_t n, sbuf *b)
{
    for (size_t i = 0; i < n; i++) {
        if (!f[i].present(it)) {
            sbuf_printf(b, "<t:DeleteItemField><t:FieldURI FieldURI=\"%s\"/>"
                           "</t:DeleteItemField>", f[i].uri);
            continue;
        }
        sbuf_printf(b, "<t:SetItemField><t:FieldURI FieldURI=\"%s\"/><t:CalendarItem>",
                    f[i].uri);
        f[i].write(it, b);
        sbuf_cat(b, "</t:CalendarItem></t:SetItemField>");
    }
}

void ews_item_write_update(const ews_item *it, const char *item_id,
                           const char *change_key, sbuf *b)
{
    sbuf_cat(b, "<t:ItemChange><t:ItemId Id=\"");
    sbuf_xml(b, item_id);
    if (change_key && *change_key) {
        sbuf_cat(b, "\" ChangeKey=\"");
        sbuf_xml(b, change_key);
    }
    sbuf_cat(b, "\"/><t:Updates>");
    update_fields(it, ITEM_FIELDS, NFIELDS(ITEM_FIELDS), b);
    update_fields(it, CALENDAR_FIELDS, NFIELDS(CALENDAR_FIELDS), b);
    sbuf_cat(b, "</t:Updates></t:ItemChange>");
}

void ews_item_fingerprint(const ews_item *it, char out[17])
{
    sbuf b;
    sbuf_init(&b);
    ews_item_write_create(it, NULL, NULL, &b);
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (size_t i = 0; i < b.len; i++) {
        h ^= (unsigned char)b.s[i];
        h *= 1099511628211ULL;
    }
    sbuf_free(&b);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}
