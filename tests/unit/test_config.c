#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../bridge/cli/config.h"

static char dir[64];

static int setup(void **st)
{
    (void)st;
    snprintf(dir, sizeof dir, "/tmp/cbconf.XXXXXX");
    if (!mkdtemp(dir)) return -1;
    char p[128];
    snprintf(p, sizeof p, "%s/pw", dir);
    FILE *f = fopen(p, "w");
    fputs("s3cret\n", f);
    fclose(f);
    return chmod(p, 0600);
}

static int teardown(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd);
}

static const char *write_conf(const char *body)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/c.conf", dir);
    FILE *f = fopen(p, "w");
    fputs(body, f);
    fclose(f);
    return p;
}

#define BASE "[apple]\ndsn = host=/x\n[exchange]\nurl = https://mail/EWS/Exchange.asmx\n" \
             "username = svc\npassword_file = %s/pw\n[state]\ndir = /tmp/s\n[people]\nmap = /tmp/p.csv\n"

static void loads_valid_config(void **st)
{
    (void)st;
    char body[1024];
    snprintf(body, sizeof body, BASE "[exchange]\nbatch_size = 20\nimpersonation = yes\n", dir);
    config *c;
    cb_err e;
    assert_int_equal(config_load(write_conf(body), &c, &e), CB_OK);
    assert_string_equal(c->secret, "s3cret");
    assert_int_equal(c->batch_size, 20);
    assert_int_equal(c->impersonation, 1);
    assert_int_equal(c->poll_interval_ms, 1000);
    assert_int_equal(c->debounce_ms, 500);
    assert_string_equal(c->server_version, "Exchange2016");
    config_free(c);
}

static void expect(const char *extra, const char *msg)
{
    char body[1024];
    snprintf(body, sizeof body, BASE "%s", dir, extra);
    config *c = (config *)1;
    cb_err e = {0};
    assert_int_not_equal(config_load(write_conf(body), &c, &e), CB_OK);
    assert_null(c);
    if (!strstr(e.msg, msg)) fail_msg("'%s' does not contain '%s'", e.msg, msg);
}

static void reports_file_and_line(void **st)
{
    (void)st;
    expect("[exchange]\nbatch_size = 0\n", "c.conf:12: batch_size must be a whole number from 1 to 100");
    expect("[exchange]\nauth = digest\n", "c.conf:12: auth must be basic, ntlm, negotiate, bearer or oauth2");
    expect("[exchange]\nautodiscover_url = ldap://x\n", "c.conf:12: autodiscover_url must start with");
    expect("[exchange]\nimpersonation = maybe\n", "c.conf:12: impersonation must be yes or no");
    /* Traps: delegate access would write everyone into the service
     * account's calendar; Exchange 2007 refuses StartTimeZone. */
    expect("[exchange]\nimpersonation = no\n", "c.conf:12: impersonation = no (delegate access) is not supported");
    expect("[exchange]\nserver_version = Exchange2007_SP1\n", "c.conf:12: server_version must be an EWS version from Exchange2010 on");
    expect("[exchange]\nserver_version = Exchange2016x\n", "c.conf:12: server_version");
    expect("[apple]\npoll_interval = 5s\n", "c.conf:12: poll_interval");
    expect("[exchange]\nurl = ftp://x\n", "c.conf:12: url must start with");
    expect("[nonsense]\nkey = 1\n", "c.conf:12: unknown key 'key' in section [nonsense]");
    expect("[exchange]\nauth = bearer\n", "[exchange] token_file (auth = bearer) is required");
    expect("[exchange]\nbatch_size = 0\ntimeout = -1\n", "c.conf:12:");
}

static void missing_keys_and_files(void **st)
{
    (void)st;
    config *c;
    cb_err e;
    assert_int_equal(config_load(write_conf("[apple]\ndsn = x\n"), &c, &e), CB_EINVAL);
    assert_non_null(strstr(e.msg, "[exchange] url is required"));
    assert_int_equal(config_load("/nonexistent.conf", &c, &e), CB_EIO);
    char body[512];
    snprintf(body, sizeof body, "[apple]\ndsn = x\n[exchange]\nurl = http://h/\nusername = u\n"
             "password_file = %s/missing\n[state]\ndir = /s\n[people]\nmap = /p\n", dir);
    assert_int_equal(config_load(write_conf(body), &c, &e), CB_EIO);
    assert_non_null(strstr(e.msg, "missing"));
}

/* What an operator gets wrong without noticing, refused at start. */
static void refuses_unsafe_or_meaningless_settings(void **st)
{
    (void)st;
    expect("[exchange]\nurl = https://\n", "has no host");
    expect("[exchange]\nurl = https://:443/EWS\n", "has no host");
    expect("[people]\ndefault_timezone = Europe/Atlantis\n", "not a known IANA zone");
    expect("[exchange]\nurl = http://mail/EWS/Exchange.asmx\n", "allow_insecure = yes");
    expect("[exchange]\ntls_verify = no\n", "any server can pose as Exchange");
    /* Allowed knowingly: loads, with the warning to print. */
    char body[1024];
    snprintf(body, sizeof body, BASE "[exchange]\nurl = http://mail/EWS/Exchange.asmx\n"
             "allow_insecure = yes\n", dir);
    config *c;
    cb_err e = {0};
    assert_int_equal(config_load(write_conf(body), &c, &e), CB_OK);
    assert_non_null(strstr(c->warning, "in clear"));
    assert_string_equal(c->apple_write_dsn, c->apple_dsn);   /* one DSN unless told */
    config_free(c);
    /* A password file others can read is refused, and says how to fix it. */
    char p[160];
    snprintf(p, sizeof p, "%s/pw", dir);
    chmod(p, 0644);
    expect("", "chmod 600");
    chmod(p, 0600);
}

static void numbers_are_whole_numbers(void **st)
{
    (void)st;
    long n = -1;
    assert_int_equal(config_parse_long("12", 0, 100, &n), CB_OK);
    assert_int_equal(n, 12);
    assert_int_equal(config_parse_long("one", 0, 100, &n), CB_EINVAL);
    assert_int_equal(config_parse_long("1x", 0, 100, &n), CB_EINVAL);
    assert_int_equal(config_parse_long(" 1", 0, 100, &n), CB_EINVAL);
    assert_int_equal(config_parse_long("", 0, 100, &n), CB_EINVAL);
    assert_int_equal(config_parse_long("101", 0, 100, &n), CB_EINVAL);
    assert_int_equal(config_parse_long("99999999999999999999", 0, 100, &n), CB_EINVAL);
}

/* auth = oauth2: a tenant names Microsoft's token endpoint, the scope is
 * Exchange Online's by default, and what is missing is named. */
static void oauth2_settings(void **st)
{
    (void)st;
    char body[1024];
    snprintf(body, sizeof body, BASE "[exchange]\nauth = oauth2\nclient_id = app\n"
             "client_secret_file = %s/pw\ntenant = contoso.onmicrosoft.com\n", dir, dir);
    config *c;
    cb_err e;
    assert_int_equal(config_load(write_conf(body), &c, &e), CB_OK);
    assert_int_equal(c->auth, AUTH_OAUTH2);
    assert_string_equal(c->token_url, "https://login.microsoftonline.com/contoso.onmicrosoft.com/"
                                      "oauth2/v2.0/token");
    assert_string_equal(c->scope, "https://outlook.office365.com/.default");
    assert_string_equal(c->secret, "s3cret");
    config_free(c);
    /* NTLM takes the Basic keys; Autodiscover defaults to the EWS host's. */
    snprintf(body, sizeof body, BASE "[exchange]\nauth = ntlm\n", dir);
    assert_int_equal(config_load(write_conf(body), &c, &e), CB_OK);
    assert_int_equal(c->auth, AUTH_NTLM);
    assert_string_equal(c->secret, "s3cret");
    assert_non_null(strstr(c->autodiscover_url, "/autodiscover/autodiscover.svc"));
    assert_null(strstr(c->autodiscover_url, "EWS"));
    config_free(c);
    snprintf(body, sizeof body, BASE "[exchange]\nautodiscover_url = none\n", dir);
    assert_int_equal(config_load(write_conf(body), &c, &e), CB_OK);
    assert_null(c->autodiscover_url);
    config_free(c);
    expect("[exchange]\nauth = oauth2\ntenant = t\n", "[exchange] client_id (auth = oauth2)");
    expect("[exchange]\nauth = oauth2\nclient_id = app\n", "tenant or token_url");
    expect("[exchange]\nauth = oauth2\nclient_id = app\ntoken_url = ftp://x\n",
           "token_url must start with https://");
    expect("[exchange]\nauth = kerberos\n", "auth must be basic, ntlm, negotiate, bearer or oauth2");
}

int main(void)
{
    const struct CMUnitTest t[] = {
        cmocka_unit_test(loads_valid_config),
        cmocka_unit_test(reports_file_and_line),
        cmocka_unit_test(missing_keys_and_files),
        cmocka_unit_test(refuses_unsafe_or_meaningless_settings),
        cmocka_unit_test(numbers_are_whole_numbers),
        cmocka_unit_test(oauth2_settings),
    };
    return cmocka_run_group_tests(t, setup, teardown);
}
