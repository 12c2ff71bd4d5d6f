#include "ical_in.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ical_zone.h"
#include "occur.h"
#include "peruser.h"

#define COMMENTS_HEADING "\n\n--- Comments ---\n"
#define ATTACHMENTS_HEADING "\n\n--- Attachments ---\n"

/* Everything one mapping needs, so helpers take one argument for it. */
typedef struct job {
    icalcomponent *cal;
    const char *uid;
    icalcomponent *const *comps;   /* the VEVENTs with this UID, in document order */
    size_t ncomps;
    const map_ctx *ctx;
    tzdef_cache zones;
    ews_event *ev;
    cb_err *err;
} job;

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* ---- addresses -------------------------------------------------------- */

/* mailto:, urn:uuid:, urn:x-uid: and /principals/__uids__/GUID/ forms. */
static char *resolve_address(const char *cal_address, const people *p)
{
    if (!cal_address) return NULL;
    if (!strncasecmp(cal_address, "mailto:", 7)) return dup_or_null(cal_address + 7);
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

static int add_attendee(ews_attendees *l, char *email, const char *name, const char *resp)
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
    v[l->n++] = (ews_attendee){email, dup_or_null(name), resp};
    return 0;
}

static const char *response_of(icalproperty *p)
{
    icalparameter *ps = icalproperty_get_first_parameter(p, ICAL_PARTSTAT_PARAMETER);
    switch (ps ? icalparameter_get_partstat(ps) : ICAL_PARTSTAT_NONE) {
    case ICAL_PARTSTAT_ACCEPTED: return "Accept";
    case ICAL_PARTSTAT_DECLINED: return "Decline";
    case ICAL_PARTSTAT_TENTATIVE: return "Tentative";
    case ICAL_PARTSTAT_NEEDSACTION: return "NoResponseReceived";
    default: return NULL;
    }
}

static ews_attendees *list_for(icalproperty *p, const person *who, ews_item *it)
{
    icalparameter *cu = icalproperty_get_first_parameter(p, ICAL_CUTYPE_PARAMETER);
    icalparameter *role = icalproperty_get_first_parameter(p, ICAL_ROLE_PARAMETER);
    icalparameter_cutype cut = cu ? icalparameter_get_cutype(cu) : ICAL_CUTYPE_INDIVIDUAL;
    if (cut == ICAL_CUTYPE_ROOM || cut == ICAL_CUTYPE_RESOURCE || (who && who->kind != PERSON_USER))
        return &it->resources;
    if (role && (icalparameter_get_role(role) == ICAL_ROLE_OPTPARTICIPANT ||
                 icalparameter_get_role(role) == ICAL_ROLE_NONPARTICIPANT))
        return &it->optional;
    return &it->required;
}

static int map_attendees(job *j, icalcomponent *c, ews_item *it)
{
    icalproperty *op = icalcomponent_get_first_property(c, ICAL_ORGANIZER_PROPERTY);
    it->organizer = op ? resolve_address(icalproperty_get_organizer(op), j->ctx->people) : NULL;
    for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTENDEE_PROPERTY); p;
         p = icalcomponent_get_next_property(c, ICAL_ATTENDEE_PROPERTY)) {
        char *email = resolve_address(icalproperty_get_attendee(p), j->ctx->people);
        if (!email) {
            ews_event_warn(j->ev, "attendee with an unmapped principal address left out");
            continue;
        }
        if (it->organizer && !strcasecmp(email, it->organizer)) {
            free(email);
            continue;
        }
        icalparameter *cn = icalproperty_get_first_parameter(p, ICAL_CN_PARAMETER);
        const person *who = j->ctx->people ? people_by_smtp(j->ctx->people, email) : NULL;
        if (add_attendee(list_for(p, who, it), email, cn ? icalparameter_get_cn(cn) : NULL,
                         response_of(p)) < 0)
            return -1;
    }
    return 0;
}

/* ---- text fields ------------------------------------------------------ */

static const char *x_value(icalcomponent *c, const char *name, icalproperty **prop)
{
    for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_X_PROPERTY); p;
         p = icalcomponent_get_next_property(c, ICAL_X_PROPERTY))
        if (!strcasecmp(icalproperty_get_x_name(p), name)) {
            if (prop) *prop = p;
            /* VALUE=DURATION turns the value into a duration, not X text */
            return icalproperty_get_value_as_string(p);
        }
    return NULL;
}

static const char *x_param(icalproperty *p, const char *name)
{
    for (icalparameter *a = icalproperty_get_first_parameter(p, ICAL_X_PARAMETER); a;
         a = icalproperty_get_next_parameter(p, ICAL_X_PARAMETER))
        if (!strcasecmp(icalparameter_get_xname(a), name)) return icalparameter_get_xvalue(a);
    return NULL;
}

static void add_comments(job *j, icalcomponent *c, sbuf *extra)
{
    int any = 0;
    for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_X_PROPERTY); p;
         p = icalcomponent_get_next_property(c, ICAL_X_PROPERTY)) {
        const char *name = icalproperty_get_x_name(p), *v = icalproperty_get_x(p);
        int priv = !strcasecmp(name, "X-CALENDARSERVER-PRIVATE-COMMENT");
        if ((!priv && strcasecmp(name, "X-CALENDARSERVER-ATTENDEE-COMMENT")) || !v || !*v) continue;
        if (!any) sbuf_cat(extra, COMMENTS_HEADING);
        any = 1;
        if (priv) {
            sbuf_printf(extra, "Private comment: %s\n", v);
            continue;
        }
        char *who = resolve_address(x_param(p, "X-CALENDARSERVER-ATTENDEE-REF"), j->ctx->people);
        sbuf_printf(extra, "Comment from %s: %s\n", who ? who : "an attendee", v);
        free(who);
    }
}

static const char *attachment_name(icalproperty *p)
{
    const char *n = x_param(p, "FILENAME");
    if (n) return n;
    icalattach *a = icalproperty_get_attach(p);
    const char *url = a && icalattach_get_is_url(a) ? icalattach_get_url(a) : NULL;
    if (!url) return "(inline attachment)";
    const char *slash = strrchr(url, '/');
    return slash && slash[1] ? slash + 1 : url;
}

static void add_attachments(job *j, icalcomponent *c, sbuf *extra)
{
    icalproperty *p = icalcomponent_get_first_property(c, ICAL_ATTACH_PROPERTY);
    if (!p) return;
    sbuf_cat(extra, ATTACHMENTS_HEADING);
    for (; p; p = icalcomponent_get_next_property(c, ICAL_ATTACH_PROPERTY))
        sbuf_printf(extra, "%s\n", attachment_name(p));
    ews_event_warn(j->ev, "attachments listed by name in the body, not copied");
}

static int map_body(job *j, icalcomponent *c, ews_item *it)
{
    sbuf b;
    sbuf_init(&b);
    const char *desc = icalcomponent_get_description(c);
    if (desc) sbuf_cat(&b, desc);
    add_comments(j, c, &b);
    add_attachments(j, c, &b);
    if (b.len) {
        const char *s = b.s;
        if (!desc) while (*s == '\n') s++;
        it->body = strdup(s);
        if (!it->body) b.failed = 1;
    }
    int failed = sbuf_failed(&b);
    sbuf_free(&b);
    return failed ? -1 : 0;
}

static int add_category(ews_item *it, const char *s, size_t n)
{
    while (n && *s == ' ') s++, n--;
    if (!n) return 0;
    char **v = realloc(it->categories, (it->ncategories + 1) * sizeof *v);
    if (!v) return -1;
    it->categories = v;
    if (!(v[it->ncategories] = strndup(s, n))) return -1;
    it->ncategories++;
    return 0;
}

static int map_text(job *j, icalcomponent *c, ews_item *it)
{
    it->subject = dup_or_null(icalcomponent_get_summary(c));
    it->location = dup_or_null(icalcomponent_get_location(c));
    icalproperty *sl = NULL;
    if (!it->location && x_value(c, "X-APPLE-STRUCTURED-LOCATION", &sl))
        it->location = dup_or_null(x_param(sl, "X-TITLE"));
    icalproperty *u = icalcomponent_get_first_property(c, ICAL_URL_PROPERTY);
    it->url = u ? dup_or_null(icalproperty_get_url(u)) : NULL;
    for (icalproperty *p = icalcomponent_get_first_property(c, ICAL_CATEGORIES_PROPERTY); p;
         p = icalcomponent_get_next_property(c, ICAL_CATEGORIES_PROPERTY)) {
        const char *v = icalproperty_get_categories(p);
        for (const char *s = v; s && *s;) {
            size_t n = strcspn(s, ",");
            if (add_category(it, s, n) < 0) return -1;
            s += n + (s[n] == ',');
        }
    }
    icalproperty *pr = icalcomponent_get_first_property(c, ICAL_PRIORITY_PROPERTY);
    int prio = pr ? icalproperty_get_priority(pr) : 0;
    it->importance = prio >= 1 && prio <= 4 ? "High" : prio >= 6 ? "Low" : "Normal";
    return map_body(j, c, it);
}

static void map_status(icalcomponent *c, ews_item *it)
{
    icalproperty *p = icalcomponent_get_first_property(c, ICAL_TRANSP_PROPERTY);
    if (p && icalproperty_get_transp(p) == ICAL_TRANSP_TRANSPARENT) it->busy = "Free";
    if (icalcomponent_get_status(c) == ICAL_STATUS_TENTATIVE) it->busy = "Tentative";
    if (icalcomponent_get_status(c) == ICAL_STATUS_CANCELLED) it->busy = "Free";
    const char *v = x_value(c, "X-MICROSOFT-CDO-BUSYSTATUS", NULL);
    if (v) {
        if (!strcasecmp(v, "FREE")) it->busy = "Free";
        else if (!strcasecmp(v, "TENTATIVE")) it->busy = "Tentative";
        else if (!strcasecmp(v, "BUSY")) it->busy = "Busy";
        else if (!strcasecmp(v, "OOF")) it->busy = "OOF";
        else if (!strcasecmp(v, "WORKINGELSEWHERE")) it->busy = "WorkingElsewhere";
    }
    p = icalcomponent_get_first_property(c, ICAL_CLASS_PROPERTY);
    if (p && icalproperty_get_class(p) == ICAL_CLASS_PRIVATE) it->sensitivity = "Private";
    if (p && icalproperty_get_class(p) == ICAL_CLASS_CONFIDENTIAL) it->sensitivity = "Confidential";
    /* Apple clients mark an event private on the calendar object, not with
     * CLASS: whatever hides it from sharees hides it from delegates too. */
    icalcomponent *cal = icalcomponent_get_parent(c);
    const char *access = cal ? x_value(cal, "X-CALENDARSERVER-ACCESS", NULL) : NULL;
    if (access && (!strcasecmp(access, "PRIVATE") || !strcasecmp(access, "CONFIDENTIAL") ||
                   !strcasecmp(access, "RESTRICTED")))
        it->sensitivity = "Private";
}

/* ---- times ------------------------------------------------------------ */

static void fmt_floating(struct icaltimetype t, char out[32])
{
    snprintf(out, 32, "%04d-%02d-%02dT00:00:00", t.year, t.month, t.day);
}

/* The first display or audio alarm; triggers relative to the end or
 * absolute are converted to minutes before the start. */
static void map_alarm(job *j, icalcomponent *c, long long start, long long end, ews_item *it)
{
    for (icalcomponent *a = icalcomponent_get_first_component(c, ICAL_VALARM_COMPONENT); a;
         a = icalcomponent_get_next_component(c, ICAL_VALARM_COMPONENT)) {
        icalproperty *ap = icalcomponent_get_first_property(a, ICAL_ACTION_PROPERTY);
        icalproperty_action act = ap ? icalproperty_get_action(ap) : ICAL_ACTION_DISPLAY;
        icalproperty *tp = icalcomponent_get_first_property(a, ICAL_TRIGGER_PROPERTY);
        if (!tp || (act != ICAL_ACTION_DISPLAY && act != ICAL_ACTION_AUDIO)) continue;
        struct icaltriggertype tr = icalproperty_get_trigger(tp);
        long long at;
        if (!icaltime_is_null_time(tr.time)) {
            at = (long long)icaltime_as_timet_with_zone(tr.time, icaltimezone_get_utc_timezone());
        } else {
            icalparameter *rel = icalproperty_get_first_parameter(tp, ICAL_RELATED_PARAMETER);
            int to_end = rel && icalparameter_get_related(rel) == ICAL_RELATED_END;
            at = (to_end ? end : start) + icaldurationtype_as_int(tr.duration);
        }
        if (at > start) {
            ews_event_warn(j->ev, "alarm after the start not carried");
            continue;
        }
        long long minutes = (start - at) / 60;
        if (minutes > EWS_MAX_REMINDER) {
            ews_event_warn(j->ev, "alarm more than five years before the start: carried "
                                  "as Exchange's longest reminder (2629800 minutes)");
            minutes = EWS_MAX_REMINDER;
        }
        it->reminder = (int)minutes;
        return;
    }
}

static int map_times(job *j, icalcomponent *c, ews_item *it, ical_zone *z, long long *s_utc,
                     long long *e_utc)
{
    icalproperty *dp = icalcomponent_get_first_property(c, ICAL_DTSTART_PROPERTY);
    struct icaltimetype s = dp ? icalproperty_get_dtstart(dp) : icaltime_null_time();
    if (icaltime_is_null_time(s) || !icaltime_is_valid_time(s))
        return cb_errf(j->err, CB_EPARSE, "event %s: no valid DTSTART", j->uid);
    if (ical_zone_resolve(j->cal, dp, j->ctx, &j->zones, z) != 0)
        return cb_errf(j->err, CB_EPARSE, "event %s: time zone", j->uid);
    if (z->unknown)
        ews_event_warn(j->ev, "time zone without rules or IANA name: times carried in UTC");
    it->tz = z->windows;
    it->tzd = z->tzd ? tzdef_dup(z->tzd) : NULL;
    it->tzid = dup_or_null(z->tzid);
    struct icaltimetype w = ical_zone_wall(dp, z);
    icalproperty *ep = icalcomponent_get_first_property(c, ICAL_DTEND_PROPERTY);
    icalproperty *du = icalcomponent_get_first_property(c, ICAL_DURATION_PROPERTY);
    struct icaltimetype e = w;
    if (ep) {
        ical_zone ez;
        if (ical_zone_resolve(j->cal, ep, j->ctx, &j->zones, &ez) == 0) {
            e = ical_zone_wall(ep, &ez);
            if (!e.is_date) e = icaltime_convert_to_zone(e, z->zone);
            tzdef_free(ez.tzd);
        }
    } else if (du) {
        e = icaltime_add(w, icalproperty_get_duration(du));
    } else if (w.is_date) {
        icaltime_adjust(&e, 1, 0, 0, 0);
    }
    it->all_day = w.is_date;
    if (w.is_date) {
        e.is_date = 1;
        if (icaltime_compare_date_only(e, w) <= 0) {
            e = w;
            icaltime_adjust(&e, 1, 0, 0, 0);
        }
        fmt_floating(w, it->start);
        fmt_floating(e, it->end);
    }
    *s_utc = ical_zone_utc(w, z);
    *e_utc = ical_zone_utc(e, z);
    if (*e_utc < *s_utc) return cb_errf(j->err, CB_EPARSE, "event %s: DTEND is before DTSTART", j->uid);
    if (!w.is_date) {
        occur_format_xs(*s_utc, it->start);
        occur_format_xs(*e_utc, it->end);
    }
    return CB_OK;
}

/* Maps one VEVENT (master or override) into a new item. */
static int map_component(job *j, icalcomponent *c, ews_item **out, ical_zone *z)
{
    memset(z, 0, sizeof *z);   /* the caller frees z->tzd whatever happens */
    ews_item *it = ews_item_new();
    if (!it) return cb_errf(j->err, CB_ENOMEM, "out of memory");
    long long s = 0, e = 0;
    int rc = map_times(j, c, it, z, &s, &e);
    if (rc == CB_OK && (map_text(j, c, it) < 0 || map_attendees(j, c, it) < 0))
        rc = cb_errf(j->err, CB_ENOMEM, "out of memory");
    if (rc != CB_OK) {
        ews_item_free(it);
        return rc;
    }
    map_status(c, it);
    map_alarm(j, c, s, e, it);
    if (icalcomponent_get_status(c) == ICAL_STATUS_CANCELLED) {
        sbuf b;
        sbuf_init(&b);
        sbuf_printf(&b, "Canceled: %s", it->subject ? it->subject : "");
        free(it->subject);
        it->subject = sbuf_take(&b);
    }
    *out = it;
    return CB_OK;
}

/* ---- recurrence ------------------------------------------------------- */

static recur_date date_of(struct icaltimetype t)
{
    return (recur_date){t.year, t.month, t.day};
}

/* InstanceIndex of the instance at wall time w, or 0. */
static int instance_of(const ews_item *it, struct icaltimetype start, struct icaltimetype w)
{
    if (!w.is_date && !start.is_date &&
        (w.hour != start.hour || w.minute != start.minute || w.second != start.second))
        return 0;
    return recur_index_of(&it->recur, date_of(w));
}

/* Records a change to the occurrence that originally started at UTC
 * second original. */
static int add_occ(ews_item *it, int index, long long original, ews_item *changed)
{
    char when[32];
    occur_format_xs(original, when);
    return ews_item_add_occurrence(it, index, when, changed);
}

/* Exchange refuses an exception that lands on or beyond the day of the
 * occurrence before or after it (ErrorOccurrenceCrossingBoundary). */
static int crosses(const ews_item *it, int index, const ews_item *o, icaltimezone *zone)
{
    long long t;
    if (occur_parse_xs(o->start, zone, &t) < 0) return 1;
    struct icaltimetype w = icaltime_from_timet_with_zone((time_t)t, 0, zone);
    long day = recur_days(date_of(w));
    recur_date through = recur_from_days(day + 800);
    size_t max = (size_t)index + 1;
    recur_date *d = malloc(max * sizeof *d);
    if (!d) return 1;
    size_t n = recur_dates(&it->recur, through, d, max);
    int bad = (index >= 2 && (size_t)index - 2 < n && recur_days(d[index - 2]) >= day) ||
              ((size_t)index < n && recur_days(d[index]) <= day);
    free(d);
    return bad;
}

static int map_exdates(job *j, icalcomponent *master, ews_item *it, const ical_zone *z,
                       struct icaltimetype sw)
{
    for (icalproperty *p = icalcomponent_get_first_property(master, ICAL_EXDATE_PROPERTY); p;
         p = icalcomponent_get_next_property(master, ICAL_EXDATE_PROPERTY)) {
        struct icaltimetype w = ical_zone_wall_in(j->cal, p, icalproperty_get_exdate(p), j->ctx,
                                                  &j->zones, z);
        int idx = instance_of(it, sw, w);
        if (w.is_date && !sw.is_date) w.hour = sw.hour, w.minute = sw.minute, w.second = sw.second;
        if (add_occ(it, idx, ical_zone_utc(w, z), NULL) != CB_OK) return -1;
    }
    return 0;
}

/* 0 done, 1 when the series must be expanded (why says why), <0 error. */
static int map_overrides(job *j, ews_item *it, const ical_zone *z, struct icaltimetype sw,
                         char *why, size_t why_len)
{
    for (size_t k = 0; k < j->ncomps; k++) {
        icalcomponent *c = j->comps[k];
        icalproperty *rp = icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY);
        if (!rp) continue;
        struct icaltimetype w = ical_zone_wall_in(j->cal, rp, icalproperty_get_recurrenceid(rp),
                                                  j->ctx, &j->zones, z);
        int idx = instance_of(it, sw, w);
        if (!idx) {
            ews_event_warn(j->ev, "a modified occurrence of a date outside the series left out");
            continue;
        }
        ews_item *o = NULL;
        ical_zone oz;
        int rc = map_component(j, c, &o, &oz);
        tzdef_free(oz.tzd);
        if (rc != CB_OK) return rc;
        free(o->uid);
        o->uid = NULL;
        if (crosses(it, idx, o, z->zone)) {
            ews_item_free(o);
            snprintf(why, why_len, "a modified occurrence moves onto or past a neighbouring "
                                   "one, which Exchange refuses");
            return 1;
        }
        if (w.is_date && !sw.is_date) w.hour = sw.hour, w.minute = sw.minute, w.second = sw.second;
        if (add_occ(it, idx, ical_zone_utc(w, z), o) != CB_OK)
            return cb_errf(j->err, CB_ENOMEM, "out of memory");
    }
    return 0;
}

static int map_series(job *j, icalcomponent *master, ews_item *it, const ical_zone *z,
                      char *why, size_t why_len)
{
    icalproperty *dp = icalcomponent_get_first_property(master, ICAL_DTSTART_PROPERTY);
    struct icaltimetype sw = ical_zone_wall(dp, z);
    icalproperty *rp = icalcomponent_get_first_property(master, ICAL_RRULE_PROPERTY);
    if (icalcomponent_get_first_property(master, ICAL_RDATE_PROPERTY)) {
        snprintf(why, why_len, "RDATE adds dates an Exchange series cannot hold");
        return 1;
    }
    if (!rp) return 0;
    if (icalcomponent_get_next_property(master, ICAL_RRULE_PROPERTY)) {
        snprintf(why, why_len, "several RRULEs");
        return 1;
    }
    struct icalrecurrencetype r = icalproperty_get_rrule(rp);
    if (occur_rule_too_costly(&r))
        return cb_errf(j->err, CB_EUNSUPPORTED, "event %s: a repeat by the second or minute "
                       "limited to certain days or months is not carried (libical would take "
                       "minutes to expand it)", j->uid);
    if (recur_from_rrule(&r, sw, sw.is_date ? NULL : z->zone, &it->recur, why, why_len) < 0)
        return 1;
    it->has_recurrence = 1;
    if (map_exdates(j, master, it, z, sw) < 0) return cb_errf(j->err, CB_ENOMEM, "out of memory");
    int rc = map_overrides(j, it, z, sw, why, why_len);
    if (rc == 0) ews_item_sort_occurrences(it);
    return rc;
}

/* ---- expansion into single items -------------------------------------- */

static int map_expanded(job *j, icalcomponent *master, const ical_zone *z, const char *why)
{
    char msg[400];
    snprintf(msg, sizeof msg, "repeats carried as single items (%s)", why);
    ews_event_warn(j->ev, msg);
    j->ev->expanded = 1;
    icalproperty *dp = icalcomponent_get_first_property(master, ICAL_DTSTART_PROPERTY);
    long long start = ical_zone_utc(ical_zone_wall(dp, z), z);
    int days = j->ctx->horizon_days > 0 ? j->ctx->horizon_days : ICAL_IN_DEFAULT_HORIZON;
    long long to = (start > j->ctx->now ? start : j->ctx->now) + (long long)days * 86400;
    occur_list l = {0};
    int rc = occur_ical(j->cal, j->uid, j->ctx, &j->zones, -(1LL << 62), to,
                        ICAL_IN_MAX_SINGLES, &l, j->err);
    if (rc == CB_EUNSUPPORTED)
        cb_errf(j->err, rc, "event %s: %s, and it expands to more than %d single items",
                j->uid, why, ICAL_IN_MAX_SINGLES);
    for (size_t i = 0; i < l.n && rc == CB_OK; i++) {
        ews_item *it = NULL;
        ical_zone oz;
        rc = map_component(j, l.v[i].comp, &it, &oz);
        tzdef_free(oz.tzd);
        if (rc != CB_OK) break;
        if (it->all_day) {
            icaltimezone *zone = ews_item_zone(it, j->ctx->tz, &j->zones);
            long long secs[2] = {l.v[i].start, l.v[i].end};
            char *dst[2] = {it->start, it->end};
            for (int k = 0; k < 2; k++)
                fmt_floating(icaltime_from_timet_with_zone((time_t)secs[k], 0, zone), dst[k]);
        } else {
            occur_format_xs(l.v[i].start, it->start);
            occur_format_xs(l.v[i].end, it->end);
        }
        it->role = ROLE_SINGLE;
        free(it->uid);
        it->uid = NULL;
        char key[32];
        occur_format_xs(l.v[i].orig, key);
        snprintf(it->suffix, sizeof it->suffix, "#%s", key);
        rc = ews_event_add(j->ev, it);
    }
    occur_free(&l);
    return rc;
}

/* ---- travel time ------------------------------------------------------ */

static int travel_seconds(icalcomponent *c, const char *name)
{
    const char *v = x_value(c, name, NULL);
    if (!v) return 0;
    struct icaldurationtype d = icaldurationtype_from_string(v);
    int secs = icaldurationtype_is_bad_duration(d) ? 0 : icaldurationtype_as_int(d);
    return secs > 0 ? secs : 0;
}

static char *travel_subject(const map_ctx *ctx, const char *summary)
{
    const char *tpl = ctx->travel_subject ? ctx->travel_subject : "Travel time: {summary}";
    const char *at = strstr(tpl, "{summary}");
    sbuf b;
    sbuf_init(&b);
    if (!at) {
        sbuf_cat(&b, tpl);
    } else {
        sbuf_catn(&b, tpl, (size_t)(at - tpl));
        sbuf_cat(&b, summary ? summary : "");
        sbuf_cat(&b, at + 9);
    }
    return sbuf_take(&b);
}

/* An OOF block of secs before (back = 0) or after the span [s, e]. */
static ews_item *travel_block(job *j, const ews_item *src, const char *summary, int back,
                              int secs)
{
    long long s, e;
    icaltimezone *zone = ews_item_zone(src, j->ctx->tz, &j->zones);
    if (occur_parse_xs(src->start, zone, &s) < 0 || occur_parse_xs(src->end, zone, &e) < 0)
        return NULL;
    ews_item *t = ews_item_new();
    if (!t) return NULL;
    t->role = back ? ROLE_RETURN : ROLE_TRAVEL;
    snprintf(t->suffix, sizeof t->suffix, "%s", back ? "#return" : "#travel");
    t->subject = travel_subject(j->ctx, summary);
    t->busy = "OOF";
    t->sensitivity = src->sensitivity;
    t->tz = src->tz;
    t->tzd = tzdef_dup(src->tzd);
    occur_format_xs(back ? e : s - secs, t->start);
    occur_format_xs(back ? e + secs : s, t->end);
    return t;
}

/* The block's series: the event's pattern, anchored on the block's own
 * date, which must be the event's (a block crossing midnight would shift
 * every occurrence by a day). */
static int travel_series(job *j, const ews_item *main, ews_item *t, int back, int secs)
{
    icaltimezone *zone = ews_item_zone(main, j->ctx->tz, &j->zones);
    long long ts;
    occur_parse_xs(t->start, zone, &ts);
    struct icaltimetype w = icaltime_from_timet_with_zone((time_t)ts, 0, zone);
    if (recur_cmp(date_of(w), main->recur.start) != 0) return -1;
    t->has_recurrence = 1;
    t->recur = main->recur;
    for (size_t i = 0; i < main->nocc; i++) {
        ews_item *moved = NULL;
        if (main->occ[i].item &&
            !(moved = travel_block(j, main->occ[i].item, main->subject, back, secs)))
            return -2;
        if (ews_item_add_occurrence(t, main->occ[i].index, main->occ[i].original_start,
                                    moved) != CB_OK)
            return -2;
    }
    return 0;
}

static int map_travel(job *j, icalcomponent *master, ews_item *main)
{
    main->travel = travel_seconds(master, "X-APPLE-TRAVEL-DURATION");
    main->travel_return = travel_seconds(master, "X-APPLE-TRAVEL-RETURN-DURATION");
    if (!main->travel && !main->travel_return) return CB_OK;
    if (main->all_day) {
        ews_event_warn(j->ev, "travel time on an all-day event not carried");
        return CB_OK;
    }
    for (int back = 0; back < 2; back++) {
        int secs = back ? main->travel_return : main->travel;
        if (!secs) continue;
        ews_item *t = travel_block(j, main, main->subject, back, secs);
        if (!t) return cb_errf(j->err, CB_ENOMEM, "out of memory");
        int rc = main->has_recurrence ? travel_series(j, main, t, back, secs) : 0;
        if (rc == -2) {
            ews_item_free(t);
            return cb_errf(j->err, CB_ENOMEM, "out of memory");
        }
        if (rc == -1) {
            ews_item_free(t);
            ews_event_warn(j->ev, "travel time crossing midnight on a repeating event not carried");
            continue;
        }
        if (ews_event_add(j->ev, t) != CB_OK) return cb_errf(j->err, CB_ENOMEM, "out of memory");
    }
    return CB_OK;
}

/* ---- one UID ---------------------------------------------------------- */

static icalcomponent *find_master(job *j, int *overrides)
{
    icalcomponent *master = NULL;
    *overrides = 0;
    for (size_t k = 0; k < j->ncomps; k++) {
        icalcomponent *c = j->comps[k];
        if (icalcomponent_get_first_property(c, ICAL_RECURRENCEID_PROPERTY)) (*overrides)++;
        else if (!master) master = c;
    }
    return master;
}

/* An attendee invited to some occurrences only holds overrides: each is
 * carried as a single item. */
static int map_orphans(job *j)
{
    ews_event_warn(j->ev, "occurrences without their series carried as single items");
    for (size_t k = 0; k < j->ncomps; k++) {
        icalcomponent *c = j->comps[k];
        ews_item *it = NULL;
        ical_zone z;
        int rc = map_component(j, c, &it, &z);
        tzdef_free(z.tzd);
        if (rc != CB_OK) return rc;
        it->role = ROLE_SINGLE;
        snprintf(it->suffix, sizeof it->suffix, "#%s", it->start);
        if ((rc = ews_event_add(j->ev, it)) != CB_OK) return rc;
    }
    return CB_OK;
}

static int map_uid(job *j)
{
    int overrides;
    icalcomponent *master = find_master(j, &overrides);
    if (!master) return map_orphans(j);
    ews_item *it = NULL;
    ical_zone z;
    int rc = map_component(j, master, &it, &z);
    if (rc != CB_OK) {
        tzdef_free(z.tzd);   /* resolved before a later step failed */
        return rc;
    }
    it->uid = strdup(j->uid);
    char why[300] = "";
    int series = it->uid ? map_series(j, master, it, &z, why, sizeof why) : CB_ENOMEM;
    if (series == 1) {
        ews_item_free(it);
        rc = map_expanded(j, master, &z, why);
        if (rc == CB_OK && (travel_seconds(master, "X-APPLE-TRAVEL-DURATION") ||
                            travel_seconds(master, "X-APPLE-TRAVEL-RETURN-DURATION")))
            ews_event_warn(j->ev, "travel time of an expanded series not carried");
    } else if (series < 0) {
        ews_item_free(it);
        rc = series == CB_ENOMEM ? cb_errf(j->err, CB_ENOMEM, "out of memory") : series;
    } else if ((rc = ews_event_add(j->ev, it)) == CB_OK) {
        rc = map_travel(j, master, it);
    }
    tzdef_free(z.tzd);
    return rc;
}

/* Cuts s to at most max characters (UTF-8), at a character boundary. */
static int cut_chars(char *s, size_t max)
{
    size_t chars = 0;
    for (char *c = s; c && *c; c++) {
        if (((unsigned char)*c & 0xc0) == 0x80) continue;
        if (++chars > max) {
            *c = '\0';
            return 1;
        }
    }
    return 0;
}

/* "YYYY-..." within Exchange's 1601-9999 (xs:dateTime it can store). */
static int year_ok(const char *t)
{
    int y = atoi(t);
    return y >= 1601 && y <= 9999;
}

/* What Exchange bounds, checked before anything is batched: one event out
 * of range must fail alone, named, not fault its neighbours' request. */
static int check_bounds(job *j, ews_item *it)
{
    if (!year_ok(it->start) || !year_ok(it->end))
        return cb_errf(j->err, CB_EUNSUPPORTED, "event %s: %s .. %s is outside the "
                       "years Exchange stores (1601-9999)", j->uid, it->start, it->end);
    if (cut_chars(it->subject, EWS_MAX_SUBJECT) | cut_chars(it->location, EWS_MAX_SUBJECT))
        ews_event_warn(j->ev, "subject or location cut to Exchange's 255 characters");
    for (size_t i = 0; i < it->nocc; i++) {
        if (!year_ok(it->occ[i].original_start))
            return cb_errf(j->err, CB_EUNSUPPORTED, "event %s: an occurrence outside the years "
                           "Exchange stores (1601-9999)", j->uid);
        int rc = it->occ[i].item ? check_bounds(j, it->occ[i].item) : CB_OK;
        if (rc) return rc;
    }
    return CB_OK;
}

static int map_one(icalcomponent *cal, const char *uid, icalcomponent *const *comps, size_t ncomps,
                   const map_ctx *ctx, ews_event **out, cb_err *err)
{
    *out = NULL;
    job j = {cal, uid, comps, ncomps, ctx, {0}, calloc(1, sizeof(ews_event)), err};
    if (!j.ev || !(j.ev->uid = strdup(uid))) {
        free(j.ev);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    int rc = map_uid(&j);
    tzdef_cache_free(&j.zones);
    for (size_t i = 0; rc == CB_OK && i < j.ev->n; i++) rc = check_bounds(&j, j.ev->items[i]);
    if (rc == CB_OK && j.ev->n == 0)
        rc = cb_errf(err, CB_EUNSUPPORTED, "event %s: no occurrence to carry", uid);
    if (rc != CB_OK) {
        if (err && !strstr(err->msg, uid)) {
            char m[sizeof err->msg];
            snprintf(m, sizeof m, "%s", err->msg);
            cb_errf(err, rc, "event %s: %s", uid, m);
        }
        ews_event_free(j.ev);
        return rc;
    }
    *out = j.ev;
    return CB_OK;
}

/* ---- entry points ----------------------------------------------------- */

#define NOT_UTF8 "text that is not valid UTF-8: broken bytes carried as U+FFFD"

/* As the calendar's owner sees it in CalendarServer: their alarms,
 * transparency and travel time are in their per-user block. */
static icalcomponent *parse(const char *ics, const map_ctx *ctx, cb_err *err)
{
    icalcomponent *cal = peruser_parse(ics, ctx->reader, ctx);
    if (!cal) {
        cb_errf(err, CB_EPARSE, "not iCalendar data");
        return NULL;
    }
    if (icalcomponent_isa(cal) != ICAL_VCALENDAR_COMPONENT) {
        icalcomponent_free(cal);
        cb_errf(err, CB_EPARSE, "not a VCALENDAR");
        return NULL;
    }
    return cal;
}

static const char *skipped_kind(icalcomponent *cal)
{
    if (icalcomponent_get_first_component(cal, ICAL_VTODO_COMPONENT)) return "VTODO";
    if (icalcomponent_get_first_component(cal, ICAL_VJOURNAL_COMPONENT)) return "VJOURNAL";
    return "no component to carry";
}

/* map_one for the VEVENTs of cal with this UID. */
static int map_uid_of(icalcomponent *cal, const char *uid, const map_ctx *ctx, ews_event **out,
                      cb_err *err)
{
    size_t n = 0, cap = 0;
    icalcomponent **v = NULL, *c;
    int rc = CB_OK;
    for (icalcompiter ci = icalcomponent_begin_component(cal, ICAL_VEVENT_COMPONENT);
         (c = icalcompiter_deref(&ci)) != NULL && rc == CB_OK; icalcompiter_next(&ci)) {
        const char *u = icalcomponent_get_uid(c);
        if (!u || strcmp(u, uid)) continue;
        icalcomponent **w = n < cap ? v : realloc(v, (cap = cap ? cap * 2 : 8) * sizeof *v);
        if (!w) rc = cb_errf(err, CB_ENOMEM, "out of memory");
        else (v = w)[n++] = c;
    }
    if (rc == CB_OK) rc = map_one(cal, uid, v, n, ctx, out, err);
    free(v);
    return rc;
}

int ical_in_map(const char *ics, const map_ctx *ctx, ews_event **out, cb_err *err)
{
    *out = NULL;
    icalcomponent *cal = parse(ics, ctx, err);
    if (!cal) return err ? err->code : CB_EPARSE;
    icalcomponent *ev = icalcomponent_get_first_component(cal, ICAL_VEVENT_COMPONENT);
    const char *uid = ev ? icalcomponent_get_uid(ev) : NULL;
    int rc;
    if (!ev) rc = cb_errf(err, CB_EUNSUPPORTED, "no VEVENT (%s): skipped", skipped_kind(cal));
    else if (!uid || !*uid) rc = cb_errf(err, CB_EPARSE, "event without a UID");
    else rc = map_uid_of(cal, uid, ctx, out, err);
    if (rc == CB_OK && !sbuf_utf8_valid(ics)) ews_event_warn(*out, NOT_UTF8);
    icalcomponent_free(cal);
    return rc;
}

/* A calendar's components by UID, so that each event's are found once:
 * translating a file is linear in its size, not in its UIDs squared. */
typedef struct entry {
    icalcomponent *c;
    const char *uid;        /* "(no UID)" when it has none */
    size_t at;              /* document order */
} entry;

/* By UID, an event's VEVENTs together (other kinds after them), then in
 * document order. */
static int by_uid(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    int c = strcmp(x->uid, y->uid);
    int kx = icalcomponent_isa(x->c) != ICAL_VEVENT_COMPONENT;
    int ky = icalcomponent_isa(y->c) != ICAL_VEVENT_COMPONENT;
    return c ? c : kx != ky ? kx - ky : (x->at > y->at) - (x->at < y->at);
}

/* How many entries from e[i] on are the VEVENTs of one event (1 for any
 * other component). */
static size_t run_of(const entry *e, size_t ne, size_t i)
{
    size_t run = 1;
    if (icalcomponent_isa(e[i].c) != ICAL_VEVENT_COMPONENT) return 1;
    while (i + run < ne && !strcmp(e[i + run].uid, e[i].uid) &&
           icalcomponent_isa(e[i + run].c) == ICAL_VEVENT_COMPONENT)
        run++;
    return run;
}

/* One result: a component that is not an event (skipped), or the event
 * whose components are v[0..n) (sorted by UID, in document order). */
static void map_result(icalcomponent *cal, const entry *v, size_t n, const map_ctx *ctx, int utf8,
                       ical_in_result *r)
{
    memset(r, 0, sizeof *r);
    r->uid = strdup(v[0].uid);
    icalcomponent_kind k = icalcomponent_isa(v[0].c);
    if (k != ICAL_VEVENT_COMPONENT) {
        cb_errf(&r->err, CB_EUNSUPPORTED, "%s %s: skipped (only events are carried)",
                icalcomponent_kind_to_string(k), v[0].uid);
        return;
    }
    if (!strcmp(v[0].uid, "(no UID)")) {
        cb_errf(&r->err, CB_EPARSE, "event without a UID");
        return;
    }
    icalcomponent **comps = calloc(n + 1, sizeof *comps);
    for (size_t i = 0; comps && i < n; i++) comps[i] = v[i].c;
    if (!comps) cb_errf(&r->err, CB_ENOMEM, "out of memory");
    else if (map_one(cal, v[0].uid, comps, n, ctx, &r->ev, &r->err) == CB_OK && !utf8)
        ews_event_warn(r->ev, NOT_UTF8);
    free(comps);
}

static entry *index_components(icalcomponent *cal, size_t *n)
{
    size_t cap = 0;
    entry *v = NULL;
    *n = 0;
    icalcomponent *c;
    for (icalcompiter ci = icalcomponent_begin_component(cal, ICAL_ANY_COMPONENT);
         (c = icalcompiter_deref(&ci)) != NULL; icalcompiter_next(&ci)) {
        if (icalcomponent_isa(c) == ICAL_VTIMEZONE_COMPONENT) continue;
        if (*n == cap) {
            entry *w = realloc(v, (cap = cap ? cap * 2 : 64) * sizeof *v);
            if (!w) {
                free(v);
                return NULL;
            }
            v = w;
        }
        const char *uid = icalcomponent_get_uid(c);
        v[*n] = (entry){c, uid ? uid : "(no UID)", *n};
        (*n)++;
    }
    return v ? v : calloc(1, sizeof *v);
}

int ical_in_map_all(const char *ics, const map_ctx *ctx, ical_in_result **out, size_t *n,
                    cb_err *err)
{
    *out = NULL;
    *n = 0;
    icalcomponent *cal = parse(ics, ctx, err);
    if (!cal) return err ? err->code : CB_EPARSE;
    size_t ne;
    entry *e = index_components(cal, &ne);
    /* Per component in document order: the first of its event, where its
     * event's run starts in the sorted index (events are grouped by UID;
     * anything else stands alone). */
    size_t *first = e ? calloc(ne + 1, sizeof *first) : NULL;
    ical_in_result *r = first ? calloc(ne + 1, sizeof *r) : NULL;
    if (!r) {
        free(first);
        free(e);
        icalcomponent_free(cal);
        return cb_errf(err, CB_ENOMEM, "out of memory");
    }
    qsort(e, ne, sizeof *e, by_uid);
    for (size_t i = 0; i < ne; i++) first[e[i].at] = (size_t)-1;
    size_t cnt = 0;
    /* Each run is mapped where its first component stands. */
    for (size_t i = 0; i < ne; i += run_of(e, ne, i)) first[e[i].at] = i;
    int utf8 = sbuf_utf8_valid(ics);
    for (size_t at = 0; at < ne; at++)
        if (first[at] != (size_t)-1)
            map_result(cal, e + first[at], run_of(e, ne, first[at]), ctx, utf8, &r[cnt++]);
    free(first);
    free(e);
    icalcomponent_free(cal);
    *out = r;
    *n = cnt;
    return CB_OK;
}

void ical_in_results_free(ical_in_result *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].uid);
        ews_event_free(r[i].ev);
    }
    free(r);
}
