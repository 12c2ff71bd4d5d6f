/* fake_side.h — an in-memory calendar side (bridge/side.h) for the engine's
 * unit tests, as isync tests its sync logic on two maildirs.
 *
 * A fake holds items (id, person, subject, tag, version) and a version
 * counter every change takes, so that a read from a cursor lists what
 * changed after it, a page at a time, the bridge's own writes included.
 * It answers nothing at once: every operation waits in its world's queue
 * until world_run(), one step per answer. A world can be made to "crash"
 * at step k — the answer of step k (and everything after it) never comes,
 * its effect applied or not — which is how the tests interrupt the engine
 * after every step and check what a new run recovers.
 * Faults the tests switch on: an item refused for its content, a person's
 * calendar unusable, per-item "busy" answers, a side down, and creation
 * answers lost after the item was made.
 */
#ifndef FAKE_SIDE_H
#define FAKE_SIDE_H

#include "../../bridge/side.h"

typedef struct fake_world fake_world;
typedef struct fake fake;

fake_world *world_new(void);
void world_free(fake_world *w);
/* Answers queued operations until none is left (or the world crashed);
 * returns how many it answered. */
long world_run(fake_world *w);
/* Step k (counted from now) is where the process dies: its answer, and
 * every later one, never comes. after_effect: step k's write is applied
 * first (the answer was lost, not the request). */
void world_crash_at(fake_world *w, long k, int after_effect);
int world_crashed(const fake_world *w);
/* Answers given so far. */
long world_steps(const fake_world *w);
/* A new process: what was queued is gone, answers come again. */
void world_revive(fake_world *w);

/* half: which half of a link it is (an Apple side places new items and
 * reads with one cursor for everyone; an Exchange one names new items,
 * reads per person and sends content only when fetched). */
fake *fake_new(fake_world *w, const people *pp, side_id half, size_t page_max);
side *fake_side(fake *f);

/* A user's edits: creates (id NULL) or replaces; returns the id. */
const char *fake_put(fake *f, const person *p, const char *id, const char *subject);
int fake_del(fake *f, const char *id);
/* The id of p's live item with subject, or NULL. */
const char *fake_find(fake *f, const person *p, const char *subject);

/* p's live items, as "subject" lines sorted and joined with '\n' (caller
 * frees), and their number. */
char *fake_subjects(fake *f, const person *p);
size_t fake_count(fake *f, const person *p);
/* Writes that changed something (creates, updates, deletions applied). */
long fake_writes(const fake *f);

typedef struct fake_faults {
    const char *bad_subject;   /* items with it are refused (CB_EREJECTED) */
    const person *down;        /* this person's calendar: CB_EMAILBOX */
    int busy;                  /* the next n applies answer CB_EBUSY per item */
    int lose;                  /* the next n creating applies: made, answer lost */
    int side_down;             /* every operation: CB_EIO */
} fake_faults;
fake_faults *fake_faults_of(fake *f);

#endif
