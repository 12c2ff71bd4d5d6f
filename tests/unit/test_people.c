#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "../../mapping/people.h"

static void parses_valid_map(void **st)
{
    (void)st;
    people *p;
    cb_err e;
    const char *csv = "owner_uid,smtp,wave,kind\n\n# comment\n"
                      "A-1, Alice@Example.ORG ,1,user\nR-1,room1@example.org,0,room\n";
    assert_int_equal(people_parse(csv, "m.csv", &p, &e), CB_OK);
    assert_int_equal(p->n, 2);
    assert_string_equal(p->v[0].smtp, "alice@example.org");
    assert_int_equal(p->v[1].kind, PERSON_ROOM);
    assert_ptr_equal(people_by_smtp(p, "mailto:ALICE@example.org"), &p->v[0]);
    assert_ptr_equal(people_by_uid(p, "R-1"), &p->v[1]);
    assert_null(people_by_uid(p, "nobody"));
    people_free(p);
}

/* Saved by a spreadsheet: a UTF-8 byte order mark before the header. */
static void parses_map_with_bom(void **st)
{
    (void)st;
    people *p;
    cb_err e = {0};
    const char *csv = "\xef\xbb\xbfowner_uid,smtp,wave,kind\r\nA-1,a@example.org,1,user\r\n";
    assert_int_equal(people_parse(csv, "m.csv", &p, &e), CB_OK);
    assert_int_equal(p->n, 1);
    assert_string_equal(p->v[0].owner_uid, "A-1");
    people_free(p);
}

static void expect_error(const char *csv, const char *msg)
{
    people *p = (people *)1;
    cb_err e = {0};
    assert_int_not_equal(people_parse(csv, "m.csv", &p, &e), CB_OK);
    assert_null(p);
    if (!strstr(e.msg, msg)) fail_msg("'%s' does not contain '%s'", e.msg, msg);
}

static void reports_bad_lines_with_numbers(void **st)
{
    (void)st;
    expect_error("a,b@c.d,1,user\nb,x,1,user\n", "m.csv:2: 'x' is not an SMTP address");
    expect_error("\n\na,b@c.d,one,user\n", "m.csv:3: wave 'one'");
    expect_error("a,b@c.d,1,chair\n", "m.csv:1: kind 'chair'");
    expect_error("a,b@c.d,1\n", "m.csv:1: expected 4 fields");
    expect_error("a,b@c.d,1,user,extra\n", "m.csv:1: expected 4 fields");
    expect_error("a,b@c.d,1,user\na,e@c.d,1,user\n", "m.csv:2: owner_uid a is listed twice");
    expect_error("a,b@c.d,1,user\nb,B@c.d,1,user\n", "m.csv:2: mailbox b@c.d is listed twice");
    expect_error(",b@c.d,1,user\n", "m.csv:1: owner_uid is empty");
    /* The earlier of two repeats is named, whichever key repeats. */
    expect_error("a,x@c.d,1,user\nb,y@c.d,1,user\nc,X@c.d,1,user\nb,z@c.d,1,user\n",
                 "m.csv:3: mailbox x@c.d is listed twice");
}

/* 10,000 people, listed in no order: each found by either key, and a
 * repeat far from its first line still named by its own line. */
static void finds_everyone_of_a_large_map(void **st)
{
    (void)st;
    enum { N = 10000 };
    static char csv[N * 48 + 64];
    size_t at = 0;
    for (int i = 0; i < N; i++) {
        int k = (i * 7919) % N;   /* a permutation: the file is not sorted */
        at += (size_t)snprintf(csv + at, sizeof csv - at, "U-%05d,P%05d@Example.org,1,user\n", k, k);
    }
    people *p;
    cb_err e = {0};
    assert_int_equal(people_parse(csv, "m.csv", &p, &e), CB_OK);
    assert_int_equal(p->n, N);
    for (int k = 0; k < N; k++) {
        char uid[16], smtp[32];
        snprintf(uid, sizeof uid, "U-%05d", k);
        snprintf(smtp, sizeof smtp, "mailto:p%05d@EXAMPLE.org", k);
        const person *a = people_by_uid(p, uid), *b = people_by_smtp(p, smtp);
        assert_non_null(a);
        assert_ptr_equal(a, b);
        assert_string_equal(a->owner_uid, uid);
    }
    assert_null(people_by_uid(p, "U-10000"));
    assert_null(people_by_smtp(p, "p10000@example.org"));
    people_free(p);
    snprintf(csv + at, sizeof csv - at, "X-1,p00042@example.org,1,user\n");
    expect_error(csv, "m.csv:10001: mailbox p00042@example.org is listed twice");
}

static void missing_file_is_an_error(void **st)
{
    (void)st;
    people *p;
    cb_err e;
    assert_int_equal(people_load("/nonexistent/people.csv", &p, &e), CB_EIO);
    assert_non_null(strstr(e.msg, "/nonexistent/people.csv"));
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(parses_valid_map),
        cmocka_unit_test(parses_map_with_bom),
        cmocka_unit_test(reports_bad_lines_with_numbers),
        cmocka_unit_test(finds_everyone_of_a_large_map),
        cmocka_unit_test(missing_file_is_an_error),
    };
    return cmocka_run_group_tests(t, NULL, NULL);
}
