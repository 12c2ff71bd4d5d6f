/* ews_item.h — one Apple event as the Exchange calendar item it becomes.
 *
 * ews_item_from_ical() is pure: iCalendar text in, an ews_item out, no I/O.
 * The writers turn an item into the XML EWS wants, in the schema's element
 * order: a <t:CalendarItem> for CreateItem, or a <t:ItemChange> that sets
 * every mapped property in place (UpdateItem) and deletes the ones the
 * event no longer has. Both carry SendToNone-safe content only: no meeting
 * request is ever implied by what is written here.
 *
 * Carried today: SUMMARY, DESCRIPTION, LOCATION, CLASS, TRANSP /
 * X-MICROSOFT-CDO-BUSYSTATUS / STATUS, DTSTART/DTEND/DURATION with TZID,
 * all-day, the first VALARM, ATTENDEE (required, optional, room/resource)
 * and simple RRULEs. What an event has that is not carried is listed in
 * item->warnings, so the caller can report it per event.
 */
#ifndef EWS_ITEM_H
#define EWS_ITEM_H

#include "cb_err.h"
#include "people.h"
#include "sbuf.h"
#include "tzmap.h"

/* calbridge's private property set: stamps on every item it creates. */
#define EWS_PROPSET_GUID "3c8d6a0e-5f1b-4b7e-9a2d-c41b0e7f5a19"
#define EWS_PROP_SOURCE "calbridge-source"
#define EWS_PROP_TAG "calbridge-tag"

typedef struct ews_attendee {
    char *email;
    char *name;   /* CN, may be NULL */
} ews_attendee;

typedef struct ews_attendees {
    ews_attendee *v;
    size_t n;
} ews_attendees;

typedef enum {
    RECUR_DAILY = 1, RECUR_WEEKLY, RECUR_ABS_MONTHLY, RECUR_REL_MONTHLY,
    RECUR_ABS_YEARLY, RECUR_REL_YEARLY
} recur_kind;

typedef enum { RANGE_NOEND, RANGE_END_DATE, RANGE_NUMBERED } recur_range;

/* DaysOfWeek values beyond the seven days. */
enum { DOW_DAY = 7, DOW_WEEKDAY = 8, DOW_WEEKENDDAY = 9 };

typedef struct ews_recurrence {
    recur_kind kind;
    int interval;
    unsigned days;          /* Weekly: bit 0 = Sunday ... bit 6 = Saturday */
    int day_of_week;        /* Relative*: 0..6 Sunday..Saturday, or DOW_* */
    int week_index;         /* Relative*: 1..4, 5 = Last */
    int day_of_month;       /* Absolute*: 1..31 */
    int month;              /* *Yearly: 1..12 */
    int first_day_of_week;  /* Weekly: 0..6 */
    recur_range range;
    char start_date[11];    /* YYYY-MM-DD in the series' zone */
    char end_date[11];
    int count;
} ews_recurrence;

typedef struct ews_item {
    char *uid;
    char *subject, *body, *location;
    const char *sensitivity;    /* Normal, Private, Confidential */
    const char *busy;           /* LegacyFreeBusyStatus */
    char start[32], end[32];    /* xs:dateTime: UTC "Z", or floating all-day */
    const char *tz;             /* Windows zone ID (borrowed from the tzmap) */
    int all_day;
    int reminder;               /* minutes before start, -1 for none */
    ews_attendees required, optional, resources;
    int has_recurrence;
    ews_recurrence recur;
    char *warnings;             /* "; "-separated, NULL when none */
} ews_item;

typedef struct map_ctx {
    const people *people;
    const tzmap *tz;
    const char *default_tz;     /* IANA zone for floating and all-day times */
} map_ctx;

/* Maps the event in ics (one calendar object resource: a master and maybe
 * overrides sharing a UID). CB_EUNSUPPORTED when there is nothing to carry
 * (no VEVENT) or the event cannot be expressed yet; CB_EPARSE when ics is
 * malformed. err names the UID and the reason. */
int ews_item_from_ical(const char *ics, const map_ctx *ctx, ews_item **out,
                       cb_err *err);
void ews_item_free(ews_item *it);

/* <t:CalendarItem>: source_key and tag go into extended properties (tag may
 * be NULL). */
void ews_item_write_create(const ews_item *it, const char *source_key,
                           const char *tag, sbuf *b);
/* <t:ItemChange> for UpdateItem on item_id/change_key. */
void ews_item_write_update(const ews_item *it, const char *item_id,
                           const char *change_key, sbuf *b);
/* 16 hex digits identifying the content written (source key excluded). */
void ews_item_fingerprint(const ews_item *it, char out[17]);

#endif
