#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../state/store.h"

#include "tmpdir.h"

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

static int collect_names(void *ud, const char *name, const char *value)
{
    (void)value;
    char *out = ud;
    strcat(out, name);
    strcat(out, ";");
    return 0;
}

/* Authority defaults to apple, survives a reopen; prefixes walk and delete
 * only their own names (the handover queues between the engines). */
static void authority_and_prefixes(void **st)
{
    (void)st;
    store *s;
    store_txn *t;
    cb_err e;
    assert_int_equal(store_open(dir, &s, &e), CB_OK);
    assert_int_equal(store_begin(s, 1, &t, &e), CB_OK);
    authority a = AUTHORITY_EXCHANGE;
    assert_int_equal(store_authority_get(t, "u1", &a, &e), CB_OK);
    assert_int_equal(a, AUTHORITY_APPLE);
    assert_int_equal(store_authority_put(t, "u1", AUTHORITY_EXCHANGE, &e), CB_OK);
    assert_int_equal(store_put(t, "repush:u1/2/a.ics", "id-a", &e), CB_OK);
    assert_int_equal(store_put(t, "repush:u2/2/b.ics", "id-b", &e), CB_OK);
    assert_int_equal(store_put(t, "refetch:u1/2/c.ics", "id-c", &e), CB_OK);
    assert_int_equal(store_put(t, "repushed", "not a queue entry", &e), CB_OK);
    assert_int_equal(store_conflict_add(t, "u1/2/a.ics", "edited in Exchange", &e), CB_OK);
    assert_int_equal(store_commit(t, &e), CB_OK);
    store_close(s);

    assert_int_equal(store_open(dir, &s, &e), CB_OK);
    assert_int_equal(store_begin(s, 1, &t, &e), CB_OK);
    assert_int_equal(store_authority_get(t, "u1", &a, &e), CB_OK);
    assert_int_equal(a, AUTHORITY_EXCHANGE);
    assert_string_equal(authority_name(a), "exchange");
    char names[512] = "";
    assert_int_equal(store_each(t, "repush:", collect_names, names, &e), CB_OK);
    assert_string_equal(names, "repush:u1/2/a.ics;repush:u2/2/b.ics;");
    names[0] = '\0';
    store_each(t, "conflict:", collect_names, names, &e);
    assert_non_null(strstr(names, ":u1/2/a.ics;"));
    assert_int_equal(store_del_prefix(t, "repush:", &e), CB_OK);
    names[0] = '\0';
    store_each(t, "repush", collect_names, names, &e);
    assert_string_equal(names, "repushed;");   /* only the queue was emptied */
    names[0] = '\0';
    store_each(t, "refetch:", collect_names, names, &e);
    assert_string_equal(names, "refetch:u1/2/c.ics;");
    assert_int_equal(store_del(t, "refetch:u1/2/c.ics", &e), CB_OK);
    assert_int_equal(store_del(t, "refetch:u1/2/c.ics", &e), CB_ENOTFOUND);
    store_abort(t);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(links_survive_reopen_and_reverse_index_follows),
        cmocka_unit_test(aborted_intents_leave_nothing),
        cmocka_unit_test(authority_and_prefixes),
    };
    return cmocka_run_group_tests(t, tmpdir_setup, tmpdir_teardown);
}
