/* sim_route.h — where the simulated front end sends a request: Exchange's
 * mailbox servers as "Maintain affinity between a group of subscriptions
 * and the Mailbox server in Exchange" (learn.microsoft.com, exchange-web-
 * services) describes them.
 *
 * Mailboxes live in groups (the Autodiscover setting GroupingInformation);
 * each group has SIM_SERVERS_PER_GROUP mailbox servers. A request goes to
 * the server its X-BackEndOverrideCookie names; without the cookie, to any
 * server of its anchor mailbox's group ("the request might get routed to a
 * different Mailbox server"): here round robin, so a client that does not
 * keep affinity meets it at once. A request with X-PreferServerAffinity:
 * true is answered with the cookie of the server it reached.
 */
#ifndef SIM_ROUTE_H
#define SIM_ROUTE_H

#include <stddef.h>

#define SIM_SERVERS_PER_GROUP 2
#define SIM_GROUPS_MAX 8

typedef struct sim_route {
    int groups;             /* 1..SIM_GROUPS_MAX */
    unsigned long turn;     /* round robin without a cookie */
} sim_route;

/* The group of a mailbox (stable: a hash of its lower-cased address). */
int sim_route_group(const sim_route *r, const char *mailbox);
/* The server a request reaches: the cookie's (if it names one of ours),
 * else one of the anchor's group's in turn. */
int sim_route_server(sim_route *r, const char *cookie_header, const char *anchor);
/* Where a Subscribe for mailbox that reached server lives: there if the
 * mailbox is of that server's group, else on a server of its own group
 * (the front end proxies it to the mailbox's site). */
int sim_route_home(sim_route *r, int server, const char *mailbox);
/* "X-BackEndOverrideCookie=<server>~<n>; path=/; secure; HttpOnly" */
void sim_route_cookie(int server, char *out, size_t size);
/* The server's name, as Exchange's look: "SIMPR0<g>MB00<k>.sim.local". */
void sim_route_name(int server, char *out, size_t size);
/* GroupingInformation of a mailbox's group. */
void sim_route_grouping(const sim_route *r, const char *mailbox, char *out, size_t size);

#endif
