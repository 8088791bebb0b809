/*
 * smtpd_route.h - how a recipient in another domain leaves: the one
 * decision, made by the RCPT handler for what clients send and by the
 * store (through smtpd_router) for notices and after a reload.
 */
#ifndef TERN_SMTPD_ROUTE_H
#define TERN_SMTPD_ROUTE_H

#include <stddef.h>

#include "store/store.h"

/*
 * smtpd_route_remote - the route of domain (lower case, not local) in
 * config (a struct config): STORE_ROUTE_RELAY when a transport line or the
 * smarthost names a next hop, else STORE_ROUTE_MX; key gets the rule
 * (config_route_for's), "" for the MX hosts by default.
 */
enum store_route smtpd_route_remote(const void *config, const char *domain, char *key, size_t keysize);

/* For store_settings and store_set_routes: routes is a struct config, released with config_unref. */
extern const struct store_router smtpd_router;

#endif
