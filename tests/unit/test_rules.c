/* The coexistence rules both directions share (bridge/engine/rules.h):
 * the mass-delete guard's thresholds, and a conflict recorded and handed to
 * the right engine, checked in a real LMDB state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../bridge/engine/rules.h"
#include "../../state/keys.h"

#include "tmpdir.h"

static void guard_thresholds(void **st)
{
    (void)st;
    config c = {.mass_delete_percent = 20, .mass_delete_min = 10};
    assert_false(rules_guard_holds(&c, 0, 9, 10));     /* under the minimum: never */
    assert_false(rules_guard_holds(&c, 0, 20, 100));   /* exactly 20 %: allowed */
    assert_true(rules_guard_holds(&c, 0, 21, 100));
    assert_true(rules_guard_holds(&c, 0, 10, 0));      /* nothing linked: any mass is suspect */
    assert_true(rules_guard_holds(&c, 0, 10, -1));     /* links unknown: the safe side */
    assert_false(rules_guard_holds(&c, 1, 1000, 1000)); /* --force-delete */
}

static int count_prefix(void *ud, const char *name, const char *value)
{
    (void)name;
    (void)value;
    (*(int *)ud)++;
    return 0;
}

static void conflicts_are_recorded_and_handed_over(void **st)
{
    (void)st;
    store *s;
    store_txn *t;
    cb_err e = {0};
    report rep;
    report_init(&rep);
    assert_int_equal(store_open(dir, &s, &e), CB_OK);
    assert_int_equal(store_begin(s, 1, &t, &e), CB_OK);
    /* An Apple edit of an Exchange-authoritative event: refetch the item. */
    assert_int_equal(rules_conflict(t, &rep, SIDE_APPLE, "alice/1/a.ics", "edited", "ID-A", 1), CB_OK);
    /* An Exchange edit of an Apple-authoritative event: repush the event. */
    assert_int_equal(rules_conflict(t, &rep, SIDE_EXCHANGE, "bob/2/b.ics", "deleted", "", 1), CB_OK);
    /* Created on the mirror side with nothing to restore: recorded only. */
    assert_int_equal(rules_conflict(t, &rep, SIDE_APPLE, "alice/1/c.ics", "created", NULL, 0), CB_OK);
    char name[KEY_MAX], v[64];
    key_name(KEY_REFETCH, "alice/1/a.ics", name);
    assert_int_equal(store_get(t, name, v, sizeof v, NULL), CB_OK);
    assert_string_equal(v, "ID-A");
    key_name(KEY_REPUSH, "bob/2/b.ics", name);
    assert_int_equal(store_get(t, name, v, sizeof v, NULL), CB_OK);
    key_name(KEY_REFETCH, "alice/1/c.ics", name);
    assert_int_equal(store_get(t, name, v, sizeof v, NULL), CB_ENOTFOUND);
    int n = 0;
    key_prefix(KEY_CONFLICT, NULL, name);
    store_each(t, name, count_prefix, &n, NULL);
    assert_int_equal(n, 3);
    assert_int_equal(rep.conflicts, 3);
    assert_int_equal(store_commit(t, &e), CB_OK);
    store_close(s);
    report_free(&rep);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(guard_thresholds),
        cmocka_unit_test(conflicts_are_recorded_and_handed_over),
    };
    return cmocka_run_group_tests(t, tmpdir_setup, tmpdir_teardown);
}
