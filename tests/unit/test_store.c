#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../state/store.h"

static char dir[64];

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/cbstore.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static int count(void *ud, const intent_rec *in)
{
    (void)in;
    (*(int *)ud)++;
    return 0;
}

static void links_survive_reopen_and_reverse_index_follows(void **st)
{
    (void)st;
    store *s;
    store_txn *t;
    cb_err e;
    assert_int_equal(store_open(dir, &s, &e), CB_OK);
    assert_int_equal(store_begin(s, 1, &t, &e), CB_OK);
    link_rec l = {.mailbox = "a@x.org", .item_id = "ID1", .change_key = "CK1",
                  .fingerprint = "0123456789abcdef", .revision = 42};
    assert_int_equal(store_link_put(t, "u/1/e.ics", &l, &e), CB_OK);
    assert_int_equal(store_commit(t, &e), CB_OK);
    store_close(s);

    assert_int_equal(store_open(dir, &s, &e), CB_OK);
    assert_int_equal(store_begin(s, 1, &t, &e), CB_OK);
    link_rec got;
    assert_int_equal(store_link_get(t, "u/1/e.ics", &got, &e), CB_OK);
    assert_string_equal(got.item_id, "ID1");
    assert_int_equal(got.revision, 42);
    char key[STORE_KEY_MAX];
    assert_int_equal(store_link_by_item(t, "a@x.org", "ID1", key, &e), CB_OK);
    assert_string_equal(key, "u/1/e.ics");
    /* moving the link to another item drops the old reverse entry */
    snprintf(l.item_id, sizeof l.item_id, "ID2");
    assert_int_equal(store_link_put(t, "u/1/e.ics", &l, &e), CB_OK);
    assert_int_equal(store_link_by_item(t, "a@x.org", "ID1", key, &e), CB_ENOTFOUND);
    assert_int_equal(store_link_del(t, "u/1/e.ics", &e), CB_OK);
    assert_int_equal(store_link_by_item(t, "a@x.org", "ID2", key, &e), CB_ENOTFOUND);
    assert_int_equal(store_link_get(t, "u/1/e.ics", &got, &e), CB_ENOTFOUND);
    store_abort(t);
    store_close(s);
}

static void aborted_intents_leave_nothing(void **st)
{
    (void)st;
    store *s;
    store_txn *t;
    cb_err e;
    assert_int_equal(store_open(dir, &s, &e), CB_OK);
    intent_rec in = {.op = OP_CREATE, .key = "u/1/x.ics", .mailbox = "a@x.org", .revision = 7};
    assert_int_equal(store_new_tag(in.tag, &e), CB_OK);
    assert_int_equal(strlen(in.tag), 32);
    assert_int_equal(store_begin(s, 1, &t, &e), CB_OK);
    assert_int_equal(store_intent_put(t, &in, &e), CB_OK);
    store_abort(t);
    int n = 0;
    assert_int_equal(store_begin(s, 1, &t, &e), CB_OK);
    store_intent_each(t, count, &n, &e);
    assert_int_equal(n, 0);
    assert_int_equal(store_intent_put(t, &in, &e), CB_OK);
    assert_int_equal(store_put(t, "cursor:apple", "5 0 0", &e), CB_OK);
    assert_int_equal(store_commit(t, &e), CB_OK);
    assert_int_equal(store_begin(s, 0, &t, &e), CB_OK);
    store_intent_each(t, count, &n, &e);
    assert_int_equal(n, 1);
    char buf[32];
    assert_int_equal(store_get(t, "cursor:apple", buf, sizeof buf, &e), CB_OK);
    assert_string_equal(buf, "5 0 0");
    assert_int_equal(store_get(t, "cursor:none", buf, sizeof buf, &e), CB_ENOTFOUND);
    store_abort(t);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(links_survive_reopen_and_reverse_index_follows),
        cmocka_unit_test(aborted_intents_leave_nothing),
    };
    return cmocka_run_group_tests(t, setup, teardown);
}
