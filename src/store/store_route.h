/*
 * store_route.h - the routes kept on recipient rows: their names in the
 * database, the route of a notice the store makes itself, and routing
 * waiting recipients again after the configuration changed. Store thread.
 */
#ifndef TERN_STORE_ROUTE_H
#define TERN_STORE_ROUTE_H

#include <sqlite3.h>

#include "store/store.h"

/* What routing needs, as the store thread holds it. */
struct store_routing {
	const struct store_router *router;
	void *routes;
	bool local_lmtp;
	/* Who is local, and where postmaster's mail goes (store_settings'). */
	char *const *local_domains;
	size_t local_domain_count;
	const char *postmaster;
	const char *recipient_delimiter;
};

/*
 * store_route_address - route address (an envelope address) as RCPT would:
 * a local one to its mailbox (postmaster's when the address is unknown,
 * since a notice must go somewhere), another domain as the configuration
 * says. Fills route, mailbox and route_key of out (allocated).
 */
void store_route_address(const struct store_routing *routing, struct store_reader *dir, const char *address,
                         struct store_rcpt *out);

/*
 * store_reroute - route every waiting recipient again (queued, deferred,
 * held; not bounced): local ones to Maildir or LMTP as local_lmtp says,
 * the others as the configuration now says. One transaction. The number of
 * rows changed, or -1 on a database error (logged; nothing changed).
 */
int store_reroute(sqlite3 *db, const struct store_routing *routing);

#endif
