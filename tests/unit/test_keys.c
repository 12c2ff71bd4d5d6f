/* Every stored name is built and parsed by state/keys (and the Apple
 * cursor of a scan under way by pg_source): round trips, and
 * the damaged or foreign names the parsers must refuse. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "../../bridge/apple/pg_source.h"
#include "../../state/keys.h"

static void source_keys_round_trip(void **st)
{
    (void)st;
    char k[KEY_MAX];
    key_source("10000000-a", 42, "ev 1.ics", k);
    assert_string_equal(k, "10000000-a/42/ev 1.ics");
    source_key sk;
    assert_int_equal(key_source_parse(k, &sk), CB_OK);
    assert_string_equal(sk.owner, "10000000-a");
    assert_int_equal(sk.calendar_id, 42);
    assert_string_equal(sk.name, "ev 1.ics");
    /* A name may itself hold slashes: only the first two separate. */
    assert_int_equal(key_source_parse("o/7/a/b.ics", &sk), CB_OK);
    assert_string_equal(sk.name, "a/b.ics");
}

static void damaged_source_keys_are_refused(void **st)
{
    (void)st;
    source_key sk;
    const char *bad[] = {"", "owner", "owner/12", "owner/12/", "/12/x.ics", "o/x1/x.ics",
                         "o//x.ics", "o/-3/x.ics", "o/0/x.ics", "o/99999999999999999999/x.ics"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (key_source_parse(bad[i], &sk) != CB_EPARSE) fail_msg("'%s' was accepted", bad[i]);
}

static void ownership_is_exact(void **st)
{
    (void)st;
    assert_true(key_source_owned("alice/1/x.ics", "alice"));
    assert_false(key_source_owned("alice2/1/x.ics", "alice"));
    assert_false(key_source_owned("alice", "alice"));
    assert_false(key_source_owned("bob/1/x.ics", ""));
}

static void names_and_prefixes(void **st)
{
    (void)st;
    char n[KEY_MAX], p[KEY_MAX];
    key_name(KEY_REFETCH, "alice/1/x.ics", n);
    assert_string_equal(n, "refetch:alice/1/x.ics");
    key_prefix(KEY_REFETCH, "alice", p);
    assert_string_equal(p, "refetch:alice/");
    assert_int_equal(strncmp(n, p, strlen(p)), 0);
    key_prefix(KEY_REPUSH, NULL, p);
    assert_string_equal(p, "repush:");
    assert_string_equal(key_arg(KEY_REFETCH, n), "alice/1/x.ics");
    assert_null(key_arg(KEY_REPUSH, n));
    key_name(KEY_AUTH, "alice", n);
    assert_string_equal(n, "auth:alice");
    key_exchange_item("a@x.org", "AAMk=", n);
    assert_string_equal(n, "exchange:a@x.org/AAMk=");
}

static void conflicts_round_trip(void **st)
{
    (void)st;
    char n[KEY_MAX], when[32];
    const char *key = NULL;
    key_conflict("2026-11-29T22:32:03.598Z", "alice/2/x:y.ics", n);
    assert_int_equal(key_conflict_parse(n, when, &key), CB_OK);
    assert_string_equal(when, "2026-11-29T22:32:03.598Z");
    assert_string_equal(key, "alice/2/x:y.ics");
    assert_int_equal(key_conflict_parse("conflict:no time here", when, &key), CB_EPARSE);
    assert_int_equal(key_conflict_parse("auth:alice", when, &key), CB_EPARSE);
}

/* A first sync's position is stored in the Apple cursor: owner UIDs and
 * resource names are whatever CalendarServer holds (spaces, slashes, tabs,
 * any bytes), so they go with their lengths and come back exactly. */
static void scan_cursors_round_trip(void **st)
{
    (void)st;
    pg_cursor after = {41, 57, 1234}, a2;
    pg_scan_pos pos = {.owner = " odd/owner", .calendar = 7, .name = "a b\tc \xc3\xa9.ics"}, p2;
    char buf[1500];
    pg_scan_format(&after, &pos, buf, sizeof buf);
    assert_int_equal(pg_scan_parse(buf, &a2, &p2), 0);
    assert_int_equal(a2.rev, 41);
    assert_int_equal(a2.pending_rev, 57);
    assert_int_equal(a2.pending_xmax, 1234);
    assert_int_equal(p2.calendar, 7);
    assert_string_equal(p2.owner, pos.owner);
    assert_string_equal(p2.name, pos.name);
    pg_cursor c;
    assert_int_equal(pg_cursor_parse(buf, &c), -1);   /* not a poll's cursor */
    assert_int_equal(pg_scan_parse("12 0 0", &a2, &p2), -1);
    /* The start of a scan: no owner yet, calendar -1. */
    pg_scan_pos start = {.owner = "", .calendar = -1, .name = ""};
    pg_scan_format(&after, &start, buf, sizeof buf);
    assert_int_equal(pg_scan_parse(buf, &a2, &p2), 0);
    assert_string_equal(p2.owner, "");
    assert_int_equal(p2.calendar, -1);
}

static void damaged_scan_cursors_are_refused(void **st)
{
    (void)st;
    const char *bad[] = {"", "scan", "scan 1 0 0 3 2 2", "scan 1 0 0 3 2 2 abc",
                         "scan 1 0 0 3 2 2 abcde", "scan -1 0 0 3 1 1 ab",
                         "scan 1 0 0 3 999999 1 ab", "scan 1 0 0 3 1 99999 ab",
                         "scan 1 0 0 3 1 1  ab", "scan 1 0 0 x 1 1 ab", "poll 1 0 0 3 1 1 ab"};
    pg_cursor a;
    pg_scan_pos p;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (pg_scan_parse(bad[i], &a, &p) == 0) fail_msg("'%s' was accepted", bad[i]);
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(scan_cursors_round_trip),
        cmocka_unit_test(damaged_scan_cursors_are_refused),
        cmocka_unit_test(source_keys_round_trip),
        cmocka_unit_test(damaged_source_keys_are_refused),
        cmocka_unit_test(ownership_is_exact),
        cmocka_unit_test(names_and_prefixes),
        cmocka_unit_test(conflicts_round_trip),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
