/*
 * cli_suppress.c - `tern suppression list|add|delete|clear`: the addresses
 * in other domains that relayed mail may not go to (see
 * store_suppress.c). The server adds an address when mail to it failed for
 * good because it does not exist; an operator may add one (it then stays
 * until deleted), take one off (after the mailbox came back), or empty the
 * list. Changes go through the database, so they work whether or not the
 * server runs; a running server sees them at the next RCPT and logs them
 * with the user who ran the command.
 *
 * Addresses and reasons may hold bytes a peer chose, so nothing is printed
 * raw (cli_print_safe).
 */
#include "cli/cli.h"

#include <string.h>

#include "cli/cli_util.h"
#include "smtp/smtp_address.h"
#include "util/util_str.h"

/* The longest reason an operator may give. */
#define SUPPRESSION_REASON_MAX 200

struct suppression_list {
	int64_t ttl_ms;
};

/* suppression_print - "ADDRESS<tab>ADDED<tab>EXPIRES<tab>SOURCE<tab>REASON". */
static void suppression_print(void *ctx, const struct store_suppression *e)
{
	const struct suppression_list *list = ctx;
	char when[CLI_TIME_MAX];
	cli_print_safe(e->address);
	printf("\t%s\t", cli_time(when, e->added_ms));
	fputs(e->manual || list->ttl_ms == 0 ? "never" : cli_time(when, e->added_ms + list->ttl_ms), stdout);
	if (e->manual) {
		fputs("\tmanual:", stdout);
		cli_print_safe(e->added_by ? e->added_by : "?");
	} else {
		fputs("\tbounce:", stdout);
		cli_print_safe(e->source_qid ? e->source_qid : "?");
	}
	putchar('\t');
	cli_print_safe(e->reason);
	putchar('\n');
}

static int suppression_list(const struct config *config, struct store_admin *admin, const char *domain_arg)
{
	char domain[256], err[512];
	if (domain_arg && !str_copy(domain, sizeof domain, domain_arg))
		return cli_fail("--domain: too long");
	if (domain_arg)
		str_lower(domain);
	struct suppression_list list = {.ttl_ms = (int64_t)config->suppression_ttl * 1000};
	if (!store_suppression_each(admin, domain_arg ? domain : NULL, config->suppression_ttl * 1000,
	                            suppression_print, &list, err, sizeof err))
		return cli_fail("%s", err);
	return cli_flush(CLI_OK);
}

/* suppression_address - arg as a mailbox (RFC 5321 4.1.2), lower-cased into out; false after a message. */
static bool suppression_address(const struct config *config, const char *arg, char *out, size_t size)
{
	struct smtp_path parsed;
	if (!cli_address_syntax(arg, out, size, &parsed))
		return false;
	if (config_is_local_domain(config, smtp_path_domain(&parsed), parsed.domain_len))
		fprintf(stderr,
		        "tern: warning: %s is in a local domain; the suppression list only stops relayed mail\n", out);
	return true;
}

/* suppression_reason - the words after the address, joined by spaces; false after a message. */
static bool suppression_reason(int count, char **words, char *out, size_t size)
{
	size_t len = 0;
	str_copy(out, size, count > 0 ? "" : "added by hand");
	for (int i = 0; i < count; i++) {
		if (!str_format(out + len, size - len, "%s%s", i ? " " : "", words[i])) {
			cli_fail("the reason is too long (at most %d characters)", SUPPRESSION_REASON_MAX);
			return false;
		}
		len += strlen(out + len);
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) {
			cli_fail("the reason may not hold control characters");
			return false;
		}
	}
	return true;
}

static int suppression_add(const struct config *config, struct store_admin *admin, int argc, char **argv)
{
	char address[CLI_ADDRESS_MAX + 1], reason[SUPPRESSION_REASON_MAX + 1], who[160], err[512];
	if (!suppression_address(config, argv[1], address, sizeof address) ||
	    !suppression_reason(argc - 2, argv + 2, reason, sizeof reason))
		return CLI_FAIL;
	cli_who(who, sizeof who);
	if (!store_suppression_add(admin, address, reason, who, err, sizeof err))
		return cli_fail("%s", err);
	printf("%s: on the suppression list until deleted\n", address);
	return cli_flush(CLI_OK);
}

static int suppression_delete(struct store_admin *admin, const char *arg)
{
	char address[CLI_ADDRESS_MAX + 1], who[160], err[512];
	if (!cli_address_copy(arg, address, sizeof address))
		return CLI_FAIL;
	cli_who(who, sizeof who);
	if (!store_suppression_del(admin, address, who, err, sizeof err))
		return cli_fail("%s", err);
	printf("%s: taken off the suppression list\n", address);
	return cli_flush(CLI_OK);
}

static int suppression_clear(struct store_admin *admin)
{
	char who[160], err[512];
	size_t count = 0;
	cli_who(who, sizeof who);
	if (!store_suppression_clear(admin, who, &count, err, sizeof err))
		return cli_fail("%s", err);
	printf("%zu address%s taken off the suppression list\n", count, count == 1 ? "" : "es");
	return cli_flush(CLI_OK);
}

/* suppression_args_ok - the verb is known and has its arguments. */
static bool suppression_args_ok(int argc, char **argv, bool domain)
{
	if (argc < 1)
		return false;
	const char *verb = argv[0];
	if (strcmp(verb, "list") == 0)
		return argc == 1;
	if (domain)
		return false;
	if (strcmp(verb, "add") == 0)
		return argc >= 2;
	if (strcmp(verb, "delete") == 0)
		return argc == 2;
	return strcmp(verb, "clear") == 0 && argc == 1;
}

int cli_suppression(int argc, char **argv, const char *config_path)
{
	const char *domain = NULL;
	int given = cli_take_option(&argc, argv, "--domain", &domain);
	if (given < 0)
		return CLI_USAGE;
	if (cli_unknown_option(argc, argv) || !suppression_args_ok(argc, argv, given > 0))
		return cli_usage("suppression");
	struct config *config = config_load(config_path, stderr);
	if (!config)
		return CLI_FAIL;
	struct store_admin *admin = cli_admin_open(config);
	int rc = CLI_FAIL;
	if (admin && strcmp(argv[0], "list") == 0)
		rc = suppression_list(config, admin, domain);
	else if (admin && strcmp(argv[0], "add") == 0)
		rc = suppression_add(config, admin, argc, argv);
	else if (admin && strcmp(argv[0], "delete") == 0)
		rc = suppression_delete(admin, argv[1]);
	else if (admin)
		rc = suppression_clear(admin);
	store_admin_close(admin);
	config_unref(config);
	return rc;
}
