/* side.h — the contract of a calendar side: what the reconcile engine
 * (engine/reconcile.h) asks of CalendarServer (apple/side_apple.h), of
 * Exchange through EWS (exchange/side_ews.h), and of any side added later.
 * The engine includes this header and nothing of a side's protocol.
 *
 * Items are named by the side's own id (Apple: the source key
 * "owner/calendar/name"; EWS: the ItemId) and carry a version (Apple: the
 * object's REVISION; EWS: the ChangeKey). Content travels as an ews_event,
 * the neutral model of mapping/ews_item.h: each side translates to and from
 * its own format (iCalendar, EWS XML) inside itself.
 *
 * Every operation is asynchronous: it returns CB_OK once started, and then
 * calls its callback exactly once — possibly before it returns (a side
 * backed by a local database may answer at once), so callers hold their
 * own reference across the call. A non-CB_OK return means it did not start
 * and the callback will not be called.
 *
 * How far a failure reaches is said by its code, the same for every
 * operation and every per-item result (isync's DRV_MSG_BAD / DRV_BOX_BAD /
 * DRV_STORE_BAD):
 *   item    CB_EINVAL, CB_EPARSE, CB_EUNSUPPORTED, CB_EREJECTED: this item's
 *           content was refused or cannot be read; it fails alone;
 *   gone    CB_ENOTFOUND: the item does not exist (any more);
 *   busy    CB_EBUSY: not done now, nothing lost; try this item again later;
 *   lost    CB_ELOST (apply, creates only): the answer was lost and the
 *           item may exist: look it up by its tag before writing it again;
 *   person  CB_EMAILBOX: this person's calendar cannot be used now; every
 *           other person goes on;
 *   side    CB_EIO, CB_EREMOTE, CB_ENOMEM: the side itself is unusable now
 *           (server down, connection lost); back off and try again later.
 */
#ifndef SIDE_H
#define SIDE_H

#include <stdio.h>
#include "../mapping/cb_err.h"
#include "../mapping/ews_item.h"
#include "../mapping/people.h"

/* The two places of the link record (state/store.h): the Apple half is
 * keyed by the source key, the Exchange half holds the mailbox's item. A
 * side fills one of them; Graph would fill the Exchange one. */
typedef enum { SIDE_APPLE = 0, SIDE_EXCHANGE = 1 } side_id;

typedef struct side side;

/* One change read from a side. */
typedef struct side_change {
    const person *p;        /* whose calendar */
    char *id;               /* the side's id of the item */
    char *version;          /* its version now ("" when unknown) */
    int deleted;            /* the item is gone */
    ews_event *ev;          /* its content when read with the change; NULL:
                             * fetch it (side_ops.fetch) */
    int code;               /* content not readable: an item-scope code, */
    char *why;              /* and why (NULL when code is CB_OK) */
    int skip;               /* not an event (a to-do, say): left alone */
    double modified;        /* when the change was made, UTC s (0 unknown) */
} side_change;

/* A page of changes, in the order they happened. */
typedef struct side_page {
    side_change *v;
    size_t n;
    char *cursor;           /* where the next read starts, once this page is
                             * carried ("" for "from the start") */
    int last;               /* nothing follows this page now */
    int full;               /* a full read: once its last page is carried,
                             * every live item of the people read has been
                             * listed in this read, and others are gone */
    char *note;             /* something the operator should know, or NULL */
} side_page;

/* One fetched item. */
typedef struct side_item {
    char *id;
    char *version;          /* its version now (NULL when unknown) */
    int code;               /* CB_OK with ev, or a code of the list above */
    char *why;
    ews_event *ev;
    int skip;               /* not an event to carry (a to-do; calbridge's
                             * own travel-time appointment): left alone */
} side_item;

typedef enum { SIDE_CREATE = 'C', SIDE_UPDATE = 'U', SIDE_DELETE = 'D' } side_op;

/* One write and, once applied, its result. */
typedef struct side_write {
    side_op op;
    const char *id;         /* update, delete: the item; create: the id
                             * side_ops.place chose ("" when the side names
                             * new items itself) */
    const char *key;        /* calbridge's source key (stamped, informative) */
    const char *tag;        /* calbridge's tag for this write (stamped on a
                             * create, found again by find_tag) */
    const ews_event *ev;    /* create, update */
    /* The result: */
    int code;
    char new_id[512];       /* the item's id (a create's, as assigned) */
    char version[512];      /* its version after the write */
    int incomplete;         /* applied, but not all of it (a series'
                             * exceptions): write it again on its next pass */
    char msg[512];          /* why it failed, or what was left out */
} side_write;

typedef void (*side_read_fn)(void *ud, side_page *page, const cb_err *err);
typedef void (*side_fetch_fn)(void *ud, side_item *v, size_t n, const cb_err *err);
typedef void (*side_apply_fn)(void *ud, side_write *w, size_t n, const cb_err *err);
typedef void (*side_found_fn)(void *ud, int found, const char *id, const char *version,
                              const cb_err *err);
typedef void (*side_signal_fn)(void *ud, const person *p);

/* Small strings a side keeps in calbridge's state across restarts, under
 * names of its own (at most 200 bytes; values at most 2 KB): get returns 0
 * and fills buf when name is there; put stores value durably ("" forgets
 * it) and returns 0, or -1 when the state cannot be written. */
typedef struct side_memo {
    int (*get)(void *ud, const char *name, char *buf, size_t size);
    int (*put)(void *ud, const char *name, const char *value);
    void *ud;
} side_memo;

typedef struct side_ops {
    const char *name;       /* "Apple", "Exchange": for people to read */
    side_id half;           /* which half of a link it fills */
    int per_person;         /* 1: one cursor per person (read gets n = 1);
                             * 0: one cursor for everyone */
    int pages_finite;       /* 1: each page of a read moves strictly on (a
                             * keyset), so a long read is not cut after
                             * RECONCILE_MAX_PAGES pages */

    /* Changes of people pp (n of them) since cursor (NULL or "": a full
     * read). done gets a page (the caller frees it, side_page_free) or
     * NULL and err: CB_EMAILBOX (per_person sides), a side code. A cursor
     * the side can no longer continue from is not an error: the side reads
     * in full instead (page->full, and a note). */
    int (*read)(side *s, const person *const *pp, size_t n, const char *cursor,
                side_read_fn done, void *ud, cb_err *err);

    /* The items ids (n of them, at most 100) of p. done gets one side_item
     * per id in the same order (the caller frees them, side_items_free),
     * or NULL and err (person or side code). */
    int (*fetch)(side *s, const person *p, const char *const *ids, size_t n,
                 side_fetch_fn done, void *ud, cb_err *err);

    /* Applies writes w (n, at most 100, all of p's) and fills each one's
     * result; done gets w back. A creation never invites or notifies
     * anyone. err is set only when every item failed the same way. */
    int (*apply)(side *s, const person *p, side_write *w, size_t n, side_apply_fn done,
                 void *ud, cb_err *err);

    /* Whether p's calendar holds the item created with tag (crash
     * recovery): found 1 with its id and version, 0, or err. */
    int (*find_tag)(side *s, const person *p, const char *tag, side_found_fn done, void *ud,
                    cb_err *err);

    /* The id a new item with ev's content gets in p's calendar, when the
     * side lets the writer choose it (writing twice to it is then
     * idempotent); "" when the side assigns ids. Synchronous. */
    int (*place)(side *s, const person *p, const ews_event *ev, char id[1024], cb_err *err);

    /* 1 when an item carried at version have already includes the change
     * that gave it version seen (no new content). */
    int (*covers)(const char *have, const char *seen);

    /* Calls fn when a person's calendar may have changed (NULL: the side
     * has no signals, poll it); memo keeps what the side needs across a
     * restart (its subscriptions). unsubscribe writes its counters to log. */
    int (*subscribe)(side *s, side_signal_fn fn, void *ud, const side_memo *memo, cb_err *err);
    void (*unsubscribe)(side *s, FILE *log);

    /* Whether calbridge may write this side as it needs to (privileges):
     * CB_OK, or CB_EINVAL saying what is missing. */
    int (*check)(side *s, cb_err *err);

    void (*close)(side *s);
} side_ops;

/* Every side begins with this. */
struct side {
    const side_ops *ops;
};

void side_page_free(side_page *pg);
void side_items_free(side_item *v, size_t n);
/* Closes s (NULL is a no-op). */
void side_close(side *s);

#endif
