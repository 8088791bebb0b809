/*
 * cli_alias.c - `tern alias add|del|list`: addresses that deliver to other
 * local addresses.
 *
 * An alias and its targets are in local domains (relaying to other domains
 * comes later); targets are stored lower-cased, comma-separated, without
 * duplicates. A target may be a user or another alias, and need not exist
 * yet (a warning says so): the server resolves aliases at RCPT time, up to
 * a fixed depth, so changes take effect at once. An alias pointing to
 * itself is refused; longer loops end at the depth limit.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "util/util_str.h"

struct alias_find {
	const char *address;
	bool found;
};

/* alias_list_has - the comma-separated list holds address. */
static bool alias_list_has(const char *list, const char *address)
{
	size_t want = strlen(address);
	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");
		if (len == want && memcmp(p, address, len) == 0)
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

/* alias_targets - the targets checked, lower-cased, comma-joined; NULL after a message. */
static char *alias_targets(const struct config *config, const char *alias, int count, char **args)
{
	char *joined = xmalloc((size_t)count * (CLI_ADDRESS_MAX + 1) + 1);
	size_t len = 0;
	joined[0] = '\0';
	for (int i = 0; i < count; i++) {
		char target[CLI_ADDRESS_MAX + 1];
		if (!cli_address_parse(config, args[i], target, sizeof target)) {
			free(joined);
			return NULL;
		}
		if (strcmp(target, alias) == 0) {
			free(joined);
			cli_fail("%s: an alias cannot point to itself", alias);
			return NULL;
		}
		if (alias_list_has(joined, target))
			continue;
		if (len > 0)
			joined[len++] = ',';
		size_t n = strlen(target);
		memcpy(joined + len, target, n + 1);
		len += n;
	}
	return joined;
}

static void alias_find_fn(void *ctx, const char *address, const char *targets)
{
	(void)targets;
	struct alias_find *find = ctx;
	if (strcmp(address, find->address) == 0)
		find->found = true;
}

/* alias_warn_unknown - say which targets are neither users nor aliases (yet). */
static void alias_warn_unknown(struct store_admin *admin, const char *targets)
{
	char err[512];
	for (const char *p = targets; *p;) {
		size_t len = strcspn(p, ",");
		char target[CLI_ADDRESS_MAX + 1];
		str_copy_n(target, sizeof target, p, len);
		struct alias_find find = {.address = target};
		if (!store_user_exists(admin, target) &&
		    store_alias_each(admin, alias_find_fn, &find, err, sizeof err) && !find.found)
			fprintf(stderr, "tern: warning: %s is neither a user nor an alias\n", target);
		p += len + (p[len] == ',');
	}
}

static int alias_add(const struct config *config, const char *alias, int count, char **args)
{
	char *targets = alias_targets(config, alias, count, args);
	if (!targets)
		return CLI_FAIL;
	struct store_admin *admin = cli_admin_open(config);
	int rc = CLI_FAIL;
	char err[512];
	if (admin && store_alias_set(admin, alias, targets, err, sizeof err)) {
		alias_warn_unknown(admin, targets);
		rc = CLI_OK;
	} else if (admin) {
		cli_fail("%s", err);
	}
	store_admin_close(admin);
	free(targets);
	return rc;
}

static int alias_del(const struct config *config, const char *alias)
{
	struct store_admin *admin = cli_admin_open(config);
	if (!admin)
		return CLI_FAIL;
	char err[512];
	int rc = store_alias_del(admin, alias, err, sizeof err) ? CLI_OK : cli_fail("%s", err);
	store_admin_close(admin);
	return rc;
}

static void alias_print(void *ctx, const char *address, const char *targets)
{
	(void)ctx;
	printf("%s\t%s\n", address, targets);
}

static int alias_list(const struct config *config)
{
	struct store_admin *admin = cli_admin_open(config);
	if (!admin)
		return CLI_FAIL;
	char err[512];
	int rc = store_alias_each(admin, alias_print, NULL, err, sizeof err) ? cli_flush(CLI_OK) : cli_fail("%s", err);
	store_admin_close(admin);
	return rc;
}

/* alias_run - the verb in argv[0], its arguments already counted. */
static int alias_run(const struct config *config, int argc, char **argv)
{
	const char *verb = argv[0];
	if (strcmp(verb, "list") == 0)
		return alias_list(config);
	char alias[CLI_ADDRESS_MAX + 1];
	if (strcmp(verb, "del") == 0)
		return cli_address_copy(argv[1], alias, sizeof alias) ? alias_del(config, alias) : CLI_FAIL;
	if (!cli_address_parse(config, argv[1], alias, sizeof alias))
		return CLI_FAIL;
	return alias_add(config, alias, argc - 2, argv + 2);
}

/* alias_args_ok - the verb is known and has its arguments. */
static bool alias_args_ok(int argc, char **argv)
{
	if (argc < 1)
		return false;
	const char *verb = argv[0];
	if (strcmp(verb, "list") == 0)
		return argc == 1;
	if (strcmp(verb, "del") == 0)
		return argc == 2;
	return strcmp(verb, "add") == 0 && argc >= 3;
}

int cli_alias(int argc, char **argv, const char *config_path)
{
	if (cli_unknown_option(argc, argv) || !alias_args_ok(argc, argv))
		return cli_usage("alias");
	struct config *config = config_load(config_path, stderr);
	if (!config)
		return CLI_FAIL;
	int rc = alias_run(config, argc, argv);
	config_unref(config);
	return rc;
}
