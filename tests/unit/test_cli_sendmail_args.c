/*
 * test_cli_sendmail_args.c - the flags of `tern sendmail`
 * (cli/cli_sendmail_args.c), read as the traditional sendmail reads them:
 * grouped flags, glued and separate values, flags after recipients, "--",
 * the flags tern takes and ignores, and the ones it refuses.
 *
 * Table-driven: each row is an argument vector and what it must give, or
 * the error it must give.
 */
#include <stdint.h>

#include "cli/cli_sendmail.h"
#include "unit.h"

#define ARGS_MAX 20

struct args_case {
	const char *argv[ARGS_MAX]; /* NULL-terminated */
	enum sendmail_mode mode;
	bool extract, ignore_dots, eight_bit;
	const char *sender, *full_name, *config;
	const char *rcpts; /* "|" between them */
};

static const struct args_case args_cases[] = {
        /* the common callers */
        {{"-t", "-i", NULL}, SENDMAIL_MAIL, true, true, false, NULL, NULL, NULL, ""},
        {{"-ti", NULL}, SENDMAIL_MAIL, true, true, false, NULL, NULL, NULL, ""},
        {{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root", NULL},
         SENDMAIL_MAIL,
         false,
         true,
         true,
         NULL,
         "CronDaemon",
         NULL,
         "root"},
        {{"-i", "-f", "me@x.example", "a@x.example", "b@x.example", NULL},
         SENDMAIL_MAIL,
         false,
         true,
         false,
         "me@x.example",
         NULL,
         NULL,
         "a@x.example|b@x.example"},
        {{"-oi", "-t", NULL}, SENDMAIL_MAIL, true, true, false, NULL, NULL, NULL, ""},
        /* values glued or separate; -r is -f */
        {{"-fme@x.example", NULL}, SENDMAIL_MAIL, false, false, false, "me@x.example", NULL, NULL, ""},
        {{"-r", "me@x.example", NULL}, SENDMAIL_MAIL, false, false, false, "me@x.example", NULL, NULL, ""},
        {{"-f", "", "a", NULL}, SENDMAIL_MAIL, false, false, false, "", NULL, NULL, "a"},
        {{"-f", "<>", NULL}, SENDMAIL_MAIL, false, false, false, "<>", NULL, NULL, ""},
        {{"-F", "Cron Daemon", NULL}, SENDMAIL_MAIL, false, false, false, NULL, "Cron Daemon", NULL, ""},
        {{"-F", "-not-a-flag", NULL}, SENDMAIL_MAIL, false, false, false, NULL, "-not-a-flag", NULL, ""},
        {{"-tF", "Name", NULL}, SENDMAIL_MAIL, true, false, false, NULL, "Name", NULL, ""},
        {{"-C", "/etc/tern/other.conf", NULL},
         SENDMAIL_MAIL,
         false,
         false,
         false,
         NULL,
         NULL,
         "/etc/tern/other.conf",
         ""},
        {{"-c/srv/tern.conf", NULL}, SENDMAIL_MAIL, false, false, false, NULL, NULL, "/srv/tern.conf", ""},
        {{"-B", "7bit", NULL}, SENDMAIL_MAIL, false, false, false, NULL, NULL, NULL, ""},
        {{"-B", "8bitmime", "-B7BIT", NULL}, SENDMAIL_MAIL, false, false, false, NULL, NULL, NULL, ""},
        /* modes */
        {{"-bm", NULL}, SENDMAIL_MAIL, false, false, false, NULL, NULL, NULL, ""},
        {{"-bs", NULL}, SENDMAIL_SMTP, false, false, false, NULL, NULL, NULL, ""},
        {{"-bp", NULL}, SENDMAIL_QUEUE, false, false, false, NULL, NULL, NULL, ""},
        {{"-b", "i", NULL}, SENDMAIL_ALIASES, false, false, false, NULL, NULL, NULL, ""},
        /* flags anywhere; "--" ends them */
        {{"a@x.example", "-i", "b@x.example", NULL},
         SENDMAIL_MAIL,
         false,
         true,
         false,
         NULL,
         NULL,
         NULL,
         "a@x.example|b@x.example"},
        {{"-i", "--", "-t", "a", NULL}, SENDMAIL_MAIL, false, true, false, NULL, NULL, NULL, "-t|a"},
        {{"-", NULL}, SENDMAIL_MAIL, false, false, false, NULL, NULL, NULL, "-"},
        /* taken and ignored, with their values */
        {{"-v",   "-U",   "-G",   "-m",   "-n",   "-h",   "5",    "-Llabel", "-X", "/tmp/log", "-O", "DeliveryMode=b",
          "-odb", "-odi", "-odq", "-oem", "-oep", "-oee", "-oeq", "-ow"},
         SENDMAIL_MAIL,
         false,
         false,
         false,
         NULL,
         NULL,
         NULL,
         ""},
        {{"-om", "-oQ/var/spool", "x", NULL}, SENDMAIL_MAIL, false, false, false, NULL, NULL, NULL, "x"},
};

static const struct {
	const char *argv[ARGS_MAX];
	const char *err;
} refused_cases[] = {
        {{"-q", NULL}, "unknown flag -q"},
        {{"-tq", NULL}, "unknown flag -q"},
        {{"--help", NULL}, "unknown flag --"},
        {{"-f", NULL}, "-f needs a value"},
        {{"-i", "-C", NULL}, "-C needs a value"},
        {{"-bd", NULL}, "-bd is not supported (tern has -bm, -bs, -bp and -bi)"},
        {{"-bv", "a", NULL}, "-bv is not supported (tern has -bm, -bs, -bp and -bi)"},
        {{"-B", "binarymime", NULL}, "-B takes 8BITMIME or 7BIT, not \"binarymime\""},
        {{"-N", "sometimes", NULL}, "-N takes never, or success, failure and delay joined by commas"},
        {{"-Nnever,success", NULL}, "-N takes never, or success, failure and delay joined by commas"},
        {{"-R", "most", NULL}, "-R takes full or hdrs"},
        {{"-V", "", NULL}, "-V takes an envelope id of at most 100 characters"},
};

static void join(char *out, size_t size, char **list, size_t count)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < count; i++)
		used += (size_t)snprintf(out + used, size - used, "%s%s", i ? "|" : "", list[i]);
}

/* to_argv - the row's words as argv; returns argc. */
static int to_argv(const char *const words[ARGS_MAX], char *argv[ARGS_MAX + 1])
{
	int argc = 0;
	while (argc < ARGS_MAX && words[argc]) {
		argv[argc] = (char *)(uintptr_t)words[argc];
		argc++;
	}
	argv[argc] = NULL;
	return argc;
}

static void check_case(const struct args_case *t)
{
	char *argv[ARGS_MAX + 1];
	int argc = to_argv(t->argv, argv);
	struct sendmail_options o;
	char err[256], rcpts[512];
	bool ok = sendmail_args_parse(argc, argv, &o, err, sizeof err);
	if (!ok)
		UNIT_FAIL("[%s ...]: got \"%s\", want no error", t->argv[0], err);
	join(rcpts, sizeof rcpts, o.rcpts, o.rcpt_count);
	CHECK_INT(o.mode, t->mode);
	CHECK_INT(o.extract, t->extract);
	CHECK_INT(o.ignore_dots, t->ignore_dots);
	CHECK_INT(o.eight_bit, t->eight_bit);
	CHECK_STR(o.sender ? o.sender : "(none)", t->sender ? t->sender : "(none)");
	CHECK_STR(o.full_name ? o.full_name : "(none)", t->full_name ? t->full_name : "(none)");
	CHECK_STR(o.config ? o.config : "(none)", t->config ? t->config : "(none)");
	CHECK_STR(rcpts, t->rcpts);
	sendmail_args_free(&o);
}

static void test_args_table(void)
{
	for (size_t i = 0; i < sizeof args_cases / sizeof args_cases[0]; i++)
		check_case(&args_cases[i]);
	for (size_t i = 0; i < sizeof refused_cases / sizeof refused_cases[0]; i++) {
		char *argv[ARGS_MAX + 1], err[256];
		struct sendmail_options o;
		CHECK(!sendmail_args_parse(to_argv(refused_cases[i].argv, argv), argv, &o, err, sizeof err));
		CHECK_STR(err, refused_cases[i].err);
		sendmail_args_free(&o);
	}
}

/* The DSN flags become the SMTP parameters' values. */
static void test_args_dsn(void)
{
	char *argv[] = {"-N", "success,Delay", "-Rhdrs", "-V", "id+1=x y", NULL};
	struct sendmail_options o;
	char err[256];
	CHECK(sendmail_args_parse(5, argv, &o, err, sizeof err));
	CHECK_INT(o.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
	CHECK_STR(o.ret, "HDRS");
	CHECK_STR(o.envid, "id+2B1+3Dx+20y");
	sendmail_args_free(&o);

	char *never[] = {"-Nnever", "-R", "FULL", NULL};
	CHECK(sendmail_args_parse(3, never, &o, err, sizeof err));
	CHECK_INT(o.notify, SMTP_NOTIFY_NEVER);
	CHECK_STR(o.ret, "FULL");
	CHECK_STR(o.envid, "");
	sendmail_args_free(&o);

	/* An envelope id that would be longer than 100 characters as xtext. */
	char long_id[60], *too_long[] = {"-V", long_id, NULL};
	memset(long_id, ' ', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	CHECK(!sendmail_args_parse(2, too_long, &o, err, sizeof err));
	sendmail_args_free(&o);
}

static void test_xtext(void)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	        {"", ""},
	        {"plain-id.1", "plain-id.1"},
	        {"a+b=c", "a+2Bb+3Dc"},
	        {" \t~!", "+20+09~!"},
	        {"\xc3\xa9\x7f", "+C3+A9+7F"},
	};
	char out[64];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		CHECK(sendmail_args_xtext(cases[i].in, out, sizeof out));
		CHECK_STR(out, cases[i].want);
	}
	CHECK(!sendmail_args_xtext("abc", out, 3));
	CHECK(sendmail_args_xtext("abc", out, 4));
	CHECK(!sendmail_args_xtext("a+", out, 4));
	CHECK(sendmail_args_xtext("a+", out, 5));
	CHECK_STR(out, "a+2B");
}

int main(void)
{
	test_args_table();
	test_args_dsn();
	test_xtext();
	return unit_finish("cli_sendmail_args");
}
