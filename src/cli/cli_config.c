/*
 * cli_config.c - `tern config check|defaults`: validate a configuration
 * file, or list every parameter with its default.
 *
 * Both come from the one parameter table in src/config: check runs the same
 * loader as `tern serve` (which prints every problem as FILE:LINE: PARAM:
 * message), and defaults prints the table as a commented configuration
 * file or, with --markdown, as docs/CONFIG.md.
 *
 * check also warns of settings that load but hurt: CRAM-MD5 offered, with
 * the users who lack its secret (clients that prefer CRAM-MD5 do not fall
 * back to another mechanism, so those users cannot send from them); a
 * route that sends credentials over TLS whose certificate is not checked
 * (auth= with verify=no). It loads each route's ca= file as the server
 * would, so a file that is not PEM fails the check.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "net/net_tls.h"
#include "store/store_admin.h"
#include "util/util_str.h"

/* cram_user_warn - store_user_fn: name a user who has a password but no CRAM-MD5 secret. */
static void cram_user_warn(void *ctx, const struct store_user_info *user)
{
	size_t *missing = ctx;
	if (!user->has_password || user->has_cram)
		return;
	if ((*missing)++ == 0)
		fputs("tern: warning: users without a CRAM-MD5 secret (tern user passwd EMAIL --cram-md5):\n", stderr);
	fprintf(stderr, "  %s\n", user->address);
}

/* config_warn_cram - the CRAM-MD5 warning, with the users it leaves out if the queue exists already. */
static void config_warn_cram(const struct config *config)
{
	if (!(config->auth_mechanisms & CONFIG_MECH_CRAM_MD5))
		return;
	fputs("tern: warning: auth_mechanisms offers cram-md5: its secret is equivalent to the password, and clients "
	      "that prefer it (PHPMailer, curl, Python's smtplib) fail for users without one instead of trying "
	      "another mechanism\n",
	      stderr);
	char db[1100];
	if (!str_format(db, sizeof db, "%s/queue.db", config->data_dir) || access(db, F_OK) != 0)
		return;
	char err[512];
	struct store_admin *admin = store_admin_open(config->data_dir, err, sizeof err);
	size_t missing = 0;
	if (!admin || !store_user_each(admin, cram_user_warn, &missing, err, sizeof err))
		fprintf(stderr, "tern: warning: cannot list the users: %s\n", err);
	store_admin_close(admin);
}

/* config_route_at - the smarthost (i == transport_count) or transport i. */
static const struct config_route *config_route_at(const struct config *config, size_t i)
{
	return i < config->transport_count ? &config->transports[i] : &config->smarthost;
}

/* config_warn_unverified - loudly: the relay's password goes to whoever answers that address. */
static void config_warn_unverified(const struct config *config)
{
	for (size_t i = 0; i <= config->transport_count; i++) {
		const struct config_route *r = config_route_at(config, i);
		if (config_route_unverified(r))
			fprintf(stderr,
			        "tern: WARNING: %s %s%s%s: auth= with verify=no sends the password over TLS whose "
			        "certificate is not checked: anyone in the path can take it (drop verify=no; ca=FILE "
			        "names the CA if the relay's is a private one)\n",
			        r->domain ? "transport" : "smarthost", r->domain ? r->domain : "", r->domain ? " " : "",
			        r->text);
	}
}

/* config_check_ca - each ca= file loads as the CAs of a TLS context. */
static bool config_check_ca(const struct config *config)
{
	char err[512];
	struct tls_client *client = tls_client_new(false, err, sizeof err);
	bool ok = client != NULL;
	for (size_t i = 0; ok && i <= config->transport_count + 1; i++) {
		const struct config_route *r =
		        i <= config->transport_count ? config_route_at(config, i) : &config->local_delivery;
		ok = !r->ca_file || tls_client_add_ca(client, r->ca_file, err, sizeof err);
	}
	if (!ok)
		fprintf(stderr, "tern: %s\n", err);
	tls_client_unref(client);
	return ok;
}

static int config_check(const char *config_path)
{
	struct config *config = config_load(config_path, stderr);
	if (!config)
		return CLI_FAIL;
	if (!config_check_ca(config)) {
		config_unref(config);
		return CLI_FAIL;
	}
	config_warn_cram(config);
	config_warn_unverified(config);
	printf("%s: ok\n", config_path ? config_path : "(defaults)");
	config_unref(config);
	return cli_flush(CLI_OK);
}

int cli_config(int argc, char **argv, const char *config_path)
{
	bool markdown = cli_take_flag(&argc, argv, "--markdown");
	if (cli_unknown_option(argc, argv) || argc != 1)
		return cli_usage("config");
	if (strcmp(argv[0], "check") == 0 && !markdown)
		return config_check(config_path);
	if (strcmp(argv[0], "defaults") == 0) {
		config_print_defaults(stdout, markdown);
		return cli_flush(CLI_OK);
	}
	return cli_usage("config");
}
