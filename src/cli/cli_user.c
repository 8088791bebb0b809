/*
 * cli_user.c - `tern user add|passwd|del|list`: the users whose mailboxes
 * tern delivers to.
 *
 * Passwords come from standard input only (one line, LF or CRLF stripped),
 * never from the command line where ps(1) would show them. They are hashed
 * with crypt(3): yescrypt ("$y$"), or SHA-512-crypt ("$6$") where libcrypt
 * has no yescrypt, both readable by Dovecot. The clear text is wiped from
 * memory once hashed and is never printed. On a terminal the password is
 * read without echo.
 */
#include "cli/cli.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "util/util_str.h"

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

/* user_hash - crypt(3) hash of password with a fresh salt, or NULL. */
static char *user_hash(const char *password)
{
	static const char *const prefixes[] = {"$y$", "$6$"};
	for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
		char *setting = crypt_gensalt_ra(prefixes[i], 0, NULL, 0);
		if (!setting)
			continue;
		void *data = NULL;
		int size = 0;
		const char *hash = crypt_ra(password, setting, &data, &size);
		char *result = hash && hash[0] != '*' ? str_dup(hash) : NULL;
		if (data)
			explicit_bzero(data, (size_t)size);
		free(data);
		free(setting);
		if (result)
			return result;
	}
	return NULL;
}

/* user_new_hash - read a password from stdin and hash it; NULL after a message. */
static char *user_new_hash(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len = user_read_line(&line, &cap);
	const char *problem = line ? user_password_check(line, len) : "no password on standard input";
	char *hash = problem ? NULL : user_hash(line);
	if (line)
		explicit_bzero(line, cap);
	free(line);
	if (problem)
		cli_fail("%s", problem);
	else if (!hash)
		cli_fail("cannot hash the password (crypt(3) knows neither yescrypt nor SHA-512-crypt)");
	return hash;
}

static int user_add(struct store_admin *admin, const char *address, bool with_password)
{
	char *hash = NULL;
	if (with_password && !(hash = user_new_hash()))
		return CLI_FAIL;
	char err[512];
	bool ok = store_user_add(admin, address, hash, err, sizeof err);
	free(hash);
	return ok ? CLI_OK : cli_fail("%s", err);
}

static int user_passwd(struct store_admin *admin, const char *address)
{
	if (!store_user_exists(admin, address))
		return cli_fail("no user %s", address);
	char *hash = user_new_hash();
	if (!hash)
		return CLI_FAIL;
	char err[512];
	bool ok = store_user_set_password(admin, address, hash, err, sizeof err);
	free(hash);
	return ok ? CLI_OK : cli_fail("%s", err);
}

static int user_del(struct store_admin *admin, const char *address)
{
	char err[512];
	return store_user_del(admin, address, err, sizeof err) ? CLI_OK : cli_fail("%s", err);
}

static void user_print(void *ctx, const char *address, bool has_password, int64_t created_ms)
{
	(void)ctx;
	(void)created_ms;
	printf("%s\t%s\n", address, has_password ? "password" : "-");
}

static int user_list(struct store_admin *admin)
{
	char err[512];
	if (!store_user_each(admin, user_print, NULL, err, sizeof err))
		return cli_fail("%s", err);
	return cli_flush(CLI_OK);
}

/* user_run - the verb in argv[0] on the open database, address already checked. */
static int user_run(struct store_admin *admin, const char *verb, const char *address, bool with_password)
{
	if (strcmp(verb, "list") == 0)
		return user_list(admin);
	if (strcmp(verb, "add") == 0)
		return user_add(admin, address, with_password);
	if (strcmp(verb, "passwd") == 0)
		return user_passwd(admin, address);
	return user_del(admin, address);
}

/* user_args_ok - the verb is known and has its arguments. */
static bool user_args_ok(int argc, char **argv, bool with_password)
{
	if (argc < 1)
		return false;
	const char *verb = argv[0];
	if (strcmp(verb, "list") == 0)
		return argc == 1 && !with_password;
	if (strcmp(verb, "add") == 0 || strcmp(verb, "passwd") == 0)
		return argc == 2;
	return strcmp(verb, "del") == 0 && argc == 2 && !with_password;
}

int cli_user(int argc, char **argv, const char *config_path)
{
	/* passwd always reads stdin; --password-stdin is accepted there too. */
	bool with_password = cli_take_flag(&argc, argv, "--password-stdin");
	if (cli_unknown_option(argc, argv) || !user_args_ok(argc, argv, with_password))
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
		rc = user_run(admin, argv[0], address, with_password);
	store_admin_close(admin);
	config_unref(config);
	return rc;
}
