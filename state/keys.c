#include "keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const PREFIX[] = {
    [KEY_AUTH] = "auth:",       [KEY_SYNCSTATE] = "syncstate:", [KEY_CUTOVER] = "cutover:",
    [KEY_REFETCH] = "refetch:", [KEY_REPUSH] = "repush:",       [KEY_LAG] = "lag:",
    [KEY_FAILED] = "failed:",   [KEY_CONFLICT] = "conflict:",   [KEY_MEMO] = "memo:",
};

void key_name(key_kind k, const char *arg, char out[KEY_MAX])
{
    snprintf(out, KEY_MAX, "%s%s", PREFIX[k], arg);
}

void key_prefix(key_kind k, const char *owner, char out[KEY_MAX])
{
    snprintf(out, KEY_MAX, "%s%s%s", PREFIX[k], owner ? owner : "", owner ? "/" : "");
}

const char *key_arg(key_kind k, const char *name)
{
    size_t n = strlen(PREFIX[k]);
    return strncmp(name, PREFIX[k], n) ? NULL : name + n;
}

void key_conflict(const char *when, const char *source, char out[KEY_MAX])
{
    snprintf(out, KEY_MAX, "%s%s:%s", PREFIX[KEY_CONFLICT], when, source);
}

int key_conflict_parse(const char *name, char when[32], const char **source)
{
    const char *a = key_arg(KEY_CONFLICT, name);
    const char *z = a ? strstr(a, "Z:") : NULL;   /* the time ends in Z; keys follow */
    if (!z || z - a >= 31) return CB_EPARSE;
    snprintf(when, 32, "%.*s", (int)(z - a + 1), a);
    *source = z + 2;
    return CB_OK;
}

void key_source(const char *owner, long long calendar_id, const char *name, char out[KEY_MAX])
{
    snprintf(out, KEY_MAX, "%s/%lld/%s", owner, calendar_id, name);
}

int key_source_parse(const char *key, source_key *out)
{
    const char *a = strchr(key, '/'), *b = a ? strchr(a + 1, '/') : NULL;
    if (!b || a == key || !b[1] || (size_t)(a - key) >= sizeof out->owner ||
        strlen(b + 1) >= sizeof out->name)
        return CB_EPARSE;
    char *end;
    errno = 0;
    long long id = strtoll(a + 1, &end, 10);
    if (end != b || a + 1 == b || errno || id <= 0) return CB_EPARSE;
    snprintf(out->owner, sizeof out->owner, "%.*s", (int)(a - key), key);
    out->calendar_id = id;
    snprintf(out->name, sizeof out->name, "%s", b + 1);
    return CB_OK;
}

int key_source_owned(const char *key, const char *owner)
{
    size_t n = strlen(owner);
    return n && !strncmp(key, owner, n) && key[n] == '/';
}

void key_source_prefix(const char *owner, char out[KEY_MAX])
{
    snprintf(out, KEY_MAX, "%s/", owner);
}

void key_exchange_item(const char *mailbox, const char *item_id, char out[KEY_MAX])
{
    snprintf(out, KEY_MAX, "exchange:%s/%s", mailbox, item_id);
}
