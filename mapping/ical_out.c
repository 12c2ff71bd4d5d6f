#include "ical_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "occur.h"

#define COMMENTS_HEADING "\n\n--- Comments ---\n"

typedef struct out {
    icalcomponent *cal;
    const map_ctx *ctx;
    tzdef_cache zones;
} out;

/* The zone an item's times are written in: TZID and libical zone. */
typedef struct zone_ref {
    icaltimezone *z;
    const char *tzid;    /* NULL: UTC */
} zone_ref;

static int has_vtimezone(icalcomponent *cal, const char *tzid)
{
    icalcomponent *c;
    for (icalcompiter ci = icalcomponent_begin_component(cal, ICAL_VTIMEZONE_COMPONENT);
         (c = icalcompiter_deref(&ci)) != NULL; icalcompiter_next(&ci)) {
        icalproperty *p = icalcomponent_get_first_property(c, ICAL_TZID_PROPERTY);
        if (p && !strcmp(icalproperty_get_tzid(p), tzid)) return 1;
    }
    return 0;
}

static void add_vtimezone(out *o, const ews_item *it, zone_ref *r)
{
    if (!r->tzid || has_vtimezone(o->cal, r->tzid)) return;
    icalcomponent *vtz = NULL;
    if (it->tzd) {
        sbuf b;
        sbuf_init(&b);
        tzdef_to_vtimezone(it->tzd, &b);
        icalcomponent *wrap = b.s ? icalparser_parse_string(b.s) : NULL;
        sbuf_free(&b);
        vtz = wrap;
    } else {
        icalcomponent *c = icaltimezone_get_component(r->z);
        vtz = c ? icalcomponent_new_clone(c) : NULL;
    }
    if (!vtz) return;
    icalproperty *p = icalcomponent_get_first_property(vtz, ICAL_TZID_PROPERTY);
    if (p) icalproperty_set_tzid(p, r->tzid);
    icalcomponent_add_component(o->cal, vtz);
}

static zone_ref zone_of(out *o, const ews_item *it)
{
    zone_ref r = {ews_item_zone(it, o->ctx->tz, &o->zones), NULL};
    if (it->tzd) r.tzid = it->tzd->id;
    else if (it->tz && strcmp(it->tz, "UTC")) {
        const char *w = it->tzid ? tzmap_windows(o->ctx->tz, it->tzid) : NULL;
        r.tzid = w && !strcmp(w, it->tz) ? it->tzid : tzmap_iana(o->ctx->tz, it->tz);
    }
    if (!r.z) r.z = icaltimezone_get_utc_timezone(), r.tzid = NULL;
    add_vtimezone(o, it, &r);
    return r;
}

/* A date-time property at UTC second t, written in the item's zone. */
static icalproperty *time_prop(icalproperty_kind kind, long long t, const zone_ref *r,
                               int all_day)
{
    icaltimezone *z = r->tzid ? r->z : icaltimezone_get_utc_timezone();
    struct icaltimetype w = icaltime_from_timet_with_zone((time_t)t, all_day, z);
    icalproperty *p = icalproperty_new(kind);
    if (all_day) {
        w.is_date = 1;
        w.zone = NULL;
        icalproperty_set_value(p, icalvalue_new_date(w));
        return p;
    }
    if (r->tzid) {
        w.zone = NULL;
        icalproperty_add_parameter(p, icalparameter_new_tzid(r->tzid));
    }
    icalproperty_set_value(p, icalvalue_new_datetime(w));
    return p;
}

static long long secs_of(const char *xs, const zone_ref *r)
{
    long long t = 0;
    occur_parse_xs(xs, r->z, &t);
    return t;
}

/* ---- content ------------------------------------------------------------ */

static void add_x(icalcomponent *c, const char *name, const char *value)
{
    icalproperty *p = icalproperty_new_x(value);
    icalproperty_set_x_name(p, name);
    icalcomponent_add_property(c, p);
}

/* Body text before the comments heading is the description; the comment
 * lines go back to CalendarServer's comment properties. */
static void add_body(icalcomponent *c, const char *body)
{
    if (!body) return;
    /* the heading has no leading blank line when there is no description */
    size_t hl = strlen(COMMENTS_HEADING);
    const char *h = strstr(body, COMMENTS_HEADING), *lines = h ? h + hl : NULL;
    if (!h && !strncmp(body, &COMMENTS_HEADING[2], hl - 2)) h = body, lines = body + hl - 2;
    char *desc = h ? strndup(body, (size_t)(h - body)) : strdup(body);
    if (desc && *desc) icalcomponent_add_property(c, icalproperty_new_description(desc));
    free(desc);
    if (!h) return;
    char *rest = strdup(lines), *save = NULL;
    for (char *line = rest ? strtok_r(rest, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "--- ", 4)) break;
        if (!strncmp(line, "Private comment: ", 17)) {
            add_x(c, "X-CALENDARSERVER-PRIVATE-COMMENT", line + 17);
            continue;
        }
        char *colon = strstr(line, ": ");
        if (strncmp(line, "Comment from ", 13) || !colon) continue;
        *colon = '\0';
        icalproperty *p = icalproperty_new_x(colon + 2);
        icalproperty_set_x_name(p, "X-CALENDARSERVER-ATTENDEE-COMMENT");
        char ref[320];
        snprintf(ref, sizeof ref, "mailto:%s", line + 13);
        icalparameter *a = icalparameter_new_x(ref);
        icalparameter_set_xname(a, "X-CALENDARSERVER-ATTENDEE-REF");
        icalproperty_add_parameter(p, a);
        icalcomponent_add_property(c, p);
    }
    free(rest);
}

static const char *cal_address(const map_ctx *ctx, const char *email, char *buf, size_t len)
{
    const person *who = ctx->people ? people_by_smtp(ctx->people, email) : NULL;
    if (who) snprintf(buf, len, "urn:x-uid:%s", who->owner_uid);
    else snprintf(buf, len, "mailto:%s", email);
    return buf;
}

static void add_attendees(icalcomponent *c, const map_ctx *ctx, const ews_attendees *l,
                          icalparameter_role role, int resource)
{
    static const struct { const char *ews; icalparameter_partstat ps; } PS[] = {
        {"Accept", ICAL_PARTSTAT_ACCEPTED}, {"Decline", ICAL_PARTSTAT_DECLINED},
        {"Tentative", ICAL_PARTSTAT_TENTATIVE}, {"NoResponseReceived", ICAL_PARTSTAT_NEEDSACTION}};
    for (size_t i = 0; i < l->n; i++) {
        char addr[320];
        icalproperty *p = icalproperty_new_attendee(cal_address(ctx, l->v[i].email, addr, sizeof addr));
        if (l->v[i].name) icalproperty_add_parameter(p, icalparameter_new_cn(l->v[i].name));
        icalproperty_add_parameter(p, icalparameter_new_role(role));
        if (resource) {
            const person *who = ctx->people ? people_by_smtp(ctx->people, l->v[i].email) : NULL;
            icalproperty_add_parameter(p, icalparameter_new_cutype(
                who && who->kind == PERSON_ROOM ? ICAL_CUTYPE_ROOM : ICAL_CUTYPE_RESOURCE));
        }
        for (size_t k = 0; k < sizeof PS / sizeof PS[0]; k++)
            if (l->v[i].response && !strcmp(l->v[i].response, PS[k].ews))
                icalproperty_add_parameter(p, icalparameter_new_partstat(PS[k].ps));
        icalcomponent_add_property(c, p);
    }
}

static void add_status(icalcomponent *c, const ews_item *it)
{
    static const char *const CDO[][2] = {{"Free", "FREE"}, {"Tentative", "TENTATIVE"},
                                         {"Busy", "BUSY"}, {"OOF", "OOF"},
                                         {"WorkingElsewhere", "WORKINGELSEWHERE"}};
    icalcomponent_add_property(c, icalproperty_new_transp(
        !strcmp(it->busy, "Free") ? ICAL_TRANSP_TRANSPARENT : ICAL_TRANSP_OPAQUE));
    for (size_t i = 0; i < sizeof CDO / sizeof CDO[0]; i++)
        if (!strcmp(it->busy, CDO[i][0])) add_x(c, "X-MICROSOFT-CDO-BUSYSTATUS", CDO[i][1]);
    /* CalendarServer counts an event as tentative in free/busy only by
     * STATUS (getFBType); Exchange's Tentative must show there too. */
    if (!strcmp(it->busy, "Tentative"))
        icalcomponent_add_property(c, icalproperty_new_status(ICAL_STATUS_TENTATIVE));
    if (!strcmp(it->sensitivity, "Private") || !strcmp(it->sensitivity, "Personal"))
        icalcomponent_add_property(c, icalproperty_new_class(ICAL_CLASS_PRIVATE));
    else if (!strcmp(it->sensitivity, "Confidential"))
        icalcomponent_add_property(c, icalproperty_new_class(ICAL_CLASS_CONFIDENTIAL));
    if (!strcmp(it->importance, "High")) icalcomponent_add_property(c, icalproperty_new_priority(1));
    if (!strcmp(it->importance, "Low")) icalcomponent_add_property(c, icalproperty_new_priority(9));
}

static void add_text(icalcomponent *c, const map_ctx *ctx, const ews_item *it)
{
    const char *subject = it->subject;
    if (subject && !strncmp(subject, "Canceled: ", 10) && !strcmp(it->busy, "Free")) {
        subject += 10;
        icalcomponent_add_property(c, icalproperty_new_status(ICAL_STATUS_CANCELLED));
    }
    if (subject) icalcomponent_add_property(c, icalproperty_new_summary(subject));
    add_body(c, it->body);
    if (it->location) icalcomponent_add_property(c, icalproperty_new_location(it->location));
    if (it->url) icalcomponent_add_property(c, icalproperty_new_url(it->url));
    if (it->ncategories) {
        sbuf b;
        sbuf_init(&b);
        for (size_t i = 0; i < it->ncategories; i++)
            sbuf_printf(&b, "%s%s", i ? "," : "", it->categories[i]);
        if (b.s) icalcomponent_add_property(c, icalproperty_new_categories(b.s));
        sbuf_free(&b);
    }
    add_status(c, it);
    if (it->organizer) {
        char addr[320];
        icalcomponent_add_property(c, icalproperty_new_organizer(
            cal_address(ctx, it->organizer, addr, sizeof addr)));
    }
    add_attendees(c, ctx, &it->required, ICAL_ROLE_REQPARTICIPANT, 0);
    add_attendees(c, ctx, &it->optional, ICAL_ROLE_OPTPARTICIPANT, 0);
    add_attendees(c, ctx, &it->resources, ICAL_ROLE_REQPARTICIPANT, 1);
    if (it->reminder >= 0) {
        icalcomponent *a = icalcomponent_new_valarm();
        icalcomponent_add_property(a, icalproperty_new_action(ICAL_ACTION_DISPLAY));
        icalcomponent_add_property(a, icalproperty_new_description("Reminder"));
        struct icaltriggertype tr = {icaltime_null_time(),
                                     icaldurationtype_from_int(-60 * it->reminder)};
        icalcomponent_add_property(a, icalproperty_new_trigger(tr));
        icalcomponent_add_component(c, a);
    }
}

static void add_travel(icalcomponent *c, const char *name, int secs)
{
    if (secs <= 0) return;
    icalproperty *p = icalproperty_new_x(icaldurationtype_as_ical_string(icaldurationtype_from_int(secs)));
    icalproperty_set_x_name(p, name);
    icalproperty_add_parameter(p, icalparameter_new_value(ICAL_VALUE_DURATION));
    icalcomponent_add_property(c, p);
}

/* ---- components --------------------------------------------------------- */

static icalcomponent *vevent(out *o, const ews_item *it, const char *uid, const zone_ref *r)
{
    icalcomponent *c = icalcomponent_new_vevent();
    icalcomponent_add_property(c, icalproperty_new_uid(uid));
    icalcomponent_add_property(c, icalproperty_new_dtstamp(
        icaltime_from_timet_with_zone(time(NULL), 0, icaltimezone_get_utc_timezone())));
    icalcomponent_add_property(c, time_prop(ICAL_DTSTART_PROPERTY, secs_of(it->start, r), r, it->all_day));
    icalcomponent_add_property(c, time_prop(ICAL_DTEND_PROPERTY, secs_of(it->end, r), r, it->all_day));
    add_text(c, o->ctx, it);
    return c;
}

static void add_series(out *o, const ews_item *it, icalcomponent *master, const char *uid,
                       const zone_ref *r)
{
    sbuf b;
    sbuf_init(&b);
    recur_to_rrule(&it->recur, it->all_day ? NULL : r->tzid ? r->z : icaltimezone_get_utc_timezone(), &b);
    if (b.s) icalcomponent_add_property(master, icalproperty_new_rrule(icalrecurrencetype_from_string(b.s)));
    sbuf_free(&b);
    add_travel(master, "X-APPLE-TRAVEL-DURATION", it->travel);
    add_travel(master, "X-APPLE-TRAVEL-RETURN-DURATION", it->travel_return);
    for (size_t i = 0; i < it->nocc; i++) {
        long long orig = secs_of(it->occ[i].original_start, r);
        if (!it->occ[i].item) {
            icalproperty *p = time_prop(ICAL_EXDATE_PROPERTY, orig, r, it->all_day);
            icalcomponent_add_property(master, p);
            continue;
        }
        icalcomponent *ov = vevent(o, it->occ[i].item, uid, r);
        icalcomponent_add_property(ov, time_prop(ICAL_RECURRENCEID_PROPERTY, orig, r, it->all_day));
        icalcomponent_add_component(o->cal, ov);
    }
}

static void add_event(out *o, const ews_event *ev)
{
    for (size_t i = 0; i < ev->n; i++) {
        const ews_item *it = ev->items[i];
        if (it->role == ROLE_TRAVEL || it->role == ROLE_RETURN) continue;
        char uid[512];
        if (it->role == ROLE_SINGLE && ev->n > 1) snprintf(uid, sizeof uid, "%s-%zu", ev->uid, i + 1);
        else snprintf(uid, sizeof uid, "%s", it->uid ? it->uid : ev->uid);
        zone_ref r = zone_of(o, it);
        icalcomponent *c = vevent(o, it, uid, &r);
        icalcomponent_add_component(o->cal, c);
        if (it->has_recurrence) add_series(o, it, c, uid, &r);
        else {
            add_travel(c, "X-APPLE-TRAVEL-DURATION", it->travel);
            add_travel(c, "X-APPLE-TRAVEL-RETURN-DURATION", it->travel_return);
        }
    }
}

char *ical_out_calendar(ews_event *const *ev, size_t n, const map_ctx *ctx, cb_err *err)
{
    out o = {icalcomponent_new_vcalendar(), ctx, {0}};
    if (!o.cal) {
        cb_errf(err, CB_ENOMEM, "out of memory");
        return NULL;
    }
    icalcomponent_add_property(o.cal, icalproperty_new_version("2.0"));
    icalcomponent_add_property(o.cal, icalproperty_new_prodid("-//calbridge//calbridge//EN"));
    int private = 0;
    for (size_t i = 0; i < n; i++) {
        add_event(&o, ev[i]);
        const char *sens = ev[i]->n ? ev[i]->items[0]->sensitivity : NULL;
        private |= sens && (!strcmp(sens, "Private") || !strcmp(sens, "Confidential"));
    }
    /* What CalendarServer reads to hide an event from sharees and delegates
     * (CLASS alone it ignores): its time shows, nothing else. */
    if (private) {
        icalproperty *p = icalproperty_new_x("CONFIDENTIAL");
        icalproperty_set_x_name(p, "X-CALENDARSERVER-ACCESS");
        icalcomponent_add_property(o.cal, p);
    }
    char *s = icalcomponent_as_ical_string_r(o.cal);
    icalcomponent_free(o.cal);
    tzdef_cache_free(&o.zones);
    if (!s) cb_errf(err, CB_ENOMEM, "out of memory");
    return s;
}
