#include "ews_item.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "occur.h"

/* Round-trip stamps: what Apple had that Exchange has no field for. */
#define STAMP_ORGANIZER "calbridge-organizer"
#define STAMP_TZID "calbridge-tzid"
#define STAMP_URL "calbridge-url"
#define STAMP_ROLE "calbridge-role"
#define STAMP_TRAVEL "calbridge-travel"

/* ---- lifecycle ---------------------------------------------------------- */

ews_item *ews_item_new(void)
{
    ews_item *it = calloc(1, sizeof *it);
    if (!it) return NULL;
    it->importance = "Normal";
    it->sensitivity = "Normal";
    it->busy = "Busy";
    it->reminder = -1;
    return it;
}

static void free_attendees(ews_attendees *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].email);
        free(l->v[i].name);
    }
    free(l->v);
}

void ews_item_free(ews_item *it)
{
    if (!it) return;
    free(it->uid);
    free(it->subject);
    free(it->body);
    free(it->location);
    free(it->url);
    for (size_t i = 0; i < it->ncategories; i++) free(it->categories[i]);
    free(it->categories);
    free(it->tzid);
    tzdef_free(it->tzd);
    free(it->organizer);
    free_attendees(&it->required);
    free_attendees(&it->optional);
    free_attendees(&it->resources);
    for (size_t i = 0; i < it->nocc; i++) ews_item_free(it->occ[i].item);
    free(it->occ);
    free(it);
}

int ews_item_add_occurrence(ews_item *it, int index, const char *original_start,
                            ews_item *changed)
{
    if (!index || ews_item_occurrence(it, index)) {
        ews_item_free(changed);
        return CB_OK;
    }
    ews_occurrence *v = realloc(it->occ, (it->nocc + 1) * sizeof *v);
    if (!v) {
        ews_item_free(changed);
        return CB_ENOMEM;
    }
    it->occ = v;
    v[it->nocc].index = index;
    snprintf(v[it->nocc].original_start, sizeof v[it->nocc].original_start, "%s", original_start);
    v[it->nocc].item = changed;
    it->nocc++;
    return CB_OK;
}

static int by_index(const void *a, const void *b)
{
    return ((const ews_occurrence *)a)->index - ((const ews_occurrence *)b)->index;
}

void ews_item_sort_occurrences(ews_item *it)
{
    if (it->nocc) qsort(it->occ, it->nocc, sizeof *it->occ, by_index);
}

int ews_event_add(ews_event *ev, ews_item *it)
{
    ews_item **v = realloc(ev->items, (ev->n + 1) * sizeof *v);
    if (!v) {
        ews_item_free(it);
        return CB_ENOMEM;
    }
    ev->items = v;
    v[ev->n++] = it;
    return CB_OK;
}

void ews_event_warn(ews_event *ev, const char *what)
{
    if (ev->warnings && strstr(ev->warnings, what)) return;
    sbuf b;
    sbuf_init(&b);
    if (ev->warnings) {
        sbuf_cat(&b, ev->warnings);
        sbuf_cat(&b, "; ");
    }
    sbuf_cat(&b, what);
    char *w = sbuf_take(&b);
    if (w) {
        free(ev->warnings);
        ev->warnings = w;
    }
}

void ews_event_free(ews_event *ev)
{
    if (!ev) return;
    for (size_t i = 0; i < ev->n; i++) ews_item_free(ev->items[i]);
    free(ev->items);
    free(ev->uid);
    free(ev->warnings);
    free(ev->item_id);
    free(ev->change_key);
    free(ev->source);
    free(ev->tag);
    free(ev);
}

icaltimezone *ews_item_zone(const ews_item *it, const tzmap *m, tzdef_cache *zones)
{
    if (it->tzd) return tzdef_zone(it->tzd, zones);
    icaltimezone *z = it->tz ? tzmap_zone(m, it->tz) : NULL;
    return z ? z : icaltimezone_get_utc_timezone();
}

/* ---- element writers ---------------------------------------------------- */

static void elem(sbuf *b, const char *name, const char *text)
{
    sbuf_printf(b, "<t:%s>", name);
    sbuf_xml(b, text);
    sbuf_printf(b, "</t:%s>", name);
}

static void ext_uri(sbuf *b, const char *name)
{
    sbuf_printf(b, "<t:ExtendedFieldURI PropertySetId=\"%s\" PropertyName=\"%s\" "
                   "PropertyType=\"String\"/>", EWS_PROPSET_GUID, name);
}

static void ext_prop(sbuf *b, const char *name, const char *value)
{
    sbuf_cat(b, "<t:ExtendedProperty>");
    ext_uri(b, name);
    sbuf_cat(b, "<t:Value>");
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
        sbuf_cat(b, "</t:Mailbox>");
        if (l->v[i].response) elem(b, "ResponseType", l->v[i].response);
        sbuf_cat(b, "</t:Attendee>");
    }
    sbuf_printf(b, "</t:%s>", name);
}

static void write_tz(const ews_item *it, const char *element, sbuf *b)
{
    if (it->tzd) {
        tzdef_write(it->tzd, element, b);
        return;
    }
    sbuf_printf(b, "<t:%s Id=\"", element);
    sbuf_xml(b, it->tz ? it->tz : "UTC");
    sbuf_cat(b, "\"/>");
}

static void write_occurrence_lists(const ews_item *it, const char *master_id, sbuf *b)
{
    int mod = 0, del = 0;
    for (size_t i = 0; i < it->nocc; i++) mod += it->occ[i].item != NULL;
    del = (int)it->nocc - mod;
    if (mod) {
        sbuf_cat(b, "<t:ModifiedOccurrences>");
        for (size_t i = 0; i < it->nocc; i++) {
            const ews_item *o = it->occ[i].item;
            if (!o) continue;
            sbuf_printf(b, "<t:Occurrence><t:ItemId Id=\"%s-%d\"/>", master_id, it->occ[i].index);
            elem(b, "Start", o->start);
            elem(b, "End", o->end);
            elem(b, "OriginalStart", it->occ[i].original_start);
            sbuf_cat(b, "</t:Occurrence>");
        }
        sbuf_cat(b, "</t:ModifiedOccurrences>");
    }
    if (del) {
        sbuf_cat(b, "<t:DeletedOccurrences>");
        for (size_t i = 0; i < it->nocc; i++)
            if (!it->occ[i].item) {
                sbuf_cat(b, "<t:DeletedOccurrence>");
                elem(b, "Start", it->occ[i].original_start);
                sbuf_cat(b, "</t:DeletedOccurrence>");
            }
        sbuf_cat(b, "</t:DeletedOccurrences>");
    }
}

/* ---- the field table ---------------------------------------------------- */

/* Where a field is written: on create, in updates of a whole item, in
 * updates of one occurrence, only in the stored form. */
enum { F_CREATE = 1, F_UPDATE = 2, F_OCC = 4, F_STORED = 8 };
#define F_ITEM (F_CREATE | F_UPDATE | F_OCC | F_STORED)
#define F_SERIES (F_CREATE | F_UPDATE | F_STORED)

typedef struct field {
    const char *uri;      /* FieldURI, or the stamp name when ext */
    int ext;
    int where;
    int (*present)(const ews_item *it);
    void (*write)(const ews_item *it, sbuf *b);
} field;

static int always(const ews_item *it) { (void)it; return 1; }
static int has_subject(const ews_item *it) { return it->subject != NULL; }
static int has_body(const ews_item *it) { return it->body != NULL; }
static int has_categories(const ews_item *it) { return it->ncategories > 0; }
static int has_reminder(const ews_item *it) { return it->reminder >= 0; }
static int has_location(const ews_item *it) { return it->location != NULL; }
static int has_required(const ews_item *it) { return it->required.n > 0; }
static int has_optional(const ews_item *it) { return it->optional.n > 0; }
static int has_resources(const ews_item *it) { return it->resources.n > 0; }
static int has_recurrence(const ews_item *it) { return it->has_recurrence; }
static int has_uid(const ews_item *it) { return it->uid != NULL; }
static int has_organizer(const ews_item *it) { return it->organizer != NULL; }
static int has_tzid(const ews_item *it) { return it->tzid != NULL; }
static int has_url(const ews_item *it) { return it->url != NULL; }
static int has_role(const ews_item *it) { return it->role != ROLE_MAIN; }
static int has_travel(const ews_item *it) { return it->travel || it->travel_return; }

static void w_subject(const ews_item *it, sbuf *b) { elem(b, "Subject", it->subject); }
static void w_sensitivity(const ews_item *it, sbuf *b) { elem(b, "Sensitivity", it->sensitivity); }
static void w_body(const ews_item *it, sbuf *b)
{
    sbuf_cat(b, "<t:Body BodyType=\"Text\">");
    sbuf_xml(b, it->body);
    sbuf_cat(b, "</t:Body>");
}
static void w_categories(const ews_item *it, sbuf *b)
{
    sbuf_cat(b, "<t:Categories>");
    for (size_t i = 0; i < it->ncategories; i++) elem(b, "String", it->categories[i]);
    sbuf_cat(b, "</t:Categories>");
}
static void w_importance(const ews_item *it, sbuf *b) { elem(b, "Importance", it->importance); }
static void w_reminder_set(const ews_item *it, sbuf *b)
{
    elem(b, "ReminderIsSet", it->reminder >= 0 ? "true" : "false");
}
static void w_reminder_minutes(const ews_item *it, sbuf *b)
{
    sbuf_printf(b, "<t:ReminderMinutesBeforeStart>%d</t:ReminderMinutesBeforeStart>",
                it->reminder);
}
static void w_organizer(const ews_item *it, sbuf *b) { ext_prop(b, STAMP_ORGANIZER, it->organizer); }
static void w_tzid(const ews_item *it, sbuf *b) { ext_prop(b, STAMP_TZID, it->tzid); }
static void w_url(const ews_item *it, sbuf *b) { ext_prop(b, STAMP_URL, it->url); }
static void w_role(const ews_item *it, sbuf *b)
{
    ext_prop(b, STAMP_ROLE, it->role == ROLE_TRAVEL ? "travel"
                            : it->role == ROLE_RETURN ? "return" : "single");
}
static void w_travel(const ews_item *it, sbuf *b)
{
    char v[32];
    snprintf(v, sizeof v, "%d,%d", it->travel, it->travel_return);
    ext_prop(b, STAMP_TRAVEL, v);
}
static void w_uid(const ews_item *it, sbuf *b) { elem(b, "UID", it->uid); }
static void w_start(const ews_item *it, sbuf *b) { elem(b, "Start", it->start); }
static void w_end(const ews_item *it, sbuf *b) { elem(b, "End", it->end); }
static void w_all_day(const ews_item *it, sbuf *b)
{
    elem(b, "IsAllDayEvent", it->all_day ? "true" : "false");
}
static void w_busy(const ews_item *it, sbuf *b) { elem(b, "LegacyFreeBusyStatus", it->busy); }
static void w_location(const ews_item *it, sbuf *b) { elem(b, "Location", it->location); }
static void w_type(const ews_item *it, sbuf *b)
{
    elem(b, "CalendarItemType", it->has_recurrence ? "RecurringMaster" : "Single");
}
static void w_required(const ews_item *it, sbuf *b) { write_attendees(b, "RequiredAttendees", &it->required); }
static void w_optional(const ews_item *it, sbuf *b) { write_attendees(b, "OptionalAttendees", &it->optional); }
static void w_resources(const ews_item *it, sbuf *b) { write_attendees(b, "Resources", &it->resources); }
static void w_recurrence(const ews_item *it, sbuf *b) { recur_write(&it->recur, b); }
static void w_start_tz(const ews_item *it, sbuf *b) { write_tz(it, "StartTimeZone", b); }
static void w_end_tz(const ews_item *it, sbuf *b) { write_tz(it, "EndTimeZone", b); }

/* ItemType children, the stamps, then CalendarItemType children: EWS
 * rejects any other order. The source key and tag are written apart. */
static const field FIELDS[] = {
    {"item:Subject", 0, F_ITEM, has_subject, w_subject},
    {"item:Sensitivity", 0, F_ITEM, always, w_sensitivity},
    {"item:Body", 0, F_ITEM, has_body, w_body},
    {"item:Categories", 0, F_ITEM, has_categories, w_categories},
    {"item:Importance", 0, F_ITEM, always, w_importance},
    {"item:ReminderIsSet", 0, F_ITEM, always, w_reminder_set},
    {"item:ReminderMinutesBeforeStart", 0, F_ITEM, has_reminder, w_reminder_minutes},
    {STAMP_ORGANIZER, 1, F_SERIES, has_organizer, w_organizer},
    {STAMP_TZID, 1, F_SERIES, has_tzid, w_tzid},
    {STAMP_URL, 1, F_SERIES, has_url, w_url},
    {STAMP_ROLE, 1, F_SERIES, has_role, w_role},
    {STAMP_TRAVEL, 1, F_SERIES, has_travel, w_travel},
    {"calendar:UID", 0, F_CREATE | F_STORED, has_uid, w_uid},
    {"calendar:Start", 0, F_ITEM, always, w_start},
    {"calendar:End", 0, F_ITEM, always, w_end},
    {"calendar:IsAllDayEvent", 0, F_ITEM, always, w_all_day},
    {"calendar:LegacyFreeBusyStatus", 0, F_ITEM, always, w_busy},
    {"calendar:Location", 0, F_ITEM, has_location, w_location},
    {"calendar:CalendarItemType", 0, F_STORED, always, w_type},
    {"calendar:RequiredAttendees", 0, F_ITEM, has_required, w_required},
    {"calendar:OptionalAttendees", 0, F_ITEM, has_optional, w_optional},
    {"calendar:Resources", 0, F_ITEM, has_resources, w_resources},
    {"calendar:Recurrence", 0, F_SERIES, has_recurrence, w_recurrence},
    {"calendar:StartTimeZone", 0, F_SERIES, always, w_start_tz},
    {"calendar:EndTimeZone", 0, F_SERIES, always, w_end_tz},
};
#define NFIELDS (sizeof FIELDS / sizeof FIELDS[0])

static int is_stamp_end(size_t i)
{
    return !strcmp(FIELDS[i].uri, STAMP_TRAVEL);
}

void ews_item_write_create(const ews_item *it, const char *source_key,
                           const char *tag, sbuf *b)
{
    sbuf_cat(b, "<t:CalendarItem>");
    for (size_t i = 0; i < NFIELDS; i++) {
        if ((FIELDS[i].where & F_CREATE) && FIELDS[i].present(it)) FIELDS[i].write(it, b);
        if (is_stamp_end(i)) {
            if (source_key) ext_prop(b, EWS_PROP_SOURCE, source_key);
            if (tag) ext_prop(b, EWS_PROP_TAG, tag);
        }
    }
    sbuf_cat(b, "</t:CalendarItem>");
}

static void field_path(const field *f, sbuf *b)
{
    if (f->ext) ext_uri(b, f->uri);
    else sbuf_printf(b, "<t:FieldURI FieldURI=\"%s\"/>", f->uri);
}

/* The fields whose setting drops a series' exceptions in Exchange. */
static int is_pattern(const field *f)
{
    static const char *const P[] = {"calendar:Recurrence", "calendar:Start", "calendar:End",
                                    "calendar:StartTimeZone", "calendar:EndTimeZone",
                                    "calendar:IsAllDayEvent"};
    for (size_t i = 0; i < sizeof P / sizeof *P; i++)
        if (!strcmp(f->uri, P[i])) return 1;
    return 0;
}

static void write_updates_but(const ews_item *it, int where, int keep_pattern, sbuf *b)
{
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &FIELDS[i];
        if (!(f->where & where) || (keep_pattern && is_pattern(f))) continue;
        if (!f->present(it)) {
            sbuf_cat(b, "<t:DeleteItemField>");
            field_path(f, b);
            sbuf_cat(b, "</t:DeleteItemField>");
            continue;
        }
        sbuf_cat(b, "<t:SetItemField>");
        field_path(f, b);
        sbuf_cat(b, "<t:CalendarItem>");
        f->write(it, b);
        sbuf_cat(b, "</t:CalendarItem></t:SetItemField>");
    }
}

static void write_updates(const ews_item *it, int where, sbuf *b)
{
    write_updates_but(it, where, 0, b);
}

static void item_change(const ews_item *it, const char *item_id, const char *change_key,
                        int keep_pattern, sbuf *b)
{
    sbuf_cat(b, "<t:ItemChange><t:ItemId Id=\"");
    sbuf_xml(b, item_id);
    if (change_key && *change_key) {
        sbuf_cat(b, "\" ChangeKey=\"");
        sbuf_xml(b, change_key);
    }
    sbuf_cat(b, "\"/><t:Updates>");
    write_updates_but(it, F_UPDATE, keep_pattern, b);
    sbuf_cat(b, "</t:Updates></t:ItemChange>");
}

void ews_item_write_update_keeping_pattern(const ews_item *it, const char *item_id, sbuf *b)
{
    item_change(it, item_id, NULL, 1, b);
}

static int same_instant(const ews_item *a, const char *x, const ews_item *b, const char *y,
                        const tzmap *m, tzdef_cache *zones)
{
    long long s, t;
    return occur_parse_xs(x, ews_item_zone(a, m, zones), &s) == 0 &&
           occur_parse_xs(y, ews_item_zone(b, m, zones), &t) == 0 && s == t;
}

int ews_item_same_pattern(const ews_item *a, const ews_item *b, const tzmap *m,
                          tzdef_cache *zones)
{
    if (a->has_recurrence != b->has_recurrence || a->all_day != b->all_day) return 0;
    sbuf x, y;
    sbuf_init(&x);
    sbuf_init(&y);
    recur_write(&a->recur, &x);
    recur_write(&b->recur, &y);
    int same = x.s && y.s && !strcmp(x.s, y.s);
    sbuf_free(&x);
    sbuf_free(&y);
    return same && same_instant(a, a->start, b, b->start, m, zones) &&
           same_instant(a, a->end, b, b->end, m, zones);
}

void ews_item_write_update(const ews_item *it, const char *item_id,
                           const char *change_key, sbuf *b)
{
    item_change(it, item_id, change_key, 0, b);
}

static void occurrence_id(const char *master_id, int index, sbuf *b)
{
    sbuf_cat(b, "<t:OccurrenceItemId RecurringMasterId=\"");
    sbuf_xml(b, master_id);
    sbuf_printf(b, "\" InstanceIndex=\"%d\"/>", index);
}

const ews_occurrence *ews_item_occurrence(const ews_item *it, int index)
{
    for (size_t i = 0; it && i < it->nocc; i++)
        if (it->occ[i].index == index) return &it->occ[i];
    return NULL;
}

static int deleted_in(const ews_item *have, int index)
{
    const ews_occurrence *o = ews_item_occurrence(have, index);
    return o && !o->item;
}

void ews_item_write_occurrences(const ews_item *it, const char *master_id,
                                sbuf *deletes, sbuf *updates)
{
    ews_item_write_occurrence_changes(it, NULL, master_id, deletes, updates);
}

void ews_item_write_occurrence_changes(const ews_item *it, const ews_item *have,
                                       const char *master_id, sbuf *deletes, sbuf *updates)
{
    for (size_t i = 0; i < it->nocc; i++) {
        const ews_occurrence *o = &it->occ[i];
        if (!o->item) {
            if (!deleted_in(have, o->index)) occurrence_id(master_id, o->index, deletes);
            continue;
        }
        sbuf_cat(updates, "<t:ItemChange>");
        occurrence_id(master_id, o->index, updates);
        sbuf_cat(updates, "<t:Updates>");
        write_updates(o->item, F_OCC, updates);
        sbuf_cat(updates, "</t:Updates></t:ItemChange>");
    }
}

static void write_stored_one(const ews_item *it, const char *item_id, const char *recurrence_id,
                             const ews_item *master, sbuf *b)
{
    sbuf_cat(b, "<t:CalendarItem><t:ItemId Id=\"");
    sbuf_xml(b, item_id);
    sbuf_cat(b, "\" ChangeKey=\"1\"/>");
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &FIELDS[i];
        if (!strcmp(f->uri, "calendar:UID") && recurrence_id) {
            if (master->uid) elem(b, "UID", master->uid);
            elem(b, "RecurrenceId", recurrence_id);
            continue;
        }
        if (!strcmp(f->uri, "calendar:CalendarItemType") && recurrence_id) {
            elem(b, "CalendarItemType", "Exception");
            continue;
        }
        if (!(f->where & F_STORED) || !f->present(it)) continue;
        f->write(it, b);
        if (!strcmp(f->uri, "calendar:Recurrence")) write_occurrence_lists(it, item_id, b);
    }
    sbuf_cat(b, "</t:CalendarItem>");
}

void ews_item_write_stored(const ews_item *it, const char *item_id, sbuf *b)
{
    write_stored_one(it, item_id, NULL, it, b);
    for (size_t i = 0; i < it->nocc; i++) {
        if (!it->occ[i].item) continue;
        char id[256];
        snprintf(id, sizeof id, "%s-%d", item_id, it->occ[i].index);
        write_stored_one(it->occ[i].item, id, it->occ[i].original_start, it, b);
    }
}

void ews_item_fingerprint(const ews_item *it, char out[17])
{
    sbuf b, d;
    sbuf_init(&b);
    sbuf_init(&d);
    ews_item_write_create(it, NULL, NULL, &b);
    ews_item_write_occurrences(it, "", &d, &b);
    sbuf_cat(&b, d.s ? d.s : "");
    uint64_t h = hash_bytes(HASH_BASIS_STORED, b.s, b.len);
    sbuf_free(&b);
    sbuf_free(&d);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}
