/* store.h — calbridge's durable state: one LMDB environment in the state
 * directory.
 *
 * It holds
 *   links    source key -> the Exchange item mirroring it (mailbox, ItemId,
 *            ChangeKey, fingerprint of what was written, source revision);
 *   items    mailbox + ItemId -> source key (the reverse direction);
 *   intents  tag -> a write that was decided but whose effect is not yet
 *            committed (isync's journal: intent, then effect, then commit);
 *   kv       small named strings: cursors, authority, SyncStates, cutover
 *            steps, conflicts, rewrites queued for the next pass, lags, what
 *            could not be carried (every name is built by keys.h).
 *
 * A source key is "owner_uid/calendar_resource_id/resource_name".
 * All access happens inside a store_txn; a write transaction is committed
 * durably (LMDB's default fsync) by store_commit. Only one write transaction
 * may be open at a time (LMDB's rule); read transactions are cheap.
 * Every function returns CB_OK, CB_ENOTFOUND where it says so, or another
 * CB_E* code with a message in err.
 */
#ifndef STORE_H
#define STORE_H

#include "../mapping/cb_err.h"

#define STORE_KEY_MAX 1024
#define STORE_ID_MAX 512

typedef struct store store;
typedef struct store_txn store_txn;

typedef struct link_rec {
    char mailbox[256];
    char item_id[STORE_ID_MAX];
    char change_key[STORE_ID_MAX];
    char fingerprint[17];   /* 16 hex digits of what was last written */
    long long revision;     /* source revision last carried */
} link_rec;

typedef enum { OP_CREATE = 'C', OP_UPDATE = 'U', OP_DELETE = 'D' } intent_op;

typedef struct intent_rec {
    char tag[33];           /* 32 hex digits, unique per intent */
    intent_op op;
    int target;             /* the side written (side.h's side_id); 1 in
                             * intents written before it was recorded */
    char key[STORE_KEY_MAX];
    char mailbox[256];      /* the person's */
    char item_id[STORE_ID_MAX];  /* the item written; empty for a create
                                  * whose side assigns ids */
    char fingerprint[17];   /* unused since an adopted create claims no content
                             * (written ""); kept for the record's format */
    long long revision;     /* the Apple revision carried (writes to Exchange) */
    char from_id[STORE_ID_MAX];  /* the item read, on the other side, */
    char from_version[STORE_ID_MAX];  /* and its version */
} intent_rec;

int store_open(const char *dir, store **out, cb_err *err);
void store_close(store *s);

int store_begin(store *s, int write, store_txn **out, cb_err *err);
int store_commit(store_txn *t, cb_err *err);   /* frees t, even on failure */
void store_abort(store_txn *t);                /* frees t; NULL is a no-op */

int store_link_get(store_txn *t, const char *key, link_rec *out, cb_err *err);
int store_link_put(store_txn *t, const char *key, const link_rec *l, cb_err *err);
int store_link_del(store_txn *t, const char *key, cb_err *err);
/* Finds the source key of an Exchange item; CB_ENOTFOUND if none. */
int store_link_by_item(store_txn *t, const char *mailbox, const char *item_id,
                       char key[STORE_KEY_MAX], cb_err *err);
/* Calls fn for every link in key order; fn returning non-zero stops the walk
 * and is returned. */
int store_link_each(store_txn *t,
                    int (*fn)(void *ud, const char *key, const link_rec *l),
                    void *ud, cb_err *err);

/* The same over the links whose keys start with prefix ("owner/": one
 * person's), in key order. */
int store_link_each_prefix(store_txn *t, const char *prefix,
                           int (*fn)(void *ud, const char *key, const link_rec *l),
                           void *ud, cb_err *err);

/* How many links an owner's source keys ("owner/...") have. */
int store_link_count(store_txn *t, const char *owner, long *n, cb_err *err);

int store_intent_put(store_txn *t, const intent_rec *in, cb_err *err);
int store_intent_del(store_txn *t, const char *tag, cb_err *err);
/* The pending intent with this tag; CB_ENOTFOUND if none. */
int store_intent_get(store_txn *t, const char *tag, intent_rec *out, cb_err *err);
int store_intent_each(store_txn *t, int (*fn)(void *ud, const intent_rec *in),
                      void *ud, cb_err *err);
/* A fresh random tag (32 hex digits) from the kernel (getrandom). */
int store_new_tag(char tag[33], cb_err *err);

/* Small named strings: cursors and meta share one table with prefixes
 * "cursor:" and "meta:"; CB_ENOTFOUND when absent. */
int store_get(store_txn *t, const char *name, char *buf, size_t size, cb_err *err);
int store_put(store_txn *t, const char *name, const char *value, cb_err *err);

/* Removes a name; CB_ENOTFOUND when absent. */
int store_del(store_txn *t, const char *name, cb_err *err);
/* Removes every name starting with prefix. */
int store_del_prefix(store_txn *t, const char *prefix, cb_err *err);
/* Calls fn for every name starting with prefix, in order; fn returning
 * non-zero stops the walk and is returned. */
int store_each(store_txn *t, const char *prefix,
               int (*fn)(void *ud, const char *name, const char *value), void *ud, cb_err *err);

/* Records an edit made on a mirror side (overwritten by the authority):
 * "conflict:<UTC time>:<key>" = message. */
int store_conflict_add(store_txn *t, const char *key, const char *message, cb_err *err);

/* An event that could not be carried: "failed:<what>" = reason, where what
 * is a source key or "exchange:<mailbox>/<ItemId>". Cleared (no error when
 * absent) once it is carried or deleted. */
int store_failed_put(store_txn *t, const char *what, const char *reason, cb_err *err);
int store_failed_clear(store_txn *t, const char *what, cb_err *err);

/* The last change carried for owner: "lag:<owner>" = "<UTC seconds when
 * written> <milliseconds since the change was made on its side>
 * <direction>" (changed: UTC seconds of the source change, 0 unknown). */
int store_lag_put(store_txn *t, const char *owner, const char *direction, double changed,
                  cb_err *err);

/* Which side is a person's source of truth. Changed only by cutover. */
typedef enum { AUTHORITY_APPLE = 0, AUTHORITY_EXCHANGE = 1 } authority;
int store_authority_get(store_txn *t, const char *owner, authority *out, cb_err *err);
int store_authority_put(store_txn *t, const char *owner, authority a, cb_err *err);
const char *authority_name(authority a);

#endif
