/* sides.h — where calbridge's sides are chosen: the one file that knows
 * every side (side.h). A new side is a folder beside apple/ and exchange/
 * and a line in sides.c.
 */
#ifndef SIDES_H
#define SIDES_H

#include <event2/event.h>
#include "../mapping/tzmap.h"
#include "cli/config.h"
#include "side.h"

/* Opens the Apple side and the Exchange side the configuration names, by
 * side_id (out[SIDE_APPLE], out[SIDE_EXCHANGE]); nothing is read or
 * written yet. On failure nothing stays open. */
int sides_open(struct event_base *base, const config *cfg, const people *people,
               const tzmap *tz, side *out[2], cb_err *err);
void sides_close(side *s[2]);

#endif
