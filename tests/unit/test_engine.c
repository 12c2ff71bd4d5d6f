/* The reconcile engine (bridge/engine/reconcile.h) against two in-memory
 * sides (fake_side.h) and a real LMDB state, without PostgreSQL or EWS.
 *
 * Each scenario is a table row: edits synced first, the edits under test,
 * and what must hold once they are carried. Every row runs once straight
 * through, and then once for every step of the cycle that carries its
 * edits, the process "dying" at that step — before and after that step's
 * write took effect — and a new process (a new engine on the same state
 * and the same sides) finishing the job. Whatever the step, the rows'
 * checks must hold: nothing lost, nothing doubled, no intent left.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../bridge/engine/reconcile.h"
#include "../../state/keys.h"
#include "fake_side.h"

#define CRASHED 1000

typedef struct env {
    char dir[64];
    store *st;
    people *pp;
    config cfg;
    report rep;
    fake_world *w;
    fake *apple, *ex;
    reconcile *eng;
    int force, done, rc;
    const person *alice, *bob, *carol;   /* Apple, Exchange, Apple authority */
} env;

static void engine_open(env *e)
{
    reconcile_deps d = {&e->cfg, e->pp, e->st, &e->rep,
                        {fake_side(e->apple), fake_side(e->ex)}, e->force};
    cb_err err = {0};
    assert_int_equal(reconcile_new(&d, &e->eng, &err), CB_OK);
}

static void env_open(env *e)
{
    memset(e, 0, sizeof *e);
    cb_err err = {0};
    snprintf(e->dir, sizeof e->dir, "/tmp/cbengine.XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    assert_int_equal(store_open(e->dir, &e->st, &err), CB_OK);
    assert_int_equal(people_parse("owner_uid,smtp,wave,kind\n"
                                  "alice,alice@example.org,1,user\n"
                                  "bob,bob@example.org,1,user\n"
                                  "carol,carol@example.org,2,user\n", "people", &e->pp, &err),
                     CB_OK);
    e->alice = &e->pp->v[0];
    e->bob = &e->pp->v[1];
    e->carol = &e->pp->v[2];
    store_txn *t;
    assert_int_equal(store_begin(e->st, 1, &t, &err), CB_OK);
    assert_int_equal(store_authority_put(t, "bob", AUTHORITY_EXCHANGE, &err), CB_OK);
    assert_int_equal(store_commit(t, &err), CB_OK);
    e->cfg.batch_size = 2;   /* several batches per person */
    e->cfg.mass_delete_percent = 20;
    e->cfg.mass_delete_min = 10;
    report_init(&e->rep);
    e->w = world_new();
    e->apple = fake_new(e->w, e->pp, SIDE_APPLE, 1000);   /* one page, as CalendarServer's */
    e->ex = fake_new(e->w, e->pp, SIDE_EXCHANGE, 3);      /* several pages */
    engine_open(e);
}

static void env_close(env *e)
{
    reconcile_free(e->eng);
    side_close(fake_side(e->apple));
    side_close(fake_side(e->ex));
    world_free(e->w);
    report_free(&e->rep);
    people_free(e->pp);
    store_close(e->st);
    char path[128];
    snprintf(path, sizeof path, "%s/data.mdb", e->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/lock.mdb", e->dir);
    unlink(path);
    assert_int_equal(rmdir(e->dir), 0);
}

/* A new process: the engine in flight is gone, the state and both sides
 * stay. */
static void env_restart(env *e)
{
    reconcile_free(e->eng);
    world_revive(e->w);
    engine_open(e);
}

static void on_done(void *ud, int rc, const cb_err *err)
{
    (void)err;
    env *e = ud;
    e->done = 1;
    e->rc = rc;
}

static int pass(env *e, side_id from)
{
    cb_err err = {0};
    e->done = 0;
    int rc = reconcile_pass(e->eng, from, NULL, 0, 0, on_done, e, &err);
    if (rc) return rc;
    world_run(e->w);
    if (world_crashed(e->w)) return CRASHED;
    assert_true(e->done);
    return e->rc;
}

/* The service's cycle: Apple, Exchange, and Apple again when the Exchange
 * pass queued rewrites for it. The first error, or CRASHED. */
static int cycle(env *e)
{
    int rc = pass(e, SIDE_APPLE);
    if (rc == CRASHED) return rc;
    int rc2 = pass(e, SIDE_EXCHANGE);
    if (rc2 == CRASHED) return rc2;
    if (!rc) rc = rc2;
    if (reconcile_queued(e->eng, SIDE_APPLE, NULL, NULL) > 0) {
        rc2 = pass(e, SIDE_APPLE);
        if (rc2 == CRASHED) return rc2;
        if (!rc) rc = rc2;
    }
    return rc;
}

/* Cycles until one succeeds and writes nothing (at most six); returns the
 * last one's rc. */
static int settle(env *e)
{
    int rc = 0;
    for (int i = 0; i < 6; i++) {
        long before = fake_writes(e->apple) + fake_writes(e->ex);
        rc = cycle(e);
        if (rc == CB_OK && fake_writes(e->apple) + fake_writes(e->ex) == before) break;
    }
    return rc;
}

static int count_intent(void *ud, const intent_rec *in)
{
    (void)in;
    (*(int *)ud)++;
    return 0;
}

static int intents(env *e)
{
    store_txn *t;
    int n = 0;
    assert_int_equal(store_begin(e->st, 0, &t, NULL), CB_OK);
    store_intent_each(t, count_intent, &n, NULL);
    store_abort(t);
    return n;
}

static int count_name(void *ud, const char *name, const char *value)
{
    (void)name;
    (void)value;
    (*(int *)ud)++;
    return 0;
}

static int named(env *e, const char *prefix)
{
    store_txn *t;
    int n = 0;
    assert_int_equal(store_begin(e->st, 0, &t, NULL), CB_OK);
    store_each(t, prefix, count_name, &n, NULL);
    store_abort(t);
    return n;
}

/* Each person's mirror side holds exactly what their authority side does. */
static void agree(env *e, const person *p)
{
    char *a = fake_subjects(e->apple, p), *x = fake_subjects(e->ex, p);
    assert_string_equal(a, x);
    free(a);
    free(x);
}

static void agree_all(env *e)
{
    agree(e, e->alice);
    agree(e, e->bob);
    agree(e, e->carol);
    assert_int_equal(intents(e), 0);
}

/* ---- the rows ------------------------------------------------------------ */

static void nothing(env *e)
{
    (void)e;
}

static void create_change(env *e)
{
    fake_put(e->apple, e->alice, NULL, "A1");
    fake_put(e->apple, e->alice, NULL, "A2");
    fake_put(e->apple, e->alice, NULL, "A3");
    fake_put(e->apple, e->carol, NULL, "C1");
    fake_put(e->ex, e->bob, NULL, "B1");
    fake_put(e->ex, e->bob, NULL, "B2");
}

static void create_check(env *e)
{
    settle(e);
    agree_all(e);
    assert_int_equal(fake_count(e->ex, e->alice), 3);
    assert_int_equal(fake_count(e->apple, e->bob), 2);
}

static void update_change(env *e)
{
    fake_put(e->apple, e->alice, fake_find(e->apple, e->alice, "A1"), "A1 moved");
    fake_put(e->ex, e->bob, fake_find(e->ex, e->bob, "B1"), "B1 moved");
}

static void update_check(env *e)
{
    settle(e);
    agree_all(e);
    assert_non_null(fake_find(e->ex, e->alice, "A1 moved"));
    assert_non_null(fake_find(e->apple, e->bob, "B1 moved"));
    assert_int_equal(fake_count(e->ex, e->alice), 3);
}

static void delete_change(env *e)
{
    fake_del(e->apple, fake_find(e->apple, e->alice, "A2"));
    fake_del(e->ex, fake_find(e->ex, e->bob, "B2"));
}

static void delete_check(env *e)
{
    settle(e);
    agree_all(e);
    assert_null(fake_find(e->ex, e->alice, "A2"));
    assert_null(fake_find(e->apple, e->bob, "B2"));
}

/* The bridge's own writes, read back on the other side, write nothing. */
static void echo_check(env *e)
{
    long before = fake_writes(e->apple) + fake_writes(e->ex);
    assert_int_equal(cycle(e), CB_OK);
    assert_int_equal(cycle(e), CB_OK);
    assert_int_equal(fake_writes(e->apple) + fake_writes(e->ex), before);
    assert_int_equal((int)e->rep.conflicts, 0);
    agree_all(e);
}

/* Edits on a person's mirror side: recorded, and overwritten. */
static void conflict_change(env *e)
{
    fake_put(e->ex, e->alice, fake_find(e->ex, e->alice, "A1"), "A1 edited in Outlook");
    fake_put(e->apple, e->bob, fake_find(e->apple, e->bob, "B1"), "B1 edited in Calendar");
}

static void conflict_check(env *e)
{
    settle(e);
    agree_all(e);
    assert_non_null(fake_find(e->ex, e->alice, "A1"));
    assert_non_null(fake_find(e->apple, e->bob, "B1"));
    assert_true(e->rep.conflicts >= 2);
    char prefix[KEY_MAX];
    key_prefix(KEY_CONFLICT, NULL, prefix);
    assert_true(named(e, prefix) >= 2);
}

static void many_before(env *e)
{
    char s[16];
    for (int i = 0; i < 12; i++) {
        snprintf(s, sizeof s, "M%02d", i);
        fake_put(e->apple, e->alice, NULL, s);
    }
}

static void mass_delete_change(env *e)
{
    char s[16];
    for (int i = 0; i < 10; i++) {
        snprintf(s, sizeof s, "M%02d", i);
        fake_del(e->apple, fake_find(e->apple, e->alice, s));
    }
}

static void mass_delete_check(env *e)
{
    settle(e);
    assert_int_equal(fake_count(e->ex, e->alice), 12);   /* held back */
    assert_true(e->rep.held_back >= 1);
    e->force = 1;                                        /* --force-delete */
    env_restart(e);
    settle(e);
    agree_all(e);
    assert_int_equal(fake_count(e->ex, e->alice), 2);
}

/* alice's authority moves to Exchange (as cutover does it), and she goes
 * on in Outlook. */
static void flip_change(env *e)
{
    store_txn *t;
    char name[KEY_MAX];
    assert_int_equal(store_begin(e->st, 1, &t, NULL), CB_OK);
    assert_int_equal(store_authority_put(t, "alice", AUTHORITY_EXCHANGE, NULL), CB_OK);
    key_name(KEY_SYNCSTATE, e->alice->smtp, name);
    store_del(t, name, NULL);
    assert_int_equal(store_commit(t, NULL), CB_OK);
    fake_put(e->ex, e->alice, NULL, "A4 made in Outlook");
}

static void flip_check(env *e)
{
    long before = fake_writes(e->ex);
    settle(e);
    agree_all(e);
    assert_non_null(fake_find(e->apple, e->alice, "A4 made in Outlook"));
    assert_int_equal(fake_count(e->apple, e->alice), 4);   /* matched, not re-created */
    assert_int_equal(fake_writes(e->ex), before);          /* nothing written back */
}

static void bad_item_change(env *e)
{
    fake_faults_of(e->ex)->bad_subject = "POISON";
    fake_put(e->apple, e->alice, NULL, "POISON");
    fake_put(e->apple, e->alice, NULL, "next to it");
}

static void bad_item_check(env *e)
{
    settle(e);
    assert_non_null(fake_find(e->ex, e->alice, "next to it"));
    assert_null(fake_find(e->ex, e->alice, "POISON"));
    assert_true(e->rep.failed >= 1);
    char prefix[KEY_MAX];
    key_prefix(KEY_FAILED, NULL, prefix);
    assert_int_equal(named(e, prefix), 1);
    fake_put(e->apple, e->alice, fake_find(e->apple, e->alice, "POISON"), "cured");
    settle(e);
    agree_all(e);
    assert_int_equal(named(e, prefix), 0);
}

static void bad_person_change(env *e)
{
    fake_faults_of(e->ex)->down = e->carol;
    fake_put(e->apple, e->carol, NULL, "C2");
    fake_put(e->apple, e->alice, NULL, "A5");
}

static void bad_person_check(env *e)
{
    settle(e);
    assert_non_null(fake_find(e->ex, e->alice, "A5"));   /* the others went on */
    assert_null(fake_find(e->ex, e->carol, "C2"));
    assert_true(e->rep.held_back >= 1);
    fake_faults_of(e->ex)->down = NULL;
    settle(e);
    agree_all(e);
}

static void busy_change(env *e)
{
    fake_faults_of(e->ex)->busy = 1;
    fake_put(e->apple, e->alice, NULL, "A6");
}

static void busy_check(env *e)
{
    settle(e);
    agree_all(e);
    assert_int_equal(fake_count(e->ex, e->alice), 4);
}

static void lost_change(env *e)
{
    fake_faults_of(e->ex)->lose = 1;
    fake_put(e->apple, e->alice, NULL, "A7");
}

static void lost_check(env *e)
{
    settle(e);
    agree_all(e);
    assert_int_equal(fake_count(e->ex, e->alice), 4);   /* made once */
}

static void synced_before(env *e)
{
    create_change(e);
}

static void both_before(env *e)
{
    create_change(e);
}

typedef struct row {
    const char *name;
    void (*before)(env *e);   /* synced straight through first */
    void (*change)(env *e);   /* the edits whose cycle is interrupted */
    void (*check)(env *e);    /* once they are carried */
} row;

static const row ROWS[] = {
    {"create", nothing, create_change, create_check},
    {"update", synced_before, update_change, update_check},
    {"delete", synced_before, delete_change, delete_check},
    {"echo", both_before, nothing, echo_check},
    {"conflict", synced_before, conflict_change, conflict_check},
    {"mass delete", many_before, mass_delete_change, mass_delete_check},
    {"authority flip", synced_before, flip_change, flip_check},
    {"a failing item", synced_before, bad_item_change, bad_item_check},
    {"a failing person", synced_before, bad_person_change, bad_person_check},
    {"a busy side", synced_before, busy_change, busy_check},
    {"a lost answer", synced_before, lost_change, lost_check},
};

/* Runs row r, the process dying at the crash-th step of the cycles that
 * carry its edits (0: never; after: once that step's write took effect).
 * Returns how many steps those cycles took. */
static long run_row(const row *r, long crash, int after)
{
    env e;
    env_open(&e);
    r->before(&e);
    settle(&e);
    r->change(&e);
    if (getenv("ENGINE_TRACE")) fprintf(stderr, "run %s crash %ld after %d\n", r->name, crash, after);
    long start = world_steps(e.w);
    if (crash) world_crash_at(e.w, crash, after);
    for (int i = 0; i < 3; i++) {   /* the cycles that carry the edits */
        if (cycle(&e) == CRASHED) {
            env_restart(&e);        /* a new process finishes the job */
            break;
        }
    }
    long steps = world_steps(e.w) - start;
    r->check(&e);
    env_close(&e);
    return steps;
}

static void straight_through(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof ROWS / sizeof *ROWS; i++) {
        long n = run_row(&ROWS[i], 0, 0);
        print_message("# %-18s %3ld steps\n", ROWS[i].name, n);
    }
}

static void interrupted_at_every_step(void **st)
{
    (void)st;
    long runs = 0;
    for (size_t i = 0; i < sizeof ROWS / sizeof *ROWS; i++) {
        long n = run_row(&ROWS[i], 0, 0);
        for (long k = 1; k <= n; k++)
            for (int after = 0; after < 2; after++, runs++) run_row(&ROWS[i], k, after);
    }
    print_message("# %ld interrupted runs, each recovered\n", runs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(straight_through),
        cmocka_unit_test(interrupted_at_every_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
