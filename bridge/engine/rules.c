#include "rules.h"

#include <stdio.h>

#include "../../state/keys.h"

int rules_guard_holds(const config *cfg, int force, long deletes, long links)
{
    if (force || deletes < cfg->mass_delete_min) return 0;
    if (links < 0) return 1;
    return deletes * 100 > (long)cfg->mass_delete_percent * (links ? links : 1);
}

void rules_guard_report(report *rep, const config *cfg, const char *smtp, long deletes,
                        long links)
{
    rep->held_back++;
    report_add(rep, smtp, 1, "held back: this pass would delete %ld of the person's %ld "
               "mirrored items (over %d%%); nothing was deleted; run with --force-delete if "
               "that is right", deletes, links < 0 ? 0 : links, cfg->mass_delete_percent);
}

void rules_hold_report(report *rep, const char *smtp, const char *why)
{
    rep->held_back++;
    report_add(rep, smtp, 1, "held back: %s; this person's changes wait (nothing is lost), "
               "everyone else goes on", why);
}

int rules_conflict(store_txn *t, report *rep, side_id edited, const char *key,
                   const char *what, const char *item_id, int queue)
{
    const char *here = edited == SIDE_APPLE ? "Apple" : "Exchange";
    const char *there = edited == SIDE_APPLE ? "Exchange" : "Apple";
    char msg[256], name[KEY_MAX];
    snprintf(msg, sizeof msg, "%s in %s while %s is authoritative; %s", what, here, there,
             queue ? (edited == SIDE_APPLE ? "the Exchange version is written back"
                                           : "the Apple version is written back")
                   : "not carried");
    rep->conflicts++;
    report_add(rep, key, 0, "conflict: %s", msg);
    int rc = store_conflict_add(t, key, msg, NULL);
    if (rc || !queue) return rc;
    key_name(edited == SIDE_APPLE ? KEY_REFETCH : KEY_REPUSH, key, name);
    return store_put(t, name, item_id ? item_id : "", NULL);
}

int rules_rewrite(store_txn *t, side_id seen, const char *key, const char *item_id)
{
    char name[KEY_MAX];
    key_name(seen == SIDE_APPLE ? KEY_REFETCH : KEY_REPUSH, key, name);
    return store_put(t, name, item_id ? item_id : "", NULL);
}
