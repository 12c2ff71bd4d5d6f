/* people.h — the people map: which Apple calendar home belongs to which
 * Exchange mailbox, in which migration wave, and what kind of principal it is.
 *
 * The map is a CSV file, one person per line:
 *     owner_uid,smtp,wave,kind
 * owner_uid is CALENDAR_HOME.OWNER_UID (a directory GUID), smtp the mailbox,
 * wave a non-negative integer, kind one of user, room, resource. Blank lines
 * and lines starting with '#' are ignored; a first line equal to the header
 * above is skipped. Every error names the file and line.
 */
#ifndef PEOPLE_H
#define PEOPLE_H

#include <stddef.h>
#include "cb_err.h"

typedef enum { PERSON_USER, PERSON_ROOM, PERSON_RESOURCE } person_kind;

typedef struct person {
    char *owner_uid;
    char *smtp;        /* lower-cased */
    int wave;
    person_kind kind;
    int line;          /* where the map lists it */
} person;

typedef struct people {
    person *v;
    size_t n;
    /* v sorted by owner_uid and by smtp, so that a look-up is a binary
     * search (10,000 people are looked up per event and per link). */
    person **by_uid, **by_smtp;
} people;

/* Parses text (name is used in messages). On success *out owns everything;
 * on failure *out is NULL and err says file:line: what is wrong. */
int people_parse(const char *text, const char *name, people **out, cb_err *err);
int people_load(const char *path, people **out, cb_err *err);
void people_free(people *p);

/* O(log n); NULL when absent. */
const person *people_by_uid(const people *p, const char *owner_uid);
/* Case-insensitive; accepts "mailto:" prefixed addresses. */
const person *people_by_smtp(const people *p, const char *smtp);
const char *person_kind_name(person_kind k);

#endif
