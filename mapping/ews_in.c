#include "ews_in.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "occur.h"
#include "xml_in.h"

#define T_NS "http://schemas.microsoft.com/exchange/services/2006/types"

/* ---- small XML helpers -------------------------------------------------- */

static int is(const xmlNode *n, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && !xmlStrcmp(n->name, BAD_CAST name) &&
           n->ns && !xmlStrcmp(n->ns->href, BAD_CAST T_NS);
}

static xmlNode *child(const xmlNode *n, const char *name)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (is(c, name)) return c;
    return NULL;
}

/* Text of a child element, malloc'd, or NULL. */
static char *text(const xmlNode *n, const char *name)
{
    xmlNode *c = child(n, name);
    xmlChar *t = c ? xmlNodeGetContent(c) : NULL;
    char *s = t ? strdup((char *)t) : NULL;
    xmlFree(t);
    return s;
}

static int text_eq(const xmlNode *n, const char *name, const char *value)
{
    char *t = text(n, name);
    int eq = t && !strcmp(t, value);
    free(t);
    return eq;
}

static int text_int(const xmlNode *n, const char *name, int dflt)
{
    char *t = text(n, name);
    int v = t ? atoi(t) : dflt;
    free(t);
    return v;
}

static char *attr(const xmlNode *n, const char *name)
{
    xmlChar *a = n ? xmlGetProp((xmlNode *)n, BAD_CAST name) : NULL;
    char *s = a ? strdup((char *)a) : NULL;
    xmlFree(a);
    return s;
}

/* The static string in table equal to v, or dflt: enums stay static. */
static const char *pick(const char *const *table, const char *v, const char *dflt)
{
    for (size_t i = 0; v && table[i]; i++)
        if (!strcmp(table[i], v)) return table[i];
    return dflt;
}

static const char *const IMPORTANCE[] = {"Low", "Normal", "High", NULL};
static const char *const SENSITIVITY[] = {"Normal", "Personal", "Private", "Confidential", NULL};
static const char *const BUSY[] = {"Free", "Tentative", "Busy", "OOF", "WorkingElsewhere",
                                   "NoData", NULL};
static const char *const RESPONSE[] = {"Unknown", "Organizer", "Tentative", "Accept", "Decline",
                                       "NoResponseReceived", NULL};

static int index_of(const char *const *names, int n, const char *v)
{
    for (int i = 0; v && i < n; i++)
        if (!strcmp(names[i], v)) return i;
    return -1;
}

/* ---- fields ------------------------------------------------------------- */

static int read_attendees(const xmlNode *n, ews_attendees *l)
{
    for (xmlNode *a = n ? n->children : NULL; a; a = a->next) {
        if (!is(a, "Attendee")) continue;
        xmlNode *mb = child(a, "Mailbox");
        char *email = text(mb, "EmailAddress");
        if (!email) continue;
        ews_attendee *v = realloc(l->v, (l->n + 1) * sizeof *v);
        if (!v) {
            free(email);
            return -1;
        }
        l->v = v;
        char *resp = text(a, "ResponseType");
        v[l->n++] = (ews_attendee){email, text(mb, "Name"), pick(RESPONSE, resp, NULL)};
        free(resp);
    }
    return 0;
}

static void read_stamp(const xmlNode *p, ews_item *it)
{
    char *name = attr(child(p, "ExtendedFieldURI"), "PropertyName");
    char *v = text(p, "Value");
    char **dst = NULL;
    if (name && v) {
        if (!strcmp(name, "calbridge-organizer")) dst = &it->organizer;
        else if (!strcmp(name, "calbridge-tzid")) dst = &it->tzid;
        else if (!strcmp(name, "calbridge-url")) dst = &it->url;
        else if (!strcmp(name, "calbridge-role"))
            it->role = !strcmp(v, "travel") ? ROLE_TRAVEL : !strcmp(v, "return") ? ROLE_RETURN
                                                                                 : ROLE_SINGLE;
        else if (!strcmp(name, "calbridge-travel"))
            sscanf(v, "%d,%d", &it->travel, &it->travel_return);
    }
    if (dst && !*dst) {
        *dst = v;
        v = NULL;
    }
    free(name);
    free(v);
}

static char *stamp_value(const xmlNode *n, const char *stamp)
{
    for (const xmlNode *p = n->children; p; p = p->next) {
        if (!is(p, "ExtendedProperty")) continue;
        char *name = attr(child(p, "ExtendedFieldURI"), "PropertyName");
        int match = name && !strcmp(name, stamp);
        free(name);
        if (match) return text(p, "Value");
    }
    return NULL;
}

static int read_categories(const xmlNode *n, ews_item *it)
{
    for (xmlNode *c = n ? n->children : NULL; c; c = c->next) {
        if (!is(c, "String")) continue;
        xmlChar *t = xmlNodeGetContent(c);
        char **v = realloc(it->categories, (it->ncategories + 1) * sizeof *v);
        if (!v || !t) {
            xmlFree(t);
            if (v) it->categories = v;
            return -1;
        }
        it->categories = v;
        v[it->ncategories++] = strdup((char *)t);
        xmlFree(t);
    }
    return 0;
}

/* ---- time zones and recurrence ------------------------------------------ */

static int read_rule(const xmlNode *tr, tzdef_rule *r)
{
    char *off = text(tr, "TimeOffset"), *dow = text(tr, "DayOfWeek");
    int ok = off && dow && tzdef_parse_duration(off, &r->seconds) == 0;
    r->month = text_int(tr, "Month", 0);
    r->occurrence = text_int(tr, "Occurrence", 0);
    r->dow = index_of(RECUR_DAY_NAMES, 7, dow);
    free(off);
    free(dow);
    return ok && r->dow >= 0 && r->month >= 1 && r->month <= 12 ? 0 : -1;
}

/* The last TransitionsGroup holds the rules in force. */
static tzdef *read_tzdef(const xmlNode *tz, const char *id)
{
    tzdef d = {0};
    int std_bias = 0, dst_bias = 0;
    for (xmlNode *p = child(child(tz, "Periods"), "Period"); p; p = p->next) {
        if (!is(p, "Period")) continue;
        char *bias = attr(p, "Bias"), *name = attr(p, "Name");
        int b = 0;
        if (bias) tzdef_parse_duration(bias, &b);
        if (name && !strcmp(name, "Daylight")) dst_bias = b, d.has_dst = 1;
        else std_bias = b;
        free(bias);
        free(name);
    }
    xmlNode *group = NULL;
    for (xmlNode *g = child(child(tz, "TransitionsGroups"), "TransitionsGroup"); g; g = g->next)
        if (is(g, "TransitionsGroup")) group = g;
    int rules = 0;
    for (xmlNode *t = group ? group->children : NULL; t; t = t->next) {
        if (!is(t, "RecurringDayTransition")) continue;
        char *to = text(t, "To");
        tzdef_rule r;
        if (to && read_rule(t, &r) == 0) {
            if (strstr(to, "Dlt") || strstr(to, "Daylight")) d.to_dst = r;
            else d.to_std = r;
            rules++;
        }
        free(to);
    }
    d.has_dst = d.has_dst && rules == 2;
    d.std_offset = -std_bias;
    d.dst_offset = -dst_bias;
    d.id = (char *)(id ? id : "Custom");
    return tzdef_dup(&d);
}

static void read_zone(const xmlNode *n, const tzmap *m, ews_item *it)
{
    xmlNode *tz = child(n, "StartTimeZone");
    char *id = attr(tz, "Id");
    const char *iana = id ? tzmap_iana(m, id) : NULL;
    if (iana) {
        it->tz = tzmap_windows(m, iana);
    } else if (tz && child(tz, "Periods")) {
        it->tzd = read_tzdef(tz, id);
    } else {
        it->tz = "UTC";
    }
    free(id);
}

static int read_date(const char *s, recur_date *d)
{
    return s && sscanf(s, "%4d-%2d-%2d", &d->y, &d->m, &d->d) == 3 ? 0 : -1;
}

static const char *const PATTERNS[] = {
    "", "DailyRecurrence", "WeeklyRecurrence", "AbsoluteMonthlyRecurrence",
    "RelativeMonthlyRecurrence", "AbsoluteYearlyRecurrence", "RelativeYearlyRecurrence"};

static int read_days(const char *v, ews_recurrence *r)
{
    char *copy = v ? strdup(v) : NULL, *save = NULL;
    if (!copy) return -1;
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        int d = index_of(RECUR_DAY_NAMES, 10, t);
        if (d < 0) continue;
        r->days |= d < 7 ? 1u << d : d == DOW_DAY ? 0x7f : d == DOW_WEEKDAY ? 0x3e : 0x41;
        r->day_of_week = d;
    }
    free(copy);
    return 0;
}

static int read_recurrence(const xmlNode *rn, ews_recurrence *r)
{
    memset(r, 0, sizeof *r);
    xmlNode *p = NULL;
    for (int k = 1; k <= 6 && !p; k++)
        if ((p = child(rn, PATTERNS[k]))) r->kind = (recur_kind)k;
    if (!p) return -1;
    r->interval = text_int(p, "Interval", 1);
    r->day_of_month = text_int(p, "DayOfMonth", 0);
    char *days = text(p, "DaysOfWeek"), *wi = text(p, "DayOfWeekIndex"), *mo = text(p, "Month");
    char *fd = text(p, "FirstDayOfWeek");
    if (days) read_days(days, r);
    r->week_index = index_of(RECUR_WEEK_INDEX, 6, wi);
    r->month = index_of(RECUR_MONTH_NAMES, 12, mo) + 1;
    r->first_day_of_week = fd ? index_of(RECUR_DAY_NAMES, 7, fd) : 0;
    if (r->first_day_of_week < 0) r->first_day_of_week = 0;
    free(days), free(wi), free(mo), free(fd);
    xmlNode *range = child(rn, "NumberedRecurrence");
    r->range = RANGE_NUMBERED;
    if (!range && (range = child(rn, "EndDateRecurrence"))) r->range = RANGE_END_DATE;
    if (!range && (range = child(rn, "NoEndRecurrence"))) r->range = RANGE_NOEND;
    char *sd = text(range, "StartDate"), *ed = text(range, "EndDate");
    int rc = read_date(sd, &r->start);
    if (r->range == RANGE_END_DATE && read_date(ed, &r->end)) rc = -1;
    r->count = text_int(range, "NumberOfOccurrences", 0);
    free(sd), free(ed);
    return rc;
}

/* ---- one CalendarItem --------------------------------------------------- */

/* Exchange returns all-day bounds in UTC; the model keeps local midnight. */
static void read_time(const xmlNode *n, const char *name, const ews_item *it, const tzmap *m,
                      char out[32])
{
    char *t = text(n, name);
    snprintf(out, 32, "%s", t ? t : "");
    free(t);
    if (!it->all_day || !strchr(out, 'Z')) return;
    tzdef_cache c = {0};
    icaltimezone *z = ews_item_zone(it, m, &c);
    long long secs;
    if (z && occur_parse_xs(out, NULL, &secs) == 0) {
        struct icaltimetype w = icaltime_from_timet_with_zone((time_t)secs, 0, z);
        snprintf(out, 32, "%04d-%02d-%02dT00:00:00", w.year, w.month, w.day);
    }
    tzdef_cache_free(&c);
}

static ews_item *read_item(const xmlNode *n, const tzmap *m)
{
    ews_item *it = ews_item_new();
    if (!it) return NULL;
    char *s;
    it->subject = text(n, "Subject");
    it->body = text(n, "Body");
    it->location = text(n, "Location");
    it->uid = text(n, "UID");
    it->importance = pick(IMPORTANCE, (s = text(n, "Importance")), "Normal"), free(s);
    it->sensitivity = pick(SENSITIVITY, (s = text(n, "Sensitivity")), "Normal"), free(s);
    it->busy = pick(BUSY, (s = text(n, "LegacyFreeBusyStatus")), "Busy"), free(s);
    it->all_day = text_eq(n, "IsAllDayEvent", "true");
    if (text_eq(n, "ReminderIsSet", "true")) it->reminder = text_int(n, "ReminderMinutesBeforeStart", 15);
    for (xmlNode *c = n->children; c; c = c->next)
        if (is(c, "ExtendedProperty")) read_stamp(c, it);
    if (!it->organizer) it->organizer = text(child(child(n, "Organizer"), "Mailbox"), "EmailAddress");
    read_zone(n, m, it);
    read_time(n, "Start", it, m, it->start);
    read_time(n, "End", it, m, it->end);
    int bad = read_categories(child(n, "Categories"), it) < 0 ||
              read_attendees(child(n, "RequiredAttendees"), &it->required) < 0 ||
              read_attendees(child(n, "OptionalAttendees"), &it->optional) < 0 ||
              read_attendees(child(n, "Resources"), &it->resources) < 0;
    xmlNode *rn = child(n, "Recurrence");
    if (rn) it->has_recurrence = read_recurrence(rn, &it->recur) == 0;
    if (bad || !*it->start || !*it->end) {
        ews_item_free(it);
        return NULL;
    }
    return it;
}

/* ---- grouping ----------------------------------------------------------- */

typedef struct parse_state {
    const tzmap *m;
    ews_event **ev;
    size_t n;
    xmlNode **exceptions;
    size_t nexc;
    int failed;
} parse_state;

static int occ_index(const ews_item *master, const char *when, const tzmap *m)
{
    tzdef_cache c = {0};
    icaltimezone *z = ews_item_zone(master, m, &c);
    long long secs;
    int idx = 0;
    if (z && when && occur_parse_xs(when, z, &secs) == 0) {
        struct icaltimetype w = icaltime_from_timet_with_zone((time_t)secs, 0, z);
        idx = recur_index_of(&master->recur, (recur_date){w.year, w.month, w.day});
    }
    tzdef_cache_free(&c);
    return idx;
}

static int has_occ(const ews_item *it, int index)
{
    return ews_item_occurrence(it, index) != NULL;
}

static ews_event *event_of(parse_state *ps, const char *uid)
{
    for (size_t i = 0; i < ps->n; i++)
        if (uid && ps->ev[i]->uid && !strcmp(ps->ev[i]->uid, uid) && ps->ev[i]->n &&
            ps->ev[i]->items[0]->has_recurrence)
            return ps->ev[i];
    return NULL;
}

static void add_event(parse_state *ps, const xmlNode *n)
{
    ews_item *it = read_item(n, ps->m);
    if (!it) {
        ps->failed = 1;
        return;
    }
    ews_event *ev = calloc(1, sizeof *ev);
    ews_event **v = ev ? realloc(ps->ev, (ps->n + 1) * sizeof *v) : NULL;
    if (!v) {
        free(ev);
        ews_item_free(it);
        ps->failed = 1;
        return;
    }
    ps->ev = v;
    ev->item_id = attr(child(n, "ItemId"), "Id");
    ev->change_key = attr(child(n, "ItemId"), "ChangeKey");
    ev->source = stamp_value(n, EWS_PROP_SOURCE);
    ev->tag = stamp_value(n, EWS_PROP_TAG);
    char *lm = text(n, "LastModifiedTime");
    if (lm && occur_parse_xs(lm, NULL, &ev->modified) != 0) ev->modified = 0;
    free(lm);
    /* calbridge's own travel-time appointment: the main item's stamp brings
     * travel time back; this one is only recognised, never carried. */
    ev->companion = it->role == ROLE_TRAVEL || it->role == ROLE_RETURN;
    ev->uid = strdup(ev->companion && ev->item_id ? ev->item_id
                     : it->uid ? it->uid : ev->item_id ? ev->item_id : "(no UID)");
    v[ps->n++] = ev;
    if (ews_event_add(ev, it) != CB_OK) ps->failed = 1;
}

static void collect(parse_state *ps, xmlNode *n)
{
    for (; n; n = n->next) {
        if (!is(n, "CalendarItem")) {
            collect(ps, n->children);
            continue;
        }
        char *type = text(n, "CalendarItemType");
        int exception = type && (!strcmp(type, "Exception") || !strcmp(type, "Occurrence"));
        free(type);
        if (!exception) {
            add_event(ps, n);
            continue;
        }
        xmlNode **v = realloc(ps->exceptions, (ps->nexc + 1) * sizeof *v);
        if (!v) {
            ps->failed = 1;
            return;
        }
        ps->exceptions = v;
        v[ps->nexc++] = n;
    }
}

static void attach_exceptions(parse_state *ps)
{
    for (size_t i = 0; i < ps->nexc; i++) {
        char *uid = text(ps->exceptions[i], "UID");
        char *rid = text(ps->exceptions[i], "RecurrenceId");
        if (!rid) rid = text(ps->exceptions[i], "OriginalStart");
        ews_event *ev = event_of(ps, uid);
        ews_item *o = ev && rid ? read_item(ps->exceptions[i], ps->m) : NULL;
        if (o) {
            free(o->uid);
            o->uid = NULL;
            o->has_recurrence = 0;
            ews_item *master = ev->items[0];
            if (ews_item_add_occurrence(master, occ_index(master, rid, ps->m), rid, o)) ps->failed = 1;
        }
        free(uid);
        free(rid);
    }
}

/* The lists on the master itself: deletions, and modifications whose
 * exception item was not in the document (their times are all we know). */
static void master_lists(parse_state *ps, xmlNode *root)
{
    for (xmlNode *n = root; n; n = n->next) {
        if (!is(n, "CalendarItem")) {
            master_lists(ps, n->children);
            continue;
        }
        char *uid = text(n, "UID"), *id = attr(child(n, "ItemId"), "Id");
        /* An item that carries no UID (one its client made without) is
         * its own event, named by its ItemId: its lists belong to it, and
         * the same item listed twice gets them twice. */
        if (!uid && id) uid = strdup(id);
        ews_event *ev = NULL;
        for (size_t i = 0; i < ps->n && !ev; i++)
            if (uid && ps->ev[i]->uid && !strcmp(ps->ev[i]->uid, uid) && ps->ev[i]->n &&
                ps->ev[i]->items[0]->has_recurrence && !ps->ev[i]->items[0]->nocc &&
                (!id || !ps->ev[i]->item_id || !strcmp(ps->ev[i]->item_id, id)))
                ev = ps->ev[i];
        if (!ev) ev = event_of(ps, uid);
        free(uid);
        free(id);
        if (!ev) continue;
        ews_item *master = ev->items[0];
        for (xmlNode *d = child(child(n, "DeletedOccurrences"), "DeletedOccurrence"); d; d = d->next) {
            char *s = is(d, "DeletedOccurrence") ? text(d, "Start") : NULL;
            if (s && ews_item_add_occurrence(master, occ_index(master, s, ps->m), s, NULL)) ps->failed = 1;
            free(s);
        }
        for (xmlNode *o = child(child(n, "ModifiedOccurrences"), "Occurrence"); o; o = o->next) {
            char *orig = is(o, "Occurrence") ? text(o, "OriginalStart") : NULL;
            int idx = orig ? occ_index(master, orig, ps->m) : 0;
            ews_item *copy = idx && !has_occ(master, idx) ? read_item(n, ps->m) : NULL;
            if (copy) {
                free(copy->uid);
                copy->uid = NULL;
                copy->has_recurrence = 0;
                read_time(o, "Start", copy, ps->m, copy->start);
                read_time(o, "End", copy, ps->m, copy->end);
                if (ews_item_add_occurrence(master, idx, orig, copy)) ps->failed = 1;
            }
            free(orig);
        }
    }
}

int ews_in_parse(const char *xml, size_t len, const tzmap *m, ews_event ***out, size_t *n,
                 cb_err *err)
{
    return ews_in_parse_many(&xml, &len, 1, m, out, n, err);
}

int ews_in_parse_many(const char *const *xml, const size_t *len, size_t ndocs, const tzmap *m,
                      ews_event ***out, size_t *n, cb_err *err)
{
    *out = NULL;
    *n = 0;
    xmlDoc **docs = calloc(ndocs + 1, sizeof *docs);
    if (!docs) return cb_errf(err, CB_ENOMEM, "out of memory");
    int rc = CB_OK;
    for (size_t i = 0; i < ndocs && rc == CB_OK; i++)
        if (!(docs[i] = xml_in_read(xml[i], len[i], err))) rc = err ? err->code : CB_EPARSE;
    parse_state ps = {.m = m};
    for (size_t i = 0; i < ndocs && rc == CB_OK; i++) collect(&ps, xmlDocGetRootElement(docs[i]));
    if (rc == CB_OK) attach_exceptions(&ps);
    for (size_t i = 0; i < ndocs && rc == CB_OK; i++) master_lists(&ps, xmlDocGetRootElement(docs[i]));
    for (size_t i = 0; i < ndocs; i++) xmlFreeDoc(docs[i]);
    free(docs);
    free(ps.exceptions);
    if (rc) {
        ews_in_events_free(ps.ev, ps.n);
        return rc;
    }
    for (size_t i = 0; i < ps.n; i++) ews_item_sort_occurrences(ps.ev[i]->items[0]);
    if (ps.failed || ps.n == 0) {
        ews_in_events_free(ps.ev, ps.n);
        return cb_errf(err, CB_EPARSE, ps.failed ? "a calendar item lacks Start or End"
                                                 : "no calendar item in the document");
    }
    *out = ps.ev;
    *n = ps.n;
    return CB_OK;
}

/* Every ModifiedOccurrences/Occurrence/ItemId below n. */
static int modified_ids(xmlNode *n, char ***ids, size_t *count)
{
    for (; n; n = n->next) {
        if (!is(n, "ModifiedOccurrences")) {
            if (n->type == XML_ELEMENT_NODE && modified_ids(n->children, ids, count)) return -1;
            continue;
        }
        for (xmlNode *o = n->children; o; o = o->next) {
            char *id = is(o, "Occurrence") ? attr(child(o, "ItemId"), "Id") : NULL;
            if (!id) continue;
            char **v = *count < EWS_IN_MAX_EXCEPTIONS ? realloc(*ids, (*count + 1) * sizeof *v) : NULL;
            if (!v) {
                free(id);
                return *count < EWS_IN_MAX_EXCEPTIONS ? -1 : 0;
            }
            *ids = v;
            v[(*count)++] = id;
        }
    }
    return 0;
}

int ews_in_modified_ids(const char *xml, size_t len, char ***ids, size_t *n, cb_err *err)
{
    *ids = NULL;
    *n = 0;
    xmlDoc *doc = xml_in_read(xml, len, err);
    if (!doc) return err ? err->code : CB_EPARSE;
    int rc = modified_ids(xmlDocGetRootElement(doc), ids, n);
    xmlFreeDoc(doc);
    if (rc == 0) return CB_OK;
    for (size_t i = 0; i < *n; i++) free((*ids)[i]);
    free(*ids);
    *ids = NULL;
    *n = 0;
    return cb_errf(err, CB_ENOMEM, "out of memory");
}

void ews_in_events_free(ews_event **v, size_t n)
{
    for (size_t i = 0; i < n; i++) ews_event_free(v[i]);
    free(v);
}
