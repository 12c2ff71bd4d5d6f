/* ews_item.h — the Exchange side of an event: calendar items and the XML
 * EWS wants for them.
 *
 * One Apple calendar object resource (one UID) becomes an ews_event: its
 * main item (a single or a recurring master, with its deleted and modified
 * occurrences), its travel-time appointments, or — when Exchange cannot
 * express its repeats — one single item per occurrence. ical_in.h builds
 * events from iCalendar, ews_in.h from EWS XML, ical_out.h turns them back
 * into iCalendar.
 *
 * The writers emit elements in the schema's order: a <t:CalendarItem> for
 * CreateItem, a <t:ItemChange> that sets every mapped property in place
 * (UpdateItem) and deletes the ones the event no longer has, the occurrence
 * changes to apply once the master exists, and the stored form (what GetItem
 * returns, with DeletedOccurrences/ModifiedOccurrences). No meeting request
 * is ever implied by what is written here.
 */
#ifndef EWS_ITEM_H
#define EWS_ITEM_H

#include "cb_err.h"
#include "people.h"
#include "recur.h"
#include "sbuf.h"
#include "tzdef.h"
#include "tzmap.h"

/* calbridge's private property set: stamps on every item it creates. */
#define EWS_PROPSET_GUID "3c8d6a0e-5f1b-4b7e-9a2d-c41b0e7f5a19"
#define EWS_PROP_SOURCE "calbridge-source"
#define EWS_PROP_TAG "calbridge-tag"
/* What Exchange accepts: ReminderMinutesBeforeStart's schema maximum, and
 * the characters of a subject or location it keeps. */
#define EWS_MAX_REMINDER 2629800
#define EWS_MAX_SUBJECT 255

typedef struct ews_attendee {
    char *email;
    char *name;              /* CN, may be NULL */
    const char *response;    /* EWS ResponseType (static string) or NULL */
} ews_attendee;

typedef struct ews_attendees {
    ews_attendee *v;
    size_t n;
} ews_attendees;

typedef enum { ROLE_MAIN, ROLE_TRAVEL, ROLE_RETURN, ROLE_SINGLE } ews_role;

struct ews_item;

/* A change to one occurrence of a series, applied after the master exists. */
typedef struct ews_occurrence {
    int index;                   /* InstanceIndex, 1-based */
    char original_start[32];     /* UTC xs:dateTime */
    struct ews_item *item;       /* the modified occurrence; NULL = deleted */
} ews_occurrence;

typedef struct ews_item {
    ews_role role;
    char suffix[40];            /* added to the source key: "", "#travel", ... */
    char *uid;                  /* NULL for travel and expanded singles */
    char *subject, *body, *location, *url;
    char **categories;
    size_t ncategories;
    const char *importance;     /* Low, Normal, High */
    const char *sensitivity;    /* Normal, Private, Confidential */
    const char *busy;           /* LegacyFreeBusyStatus */
    char start[32], end[32];    /* UTC "Z", or floating midnight when all-day */
    int all_day;
    char *tzid;                 /* the Apple TZID, kept for the way back */
    const char *tz;             /* Windows ID (static or tzmap-owned), or NULL */
    tzdef *tzd;                 /* custom zone when tz is NULL */
    int reminder;               /* minutes before start, -1 for none */
    char *organizer;            /* SMTP, kept in a stamp: EWS's is read-only */
    ews_attendees required, optional, resources;
    int has_recurrence;
    ews_recurrence recur;
    ews_occurrence *occ;
    size_t nocc;
    int travel, travel_return;  /* Apple travel time, seconds (main item) */
} ews_item;

typedef struct ews_event {
    char *uid;
    ews_item **items;           /* items[0] is the main unless expanded */
    size_t n;
    int expanded;               /* repeats carried as single items */
    char *warnings;             /* "; "-separated, NULL when none */
    /* Read from EWS (ews_in.h) only, NULL otherwise: */
    char *item_id, *change_key; /* the main item's */
    char *source;               /* its calbridge-source stamp (the item's owner
                                 * can edit it: never trusted as a key) */
    char *tag;                  /* its calbridge-tag stamp (likewise) */
    long long modified;         /* LastModifiedTime, UTC seconds; 0 if absent */
    int companion;              /* calbridge's travel-time appointment of
                                 * another event (its role stamp): items[0]
                                 * is it; never carried on its own */
} ews_event;

typedef struct map_ctx {
    const people *people;
    const tzmap *tz;
    const char *default_tz;     /* IANA zone for floating and all-day times */
    int horizon_days;           /* how far unexpressible repeats are expanded */
    long long now;              /* UTC seconds; the horizon counts from here */
    const char *travel_subject; /* "Travel time: {summary}" when NULL */
    const char *reader;         /* whose per-user data iCalendar is read with
                                 * (peruser.h): the calendar's owner; NULL:
                                 * nobody's, CalendarServer's defaults */
} map_ctx;

ews_item *ews_item_new(void);
void ews_item_free(ews_item *it);
/* Records a change to occurrence index (changed NULL = deleted; it owns
 * changed from then on, also on failure). An index already recorded, or
 * 0, is ignored. CB_ENOMEM on failure. */
int ews_item_add_occurrence(ews_item *it, int index, const char *original_start,
                            ews_item *changed);
/* The change recorded for occurrence index of it (NULL it: none). */
const ews_occurrence *ews_item_occurrence(const ews_item *it, int index);
/* Orders it->occ by InstanceIndex, the order EWS lists them in. */
void ews_item_sort_occurrences(ews_item *it);
/* Appends it to ev (ev owns it from then on, also on failure). */
int ews_event_add(ews_event *ev, ews_item *it);
void ews_event_warn(ews_event *ev, const char *what);
void ews_event_free(ews_event *ev);

/* <t:CalendarItem> for CreateItem; source_key and tag go into extended
 * properties (both may be NULL). */
void ews_item_write_create(const ews_item *it, const char *source_key,
                           const char *tag, sbuf *b);
/* <t:ItemChange> for UpdateItem on item_id/change_key. */
void ews_item_write_update(const ews_item *it, const char *item_id,
                           const char *change_key, sbuf *b);
/* The same, leaving a series' pattern alone (Recurrence, Start, End and
 * their zones): Exchange drops a series' exceptions when they are set, so
 * they are set only when they change (ews_item_same_pattern). */
void ews_item_write_update_keeping_pattern(const ews_item *it, const char *item_id, sbuf *b);
/* Whether series a and b (one read from Exchange, say) have the same
 * pattern: rule, range, start, end, all-day, in UTC. */
int ews_item_same_pattern(const ews_item *a, const ews_item *b, const tzmap *m,
                          tzdef_cache *zones);
/* The occurrence changes of a master created as master_id: the body of one
 * DeleteItem (<t:OccurrenceItemId .../> list, to *deletes) and of one
 * UpdateItem (<t:ItemChange> list, to *updates). Either may stay empty.
 * Deletions also in have (the series as Exchange holds it; NULL: none)
 * are left out: Exchange refuses to delete an occurrence twice. */
void ews_item_write_occurrences(const ews_item *it, const char *master_id,
                                sbuf *deletes, sbuf *updates);
void ews_item_write_occurrence_changes(const ews_item *it, const ews_item *have,
                                       const char *master_id, sbuf *deletes, sbuf *updates);
/* The item as GetItem returns it once created and its occurrence changes
 * applied: ItemId, CalendarItemType, ModifiedOccurrences and
 * DeletedOccurrences on the master, then one CalendarItem per exception. */
void ews_item_write_stored(const ews_item *it, const char *item_id, sbuf *b);
/* 16 hex digits identifying the content written (source key excluded). */
void ews_item_fingerprint(const ews_item *it, char out[17]);

/* The icaltimezone the item's times are expressed in (NULL when all-day
 * with no zone, meaning floating). zones keeps built ones alive; free it
 * with tzdef_cache_free(). */
icaltimezone *ews_item_zone(const ews_item *it, const tzmap *m, tzdef_cache *zones);

#endif
