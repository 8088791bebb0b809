/*
 * smtpd_route.c - the route of a recipient in another domain (see
 * smtpd_route.h). Local recipients are routed by the directory
 * (store_dir_resolve) to MAILBOX or LMTP, as local_delivery says.
 */
#include "smtpd/smtpd_route.h"

#include "config/config.h"

enum store_route smtpd_route_remote(const void *config, const char *domain, char *key, size_t keysize)
{
	const struct config_route *route = config_route_for(config, domain, key, keysize);
	return route->kind == CONFIG_ROUTE_MX ? STORE_ROUTE_MX : STORE_ROUTE_RELAY;
}

static void smtpd_route_release(void *config)
{
	config_unref(config);
}

const struct store_router smtpd_router = {
        .remote = smtpd_route_remote,
        .release = smtpd_route_release,
};
