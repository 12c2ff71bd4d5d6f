/* keys.h — every name calbridge stores, built and parsed here and nowhere
 * else, so that the layout of the state is one file's contract.
 *
 * Source keys name an Apple calendar object: "owner_uid/calendar_id/name"
 * (the owner's UID, CALENDAR_RESOURCE_ID, RESOURCE_NAME). Named strings
 * (store_get/put) are "<kind>:<argument>":
 *   auth:<owner>          the person's authority
 *   syncstate:<mailbox>   the EWS SyncState of their calendar folder
 *   cutover:<owner>       the step a cutover reached
 *   refetch:<source key>  an Exchange item to write into Apple again
 *   repush:<source key>   an Apple event to write into Exchange again
 *   lag:<owner>           when their last change was carried, and its lag
 *   failed:<what>         something not carried: a source key, or an
 *                         Exchange item (key_exchange_item)
 *   conflict:<UTC time>:<source key>  an edit on a mirror side
 *   memo:<side name>:<name>  what a side keeps across restarts (side_memo:
 *                         Exchange's streaming subscriptions)
 * and the fixed names KEY_CURSOR_APPLE, KEY_LAST_ERROR and KEY_RECONCILED
 * (UTC seconds of the last full read of every Exchange calendar).
 */
#ifndef KEYS_H
#define KEYS_H

#include "../mapping/cb_err.h"

#define KEY_MAX 1024                  /* = STORE_KEY_MAX */
#define KEY_CURSOR_APPLE "cursor:apple"
#define KEY_LAST_ERROR "meta:last_error"
#define KEY_RECONCILED "meta:reconciled"

typedef enum {
    KEY_AUTH, KEY_SYNCSTATE, KEY_CUTOVER, KEY_REFETCH, KEY_REPUSH, KEY_LAG, KEY_FAILED,
    KEY_CONFLICT, KEY_MEMO
} key_kind;

/* The name of kind for arg (an owner, a mailbox or a source key). */
void key_name(key_kind k, const char *arg, char out[KEY_MAX]);
/* The prefix of every name of kind; with owner, only of names whose
 * argument is a source key of that owner ("refetch:<owner>/"). */
void key_prefix(key_kind k, const char *owner, char out[KEY_MAX]);
/* The argument of name when it is of kind, else NULL. */
const char *key_arg(key_kind k, const char *name);

/* A conflict's name, and its parts: *when (UTC, to the millisecond) and
 * the source key. CB_EPARSE when name is not one. */
void key_conflict(const char *when, const char *source, char out[KEY_MAX]);
int key_conflict_parse(const char *name, char when[32], const char **source);

/* Source keys. */
typedef struct source_key {
    char owner[256];
    long long calendar_id;
    char name[256];
} source_key;
void key_source(const char *owner, long long calendar_id, const char *name, char out[KEY_MAX]);
/* CB_EPARSE unless key is "owner/<decimal id>/name" with each part there. */
int key_source_parse(const char *key, source_key *out);
/* 1 when key is a source key of owner's. */
int key_source_owned(const char *key, const char *owner);
/* The prefix of every source key of owner ("owner/"). */
void key_source_prefix(const char *owner, char out[KEY_MAX]);

/* What names an Exchange item in failed: records ("exchange:<mailbox>/<id>"). */
void key_exchange_item(const char *mailbox, const char *item_id, char out[KEY_MAX]);

#endif
