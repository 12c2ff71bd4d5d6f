#include "store.h"
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_MAP_SIZE (4UL * 1024 * 1024 * 1024)

struct store {
    MDB_env *env;
    MDB_dbi links, items, intents, kv;
};

struct store_txn {
    store *s;
    MDB_txn *txn;
};

static int lmdb_err(cb_err *err, int rc, const char *what)
{
    return cb_errf(err, rc == MDB_NOTFOUND ? CB_ENOTFOUND : CB_EIO,
                   "state store: %s: %s", what, mdb_strerror(rc));
}

static int open_dbis(store *s, cb_err *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) return lmdb_err(err, rc, "begin");
    if ((rc = mdb_dbi_open(txn, "links", MDB_CREATE, &s->links)) ||
        (rc = mdb_dbi_open(txn, "items", MDB_CREATE, &s->items)) ||
        (rc = mdb_dbi_open(txn, "intents", MDB_CREATE, &s->intents)) ||
        (rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &s->kv))) {
        mdb_txn_abort(txn);
        return lmdb_err(err, rc, "open tables");
    }
    rc = mdb_txn_commit(txn);
    return rc ? lmdb_err(err, rc, "commit") : CB_OK;
}

int store_open(const char *dir, store **out, cb_err *err)
{
    *out = NULL;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return cb_errf(err, CB_EIO, "state store: %s: %s", dir, strerror(errno));
    store *s = calloc(1, sizeof *s);
    if (!s) return cb_errf(err, CB_ENOMEM, "out of memory");
    int rc = mdb_env_create(&s->env);
    if (!rc) rc = mdb_env_set_maxdbs(s->env, 8);
    if (!rc) rc = mdb_env_set_mapsize(s->env, STORE_MAP_SIZE);
    if (!rc) rc = mdb_env_open(s->env, dir, 0, 0600);
    if (rc) {
        cb_errf(err, CB_EIO, "state store: %s: %s", dir, mdb_strerror(rc));
        if (s->env) mdb_env_close(s->env);
        free(s);
        return CB_EIO;
    }
    int dead = 0;
    mdb_reader_check(s->env, &dead);  /* readers left by a killed process */
    if ((rc = open_dbis(s, err)) != CB_OK) {
        store_close(s);
        return rc;
    }
    *out = s;
    return CB_OK;
}

void store_close(store *s)
{
    if (!s) return;
    mdb_env_close(s->env);
    free(s);
}

int store_begin(store *s, int write, store_txn **out, cb_err *err)
{
    *out = NULL;
    store_txn *t = calloc(1, sizeof *t);
    if (!t) return cb_errf(err, CB_ENOMEM, "out of memory");
    int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, &t->txn);
    if (rc) {
        free(t);
        return lmdb_err(err, rc, "begin");
    }
    t->s = s;
    *out = t;
    return CB_OK;
}

int store_commit(store_txn *t, cb_err *err)
{
    int rc = mdb_txn_commit(t->txn);
    free(t);
    return rc ? lmdb_err(err, rc, "commit") : CB_OK;
}

void store_abort(store_txn *t)
{
    if (!t) return;
    mdb_txn_abort(t->txn);
    free(t);
}

static MDB_val sval(const char *s)
{
    return (MDB_val){.mv_size = strlen(s), .mv_data = (void *)s};
}

/* Values are tab-separated text so that mdb_dump output stays readable. */
static int get_text(store_txn *t, MDB_dbi dbi, const char *key, char *buf,
                    size_t size, cb_err *err)
{
    MDB_val k = sval(key), v;
    int rc = mdb_get(t->txn, dbi, &k, &v);
    if (rc) return lmdb_err(err, rc, key);
    if (v.mv_size >= size)
        return cb_errf(err, CB_EIO, "state store: value of %s is too long", key);
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = '\0';
    return CB_OK;
}

static int put_text(store_txn *t, MDB_dbi dbi, const char *key, const char *val,
                    cb_err *err)
{
    if (!*key || strlen(key) >= STORE_KEY_MAX)
        return cb_errf(err, CB_EINVAL, "state store: bad key '%.64s'", key);
    MDB_val k = sval(key), v = sval(val);
    int rc = mdb_put(t->txn, dbi, &k, &v, 0);
    return rc ? lmdb_err(err, rc, key) : CB_OK;
}

static int del_key(store_txn *t, MDB_dbi dbi, const char *key, cb_err *err)
{
    MDB_val k = sval(key);
    int rc = mdb_del(t->txn, dbi, &k, NULL);
    return rc ? lmdb_err(err, rc, key) : CB_OK;
}

/* Splits s in place on tabs into at most n fields; returns how many. */
static int split_tabs(char *s, char **f, int n)
{
    int i = 0;
    f[i++] = s;
    for (char *c = s; *c && i < n; c++)
        if (*c == '\t') {
            *c = '\0';
            f[i++] = c + 1;
        }
    return i;
}

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src);
}

static int link_decode(char *text, link_rec *l)
{
    char *f[5];
    if (split_tabs(text, f, 5) != 5) return -1;
    copy(l->mailbox, sizeof l->mailbox, f[0]);
    copy(l->item_id, sizeof l->item_id, f[1]);
    copy(l->change_key, sizeof l->change_key, f[2]);
    copy(l->fingerprint, sizeof l->fingerprint, f[3]);
    l->revision = strtoll(f[4], NULL, 10);
    return 0;
}

static char *item_key(const char *mailbox, const char *item_id)
{
    size_t n = strlen(mailbox) + strlen(item_id) + 2;
    char *k = malloc(n);
    if (k) snprintf(k, n, "%s\t%s", mailbox, item_id);
    return k;
}

int store_link_get(store_txn *t, const char *key, link_rec *out, cb_err *err)
{
    char buf[2048];
    int rc = get_text(t, t->s->links, key, buf, sizeof buf, err);
    if (rc) return rc;
    if (link_decode(buf, out) < 0)
        return cb_errf(err, CB_EIO, "state store: link %s is corrupt", key);
    return CB_OK;
}

int store_link_put(store_txn *t, const char *key, const link_rec *l, cb_err *err)
{
    char buf[2048];
    link_rec old;
    /* A link that moves to another item must not leave a stale reverse entry. */
    if (store_link_get(t, key, &old, NULL) == CB_OK &&
        (strcmp(old.mailbox, l->mailbox) || strcmp(old.item_id, l->item_id))) {
        char *ik = item_key(old.mailbox, old.item_id);
        if (!ik) return cb_errf(err, CB_ENOMEM, "out of memory");
        int rc = del_key(t, t->s->items, ik, err);
        free(ik);
        if (rc && rc != CB_ENOTFOUND) return rc;
    }
    snprintf(buf, sizeof buf, "%s\t%s\t%s\t%s\t%lld", l->mailbox, l->item_id,
             l->change_key, l->fingerprint, l->revision);
    int rc = put_text(t, t->s->links, key, buf, err);
    if (rc) return rc;
    char *ik = item_key(l->mailbox, l->item_id);
    if (!ik) return cb_errf(err, CB_ENOMEM, "out of memory");
    rc = put_text(t, t->s->items, ik, key, err);
    free(ik);
    return rc;
}

int store_link_del(store_txn *t, const char *key, cb_err *err)
{
    link_rec old;
    int rc = store_link_get(t, key, &old, err);
    if (rc) return rc;
    char *ik = item_key(old.mailbox, old.item_id);
    if (!ik) return cb_errf(err, CB_ENOMEM, "out of memory");
    rc = del_key(t, t->s->items, ik, err);
    free(ik);
    if (rc && rc != CB_ENOTFOUND) return rc;
    return del_key(t, t->s->links, key, err);
}

int store_link_by_item(store_txn *t, const char *mailbox, const char *item_id,
                       char key[STORE_KEY_MAX], cb_err *err)
{
    char *ik = item_key(mailbox, item_id);
    if (!ik) return cb_errf(err, CB_ENOMEM, "out of memory");
    int rc = get_text(t, t->s->items, ik, key, STORE_KEY_MAX, err);
    free(ik);
    return rc;
}

/* Walks dbi calling fn(ud, key, value) with NUL-terminated copies, over
 * every key starting with prefix ("" for all). */
static int walk(store_txn *t, MDB_dbi dbi, const char *prefix,
                int (*fn)(void *ud, char *key, char *val), void *ud, cb_err *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(t->txn, dbi, &cur);
    if (rc) return lmdb_err(err, rc, "cursor");
    size_t plen = strlen(prefix);
    MDB_val k = sval(prefix), v;
    int stop = 0;
    char key[STORE_KEY_MAX], val[4096];
    for (rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST); !rc && !stop;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen)) break;
        if (k.mv_size >= sizeof key || v.mv_size >= sizeof val) continue;
        memcpy(key, k.mv_data, k.mv_size);
        key[k.mv_size] = '\0';
        memcpy(val, v.mv_data, v.mv_size);
        val[v.mv_size] = '\0';
        stop = fn(ud, key, val);
    }
    mdb_cursor_close(cur);
    if (stop) return stop;
    return rc == 0 || rc == MDB_NOTFOUND ? CB_OK : lmdb_err(err, rc, "walk");
}

struct link_walk {
    int (*fn)(void *ud, const char *key, const link_rec *l);
    void *ud;
};

static int link_step(void *ud, char *key, char *val)
{
    struct link_walk *w = ud;
    link_rec l;
    if (link_decode(val, &l) < 0) return 0;
    return w->fn(w->ud, key, &l);
}

int store_link_each(store_txn *t,
                    int (*fn)(void *ud, const char *key, const link_rec *l),
                    void *ud, cb_err *err)
{
    return store_link_each_prefix(t, "", fn, ud, err);
}

int store_link_each_prefix(store_txn *t, const char *prefix,
                           int (*fn)(void *ud, const char *key, const link_rec *l),
                           void *ud, cb_err *err)
{
    struct link_walk w = {fn, ud};
    return walk(t, t->s->links, prefix, link_step, &w, err);
}

int store_intent_put(store_txn *t, const intent_rec *in, cb_err *err)
{
    char buf[8192];
    snprintf(buf, sizeof buf, "%c\t%s\t%s\t%s\t%s\t%lld\t%d\t%s\t%s", (char)in->op, in->key,
             in->mailbox, in->item_id, in->fingerprint, in->revision, in->target, in->from_id,
             in->from_version);
    return put_text(t, t->s->intents, in->tag, buf, err);
}

int store_intent_del(store_txn *t, const char *tag, cb_err *err)
{
    return del_key(t, t->s->intents, tag, err);
}

struct intent_walk {
    int (*fn)(void *ud, const intent_rec *in);
    void *ud;
};

/* "op\tkey\tmailbox\titem_id\tfingerprint\trevision[\ttarget\tfrom_id\tfrom_version]"
 * -> in; -1 if damaged. The older six-field form was always a write to
 * Exchange. */
static int intent_decode(const char *tag, char *val, intent_rec *in)
{
    char *f[9];
    int n = split_tabs(val, f, 9);
    if (n != 6 && n != 9) return -1;
    memset(in, 0, sizeof *in);
    copy(in->tag, sizeof in->tag, tag);
    in->op = (intent_op)f[0][0];
    copy(in->key, sizeof in->key, f[1]);
    copy(in->mailbox, sizeof in->mailbox, f[2]);
    copy(in->item_id, sizeof in->item_id, f[3]);
    copy(in->fingerprint, sizeof in->fingerprint, f[4]);
    in->revision = strtoll(f[5], NULL, 10);
    in->target = n == 9 ? (int)strtol(f[6], NULL, 10) : 1;
    if (n == 9) {
        copy(in->from_id, sizeof in->from_id, f[7]);
        copy(in->from_version, sizeof in->from_version, f[8]);
    }
    return 0;
}

static int intent_step(void *ud, char *key, char *val)
{
    struct intent_walk *w = ud;
    intent_rec in;
    return intent_decode(key, val, &in) ? 0 : w->fn(w->ud, &in);
}

int store_intent_get(store_txn *t, const char *tag, intent_rec *out, cb_err *err)
{
    char buf[8192];
    int rc = get_text(t, t->s->intents, tag, buf, sizeof buf, err);
    if (rc) return rc;
    if (intent_decode(tag, buf, out)) return cb_errf(err, CB_EPARSE, "intent %s is damaged", tag);
    return CB_OK;
}

int store_intent_each(store_txn *t, int (*fn)(void *ud, const intent_rec *in),
                      void *ud, cb_err *err)
{
    struct intent_walk w = {fn, ud};
    return walk(t, t->s->intents, "", intent_step, &w, err);
}

int store_new_tag(char tag[33], cb_err *err)
{
    unsigned char b[16];
    /* getrandom: no file opened per tag (one per planned write). */
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        return cb_errf(err, CB_EIO, "cannot get random bytes: %s", strerror(errno));
    for (int i = 0; i < 16; i++) snprintf(tag + 2 * i, 3, "%02x", b[i]);
    return CB_OK;
}

int store_get(store_txn *t, const char *name, char *buf, size_t size, cb_err *err)
{
    return get_text(t, t->s->kv, name, buf, size, err);
}

int store_put(store_txn *t, const char *name, const char *value, cb_err *err)
{
    return put_text(t, t->s->kv, name, value, err);
}

int store_del(store_txn *t, const char *name, cb_err *err)
{
    return del_key(t, t->s->kv, name, err);
}

struct kv_walk {
    int (*fn)(void *ud, const char *name, const char *value);
    void *ud;
};

static int kv_step(void *ud, char *key, char *val)
{
    struct kv_walk *w = ud;
    return w->fn(w->ud, key, val);
}

int store_each(store_txn *t, const char *prefix,
               int (*fn)(void *ud, const char *name, const char *value), void *ud, cb_err *err)
{
    struct kv_walk w = {fn, ud};
    return walk(t, t->s->kv, prefix, kv_step, &w, err);
}

int store_authority_get(store_txn *t, const char *owner, authority *out, cb_err *err)
{
    char name[STORE_KEY_MAX], val[16];
    key_name(KEY_AUTH, owner, name);
    int rc = store_get(t, name, val, sizeof val, err);
    *out = rc == CB_OK && !strcmp(val, "exchange") ? AUTHORITY_EXCHANGE : AUTHORITY_APPLE;
    return rc == CB_ENOTFOUND || rc == CB_OK ? CB_OK : rc;
}

int store_authority_put(store_txn *t, const char *owner, authority a, cb_err *err)
{
    char name[STORE_KEY_MAX];
    key_name(KEY_AUTH, owner, name);
    return store_put(t, name, authority_name(a), err);
}

const char *authority_name(authority a)
{
    return a == AUTHORITY_EXCHANGE ? "exchange" : "apple";
}

int store_conflict_add(store_txn *t, const char *key, const char *message, cb_err *err)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char secs[24], when[32], name[STORE_KEY_MAX];
    strftime(secs, sizeof secs, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when, sizeof when, "%.19s.%03dZ", secs, (int)(ts.tv_nsec / 1000000) % 1000);
    key_conflict(when, key, name);
    return store_put(t, name, message, err);
}

int store_failed_put(store_txn *t, const char *what, const char *reason, cb_err *err)
{
    char name[STORE_KEY_MAX];
    key_name(KEY_FAILED, what, name);
    return store_put(t, name, reason, err);
}

int store_failed_clear(store_txn *t, const char *what, cb_err *err)
{
    char name[STORE_KEY_MAX];
    key_name(KEY_FAILED, what, name);
    int rc = store_del(t, name, err);
    return rc == CB_ENOTFOUND ? CB_OK : rc;
}

int store_del_prefix(store_txn *t, const char *prefix, cb_err *err)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(t->txn, t->s->kv, &cur);
    if (rc) return lmdb_err(err, rc, "cursor");
    size_t plen = strlen(prefix);
    MDB_val k = sval(prefix), v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); !rc;
         rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT)) {
        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen)) break;
        if ((rc = mdb_cursor_del(cur, 0))) break;
    }
    mdb_cursor_close(cur);
    return rc == 0 || rc == MDB_NOTFOUND ? CB_OK : lmdb_err(err, rc, "delete");
}

int store_lag_put(store_txn *t, const char *owner, const char *direction, double changed,
                  cb_err *err)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
    long lag_ms = changed > 0 && now > changed ? (long)((now - changed) * 1000) : 0;
    char name[STORE_KEY_MAX], val[96];
    key_name(KEY_LAG, owner, name);
    snprintf(val, sizeof val, "%lld %ld %s", (long long)ts.tv_sec, lag_ms, direction);
    return store_put(t, name, val, err);
}

static int count_one(void *ud, char *key, char *val)
{
    (void)key;
    (void)val;
    (*(long *)ud)++;
    return 0;
}

int store_link_count(store_txn *t, const char *owner, long *n, cb_err *err)
{
    char prefix[STORE_KEY_MAX];
    key_source_prefix(owner, prefix);
    *n = 0;
    return walk(t, t->s->links, prefix, count_one, n, err);
}
