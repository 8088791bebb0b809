/*
 * cli_user.c - `tern user add|passwd|senders|del|list`: the users whose
 * mailboxes tern delivers to and who may authenticate.
 *
 * Passwords come from standard input only (one line, LF or CRLF stripped),
 * never from the command line where ps(1) would show them. They are hashed
 * with crypt(3) (auth/auth_secret.c), and every password also gets its
 * SCRAM-SHA-256 secret, which is salted and iterated like the hash, so
 * that every mechanism offered by default works for every user.
 * --cram-md5 also stores the CRAM-MD5 secret, which is equivalent to the
 * password for that mechanism and so only made when asked for. --scram is
 * still accepted, for scripts written when SCRAM was opt-in. A new
 * password replaces all of a user's secrets. The clear text is wiped from memory once hashed and is
 * never printed. On a terminal the password is read without echo.
 */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth/auth_secret.h"
#include "cli/cli_util.h"
#include "smtp/smtp_address.h"
#include "store/store.h"
#include "store/store_admin.h"
#include "util/util_str.h"

/* What the command line asked for besides the verb. */
struct user_options {
	bool with_password; /* read a password (add; passwd always does) */
	bool cram;          /* also a CRAM-MD5 secret */
};

/* Longest password taken: far above any real one, small enough to bound work. */
#define USER_PASSWORD_MAX 1024

/* user_echo_off - turn off terminal echo on stdin, saving the old mode. */
static bool user_echo_off(struct termios *saved)
{
	if (tcgetattr(STDIN_FILENO, saved) != 0)
		return false;
	struct termios quiet = *saved;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	return tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
}

/* user_read_line - one line of stdin, prompting without echo on a terminal. */
static ssize_t user_read_line(char **line, size_t *cap)
{
	struct termios saved;
	bool tty = isatty(STDIN_FILENO);
	bool quiet = tty && user_echo_off(&saved);
	if (tty)
		fputs("Password: ", stderr);
	ssize_t len = getline(line, cap, stdin);
	if (quiet) {
		tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
		fputc('\n', stderr);
	}
	return len;
}

/* user_password_check - strip the line end; NULL if the password is usable, else why not. */
static const char *user_password_check(char *line, ssize_t len)
{
	if (len < 0)
		return "no password on standard input";
	size_t n = (size_t)len;
	if (n > 0 && line[n - 1] == '\n')
		n--;
	if (n > 0 && line[n - 1] == '\r')
		n--;
	line[n] = '\0';
	if (n == 0)
		return "empty password refused";
	if (n > USER_PASSWORD_MAX)
		return "password too long";
	if (strlen(line) != n)
		return "password holds a NUL byte";
	return NULL;
}

/* The secrets made from one new password; cram is "" unless the user opted in. */
struct user_secrets {
	char hash[AUTH_SECRET_MAX];
	char scram[AUTH_SECRET_MAX];
	char cram[AUTH_SECRET_MAX];
};

/* user_make_secrets - hash the password, make its SCRAM secret (and CRAM's if asked); false after a message. */
static bool user_make_secrets(const char *password, bool cram, struct user_secrets *out)
{
	memset(out, 0, sizeof *out);
	if (!auth_password_hash(password, out->hash, sizeof out->hash)) {
		cli_fail("cannot hash the password (crypt(3) knows neither yescrypt nor SHA-512-crypt)");
		return false;
	}
	if (!auth_scram_secret(password, out->scram, sizeof out->scram) ||
	    (cram && !auth_cram_secret(password, out->cram, sizeof out->cram))) {
		cli_fail("cannot make the SCRAM-SHA-256 or CRAM-MD5 secret");
		return false;
	}
	return true;
}

/* user_new_secrets - read a password from stdin and make its secrets; false after a message. */
static bool user_new_secrets(bool cram, struct user_secrets *out)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len = user_read_line(&line, &cap);
	const char *problem = line ? user_password_check(line, len) : "no password on standard input";
	bool ok = !problem && user_make_secrets(line, cram, out);
	if (line)
		explicit_bzero(line, cap);
	free(line);
	if (problem)
		cli_fail("%s", problem);
	return ok;
}

static const char *or_null(const char *s)
{
	return s[0] ? s : NULL;
}

static int user_set_secrets(struct store_admin *admin, const char *address, const struct user_secrets *secrets)
{
	char err[512];
	bool ok = store_user_set_secrets(admin, address, secrets->hash, or_null(secrets->scram), or_null(secrets->cram),
	                                 err, sizeof err);
	return ok ? CLI_OK : cli_fail("%s", err);
}

static int user_add(struct store_admin *admin, const char *address, const struct user_options *opt)
{
	struct user_secrets secrets;
	if (opt->with_password && !user_new_secrets(opt->cram, &secrets))
		return CLI_FAIL;
	char err[512];
	int rc = store_user_add(admin, address, NULL, err, sizeof err) ? CLI_OK : cli_fail("%s", err);
	if (rc == CLI_OK && opt->with_password)
		rc = user_set_secrets(admin, address, &secrets);
	if (opt->with_password)
		explicit_bzero(&secrets, sizeof secrets);
	return rc;
}

static int user_passwd(struct store_admin *admin, const char *address, const struct user_options *opt)
{
	if (!store_user_exists(admin, address))
		return cli_fail("no user %s", address);
	struct user_secrets secrets;
	if (!user_new_secrets(opt->cram, &secrets))
		return CLI_FAIL;
	int rc = user_set_secrets(admin, address, &secrets);
	explicit_bzero(&secrets, sizeof secrets);
	return rc;
}

/* sender_pattern_ok - an address, or "@domain". */
static bool sender_pattern_ok(const char *pattern)
{
	const char *at = strrchr(pattern, '@');
	if (!at || at[1] == '\0' || strlen(pattern) >= STORE_ADDRESS_MAX)
		return false;
	return smtp_domain_check(at + 1, strlen(at + 1), false, false);
}

/* user_senders - replace the user's sender patterns with argv[0..argc). */
static int user_senders(struct store_admin *admin, const char *address, int argc, char **argv)
{
	char list[4096] = "";
	size_t used = 0;
	for (int i = 0; i < argc; i++) {
		if (!sender_pattern_ok(argv[i]))
			return cli_fail("%s is not an address or @domain", argv[i]);
		if (!str_format(list + used, sizeof list - used, "%s%s", used ? "," : "", argv[i]))
			return cli_fail("too many sender patterns");
		used += strlen(list + used);
	}
	str_lower(list);
	char err[512];
	return store_user_set_senders(admin, address, list, err, sizeof err) ? CLI_OK : cli_fail("%s", err);
}

static int user_del(struct store_admin *admin, const char *address)
{
	char err[512];
	return store_user_del(admin, address, err, sizeof err) ? CLI_OK : cli_fail("%s", err);
}

static void user_print(void *ctx, const struct store_user_info *user)
{
	(void)ctx;
	char mechs[64] = "";
	if (user->has_password)
		str_format(mechs, sizeof mechs, "password%s%s", user->has_scram ? ",scram-sha-256" : "",
		           user->has_cram ? ",cram-md5" : "");
	printf("%s\t%s\t%s\n", user->address, mechs[0] ? mechs : "-", user->senders[0] ? user->senders : "-");
}

static int user_list(struct store_admin *admin)
{
	char err[512];
	if (!store_user_each(admin, user_print, NULL, err, sizeof err))
		return cli_fail("%s", err);
	return cli_flush(CLI_OK);
}

/* user_run - the verb in argv[0] on the open database, address already checked. */
static int user_run(struct store_admin *admin, int argc, char **argv, const char *address,
                    const struct user_options *opt)
{
	const char *verb = argv[0];
	if (strcmp(verb, "list") == 0)
		return user_list(admin);
	if (strcmp(verb, "add") == 0)
		return user_add(admin, address, opt);
	if (strcmp(verb, "passwd") == 0)
		return user_passwd(admin, address, opt);
	if (strcmp(verb, "senders") == 0)
		return user_senders(admin, address, argc - 2, argv + 2);
	return user_del(admin, address);
}

/* user_args_ok - the verb is known and has its arguments and only its options. */
static bool user_args_ok(int argc, char **argv, const struct user_options *opt)
{
	if (argc < 1)
		return false;
	const char *verb = argv[0];
	bool secrets = opt->with_password || opt->cram;
	if (strcmp(verb, "list") == 0)
		return argc == 1 && !secrets;
	if (strcmp(verb, "add") == 0)
		return argc == 2 && (opt->with_password || !opt->cram);
	if (strcmp(verb, "passwd") == 0)
		return argc == 2;
	if (strcmp(verb, "senders") == 0)
		return argc >= 2 && !secrets;
	return strcmp(verb, "del") == 0 && argc == 2 && !secrets;
}

int cli_user(int argc, char **argv, const char *config_path)
{
	/* passwd always reads stdin; --password-stdin is accepted there too.
	 * --scram asks for what every password gets now. */
	bool scram = cli_take_flag(&argc, argv, "--scram");
	struct user_options opt = {
	        .with_password = cli_take_flag(&argc, argv, "--password-stdin"),
	        .cram = cli_take_flag(&argc, argv, "--cram-md5"),
	};
	if (scram && !opt.with_password && !(argc > 0 && strcmp(argv[0], "passwd") == 0))
		return cli_usage("user");
	if (cli_unknown_option(argc, argv) || !user_args_ok(argc, argv, &opt))
		return cli_usage("user");
	struct config *config = config_load(config_path, stderr);
	if (!config)
		return CLI_FAIL;
	char address[CLI_ADDRESS_MAX + 1] = "";
	struct store_admin *admin = NULL;
	int rc = CLI_FAIL;
	bool checked =
	        argc < 2 || (strcmp(argv[0], "add") == 0 ? cli_mailbox_parse(config, argv[1], address, sizeof address)
	                                                 : cli_address_copy(argv[1], address, sizeof address));
	if (checked)
		admin = cli_admin_open(config);
	if (admin)
		rc = user_run(admin, argc, argv, address, &opt);
	store_admin_close(admin);
	config_unref(config);
	return rc;
}
