/*
 * store_route.c - routes on recipient rows.
 *
 * A recipient's route is decided once: by the server when it accepts the
 * recipient (the RCPT handler), or here for a notice the store makes. It
 * is kept on the row as a name ("mailbox", "lmtp", "mx", "relay") and, for
 * a next hop the configuration chose, the rule that chose it ("smarthost",
 * or "transport:DOMAIN"), so that the mta finds that rule's host, TLS
 * policy and credentials in the configuration it runs with. When the
 * routing configuration changes, store_reroute decides again for every
 * waiting recipient, once, as Postfix's queue manager would route queued
 * mail by the new tables.
 */
#include "store/store_route.h"

#include <string.h>

#include "util/util_log.h"
#include "util/util_str.h"

static const char *const route_names[STORE_ROUTE_COUNT] = {
        [STORE_ROUTE_MAILBOX] = "mailbox",
        [STORE_ROUTE_LMTP] = "lmtp",
        [STORE_ROUTE_MX] = "mx",
        [STORE_ROUTE_RELAY] = "relay",
};

const char *store_route_name(enum store_route route)
{
	return (unsigned)route < STORE_ROUTE_COUNT ? route_names[route] : "unknown";
}

bool store_route_from_name(const char *name, enum store_route *out)
{
	for (unsigned i = 0; i < STORE_ROUTE_COUNT; i++) {
		if (strcmp(name, route_names[i]) == 0) {
			*out = (enum store_route)i;
			return true;
		}
	}
	return false;
}

/* route_domain - the domain of address, lower-cased, into out ("" if it has none). */
static void route_domain(const char *address, char *out, size_t size)
{
	const char *at = strrchr(address, '@');
	str_copy(out, size, at ? at + 1 : "");
	str_lower(out);
}

static bool route_is_local_domain(const struct store_routing *routing, const char *domain)
{
	for (size_t i = 0; i < routing->local_domain_count; i++)
		if (strcmp(domain, routing->local_domains[i]) == 0)
			return true;
	return false;
}

void store_route_address(const struct store_routing *routing, struct store_reader *dir, const char *address,
                         struct store_rcpt *out)
{
	char domain[STORE_ADDRESS_MAX];
	route_domain(address, domain, sizeof domain);
	if (!route_is_local_domain(routing, domain)) {
		char key[STORE_ROUTE_KEY_MAX];
		out->route = routing->router->remote(routing->routes, domain, key, sizeof key);
		out->mailbox = str_dup("");
		out->route_key = key[0] ? str_dup(key) : NULL;
		return;
	}
	char lower[STORE_ADDRESS_MAX];
	str_copy(lower, sizeof lower, address);
	str_lower(lower);
	char boxes[1][STORE_ADDRESS_MAX];
	int n = store_dir_resolve(dir, lower, routing->recipient_delimiter, routing->postmaster, boxes, 1);
	out->route = routing->local_lmtp ? STORE_ROUTE_LMTP : STORE_ROUTE_MAILBOX;
	out->mailbox = str_dup(n > 0 ? boxes[0] : routing->postmaster);
	out->route_key = NULL;
}

/* reroute_remote - decide again for the waiting recipients in other domains; rows changed, or -1. */
static int reroute_remote(sqlite3 *db, const struct store_routing *routing)
{
	sqlite3_stmt *pick = NULL, *set = NULL;
	int changed = 0;
	if (sqlite3_prepare_v2(db,
	                       "SELECT id, address, route, route_key FROM recipients"
	                       " WHERE state<>'bounced' AND route IN ('mx', 'relay')",
	                       -1, &pick, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE recipients SET route=?, route_key=? WHERE id=?", -1, &set, NULL) !=
	            SQLITE_OK)
		changed = -1;
	while (changed >= 0 && sqlite3_step(pick) == SQLITE_ROW) {
		const char *address = (const char *)sqlite3_column_text(pick, 1);
		const char *was = (const char *)sqlite3_column_text(pick, 2);
		const char *was_key = (const char *)sqlite3_column_text(pick, 3);
		char domain[STORE_ADDRESS_MAX], key[STORE_ROUTE_KEY_MAX];
		route_domain(address ? address : "", domain, sizeof domain);
		enum store_route now = routing->router->remote(routing->routes, domain, key, sizeof key);
		if (strcmp(was ? was : "", store_route_name(now)) == 0 && strcmp(was_key ? was_key : "", key) == 0)
			continue;
		sqlite3_bind_text(set, 1, store_route_name(now), -1, SQLITE_STATIC);
		if (key[0])
			sqlite3_bind_text(set, 2, key, -1, SQLITE_TRANSIENT);
		else
			sqlite3_bind_null(set, 2);
		sqlite3_bind_int64(set, 3, sqlite3_column_int64(pick, 0));
		changed = sqlite3_step(set) == SQLITE_DONE ? changed + 1 : -1;
		sqlite3_reset(set);
	}
	sqlite3_finalize(pick);
	sqlite3_finalize(set);
	return changed;
}

/* reroute_local - local recipients to Maildir or LMTP, as local_delivery now says; rows changed, or -1. */
static int reroute_local(sqlite3 *db, const struct store_routing *routing)
{
	sqlite3_stmt *set = NULL;
	int rc = sqlite3_prepare_v2(db,
	                            "UPDATE recipients SET route=?1 WHERE state<>'bounced'"
	                            " AND route IN ('mailbox', 'lmtp') AND route<>?1",
	                            -1, &set, NULL);
	if (rc == SQLITE_OK) {
		enum store_route local = routing->local_lmtp ? STORE_ROUTE_LMTP : STORE_ROUTE_MAILBOX;
		sqlite3_bind_text(set, 1, store_route_name(local), -1, SQLITE_STATIC);
		rc = sqlite3_step(set);
	}
	sqlite3_finalize(set);
	return rc == SQLITE_DONE ? sqlite3_changes(db) : -1;
}

int store_reroute(sqlite3 *db, const struct store_routing *routing)
{
	if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		log_error("event=db_error error=\"%s\" doing=reroute", sqlite3_errmsg(db));
		return -1;
	}
	int local = reroute_local(db, routing);
	int remote = local < 0 ? -1 : reroute_remote(db, routing);
	if (remote < 0 || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		log_error("event=db_error error=\"%s\" doing=reroute", sqlite3_errmsg(db));
		if (!sqlite3_get_autocommit(db))
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	return local + remote;
}
