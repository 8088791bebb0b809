/*
 * test_config.c - the configuration loader, driven by config texts written
 * to a temporary directory.
 *
 * Tables of good texts (with the value they must give) and bad texts (with
 * the exact error output, "tern.conf:LINE: PARAM: message" per problem),
 * every number parameter at its bounds and one past them, listen's repeat
 * semantics, the built-in defaults against the documented values, the
 * generated files (docs/CONFIG.md, etc/tern.conf.dev) against the table,
 * config_needs_restart, and random texts that must load or fail cleanly.
 * Run from the top of the source tree (make unit does).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "unit.h"

static char dir[256];

/* file_in_dir - DIR/name into buf. */
static const char *file_in_dir(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", dir, name);
	return buf;
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fwrite(text, 1, len, f) != len) {
		UNIT_FAIL("cannot write %s: %s", path, strerror(errno));
		if (f != NULL)
			fclose(f);
		return;
	}
	fclose(f);
}

/* strip_dir - remove every "DIR/" from s, in place, so messages read "tern.conf:1: ...". */
static void strip_dir(char *s)
{
	char prefix[300];
	snprintf(prefix, sizeof prefix, "%s/", dir);
	size_t n = strlen(prefix);
	char *hit;
	while ((hit = strstr(s, prefix)) != NULL)
		memmove(hit, hit + n, strlen(hit + n) + 1);
}

/* load_path - config_load(path) with its error output captured into *errors (malloc'd). */
static struct config *load_path(const char *path, char **errors)
{
	size_t size;
	FILE *err = open_memstream(errors, &size);
	struct config *c = config_load(path, err);
	fclose(err);
	strip_dir(*errors);
	return c;
}

/* load_bytes - text[0..len) as DIR/tern.conf, loaded. */
static struct config *load_bytes(const char *text, size_t len, char **errors)
{
	char path[300];
	write_file(file_in_dir(path, sizeof path, "tern.conf"), text, len);
	return load_path(path, errors);
}

static struct config *load_text(const char *text, char **errors)
{
	return load_bytes(text, strlen(text), errors);
}

/* ---- bad texts: the exact error output ---- */

struct bad_case {
	const char *text;
	const char *want;
};

static const struct bad_case bad_cases[] = {
        /* syntax */
        {"max_message_size = 12Q\n",
         "tern.conf:1: max_message_size: \"12Q\" is not a size (use a number with k, M or G)\n"},
        {"hostname mail.example.com\n", "tern.conf:1: hostname: missing \"=\" (write name = value)\n"},
        {"= 5\n", "tern.conf:1: no parameter name before \"=\"\n"},
        {"max_mesage_size = 1M\n",
         "tern.conf:1: max_mesage_size: unknown parameter (did you mean max_message_size?)\n"},
        {"Hostname = a.example\n", "tern.conf:1: Hostname: unknown parameter (did you mean hostname?)\n"},
        {"max_erors = 5\n", "tern.conf:1: max_erors: unknown parameter (did you mean max_errors?)\n"},
        {"frobnicate = 1\n", "tern.conf:1: frobnicate: unknown parameter\n"},
        {"max errors = 5\n", "tern.conf:1: \"max errors\": unknown parameter (did you mean max_errors?)\n"},
        {"max_errors = 5\r\n", "tern.conf:1: carriage return in line (write the file with LF line endings)\n"},
        {"# fine\nmax_errors = 5\nmax_errors = 6\n", "tern.conf:3: max_errors: given twice (first on line 2)\n"},
        {"data_dir =\n", "tern.conf:1: data_dir: no value (write data_dir = VALUE)\n"},
        {"hostname = \t \n", "tern.conf:1: hostname: no value (write hostname = VALUE)\n"},
        {"max_errors = 5 # five\n", "tern.conf:1: max_errors: \"5 # five\" is not a count (use a whole number)\n"},
        {"hostname = a=b\n", "tern.conf:1: hostname: \"a=b\" is not a valid domain name\n"},
        /* sizes */
        {"max_message_size = 1023\n", "tern.conf:1: max_message_size: \"1023\" is out of range (1k..2G)\n"},
        {"max_message_size = 3G\n", "tern.conf:1: max_message_size: \"3G\" is out of range (1k..2G)\n"},
        {"max_message_size = k\n",
         "tern.conf:1: max_message_size: \"k\" is not a size (use a number with k, M or G)\n"},
        {"max_message_size = 1.5M\n",
         "tern.conf:1: max_message_size: \"1.5M\" is not a size (use a number with k, M or G)\n"},
        {"max_message_size = -1\n",
         "tern.conf:1: max_message_size: \"-1\" is not a size (use a number with k, M or G)\n"},
        {"max_message_size = 25 M\n",
         "tern.conf:1: max_message_size: \"25 M\" is not a size (use a number with k, M or G)\n"},
        {"max_message_size = 25MB\n",
         "tern.conf:1: max_message_size: \"25MB\" is not a size (use a number with k, M or G)\n"},
        {"max_message_size = 18446744073709551616\n",
         "tern.conf:1: max_message_size: \"18446744073709551616\" is out of range (1k..2G)\n"},
        {"max_message_size = 18446744073709551615G\n",
         "tern.conf:1: max_message_size: \"18446744073709551615G\" is out of range (1k..2G)\n"},
        {"max_message_size = 123456789012345678901234567890\n",
         "tern.conf:1: max_message_size: \"123456789012345678901234567890\" is out of range (1k..2G)\n"},
        /* counts */
        {"max_errors = 1e3\n", "tern.conf:1: max_errors: \"1e3\" is not a count (use a whole number)\n"},
        {"max_connections = 10k\n", "tern.conf:1: max_connections: \"10k\" is not a count (use a whole number)\n"},
        {"max_recipients = +200\n", "tern.conf:1: max_recipients: \"+200\" is not a count (use a whole number)\n"},
        /* durations */
        {"command_timeout = 5x\n",
         "tern.conf:1: command_timeout: \"5x\" is not a duration (use a number with s, m, h or d)\n"},
        {"command_timeout = 5M\n",
         "tern.conf:1: command_timeout: \"5M\" is not a duration (use a number with s, m, h or d)\n"},
        {"data_timeout = 25h\n", "tern.conf:1: data_timeout: \"25h\" is out of range (1s..1d)\n"},
        {"retry_max = 1m\n", "tern.conf:1: retry_max: 1m is less than retry_initial (5m)\n"},
        {"retry_initial = 1d\n", "tern.conf:1: retry_initial: 1d is more than retry_max (4h)\n"},
        {"retry_initial = 2h\nretry_max = 1h\n", "tern.conf:2: retry_max: 1h is less than retry_initial (2h)\n"},
        /* log level */
        {"log_level = verbose\n",
         "tern.conf:1: log_level: \"verbose\" is not a log level (use debug, info, warning or error)\n"},
        {"log_level = INFO\n",
         "tern.conf:1: log_level: \"INFO\" is not a log level (use debug, info, warning or error)\n"},
        /* text */
        {"hostname = bad_host\n", "tern.conf:1: hostname: \"bad_host\" is not a valid domain name\n"},
        {"hostname = b\xc3\xbc"
         "cher.example\n",
         "tern.conf:1: hostname: \"b\\xc3\\xbccher.example\": write international domains in A-label form (xn--...)\n"},
        {"hostname = [127.0.0.1]\n", "tern.conf:1: hostname: \"[127.0.0.1]\" is not a valid domain name\n"},
        {"data_dir = a\tb\n", "tern.conf:1: data_dir: \"a\\tb\" contains a control character\n"},
        {"recipient_delimiter = a\n",
         "tern.conf:1: recipient_delimiter: \"a\" contains \"a\" (use characters from +-_=!#$%&'*/?^`{|}~)\n"},
        {"recipient_delimiter = +-+-+-+-+\n",
         "tern.conf:1: recipient_delimiter: \"+-+-+-+-+\" is longer than 8 bytes\n"},
        {"user = ro ot\n",
         "tern.conf:1: user: \"ro ot\" contains \" \" (use letters, digits, \".\", \"_\" and \"-\")\n"},
        {"user = abcdefghijabcdefghijabcdefghijabc\n",
         "tern.conf:1: user: \"abcdefghijabcdefghijabcdefghijabc\" is longer than 32 bytes\n"},
        /* local_domains and postmaster */
        {"local_domains = a.example, A.EXAMPLE\n", "tern.conf:1: local_domains: \"a.example\" is listed twice\n"},
        {"local_domains = bad_one, ok.example, bad!two\n",
         "tern.conf:1: local_domains: \"bad_one\" is not a valid domain name\n"
         "tern.conf:1: local_domains: \"bad!two\" is not a valid domain name\n"},
        {"local_domains = , ,\n", "tern.conf:1: local_domains: no domain given\n"},
        {"postmaster = root\n", "tern.conf:1: postmaster: \"root\" is not an address (write local@domain)\n"},
        {"postmaster = pm@other.example\n",
         "tern.conf:1: postmaster: \"pm@other.example\": \"other.example\" is not one of local_domains\n"},
        {"postmaster = .pm@localhost\n",
         "tern.conf:1: postmaster: \".pm@localhost\": the part before \"@\" is not a valid local part\n"},
        {"postmaster = @localhost\n",
         "tern.conf:1: postmaster: \"@localhost\": the empty string is not a valid local part\n"},
        {"postmaster = pm@\n", "tern.conf:1: postmaster: \"\" is not a valid domain name\n"},
        /* listen */
        {"listen = 127.0.0.1:25\n",
         "tern.conf:1: listen: \"127.0.0.1:25\" is not ADDRESS:PORT KIND (KIND: mx, submission or submissions)\n"},
        {"listen = 127.0.0.1:25 mx extra\n",
         "tern.conf:1: listen: \"127.0.0.1:25 mx extra\" is not ADDRESS:PORT KIND (KIND: mx, submission or "
         "submissions)\n"},
        {"listen = 127.0.0.1:25 smtp\n",
         "tern.conf:1: listen: unknown kind \"smtp\" (use mx, submission or submissions)\n"},
        {"listen = 127.0.0.1 mx\n", "tern.conf:1: listen: \"127.0.0.1\" has no port (write ADDRESS:PORT KIND)\n"},
        {"listen = [::1] mx\n", "tern.conf:1: listen: \"[::1]\" has no port (write ADDRESS:PORT KIND)\n"},
        {"listen = [::1:25 mx\n", "tern.conf:1: listen: \"[::1:25\" has no closing \"]\"\n"},
        {"listen = ::1:25 mx\n", "tern.conf:1: listen: \"::1:25\": put an IPv6 address in brackets, as in [::1]:25\n"},
        {"listen = localhost:25 mx\n", "tern.conf:1: listen: \"localhost\" is not a numeric IPv4 address\n"},
        {"listen = *:25 mx\n", "tern.conf:1: listen: \"*\" is not a numeric IPv4 address\n"},
        {"listen = 127.1:25 mx\n", "tern.conf:1: listen: \"127.1\" is not a numeric IPv4 address\n"},
        {"listen = :25 mx\n", "tern.conf:1: listen: \"\" is not a numeric IPv4 address\n"},
        {"listen = [127.0.0.1]:25 mx\n", "tern.conf:1: listen: \"127.0.0.1\" is not a numeric IPv6 address\n"},
        {"listen = 127.0.0.1:0 mx\n", "tern.conf:1: listen: port \"0\" is out of range (1..65535)\n"},
        {"listen = 127.0.0.1:65536 mx\n", "tern.conf:1: listen: port \"65536\" is out of range (1..65535)\n"},
        {"listen = 127.0.0.1:smtp mx\n", "tern.conf:1: listen: port \"smtp\" is not a number\n"},
        {"listen = 127.0.0.1: mx\n", "tern.conf:1: listen: port \"\" is not a number\n"},
        {"listen = 127.0.0.1:25 mx\nlisten = 127.0.0.1:25 submission\n",
         "tern.conf:2: listen: duplicate listen address 127.0.0.1:25 (first on line 1)\n"},
        {"listen = [::1]:25 mx\n# x\nlisten = [0:0::1]:25 mx\n",
         "tern.conf:3: listen: duplicate listen address [0:0::1]:25 (first on line 1)\n"},
        {"listen = 127.0.0.1:25 mx\nlisten = 0.0.0.0:25 mx\n",
         "tern.conf:2: listen: 0.0.0.0:25 overlaps 127.0.0.1:25 (line 1)\n"},
        {"listen = [::]:587 submission\nlisten = [::1]:587 submission\n",
         "tern.conf:2: listen: [::1]:587 overlaps [::]:587 (line 1)\n"},
        /* several problems in one file: all reported, in order, cross-checks last */
        {"# a config with mistakes\n"
         "hostname = mail.example\n"
         "max_message_size = 12Q\n"
         "\n"
         "max_errrors = 5\n"
         "retry_max = 1m\n"
         "listen = 127.0.0.1:25 mx\n"
         "listen = 127.0.0.1:25 mx\n"
         "hostname = other.example\n"
         "log_level = loud\n",
         "tern.conf:3: max_message_size: \"12Q\" is not a size (use a number with k, M or G)\n"
         "tern.conf:5: max_errrors: unknown parameter (did you mean max_errors?)\n"
         "tern.conf:8: listen: duplicate listen address 127.0.0.1:25 (first on line 7)\n"
         "tern.conf:9: hostname: given twice (first on line 2)\n"
         "tern.conf:10: log_level: \"loud\" is not a log level (use debug, info, warning or error)\n"
         "tern.conf:6: retry_max: 1m is less than retry_initial (5m)\n"},
        /* a refused local_domains does not also complain about postmaster */
        {"local_domains = bad_one\npostmaster = pm@bad_one\n",
         "tern.conf:1: local_domains: \"bad_one\" is not a valid domain name\n"
         "tern.conf:2: postmaster: \"bad_one\" is not a valid domain name\n"},
        /* several listeners on one line: each is checked */
        {"listen = 127.0.0.1:25 mx, 127.0.0.1:25 submission\n",
         "tern.conf:1: listen: duplicate listen address 127.0.0.1:25 (first on line 1)\n"},
        {"listen = 127.0.0.1:25 mx, bogus, [::1]:25 smtp\n",
         "tern.conf:1: listen: \"bogus\" is not ADDRESS:PORT KIND (KIND: mx, submission or submissions)\n"
         "tern.conf:1: listen: unknown kind \"smtp\" (use mx, submission or submissions)\n"},
        {"listen = 127.0.0.1:25 mx, 0.0.0.0:25 submission\n",
         "tern.conf:1: listen: 0.0.0.0:25 overlaps 127.0.0.1:25 (line 1)\n"},
        {"listen = 127.0.0.1:25 mx\nlisten = 127.0.0.1:26 mx, 127.0.0.1:25 mx\n",
         "tern.conf:2: listen: duplicate listen address 127.0.0.1:25 (first on line 1)\n"},
        {"listen = 127.0.0.1:25 mx 127.0.0.1:26 mx\n",
         "tern.conf:1: listen: \"127.0.0.1:25 mx 127.0.0.1:26 mx\" is not ADDRESS:PORT KIND (KIND: mx, submission or "
         "submissions)\n"},
        /* tls_certificate (files that exist: test_tls_certificate) */
        {"tls_certificate = cert.pem\n", "tern.conf:1: tls_certificate: \"cert.pem\" is not CERT_FILE KEY_FILE\n"},
        {"tls_certificate = a.pem b.pem c.pem\n",
         "tern.conf:1: tls_certificate: \"a.pem b.pem c.pem\" is not CERT_FILE KEY_FILE\n"},
        /* choices */
        {"tls_min_version = TLSv1.1\n", "tern.conf:1: tls_min_version: \"TLSv1.1\" is not one of TLSv1.2 or TLSv1.3\n"},
        {"tls_min_version = 1.3\n", "tern.conf:1: tls_min_version: \"1.3\" is not one of TLSv1.2 or TLSv1.3\n"},
        {"tls_min_version = TLSv1.2 TLSv1.3\n",
         "tern.conf:1: tls_min_version: \"TLSv1.2 TLSv1.3\" is not one of TLSv1.2 or TLSv1.3\n"},
        {"tls_min_version =\n", "tern.conf:1: tls_min_version: no value (write tls_min_version = VALUE)\n"},
        {"auth_without_tls = yes\n", "tern.conf:1: auth_without_tls: \"yes\" is not one of no or loopback\n"},
        {"auth_without_tls = loopback\nauth_without_tls = no\n",
         "tern.conf:2: auth_without_tls: given twice (first on line 1)\n"},
        /* auth_mechanisms: every unknown word is reported */
        {"auth_mechanisms = plain, gssapi\n",
         "tern.conf:1: auth_mechanisms: \"gssapi\" is not one of plain, login, cram-md5 or scram-sha-256\n"},
        {"auth_mechanisms = xoauth2 plain scram-sha-1\n",
         "tern.conf:1: auth_mechanisms: \"xoauth2\" is not one of plain, login, cram-md5 or scram-sha-256\n"
         "tern.conf:1: auth_mechanisms: \"scram-sha-1\" is not one of plain, login, cram-md5 or scram-sha-256\n"},
        {"auth_mechanisms = plain;login\n",
         "tern.conf:1: auth_mechanisms: \"plain;login\" is not one of plain, login, cram-md5 or scram-sha-256\n"},
        {"auth_mechanisms =\n", "tern.conf:1: auth_mechanisms: no value (write auth_mechanisms = VALUE)\n"},
        {"auth_mechanisms = , ,\n",
         "tern.conf:1: auth_mechanisms: none given (use some of plain, login, cram-md5 or scram-sha-256)\n"},
        /* relay_networks: every bad block is reported */
        {"relay_networks = 10.0.0.0/33\n",
         "tern.conf:1: relay_networks: \"10.0.0.0/33\": the prefix length must be 0..32\n"},
        {"relay_networks = ::/129\n", "tern.conf:1: relay_networks: \"::/129\": the prefix length must be 0..128\n"},
        {"relay_networks = 10.0.0.0 /8\n",
         "tern.conf:1: relay_networks: \"/8\" is not a numeric IPv4 or IPv6 address\n"},
        {"listen = ,\n", "tern.conf:1: listen: no listener given (write ADDRESS:PORT KIND)\n"},
        {"tls_certificate = / /\n",
         "tern.conf:1: tls_certificate: \"/\" is not a file\ntern.conf:1: tls_certificate: \"/\" is not a file\n"},
        {"relay_networks = 10.0.0.0/-1, 10.0.0.0/+8, 10.0.0.0/, 10.0.0.0/x, 10.0.0.0/8/8\n",
         "tern.conf:1: relay_networks: \"10.0.0.0/-1\": the prefix length must be 0..32\n"
         "tern.conf:1: relay_networks: \"10.0.0.0/+8\": the prefix length must be 0..32\n"
         "tern.conf:1: relay_networks: \"10.0.0.0/\": the prefix length must be 0..32\n"
         "tern.conf:1: relay_networks: \"10.0.0.0/x\": the prefix length must be 0..32\n"
         "tern.conf:1: relay_networks: \"10.0.0.0/8/8\": the prefix length must be 0..32\n"},
        {"relay_networks = 10.0.0.0/99999999999999999999999\n",
         "tern.conf:1: relay_networks: \"10.0.0.0/99999999999999999999999\": the prefix length must be 0..32\n"},
        {"relay_networks = 10.0.0.1/8\n",
         "tern.conf:1: relay_networks: \"10.0.0.1/8\" has bits set past its prefix length\n"},
        {"relay_networks = 192.0.2.128/24, 192.0.2.1/31\n",
         "tern.conf:1: relay_networks: \"192.0.2.128/24\" has bits set past its prefix length\n"
         "tern.conf:1: relay_networks: \"192.0.2.1/31\" has bits set past its prefix length\n"},
        {"relay_networks = 2001:db8::1/32\n",
         "tern.conf:1: relay_networks: \"2001:db8::1/32\" has bits set past its prefix length\n"},
        {"relay_networks = ::1/127\n",
         "tern.conf:1: relay_networks: \"::1/127\" has bits set past its prefix length\n"},
        {"relay_networks = 127.0.0.0/8, example.com, 10.1, [::1], any, 10.0.0.256, 2001:db8:::1, fe80::1%lo\n",
         "tern.conf:1: relay_networks: \"example.com\" is not a numeric IPv4 or IPv6 address\n"
         "tern.conf:1: relay_networks: \"10.1\" is not a numeric IPv4 or IPv6 address\n"
         "tern.conf:1: relay_networks: \"[::1]\" is not a numeric IPv4 or IPv6 address\n"
         "tern.conf:1: relay_networks: \"any\" is not a numeric IPv4 or IPv6 address\n"
         "tern.conf:1: relay_networks: \"10.0.0.256\" is not a numeric IPv4 or IPv6 address\n"
         "tern.conf:1: relay_networks: \"2001:db8:::1\" is not a numeric IPv4 or IPv6 address\n"
         "tern.conf:1: relay_networks: \"fe80::1%lo\" is not a numeric IPv4 or IPv6 address\n"},
        {"relay_networks = 1111111111111111111111111111111111111111111111111111111111111111/8\n",
         "tern.conf:1: relay_networks: \"1111111111111111111111111111111111111111111111111111111111111111/8\" is "
         "not an address or address/prefix\n"},
        {"relay_networks = 10.0.0.0/8\nrelay_networks = ::1\n",
         "tern.conf:2: relay_networks: given twice (first on line 1)\n"},
};

static void test_bad_cases(void)
{
	for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
		char *errors;
		struct config *c = load_text(bad_cases[i].text, &errors);
		if (c != NULL)
			UNIT_FAIL("bad case %zu loaded: %s", i, bad_cases[i].text);
		CHECK_STR(errors, bad_cases[i].want);
		config_unref(c);
		free(errors);
	}
}

/* Lines that are not text: NUL bytes, and the length limit. */
static void test_line_limits(void)
{
	char *errors;
	struct config *c = load_bytes("max_errors = 5\0\nmax_errors = 6\n", 30, &errors);
	CHECK(c == NULL);
	CHECK_STR(errors, "tern.conf:1: NUL byte in line\n");
	free(errors);

	/* 4096 bytes is the longest line; the line after a long one keeps its number. */
	size_t size = 3 * 4200;
	char *text = malloc(size);
	size_t n = 0;
	text[n++] = '#';
	memset(text + n, 'x', 4095);
	n += 4095;
	text[n++] = '\n';
	CHECK_INT(n, 4097);
	text[n++] = '#';
	memset(text + n, 'x', 4096);
	n += 4096;
	text[n++] = '\n';
	memcpy(text + n, "max_errors = 0\n", 15);
	n += 15;
	c = load_bytes(text, n, &errors);
	CHECK(c == NULL);
	CHECK_STR(errors, "tern.conf:2: line longer than 4096 bytes\n"
	                  "tern.conf:3: max_errors: \"0\" is out of range (1..1000)\n");
	free(errors);

	/* A 4096-byte value line, and the last line without its LF. */
	memcpy(text, "data_dir = ", 11);
	n = 11;
	memset(text + n, 'd', 1024);
	n += 1024;
	memset(text + n, ' ', 4096 - n);
	n = 4096;
	text[n++] = '\n';
	memcpy(text + n, "max_errors = 9", 14);
	n += 14;
	c = load_bytes(text, n, &errors);
	CHECK(c != NULL);
	CHECK_STR(errors, "");
	if (c != NULL) {
		CHECK_INT(strlen(c->data_dir), 1024);
		CHECK_INT(c->max_errors, 9);
	}
	config_unref(c);
	free(errors);

	/* A data_dir one byte too long. */
	n = 11;
	memset(text + n, 'd', 1025);
	n += 1025;
	text[n++] = '\n';
	c = load_bytes(text, n, &errors);
	CHECK(c == NULL);
	CHECK(strstr(errors, "tern.conf:1: data_dir: \"ddd") == errors);
	CHECK(strstr(errors, "\" is longer than 1024 bytes\n") != NULL);
	config_unref(c);
	free(errors);
	free(text);
}

static void test_file_errors(void)
{
	char path[300], want[400];
	char *errors;

	struct config *c = load_path(file_in_dir(path, sizeof path, "missing.conf"), &errors);
	CHECK(c == NULL);
	CHECK_STR(errors, "missing.conf: cannot open: No such file or directory\n");
	free(errors);

	c = load_path(dir, &errors);
	CHECK(c == NULL);
	snprintf(want, sizeof want, "%s: cannot read: Is a directory\n", dir);
	CHECK_STR(errors, want);
	free(errors);

	/* No stream for errors: still refused, nothing written anywhere. */
	write_file(path, "max_errors = many\n", 18);
	CHECK(config_load(path, NULL) == NULL);
}

/* ---- numbers at their bounds ---- */

struct bound_case {
	const char *name;
	size_t offset;
	const char *range;
	const char *lo_text, *hi_text; /* accepted */
	uint64_t lo, hi;
	const char *below, *above; /* refused; below NULL when min is 0 */
	const char *extra;         /* lines that keep cross-checks quiet */
};

#define OFF(f) offsetof(struct config, f)

static const struct bound_case bound_cases[] = {
        {"max_message_size", OFF(max_message_size), "1k..2G", "1k", "2G", 1024, 2147483648ULL, "1023", "2147483649",
         ""},
        {"max_message_size", OFF(max_message_size), "1k..2G", "1024", "2048M", 1024, 2147483648ULL, "0", "2097153k",
         ""},
        {"max_recipients", OFF(max_recipients), "100..10000", "100", "10000", 100, 10000, "99", "10001", ""},
        {"max_errors", OFF(max_errors), "1..1000", "1", "1000", 1, 1000, "0", "1001", ""},
        {"max_connections", OFF(max_connections), "1..1000000", "1", "1000000", 1, 1000000, "0", "1000001", ""},
        {"max_connections_per_ip", OFF(max_connections_per_ip), "1..1000000", "1", "1000000", 1, 1000000, "0",
         "1000001", ""},
        {"command_timeout", OFF(command_timeout), "1s..1d", "1s", "1d", 1, 86400, "0s", "86401", ""},
        {"command_timeout", OFF(command_timeout), "1s..1d", "1", "24h", 1, 86400, "0", "1441m", ""},
        {"data_timeout", OFF(data_timeout), "1s..1d", "1", "86400s", 1, 86400, "0", "2d", ""},
        {"session_timeout", OFF(session_timeout), "1s..7d", "1s", "7d", 1, 604800, "0", "604801", ""},
        {"max_hops", OFF(max_hops), "1..500", "1", "500", 1, 500, "0", "501", ""},
        {"delivery_workers", OFF(delivery_workers), "1..64", "1", "64", 1, 64, "0", "65", ""},
        {"retry_initial", OFF(retry_initial), "1s..1d", "1s", "1d", 1, 86400, "0", "86401", "retry_max = 7d\n"},
        {"retry_max", OFF(retry_max), "1s..7d", "1s", "7d", 1, 604800, "0", "169h", "retry_initial = 1s\n"},
        {"max_queue_lifetime", OFF(max_queue_lifetime), "1m..60d", "1m", "60d", 60, 5184000, "59s", "61d", ""},
        {"max_queue_lifetime", OFF(max_queue_lifetime), "1m..60d", "60", "1440h", 60, 5184000, "59", "5184001", ""},
        {"shutdown_timeout", OFF(shutdown_timeout), "0s..1h", "0", "1h", 0, 3600, NULL, "3601", ""},
        {"shutdown_timeout", OFF(shutdown_timeout), "0s..1h", "0s", "60m", 0, 3600, NULL, "2h", ""},
        {"bounce_retention", OFF(bounce_retention), "0s..365d", "0", "365d", 0, 31536000, NULL, "366d", ""},
        {"suppression_ttl", OFF(suppression_ttl), "0s..3650d", "0s", "3650d", 0, 315360000, NULL, "3651d", ""},
};

static uint64_t field_u64(const struct config *c, size_t offset)
{
	uint64_t v;
	memcpy(&v, (const char *)c + offset, sizeof v);
	return v;
}

static void check_accepts(const struct bound_case *b, const char *value, uint64_t want)
{
	char text[200];
	char *errors;
	snprintf(text, sizeof text, "%s = %s\n%s", b->name, value, b->extra);
	struct config *c = load_text(text, &errors);
	CHECK_STR(errors, "");
	if (c == NULL)
		UNIT_FAIL("%s = %s: refused", b->name, value);
	else
		CHECK_INT(field_u64(c, b->offset), want);
	config_unref(c);
	free(errors);
}

static void check_refuses(const struct bound_case *b, const char *value)
{
	char text[200], want[300];
	char *errors;
	snprintf(text, sizeof text, "%s = %s\n%s", b->name, value, b->extra);
	snprintf(want, sizeof want, "tern.conf:1: %s: \"%s\" is out of range (%s)\n", b->name, value, b->range);
	struct config *c = load_text(text, &errors);
	CHECK(c == NULL);
	CHECK_STR(errors, want);
	config_unref(c);
	free(errors);
}

static void test_bounds(void)
{
	for (size_t i = 0; i < sizeof bound_cases / sizeof bound_cases[0]; i++) {
		const struct bound_case *b = &bound_cases[i];
		check_accepts(b, b->lo_text, b->lo);
		check_accepts(b, b->hi_text, b->hi);
		if (b->below != NULL)
			check_refuses(b, b->below);
		check_refuses(b, b->above);
	}
}

/* ---- good texts ---- */

struct good_case {
	const char *text;
	size_t offset;
	uint64_t want;
};

static const struct good_case good_cases[] = {
        {"max_message_size = 10k\n", OFF(max_message_size), 10240},
        {"max_message_size = 10K\n", OFF(max_message_size), 10240},
        {"max_message_size = 3m\n", OFF(max_message_size), 3145728},
        {"max_message_size = 1g\n", OFF(max_message_size), 1073741824},
        {"max_message_size = 0025M\n", OFF(max_message_size), 26214400},
        {"command_timeout = 90\n", OFF(command_timeout), 90},
        {"command_timeout = 90s\n", OFF(command_timeout), 90},
        {"command_timeout = 2m\n", OFF(command_timeout), 120},
        {"command_timeout = 3h\n", OFF(command_timeout), 10800},
        {"  max_errors\t=\t 7  \n", OFF(max_errors), 7},
        {"max_errors=8", OFF(max_errors), 8},
        {"\n   # indented comment\n#max_errors = 3\n\t\nmax_errors = 9\n", OFF(max_errors), 9},
        {"", OFF(max_errors), 10},
        {"# only a comment", OFF(max_hops), 50},
};

static void test_good_cases(void)
{
	for (size_t i = 0; i < sizeof good_cases / sizeof good_cases[0]; i++) {
		char *errors;
		struct config *c = load_text(good_cases[i].text, &errors);
		CHECK_STR(errors, "");
		if (c == NULL) {
			UNIT_FAIL("good case %zu refused: %s", i, good_cases[i].text);
		} else {
			CHECK_INT(field_u64(c, good_cases[i].offset), good_cases[i].want);
			CHECK(c->path != NULL && strstr(c->path, "tern.conf") != NULL);
		}
		config_unref(c);
		free(errors);
	}
}

static void test_text_values(void)
{
	char *errors;
	struct config *c = load_text("hostname = Mail.Example.COM\n"
	                             "local_domains = Example.COM, b.example  c.example\t,d.example\n"
	                             "recipient_delimiter =\n"
	                             "user = tern\n"
	                             "data_dir = /srv/tern data\n"
	                             "log_level = debug\n",
	                             &errors);
	CHECK_STR(errors, "");
	CHECK(c != NULL);
	if (c == NULL)
		goto out;
	CHECK_STR(c->hostname, "Mail.Example.COM");
	CHECK_INT(c->local_domain_count, 4);
	if (c->local_domain_count == 4) {
		CHECK_STR(c->local_domains[0], "example.com");
		CHECK_STR(c->local_domains[1], "b.example");
		CHECK_STR(c->local_domains[2], "c.example");
		CHECK_STR(c->local_domains[3], "d.example");
	}
	CHECK_STR(c->postmaster, "postmaster@example.com");
	CHECK_STR(c->recipient_delimiter, "");
	CHECK_STR(c->user, "tern");
	CHECK_STR(c->data_dir, "/srv/tern data");
	CHECK_INT(c->log_level, LOG_LEVEL_DEBUG);

	CHECK(config_is_local_domain(c, "EXAMPLE.com", 11));
	CHECK(config_is_local_domain(c, "c.example", 9));
	CHECK(config_is_local_domain(c, "example.com.evil", 11));
	CHECK(!config_is_local_domain(c, "example.com.evil", 16));
	CHECK(!config_is_local_domain(c, "example.co", 10));
	CHECK(!config_is_local_domain(c, "", 0));
out:
	config_unref(c);
	free(errors);

	c = load_text("local_domains = example.com\npostmaster = Hostmaster@EXAMPLE.com\nrecipient_delimiter = -+\n",
	              &errors);
	CHECK_STR(errors, "");
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_STR(c->postmaster, "hostmaster@example.com");
		CHECK_STR(c->recipient_delimiter, "-+");
	}
	config_unref(c);
	free(errors);
}

static void check_listener(const struct config_listener *l, const char *text, int family, unsigned port,
                           enum listener_kind kind)
{
	CHECK_STR(l->text, text);
	CHECK_INT(l->addr.ss_family, family);
	CHECK_INT(l->kind, kind);
	if (family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)&l->addr;
		CHECK_INT(l->addr_len, sizeof *sin);
		CHECK_INT(ntohs(sin->sin_port), port);
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)&l->addr;
		CHECK_INT(l->addr_len, sizeof *sin6);
		CHECK_INT(ntohs(sin6->sin6_port), port);
	}
}

static void test_listen(void)
{
	char *errors;
	/* The first listen replaces the default 127.0.0.1:2525; later ones append. */
	struct config *c = load_text("listen = [::1]:2526 mx\n"
	                             "max_errors = 5\n"
	                             "listen =   0.0.0.0:587\tsubmission \n"
	                             "listen = [::]:465 submissions\n"
	                             "listen = 127.0.0.1:2525 mx\n",
	                             &errors);
	CHECK_STR(errors, "");
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_INT(c->listener_count, 4);
		if (c->listener_count == 4) {
			check_listener(&c->listeners[0], "[::1]:2526", AF_INET6, 2526, LISTENER_MX);
			check_listener(&c->listeners[1], "0.0.0.0:587", AF_INET, 587, LISTENER_SUBMISSION);
			check_listener(&c->listeners[2], "[::]:465", AF_INET6, 465, LISTENER_SUBMISSIONS);
			check_listener(&c->listeners[3], "127.0.0.1:2525", AF_INET, 2525, LISTENER_MX);
			const struct sockaddr_in6 *sin6 =
			        (const struct sockaddr_in6 *)(const void *)&c->listeners[0].addr;
			CHECK(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
		}
	}
	config_unref(c);
	free(errors);

	/* IPv4 and IPv6 wildcards on one port do not overlap (IPv6 is bound V6ONLY). */
	c = load_text("listen = 0.0.0.0:25 mx\nlisten = [::]:25 mx\nlisten = 127.0.0.1:26 mx\n", &errors);
	CHECK_STR(errors, "");
	CHECK(c != NULL && c->listener_count == 3);
	config_unref(c);
	free(errors);
}

/* ---- defaults ---- */

static void check_documented_defaults(const struct config *c)
{
	char host[256];
	CHECK_INT(gethostname(host, sizeof host), 0);
	CHECK_STR(c->hostname, host);
	CHECK_STR(c->data_dir, "./var");
	CHECK_INT(c->listener_count, 3);
	if (c->listener_count == 3) {
		check_listener(&c->listeners[0], "127.0.0.1:2525", AF_INET, 2525, LISTENER_MX);
		check_listener(&c->listeners[1], "127.0.0.1:2587", AF_INET, 2587, LISTENER_SUBMISSION);
		check_listener(&c->listeners[2], "127.0.0.1:2465", AF_INET, 2465, LISTENER_SUBMISSIONS);
	}
	CHECK_INT(c->tls_cert_count, 0);
	CHECK_INT(c->tls_min_version, CONFIG_TLS_1_2);
	/* CRAM-MD5 only when asked for: most users have no secret for it. */
	CHECK_INT(c->auth_mechanisms, CONFIG_MECH_PLAIN | CONFIG_MECH_LOGIN | CONFIG_MECH_SCRAM_SHA_256);
	CHECK_INT(c->auth_without_tls, CONFIG_AUTH_TLS_ALWAYS);
	CHECK_INT(c->relay_network_count, 0);
	CHECK_INT(c->auth_fail_limit, 5);
	CHECK_INT(c->auth_fail_limit_per_address, 30);
	CHECK_INT(c->user_message_rate, 1000);
	CHECK_INT(c->ip_message_rate, 0);
	CHECK_INT(c->local_domain_count, 1);
	if (c->local_domain_count == 1)
		CHECK_STR(c->local_domains[0], "localhost");
	CHECK_STR(c->postmaster, "postmaster@localhost");
	CHECK_STR(c->recipient_delimiter, "+");
	CHECK_INT(c->max_message_size, 25 * 1024 * 1024);
	CHECK_INT(c->max_recipients, 1000);
	CHECK_INT(c->max_errors, 10);
	CHECK_INT(c->max_connections, 1000);
	CHECK_INT(c->max_connections_per_ip, 50);
	CHECK_INT(c->command_timeout, 5 * 60);
	CHECK_INT(c->data_timeout, 10 * 60);
	CHECK_INT(c->session_timeout, 3600);
	CHECK_INT(c->max_hops, 50);
	CHECK_INT(c->log_level, LOG_LEVEL_INFO);
	CHECK_STR(c->user, "");
	CHECK_STR(c->sendmail_socket, "");
	CHECK_INT(c->delivery_workers, 2);
	CHECK_INT(c->retry_initial, 5 * 60);
	CHECK_INT(c->retry_max, 4 * 3600);
	CHECK_INT(c->max_queue_lifetime, 5 * 86400);
	CHECK_INT(c->shutdown_timeout, 30);
}

static void test_defaults(void)
{
	struct config *c = config_load(NULL, stderr);
	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK_INT(c->refs, 1);
	CHECK(c->path == NULL);
	check_documented_defaults(c);

	CHECK(config_ref(c) == c);
	CHECK_INT(c->refs, 2);
	config_unref(c);
	CHECK_INT(c->refs, 1);
	config_unref(c);
	config_unref(NULL);
}

static bool strings_equal(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* check_same_config - every parameter of a equals b's. */
static void check_same_config(const struct config *a, const struct config *b)
{
	char buf[200];
	CHECK(!config_needs_restart(a, b, buf, sizeof buf));
	CHECK(strings_equal(a->hostname, b->hostname));
	CHECK(strings_equal(a->data_dir, b->data_dir));
	CHECK_INT(a->listener_count, b->listener_count);
	for (size_t i = 0; i < a->listener_count && i < b->listener_count; i++)
		CHECK_STR(a->listeners[i].text, b->listeners[i].text);
	CHECK_INT(a->local_domain_count, b->local_domain_count);
	for (size_t i = 0; i < a->local_domain_count && i < b->local_domain_count; i++)
		CHECK(strings_equal(a->local_domains[i], b->local_domains[i]));
	CHECK(strings_equal(a->postmaster, b->postmaster));
	CHECK(strings_equal(a->recipient_delimiter, b->recipient_delimiter));
	CHECK_INT(a->max_message_size, b->max_message_size);
	CHECK_INT(a->max_recipients, b->max_recipients);
	CHECK_INT(a->max_errors, b->max_errors);
	CHECK_INT(a->max_connections, b->max_connections);
	CHECK_INT(a->max_connections_per_ip, b->max_connections_per_ip);
	CHECK_INT(a->command_timeout, b->command_timeout);
	CHECK_INT(a->data_timeout, b->data_timeout);
	CHECK_INT(a->session_timeout, b->session_timeout);
	CHECK_INT(a->max_hops, b->max_hops);
	CHECK_INT(a->log_level, b->log_level);
	CHECK(strings_equal(a->user, b->user));
	CHECK_INT(a->delivery_workers, b->delivery_workers);
	CHECK_INT(a->retry_initial, b->retry_initial);
	CHECK_INT(a->retry_max, b->retry_max);
	CHECK_INT(a->max_queue_lifetime, b->max_queue_lifetime);
	CHECK_INT(a->shutdown_timeout, b->shutdown_timeout);
}

/* read_all - a whole file, NUL-terminated, or NULL. */
static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	char *buf = NULL;
	size_t size = 0, n = 0;
	for (;;) {
		char *more = realloc(buf, size + 4097);
		if (more == NULL) {
			free(buf);
			fclose(f);
			return NULL;
		}
		buf = more;
		size_t got = fread(buf + n, 1, 4096, f);
		n += got;
		size += 4096;
		if (got < 4096)
			break;
	}
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static char *listing(bool markdown)
{
	char *text;
	size_t size;
	FILE *f = open_memstream(&text, &size);
	config_print_defaults(f, markdown);
	fclose(f);
	return text;
}

/* The plain listing is itself a config file giving exactly the defaults. */
static void test_listing_round_trip(void)
{
	char *plain = listing(false), *errors;
	struct config *c = load_text(plain, &errors);
	struct config *d = config_load(NULL, stderr);
	CHECK_STR(errors, "");
	CHECK(c != NULL && d != NULL);
	if (c != NULL && d != NULL)
		check_same_config(c, d);
	CHECK(strstr(plain, "\n# hostname = (system host name)\n") != NULL);
	CHECK(strstr(plain, "\n# postmaster = postmaster@<first local domain>\n") != NULL);
	CHECK(strstr(plain, "\nuser =\n") != NULL);
	CHECK(strstr(plain, "\n# max_message_size (size, 1k..2G)\n") != NULL);
	CHECK(strstr(plain, "(listener, may repeat, restart)") != NULL);
	config_unref(c);
	config_unref(d);
	free(errors);
	free(plain);

	char *md = listing(true);
	CHECK(strncmp(md, "# Configuration\n", 16) == 0);
	CHECK(strstr(md, "| `max_recipients` | count | `1000` | 100..10000 | reload |") != NULL);
	CHECK(strstr(md, "| `shutdown_timeout` | duration | `30s` | 0s..1h | reload |") != NULL);
	CHECK(strstr(md, "| `delivery_workers` | count | `2` | 1..64 | restart |") != NULL);
	CHECK(strstr(md, "| `hostname` | domain | (system host name) |") != NULL);
	free(md);
}

/* The committed generated files match the table (regenerate them if not). */
static void test_generated_files(void)
{
	char *md = listing(true), *plain = listing(false);
	char *doc = read_all("docs/CONFIG.md"), *dev = read_all("etc/tern.conf.dev");

	if (doc == NULL || strcmp(doc, md) != 0)
		UNIT_FAIL("docs/CONFIG.md is not `tern config defaults --markdown` (run make docs from the top)");
	else
		unit_passed++;
	if (dev == NULL || strcmp(dev, plain) != 0)
		UNIT_FAIL("etc/tern.conf.dev is not `tern config defaults` (regenerate it)");
	else
		unit_passed++;

	char *errors;
	struct config *c = load_path("etc/tern.conf.dev", &errors);
	struct config *d = config_load(NULL, stderr);
	CHECK_STR(errors, "");
	if (c != NULL && d != NULL)
		check_same_config(c, d);
	else
		UNIT_FAIL("etc/tern.conf.dev does not load");
	config_unref(c);
	config_unref(d);
	free(errors);

	c = load_path("etc/tern.conf.example", &errors);
	CHECK_STR(errors, "");
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_STR(c->hostname, "mail.example.com");
		CHECK_STR(c->data_dir, "/var/lib/tern");
		CHECK_STR(c->user, "tern");
		CHECK_STR(c->postmaster, "postmaster@example.com");
		CHECK_INT(c->listener_count, 4);
		if (c->listener_count == 4) {
			check_listener(&c->listeners[0], "0.0.0.0:25", AF_INET, 25, LISTENER_MX);
			check_listener(&c->listeners[1], "[::]:25", AF_INET6, 25, LISTENER_MX);
			check_listener(&c->listeners[2], "0.0.0.0:587", AF_INET, 587, LISTENER_SUBMISSION);
			check_listener(&c->listeners[3], "0.0.0.0:465", AF_INET, 465, LISTENER_SUBMISSIONS);
		}
		CHECK(config_is_local_domain(c, "example.com", 11));
	}
	config_unref(c);
	free(errors);
	free(md);
	free(plain);
	free(doc);
	free(dev);
}

/* ---- config_needs_restart ---- */

static struct config *load_quiet(const char *text)
{
	char *errors;
	struct config *c = load_text(text, &errors);
	CHECK_STR(errors, "");
	free(errors);
	return c;
}

static void test_needs_restart(void)
{
	char buf[128];
	struct config *base = config_load(NULL, stderr);
	struct config *reloadable = load_quiet("max_errors = 3\nhostname = other.example\nlocal_domains = a.example\n"
	                                       "log_level = error\nretry_initial = 1m\nmax_message_size = 1M\n");
	struct config *restart = load_quiet("data_dir = /srv/tern\nmax_errors = 3\ndelivery_workers = 8\n");
	struct config *relisten = load_quiet("listen = 127.0.0.1:2526 mx\n");
	struct config *rekind = load_quiet("listen = 127.0.0.1:2525 submission\n");
	struct config *all = load_quiet("listen = 127.0.0.1:2525 mx\nlisten = [::1]:2525 mx\n"
	                                "data_dir = x\nuser = nobody\ndelivery_workers = 1\n");
	struct config *same = load_quiet("listen = 127.0.0.1:2525 mx, 127.0.0.1:2587 submission\n"
	                                 "listen = 127.0.0.1:2465 submissions\ndata_dir = ./var\n");

	if (!base || !reloadable || !restart || !relisten || !rekind || !all || !same) {
		UNIT_FAIL("a restart test config did not load");
		goto out;
	}
	CHECK(!config_needs_restart(base, reloadable, buf, sizeof buf));
	CHECK_STR(buf, "");
	CHECK(!config_needs_restart(base, same, buf, sizeof buf));
	CHECK(config_needs_restart(base, restart, buf, sizeof buf));
	CHECK_STR(buf, "data_dir,delivery_workers");
	CHECK(config_needs_restart(restart, base, buf, sizeof buf));
	CHECK_STR(buf, "data_dir,delivery_workers");
	CHECK(config_needs_restart(base, relisten, buf, sizeof buf));
	CHECK_STR(buf, "listen");
	CHECK(config_needs_restart(base, rekind, buf, sizeof buf));
	CHECK_STR(buf, "listen");
	CHECK(config_needs_restart(base, all, buf, sizeof buf));
	CHECK_STR(buf, "data_dir,listen,user,delivery_workers");
	CHECK(config_needs_restart(base, all, buf, 12));
	CHECK_STR(buf, "data_dir,li");
	CHECK(config_needs_restart(base, all, NULL, 0));
out:
	config_unref(base);
	config_unref(reloadable);
	config_unref(restart);
	config_unref(relisten);
	config_unref(rekind);
	config_unref(all);
	config_unref(same);
}

/* Several listeners on one line, separated by commas, with or without blanks. */
static void test_listen_one_line(void)
{
	char *errors;
	struct config *c = load_text("listen = 127.0.0.1:2525 mx, [::1]:2587 submission ,0.0.0.0:465\tsubmissions\n"
	                             "listen = 127.0.0.1:26 mx,, 127.0.0.1:27 mx,\n",
	                             &errors);
	CHECK_STR(errors, "");
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_INT(c->listener_count, 5);
		if (c->listener_count == 5) {
			check_listener(&c->listeners[0], "127.0.0.1:2525", AF_INET, 2525, LISTENER_MX);
			check_listener(&c->listeners[1], "[::1]:2587", AF_INET6, 2587, LISTENER_SUBMISSION);
			check_listener(&c->listeners[2], "0.0.0.0:465", AF_INET, 465, LISTENER_SUBMISSIONS);
			check_listener(&c->listeners[3], "127.0.0.1:26", AF_INET, 26, LISTENER_MX);
			check_listener(&c->listeners[4], "127.0.0.1:27", AF_INET, 27, LISTENER_MX);
		}
	}
	config_unref(c);
	free(errors);
}

/* ---- TLS, AUTH and relaying ---- */

/* tls_line - "tls_certificate = DIR/cert DIR/key\n" into buf; an empty key name leaves the key out. */
static const char *tls_line(char *buf, size_t size, const char *cert, const char *key)
{
	if (key[0] == '\0')
		snprintf(buf, size, "tls_certificate = %s/%s\n", dir, cert);
	else
		snprintf(buf, size, "tls_certificate = %s/%s %s/%s\n", dir, cert, dir, key);
	return buf;
}

static void test_tls_certificate(void)
{
	static const char *const files[] = {"cert.pem", "key.pem", "other-cert.pem", "other-key.pem"};
	char path[300], line1[700], line2[700], text[1600];
	char *errors;
	struct config *c;

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		write_file(file_in_dir(path, sizeof path, files[i]), "-----BEGIN X-----\n", 18);

	/* one pair; files are only checked to be readable */
	c = load_text(tls_line(line1, sizeof line1, "cert.pem", "key.pem"), &errors);
	CHECK_STR(errors, "");
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_INT(c->tls_cert_count, 1);
		CHECK(c->tls_cert_count == 1 && strstr(c->tls_certs[0].cert_file, "/cert.pem") != NULL &&
		      strstr(c->tls_certs[0].key_file, "/key.pem") != NULL);
	}
	config_unref(c);
	free(errors);

	/* repeated: kept in order, the first is the default */
	tls_line(line2, sizeof line2, "other-cert.pem", "other-key.pem");
	snprintf(text, sizeof text, "%smax_errors = 3\n%s", line1, line2);
	c = load_text(text, &errors);
	CHECK_STR(errors, "");
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_INT(c->tls_cert_count, 2);
		if (c->tls_cert_count == 2) {
			CHECK(strstr(c->tls_certs[0].cert_file, "/cert.pem") != NULL);
			CHECK(strstr(c->tls_certs[1].cert_file, "/other-cert.pem") != NULL);
			CHECK(strstr(c->tls_certs[1].key_file, "/other-key.pem") != NULL);
		}
	}
	/* the same pairs in the same order need no restart; another order is another default */
	struct config *same = load_quiet(text);
	snprintf(text, sizeof text, "%s%s", line2, line1);
	struct config *swapped = load_quiet(text);
	if (c != NULL && same != NULL && swapped != NULL) {
		char buf[128];
		CHECK(!config_needs_restart(c, same, buf, sizeof buf));
		CHECK_INT(swapped->tls_cert_count, 2);
		CHECK(strstr(swapped->tls_certs[0].cert_file, "/other-cert.pem") != NULL);
	}
	config_unref(c);
	config_unref(same);
	config_unref(swapped);
	free(errors);

	/* blanks around and between the two names; an empty value means none */
	snprintf(text, sizeof text, "tls_certificate = \t%s/cert.pem \t %s/key.pem\t\ntls_certificate =\n", dir, dir);
	c = load_text(text, &errors);
	CHECK_STR(errors, "");
	CHECK(c != NULL && c->tls_cert_count == 1);
	config_unref(c);
	free(errors);
	c = load_text("tls_certificate =\n", &errors);
	CHECK_STR(errors, "");
	CHECK(c != NULL && c->tls_cert_count == 0);
	config_unref(c);
	free(errors);

	/* a missing file names the file, the line and the parameter; both files are checked */
	snprintf(text, sizeof text, "# certificates\n%s%s", line1,
	         tls_line(line2, sizeof line2, "missing-cert.pem", "key.pem"));
	c = load_text(text, &errors);
	CHECK(c == NULL);
	CHECK_STR(errors,
	          "tern.conf:3: tls_certificate: cannot read \"missing-cert.pem\": No such file or directory\n");
	config_unref(c);
	free(errors);
	c = load_text(tls_line(line1, sizeof line1, "missing-cert.pem", "missing-key.pem"), &errors);
	CHECK(c == NULL);
	CHECK_STR(errors, "tern.conf:1: tls_certificate: cannot read \"missing-cert.pem\": No such file or directory\n"
	                  "tern.conf:1: tls_certificate: cannot read \"missing-key.pem\": No such file or directory\n");
	config_unref(c);
	free(errors);
	c = load_text(tls_line(line1, sizeof line1, "cert.pem", "missing-key.pem"), &errors);
	CHECK(c == NULL);
	CHECK_STR(errors, "tern.conf:1: tls_certificate: cannot read \"missing-key.pem\": No such file or directory\n");
	config_unref(c);
	free(errors);

	/* one name, or three */
	c = load_text(tls_line(line1, sizeof line1, "cert.pem", ""), &errors);
	CHECK(c == NULL);
	CHECK(strstr(errors, "tern.conf:1: tls_certificate: \"") == errors);
	CHECK(strstr(errors, "cert.pem\" is not CERT_FILE KEY_FILE\n") != NULL);
	config_unref(c);
	free(errors);
	snprintf(text, sizeof text, "tls_certificate = %s/cert.pem %s/key.pem %s/key.pem\n", dir, dir, dir);
	c = load_text(text, &errors);
	CHECK(c == NULL);
	CHECK(strstr(errors, "tern.conf:1: tls_certificate: \"") == errors);
	CHECK(strstr(errors, "key.pem\" is not CERT_FILE KEY_FILE\n") != NULL);
	CHECK(strchr(errors, '\n') == errors + strlen(errors) - 1);
	config_unref(c);
	free(errors);

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
		unlink(file_in_dir(path, sizeof path, files[i]));
}

static void test_auth_choices(void)
{
	static const struct {
		const char *text;
		size_t offset;
		uint64_t want;
		bool is_unsigned; /* an unsigned field (CHOICE), else uint64_t (CHOICES) */
	} cases[] = {
	        {"tls_min_version = TLSv1.2\n", OFF(tls_min_version), CONFIG_TLS_1_2, true},
	        {"tls_min_version = TLSv1.3\n", OFF(tls_min_version), CONFIG_TLS_1_3, true},
	        {"tls_min_version = tlsv1.3\n", OFF(tls_min_version), CONFIG_TLS_1_3, true},
	        {"auth_without_tls = no\n", OFF(auth_without_tls), CONFIG_AUTH_TLS_ALWAYS, true},
	        {"auth_without_tls = loopback\n", OFF(auth_without_tls), CONFIG_AUTH_TLS_EXCEPT_LOOPBACK, true},
	        {"auth_without_tls =  Loopback \n", OFF(auth_without_tls), CONFIG_AUTH_TLS_EXCEPT_LOOPBACK, true},
	        {"auth_mechanisms = plain\n", OFF(auth_mechanisms), CONFIG_MECH_PLAIN, false},
	        {"auth_mechanisms = login\n", OFF(auth_mechanisms), CONFIG_MECH_LOGIN, false},
	        {"auth_mechanisms = cram-md5\n", OFF(auth_mechanisms), CONFIG_MECH_CRAM_MD5, false},
	        {"auth_mechanisms = scram-sha-256\n", OFF(auth_mechanisms), CONFIG_MECH_SCRAM_SHA_256, false},
	        {"auth_mechanisms = PLAIN, Login\n", OFF(auth_mechanisms), CONFIG_MECH_PLAIN | CONFIG_MECH_LOGIN,
	         false},
	        {"auth_mechanisms = scram-sha-256\tcram-md5\n", OFF(auth_mechanisms),
	         CONFIG_MECH_SCRAM_SHA_256 | CONFIG_MECH_CRAM_MD5, false},
	        {"auth_mechanisms = plain,plain , plain\n", OFF(auth_mechanisms), CONFIG_MECH_PLAIN, false},
	        {"auth_mechanisms = ,login,\n", OFF(auth_mechanisms), CONFIG_MECH_LOGIN, false},
	        {"auth_mechanisms = cram-md5 scram-sha-256 login plain\n", OFF(auth_mechanisms),
	         CONFIG_MECH_PLAIN | CONFIG_MECH_LOGIN | CONFIG_MECH_CRAM_MD5 | CONFIG_MECH_SCRAM_SHA_256, false},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *errors;
		struct config *c = load_text(cases[i].text, &errors);
		CHECK_STR(errors, "");
		if (c == NULL) {
			UNIT_FAIL("refused: %s", cases[i].text);
		} else if (cases[i].is_unsigned) {
			unsigned v;
			memcpy(&v, (const char *)c + cases[i].offset, sizeof v);
			CHECK_INT(v, cases[i].want);
		} else {
			CHECK_INT(field_u64(c, cases[i].offset), cases[i].want);
		}
		config_unref(c);
		free(errors);
	}
}

/* v4 - a.b.c.d as the 16-byte IPv4-mapped key the server matches with. */
static const unsigned char *v4(unsigned char key[16], unsigned a, unsigned b, unsigned c, unsigned d)
{
	memset(key, 0, 16);
	key[10] = key[11] = 0xff;
	key[12] = (unsigned char)a;
	key[13] = (unsigned char)b;
	key[14] = (unsigned char)c;
	key[15] = (unsigned char)d;
	return key;
}

static const unsigned char *v6(unsigned char key[16], const char *text)
{
	if (inet_pton(AF_INET6, text, key) != 1) {
		UNIT_FAIL("bad IPv6 address in the test: %s", text);
		memset(key, 0xee, 16);
	}
	return key;
}

/* load_networks - "relay_networks = LIST" loaded; NULL (and a failure) if refused. */
static struct config *load_networks(const char *list)
{
	char text[512];
	snprintf(text, sizeof text, "relay_networks = %s\n", list);
	return load_quiet(text);
}

static void test_relay_networks(void)
{
	unsigned char key[16];
	struct config *c;

	/* parsed: IPv4 mapped into IPv6, the prefix counted on 128 bits; no prefix is one host */
	c = load_networks("127.0.0.0/8, ::1\t192.0.2.1 2001:db8::/32,0.0.0.0/0 ::/0");
	CHECK(c != NULL);
	if (c == NULL)
		return;
	CHECK_INT(c->relay_network_count, 6);
	if (c->relay_network_count == 6) {
		CHECK(memcmp(c->relay_networks[0].addr, v4(key, 127, 0, 0, 0), 16) == 0);
		CHECK_INT(c->relay_networks[0].prefix, 104);
		CHECK(memcmp(c->relay_networks[1].addr, v6(key, "::1"), 16) == 0);
		CHECK_INT(c->relay_networks[1].prefix, 128);
		CHECK(memcmp(c->relay_networks[2].addr, v4(key, 192, 0, 2, 1), 16) == 0);
		CHECK_INT(c->relay_networks[2].prefix, 128);
		CHECK(memcmp(c->relay_networks[3].addr, v6(key, "2001:db8::"), 16) == 0);
		CHECK_INT(c->relay_networks[3].prefix, 32);
		CHECK_INT(c->relay_networks[4].prefix, 96);
		CHECK_INT(c->relay_networks[5].prefix, 0);
	}
	config_unref(c);

	/* empty: nobody relays */
	c = load_quiet("relay_networks =\n");
	CHECK(c != NULL && c->relay_network_count == 0);
	if (c != NULL) {
		CHECK(!config_in_relay_networks(c, v4(key, 127, 0, 0, 1)));
		CHECK(!config_in_relay_networks(c, v6(key, "::1")));
	}
	config_unref(c);

	c = load_networks("127.0.0.0/8");
	if (c != NULL) {
		CHECK(config_in_relay_networks(c, v4(key, 127, 1, 2, 3)));
		CHECK(config_in_relay_networks(c, v4(key, 127, 0, 0, 0)));
		CHECK(config_in_relay_networks(c, v4(key, 127, 255, 255, 255)));
		CHECK(!config_in_relay_networks(c, v4(key, 128, 0, 0, 1)));
		CHECK(!config_in_relay_networks(c, v4(key, 126, 255, 255, 255)));
		CHECK(!config_in_relay_networks(c, v6(key, "::1")));
		CHECK(!config_in_relay_networks(c, v6(key, "::127.1.2.3")));
		CHECK(!config_in_relay_networks(c, v6(key, "7f01:203::")));
	}
	config_unref(c);

	c = load_networks("::1/128");
	if (c != NULL) {
		CHECK(config_in_relay_networks(c, v6(key, "::1")));
		CHECK(config_in_relay_networks(c, v6(key, "0:0:0:0:0:0:0:1")));
		CHECK(!config_in_relay_networks(c, v6(key, "::2")));
		CHECK(!config_in_relay_networks(c, v6(key, "::")));
		CHECK(!config_in_relay_networks(c, v4(key, 127, 0, 0, 1)));
		CHECK(!config_in_relay_networks(c, v4(key, 0, 0, 0, 1)));
	}
	config_unref(c);

	c = load_networks("10.0.0.0/8");
	if (c != NULL) {
		CHECK(config_in_relay_networks(c, v4(key, 10, 200, 0, 1)));
		CHECK(!config_in_relay_networks(c, v4(key, 11, 0, 0, 1)));
		CHECK(!config_in_relay_networks(c, v4(key, 9, 255, 255, 255)));
	}
	config_unref(c);

	c = load_networks("0.0.0.0/0");
	if (c != NULL) {
		CHECK(config_in_relay_networks(c, v4(key, 0, 0, 0, 0)));
		CHECK(config_in_relay_networks(c, v4(key, 1, 2, 3, 4)));
		CHECK(config_in_relay_networks(c, v4(key, 255, 255, 255, 255)));
		CHECK(config_in_relay_networks(c, v4(key, 10, 0, 0, 1)));
		CHECK(!config_in_relay_networks(c, v6(key, "::1")));
		CHECK(!config_in_relay_networks(c, v6(key, "::")));
		CHECK(!config_in_relay_networks(c, v6(key, "2001:db8::1")));
		CHECK(!config_in_relay_networks(c, v6(key, "::fffe:1.2.3.4")));
		CHECK(!config_in_relay_networks(c, v6(key, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
	}
	config_unref(c);

	c = load_networks("::/0");
	if (c != NULL) {
		CHECK(config_in_relay_networks(c, v6(key, "2001:db8::1")));
		CHECK(config_in_relay_networks(c, v6(key, "::")));
		CHECK(config_in_relay_networks(c, v4(key, 192, 0, 2, 1)));
	}
	config_unref(c);

	/* prefixes that are not a whole number of bytes, and a list */
	c = load_networks("192.0.2.128/25, 2001:db8:8000::/33, 198.51.100.7");
	if (c != NULL) {
		CHECK(config_in_relay_networks(c, v4(key, 192, 0, 2, 128)));
		CHECK(config_in_relay_networks(c, v4(key, 192, 0, 2, 200)));
		CHECK(!config_in_relay_networks(c, v4(key, 192, 0, 2, 127)));
		CHECK(!config_in_relay_networks(c, v4(key, 192, 0, 3, 128)));
		CHECK(config_in_relay_networks(c, v6(key, "2001:db8:8000::1")));
		CHECK(config_in_relay_networks(c, v6(key, "2001:db8:ffff:ffff::")));
		CHECK(!config_in_relay_networks(c, v6(key, "2001:db8:7fff::1")));
		CHECK(!config_in_relay_networks(c, v6(key, "2001:db9:8000::")));
		CHECK(config_in_relay_networks(c, v4(key, 198, 51, 100, 7)));
		CHECK(!config_in_relay_networks(c, v4(key, 198, 51, 100, 6)));
		CHECK(!config_in_relay_networks(c, v4(key, 198, 51, 100, 8)));
	}
	config_unref(c);

	/* an IPv4-mapped IPv6 block is the same as the IPv4 one */
	c = load_networks("::ffff:10.0.0.0/104");
	if (c != NULL) {
		CHECK(config_in_relay_networks(c, v4(key, 10, 1, 2, 3)));
		CHECK(!config_in_relay_networks(c, v4(key, 11, 1, 2, 3)));
	}
	config_unref(c);
}

/* ---- random texts: load or fail cleanly, never both or neither ---- */

static const char *const pieces[] = {
        "hostname",
        "listen",
        "local_domains",
        "postmaster",
        "max_message_size",
        "retry_max",
        "user",
        "max_errrs",
        "=",
        " ",
        "\t",
        "\n",
        "#",
        ",",
        "25M",
        "1k",
        "99999999999999999999999G",
        "[::1]:25 mx",
        "127.0.0.1:25 mx",
        "a.example",
        "pm@a.example",
        "\r",
        "x@",
        "[",
        "]:",
        "0",
        "\xff",
};

static void test_random_texts(void)
{
	unsigned seed = 12345;
	char text[512];

	for (int round = 0; round < 400; round++) {
		size_t n = 0;
		int count = (int)(rand_r(&seed) % 24);
		for (int i = 0; i < count; i++) {
			const char *piece = pieces[(size_t)rand_r(&seed) % (sizeof pieces / sizeof pieces[0])];
			size_t len = strlen(piece);
			if (n + len + 1 >= sizeof text)
				break;
			memcpy(text + n, piece, len);
			n += len;
		}
		text[n] = '\0';
		char *errors;
		struct config *c = load_text(text, &errors);
		if ((c == NULL) == (errors[0] == '\0'))
			UNIT_FAIL("round %d: config %p with errors \"%s\" for text \"%s\"", round, (void *)c, errors,
			          text);
		else
			unit_passed++;
		config_unref(c);
		free(errors);
	}
}

/* suppression, suppression_ttl, suppression_reply: defaults, and the reply's syntax. */
static void test_suppression_params(void)
{
	char *errors;
	struct config *c = config_load(NULL, stderr);
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK_INT(c->suppression, 1);
		CHECK_INT(c->suppression_ttl, 30 * 86400);
		CHECK_INT(c->bounce_retention, 7 * 86400);
		CHECK_INT(c->suppression_reply.code, 550);
		CHECK_STR(c->suppression_reply.status, "5.1.1");
		CHECK_STR(c->suppression_reply.text,
		          "Recipient address rejected: it bounced before and is on the suppression list");
	}
	config_unref(c);

	c = load_text("suppression = no\nsuppression_reply =  451   4.7.1   Try again   later \n", &errors);
	CHECK_STR(errors, "");
	if (c != NULL) {
		CHECK_INT(c->suppression, 0);
		CHECK_INT(c->suppression_reply.code, 451);
		CHECK_STR(c->suppression_reply.status, "4.7.1");
		CHECK_STR(c->suppression_reply.text, "Try again   later");
	}
	config_unref(c);
	free(errors);

	static const struct {
		const char *text, *want;
	} bad[] = {
	        {"suppression = maybe\n", "tern.conf:1: suppression: \"maybe\" is not one of no or yes\n"},
	        {"suppression_reply = 550\n", "tern.conf:1: suppression_reply: \"550\" is not CODE X.Y.Z TEXT\n"},
	        {"suppression_reply = 250 2.0.0 fine\n",
	         "tern.conf:1: suppression_reply: \"250\" is not a 4xx or 5xx reply code\n"},
	        {"suppression_reply = 560 5.1.1 no\n",
	         "tern.conf:1: suppression_reply: \"560\" is not a 4xx or 5xx reply code\n"},
	        {"suppression_reply = 5501 5.1.1 no\n",
	         "tern.conf:1: suppression_reply: \"5501\" is not a 4xx or 5xx reply code\n"},
	        {"suppression_reply = 550 4.1.1 no\n",
	         "tern.conf:1: suppression_reply: \"4.1.1\" is not an enhanced status code 5.X.Y (RFC 3463) to go with "
	         "550\n"},
	        {"suppression_reply = 550 5.1.1000 no\n",
	         "tern.conf:1: suppression_reply: \"5.1.1000\" is not an enhanced status code 5.X.Y (RFC 3463) to go "
	         "with 550\n"},
	        {"suppression_reply = 550 5.1 no\n",
	         "tern.conf:1: suppression_reply: \"5.1\" is not an enhanced status code 5.X.Y (RFC 3463) to go with "
	         "550\n"},
	        {"suppression_reply = 550 5.1.1\n",
	         "tern.conf:1: suppression_reply: the text after 550 5.1.1 must be 1 to 200 characters\n"},
	        {"suppression_reply = 550 5.1.1 caf\xc3\xa9\n",
	         "tern.conf:1: suppression_reply: \"caf\\xc3\\xa9\": the text may hold only printable ASCII\n"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		c = load_text(bad[i].text, &errors);
		CHECK(c == NULL);
		CHECK_STR(errors, bad[i].want);
		config_unref(c);
		free(errors);
	}
	char line[400];
	memset(line, 'x', sizeof line);
	memcpy(line, "suppression_reply = 550 5.1.1 ", 30);
	snprintf(line + 30 + 201, sizeof line - 231, "\n");
	c = load_text(line, &errors);
	CHECK(c == NULL);
	CHECK_STR(errors, "tern.conf:1: suppression_reply: the text after 550 5.1.1 must be 1 to 200 characters\n");
	config_unref(c);
	free(errors);
}

/* sendmail_socket: the default path in data_dir, a path of its own, none; client loads skip named files. */
static void test_sendmail_socket(void)
{
	static const struct {
		const char *text;
		int want_rc;
		const char *want_path;
	} cases[] = {
	        {"", 1, "./var/sendmail.sock"},
	        {"data_dir = /var/lib/tern\n", 1, "/var/lib/tern/sendmail.sock"},
	        {"sendmail_socket =\ndata_dir = /srv/t\n", 1, "/srv/t/sendmail.sock"},
	        {"sendmail_socket = /run/tern/submit.sock\n", 1, "/run/tern/submit.sock"},
	        {"sendmail_socket = none\n", 0, ""},
	};
	char *errors, path[CONFIG_SOCKET_PATH_MAX + 1], text[700];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct config *c = load_text(cases[i].text, &errors);
		CHECK_STR(errors, "");
		if (c != NULL) {
			CHECK_INT(config_sendmail_socket(c, path, sizeof path), cases[i].want_rc);
			CHECK_STR(path, cases[i].want_path);
		}
		config_unref(c);
		free(errors);
	}

	/* A socket path must fit sun_path; a default made from a long data_dir may not. */
	char long_dir[120];
	memset(long_dir, 'd', sizeof long_dir - 1);
	long_dir[0] = '/';
	long_dir[sizeof long_dir - 1] = '\0';
	snprintf(text, sizeof text, "sendmail_socket = %s\n", long_dir);
	struct config *c = load_text(text, &errors);
	CHECK(c == NULL);
	CHECK(strstr(errors, "tern.conf:1: sendmail_socket: \"/ddd") == errors);
	CHECK(strstr(errors, "\" is longer than 107 bytes\n") != NULL);
	config_unref(c);
	free(errors);
	snprintf(text, sizeof text, "data_dir = %s\n", long_dir);
	c = load_text(text, &errors);
	CHECK_STR(errors, "");
	if (c != NULL)
		CHECK_INT(config_sendmail_socket(c, path, sizeof path), -1);
	config_unref(c);
	free(errors);

	/* A key only root may read: the server's loader refuses, a client's does not open it. */
	snprintf(text, sizeof text, "tls_certificate = %s/no-cert.pem %s/no-key.pem\n", dir, dir);
	c = load_text(text, &errors);
	CHECK(c == NULL);
	config_unref(c);
	free(errors);
	char conf[300];
	FILE *err = open_memstream(&errors, &(size_t){0});
	c = config_load_client(file_in_dir(conf, sizeof conf, "tern.conf"), err);
	fclose(err);
	CHECK_STR(errors, "");
	CHECK(c != NULL && c->tls_cert_count == 1);
	config_unref(c);
	free(errors);
	/* The same for the credentials files of routes: a client's load opens none of them. */
	snprintf(text, sizeof text,
	         "smarthost = [192.0.2.1]:587 auth=%s/no-relay.auth\n"
	         "transport = example.net smtp:[192.0.2.2] auth=%s/no-other.auth\n",
	         dir, dir);
	c = load_text(text, &errors);
	CHECK(c == NULL);
	CHECK(strstr(errors, "no-relay.auth: cannot read") != NULL);
	CHECK(strstr(errors, "no-other.auth: cannot read") != NULL);
	config_unref(c);
	free(errors);
	err = open_memstream(&errors, &(size_t){0});
	c = config_load_client(conf, err);
	fclose(err);
	CHECK_STR(errors, "");
	CHECK(c != NULL);
	if (c != NULL) {
		CHECK(c->smarthost.auth_file != NULL && c->smarthost.auth_user == NULL);
		CHECK(c->transport_count == 1 && c->transports[0].auth_password == NULL);
	}
	config_unref(c);
	free(errors);
	/* ... but it still refuses what is wrong in the file itself. */
	c = load_text("sendmail_socket = a\tb\n", &errors);
	CHECK(c == NULL);
	CHECK_STR(errors, "tern.conf:1: sendmail_socket: \"a\\tb\" contains a control character\n");
	config_unref(c);
	free(errors);
}

/* The rule that routes a domain, and finding it again by its key. */
static void test_route_keys(void)
{
	char *errors = NULL;
	struct config *c = load_text("smarthost = [relay.example.net]:587\n"
	                             "transport = .sub.example.org smtp:[10.0.0.1]:25\n"
	                             "transport = bank.example mx tls=required\n",
	                             &errors);
	CHECK(c != NULL);
	free(errors);
	if (!c)
		return;
	char key[64];
	const struct config_route *r = config_route_for(c, "a.sub.example.org", key, sizeof key);
	CHECK_STR(key, "transport:.sub.example.org");
	CHECK(r == config_route_by_key(c, key) && r->kind == CONFIG_ROUTE_SMTP);
	r = config_route_for(c, "bank.example", key, sizeof key);
	CHECK_STR(key, "transport:bank.example");
	CHECK(r == config_route_by_key(c, key) && r->kind == CONFIG_ROUTE_MX && r->tls == CONFIG_TLS_REQUIRED);
	r = config_route_for(c, "elsewhere.example", key, sizeof key);
	CHECK_STR(key, "smarthost");
	CHECK(r == config_route_by_key(c, key) && r == &c->smarthost);
	CHECK(config_route_by_key(c, "transport:gone.example") == NULL);
	CHECK(config_route_by_key(c, "nonsense") == NULL);
	CHECK(config_route_by_key(c, NULL)->kind == CONFIG_ROUTE_MX);
	CHECK(config_route_by_key(c, "")->kind == CONFIG_ROUTE_MX);

	struct config *plain = load_text("", &errors);
	free(errors);
	CHECK(plain != NULL);
	if (plain) {
		r = config_route_for(plain, "elsewhere.example", key, sizeof key);
		CHECK_STR(key, "");
		CHECK(r->kind == CONFIG_ROUTE_MX && r->tls == CONFIG_TLS_MAY);
		CHECK(config_route_by_key(plain, "smarthost") == NULL);
		CHECK(!config_routing_equal(c, plain));
		CHECK(config_routing_equal(plain, plain));
		config_unref(plain);
	}
	struct config *same = load_text("smarthost = [relay.example.net]:587\n"
	                                "transport = .sub.example.org smtp:[10.0.0.1]:25\n"
	                                "transport = bank.example mx tls=required\n"
	                                "log_level = debug\n",
	                                &errors);
	free(errors);
	CHECK(same != NULL && config_routing_equal(c, same));
	config_unref(same);
	config_unref(c);
}

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/tern-config-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		return 1;
	}

	test_bad_cases();
	test_line_limits();
	test_file_errors();
	test_bounds();
	test_good_cases();
	test_text_values();
	test_listen();
	test_listen_one_line();
	test_tls_certificate();
	test_auth_choices();
	test_relay_networks();
	test_defaults();
	test_listing_round_trip();
	test_generated_files();
	test_needs_restart();
	test_suppression_params();
	test_sendmail_socket();
	test_random_texts();
	test_route_keys();

	char path[300];
	unlink(file_in_dir(path, sizeof path, "tern.conf"));
	unlink(file_in_dir(path, sizeof path, "missing.conf"));
	rmdir(dir);
	return unit_finish("config");
}
