/* config.h — calbridge's configuration file (INI, parsed with libinih).
 *
 * Every key is validated when the file is read; the first problem is
 * reported as "file:line: what is wrong" (or "file: [section] key is
 * required" for a missing key). Secrets are never stored in the file
 * itself: passwords and tokens are read from the files the keys name.
 * See conf/calbridge.conf.example for every key and its default.
 */
#ifndef CONFIG_H
#define CONFIG_H

#include "../../mapping/cb_err.h"

typedef enum { AUTH_BASIC, AUTH_BEARER, AUTH_OAUTH2, AUTH_NTLM, AUTH_NEGOTIATE } auth_kind;

typedef struct config {
    /* [apple] */
    char *apple_dsn;        /* the reader: SELECT suffices */
    char *apple_write_dsn;  /* the writer (mirrors); dsn when not given */
    int poll_interval_ms;
    int notify;             /* ccs_notify_mode: how CalendarServer hears of mirror writes */
    char *caldav_url;       /* notify = caldav: CalendarServer's base URL, */
    char *caldav_user;      /* an AdminPrincipals member and its password */
    char *caldav_secret;
    char *server_hostname;  /* notify = queue: CalendarServer's ServerHostName */
    /* [exchange] */
    char *ews_url;
    char *autodiscover_url; /* SOAP Autodiscover, for stream affinity; NULL: none */
    auth_kind auth;
    char *username;
    char *secret;          /* password, token or client secret, read from *_file */
    char *client_id;       /* auth = oauth2: the application (client) id, */
    char *token_url;       /* the token endpoint, and the scope asked for */
    char *scope;
    int impersonation;
    char *server_version;
    int batch_size;
    int max_in_flight;
    int timeout_ms;
    int tls_verify;
    int allow_insecure;     /* http:// or tls_verify = no, knowingly */
    /* [state] */
    char *state_dir;
    /* [coexistence] */
    int mass_delete_percent;   /* a pass deleting more of a person's items stops */
    int mass_delete_min;       /* ... when it would delete at least this many */
    int stream_minutes;        /* GetStreamingEvents ConnectionTimeout, 1-30 */
    int heartbeat_ms;          /* silence after which a stream is declared dead */
    int debounce_ms;           /* wait after a notification before syncing */
    int resync_interval_ms;    /* SyncFolderItems for every mirrored person anyway */
    int reconcile_interval_s;  /* a full read of every Exchange calendar; 0 never */
    /* [people] */
    char *people_map;
    char *default_tz;
    char warning[256];      /* what an allowed but unsafe setting means; "" */
} config;

/* Reads and validates path. On success *out is owned by the caller
 * (config_free); on failure *out is NULL and err names file and line. */
int config_load(const char *path, config **out, cb_err *err);
void config_free(config *c);

/* Parses a whole decimal number in [lo, hi] ("12", not "12x", " 12" or
 * "one"); CB_EINVAL otherwise. For every number from the command line. */
int config_parse_long(const char *s, long lo, long hi, long *out);

#endif
