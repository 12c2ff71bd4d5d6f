/* translate.h — `calbridge translate`: what an event becomes, offline.
 *
 * Forward: an .ics file to the EWS requests calbridge would send — one
 * CreateItem with every item the file becomes, then per recurring master
 * the DeleteItem and UpdateItem on its occurrences. Reverse: an EWS item
 * (a GetItem response) to the iCalendar the Apple side would get. No
 * network, no database: only the people map and the time-zone tables.
 */
#ifndef TRANSLATE_H
#define TRANSLATE_H

#include <stdio.h>

/* argv[0] is "translate". Returns the process exit status: 0 all mapped,
 * 3 mapped with something left out (named on err), 1 an event failed or
 * the input is unreadable, 2 usage. */
int translate_main(int argc, char **argv, FILE *out, FILE *err);

#endif
