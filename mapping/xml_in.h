/* xml_in.h — reading XML that somebody else wrote (EWS answers, streamed
 * envelopes, GetItem bodies) without letting it decide what the parser does.
 *
 * The document may carry no DTD at all: that is how entity-expansion bombs
 * and external entities get in, and no EWS answer has one. Nothing is
 * fetched (NONET), no entity is substituted, and libxml2's own limits stay
 * in force (no XML_PARSE_HUGE: element depth 256, text nodes 10 MB).
 */
#ifndef XML_IN_H
#define XML_IN_H

#include <libxml/tree.h>
#include <stddef.h>
#include "cb_err.h"

/* Largest document read at all (bytes). */
#define XML_IN_MAX (256u * 1024 * 1024)

/* The parsed document (free with xmlFreeDoc), or NULL with err set:
 * CB_EPARSE for a DTD, an over-deep or malformed document, or one larger
 * than XML_IN_MAX. */
xmlDoc *xml_in_read(const char *xml, size_t len, cb_err *err);

/* The first element named name (local name) below n in document order, or
 * NULL. Iterative, and it descends element nodes only. */
xmlNode *xml_in_find(xmlNode *n, const char *name);

#endif
