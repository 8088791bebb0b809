/*
 * test_config_route.c - route values (smarthost, transport, local_delivery),
 * credentials files, and which route a domain gets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config_route.h"
#include "unit.h"

static char dir[] = "/tmp/tern-route-XXXXXX";

static bool parse(const char *text, bool bare_smtp, bool maildir, struct config_route *out, char *err)
{
	return config_route_parse(text, strlen(text), bare_smtp, maildir, true, out, err, 256);
}

/* refused - the value is refused, with a message holding want. */
static void refused(const char *text, bool bare_smtp, bool maildir, const char *want)
{
	struct config_route r;
	char err[256] = "";
	bool ok = parse(text, bare_smtp, maildir, &r, err);
	CHECK(!ok);
	if (!strstr(err, want)) {
		printf("route %s: message \"%s\" lacks \"%s\"\n", text, err, want);
		CHECK(false);
	}
	if (ok)
		config_route_release(&r);
}

static void write_file(const char *name, const char *content, mode_t mode, char *path)
{
	snprintf(path, 512, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	fputs(content, f);
	fclose(f);
	chmod(path, mode);
}

static void test_destinations(void)
{
	struct config_route r;
	char err[256];

	CHECK(parse("smtp:[relay.example.net]:587", false, false, &r, err));
	CHECK_INT(r.kind, CONFIG_ROUTE_SMTP);
	CHECK_STR(r.host, "relay.example.net");
	CHECK(!r.host_mx);
	CHECK_INT(r.port, 587);
	CHECK_INT(r.tls, CONFIG_TLS_MAY);
	config_route_release(&r);

	/* Without brackets: the host's MX; without a port: 25. */
	CHECK(parse("smtp:relay.example.net", false, false, &r, err));
	CHECK(r.host_mx);
	CHECK_INT(r.port, 25);
	config_route_release(&r);

	/* smarthost: "smtp:" may be left out; an address has no MX. */
	CHECK(parse("192.0.2.7:2525", true, false, &r, err));
	CHECK_INT(r.kind, CONFIG_ROUTE_SMTP);
	CHECK_STR(r.host, "192.0.2.7");
	CHECK(!r.host_mx);
	CHECK_INT(r.port, 2525);
	config_route_release(&r);

	CHECK(parse("[::1]:26 tls=implicit", true, false, &r, err));
	CHECK_STR(r.host, "::1");
	CHECK_INT(r.tls, CONFIG_TLS_IMPLICIT);
	config_route_release(&r);

	CHECK(parse("[IPv6:2001:db8::1] tls=implicit", true, false, &r, err));
	CHECK_STR(r.host, "2001:db8::1");
	CHECK_INT(r.port, 465); /* implicit TLS: submissions' port */
	config_route_release(&r);

	CHECK(parse("lmtp:[127.0.0.1]", false, false, &r, err));
	CHECK_INT(r.kind, CONFIG_ROUTE_LMTP);
	CHECK_INT(r.port, 24);
	config_route_release(&r);

	CHECK(parse("lmtp:unix:/run/dovecot/lmtp", false, true, &r, err));
	CHECK_STR(r.socket_path, "/run/dovecot/lmtp");
	CHECK(r.host == NULL);
	config_route_release(&r);

	CHECK(parse("mx  tls=required", false, false, &r, err));
	CHECK_INT(r.kind, CONFIG_ROUTE_MX);
	CHECK_INT(r.tls, CONFIG_TLS_REQUIRED);
	CHECK_STR(r.text, "mx  tls=required");
	config_route_release(&r);

	CHECK(parse("maildir", false, true, &r, err));
	CHECK_INT(r.kind, CONFIG_ROUTE_MAILDIR);
	config_route_release(&r);
}

static void test_refusals(void)
{
	refused("", false, false, "no route");
	refused("relay.example.net", false, false, "is not a route");
	refused("smtp:[relay.example.net", false, false, "no closing");
	refused("smtp:[relay.example.net]587", false, false, "write [HOST]:PORT");
	refused("smtp:[relay.example.net]:0", false, false, "is not 1..65535");
	refused("smtp:[relay.example.net]:65536", false, false, "is not 1..65535");
	refused("smtp:[relay.example.net]:2x", false, false, "is not 1..65535");
	refused("smtp:::1:25", false, false, "brackets");
	refused("smtp:[bad_host!]:25", false, false, "not a host name");
	refused("smtp:[]:25", false, false, "not a host name");
	refused("lmtp:mail.example.net:24", false, false, "LMTP has no MX hosts");
	refused("lmtp:unix:relative/path", false, true, "absolute path");
	refused("mx tls=sometimes", false, false, "tls= takes");
	refused("mx auth=/etc/x", false, false, "not for MX hosts");
	refused("mx color=blue", false, false, "is not an option");
	refused("maildir", false, false, "only for local_delivery");
	refused("mx", false, true, "not a local delivery");
	refused("smtp:[a.example]:25", false, true, "maildir or lmtp");
	refused("lmtp:unix:/run/lmtp tls=required", false, true, "routes over TCP");
	refused("smtp:[relay.example.net]:587 tls=none auth=/nonexistent", false, false, "in the clear");
	refused("smtp:[relay.example.net]:587 auth=/nonexistent/file", false, false, "/nonexistent/file: cannot read");
}

static void test_rates(void)
{
	uint64_t us = 1;
	CHECK(config_rate_parse("10/s", 4, &us));
	CHECK_INT(us, 100000);
	CHECK(config_rate_parse("100/m", 5, &us));
	CHECK_INT(us, 600000);
	CHECK(config_rate_parse("3600/h", 6, &us));
	CHECK_INT(us, 1000000);
	CHECK(config_rate_parse("1/d", 3, &us));
	CHECK_INT(us, 86400000000ull);
	CHECK(config_rate_parse("1000000/s", 9, &us));
	CHECK_INT(us, 1);
	CHECK(config_rate_parse("0", 1, &us));
	CHECK_INT(us, 0);
	const char *bad[] = {"", "/s", "10", "10/", "10/x", "10/ss", "0/s", "1000001/s", "-1/s", "10 /s", "1e3/s"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		us = 7;
		if (config_rate_parse(bad[i], strlen(bad[i]), &us)) {
			printf("rate \"%s\" was taken\n", bad[i]);
			CHECK(false);
		}
	}

	struct config_route r;
	char err[256];
	CHECK(parse("mx rate=30/m tls=required", false, false, &r, err));
	CHECK_INT(r.rate_interval_us, 2000000);
	CHECK_INT(r.tls, CONFIG_TLS_REQUIRED);
	config_route_release(&r);
	CHECK(parse("lmtp:unix:/run/lmtp rate=5/s", false, true, &r, err));
	CHECK_INT(r.rate_interval_us, 200000);
	config_route_release(&r);
	refused("mx rate=fast", false, false, "rate= takes N/s");
	refused("maildir rate=1/s", false, true, "rate= is for routes to other servers");
}

static void test_credentials(void)
{
	struct config_route r;
	char err[256], path[512], text[1200];
	char *user = NULL, *password = NULL;

	write_file("ok", "# relay account\n\n  relay-user  pass word with spaces \n", 0600, path);
	CHECK(config_credentials_read(path, &user, &password, err, sizeof err));
	CHECK_STR(user, "relay-user");
	CHECK_STR(password, "pass word with spaces "); /* the rest of the line, as it is */
	free(user);
	free(password);

	/* auth= makes TLS required, and reads the file. */
	snprintf(text, sizeof text, "smtp:[relay.example.net]:587 auth=%s", path);
	CHECK(parse(text, false, false, &r, err));
	CHECK_INT(r.tls, CONFIG_TLS_REQUIRED);
	CHECK_STR(r.auth_user, "relay-user");
	CHECK(r.verify); /* credentials go only to a peer whose certificate was checked */
	CHECK(!config_route_unverified(&r));
	config_route_release(&r);
	snprintf(text, sizeof text, "[relay.example.net] tls=implicit auth=%s", path);
	CHECK(parse(text, true, false, &r, err));
	CHECK_INT(r.tls, CONFIG_TLS_IMPLICIT);
	CHECK(r.verify);
	config_route_release(&r);
	/* The operator's opt-out, written out. */
	snprintf(text, sizeof text, "[relay.example.net] tls=required verify=no auth=%s", path);
	CHECK(parse(text, true, false, &r, err));
	CHECK_INT(r.tls, CONFIG_TLS_REQUIRED);
	CHECK(!r.verify);
	CHECK(config_route_unverified(&r));
	config_route_release(&r);
	snprintf(text, sizeof text, "[relay.example.net] auth=%s ca=%s", path, path);
	CHECK(parse(text, true, false, &r, err));
	CHECK(r.verify);
	CHECK_STR(r.ca_file, path);
	config_route_release(&r);

	write_file("open", "user secret\n", 0644, path);
	CHECK(!config_credentials_read(path, &user, &password, err, sizeof err));
	CHECK(strstr(err, "readable by every user") != NULL);

	/* Without read_files (the sendmail command's load) no file is opened: neither a missing one nor this one. */
	const char *unread[] = {"/nonexistent/relay.auth", path};
	for (size_t i = 0; i < sizeof unread / sizeof unread[0]; i++) {
		snprintf(text, sizeof text, "[relay.example.net]:587 auth=%s", unread[i]);
		bool ok = config_route_parse(text, strlen(text), true, false, false, &r, err, sizeof err);
		CHECK(ok);
		if (!ok)
			continue;
		CHECK_STR(r.auth_file, unread[i]);
		CHECK(r.auth_user == NULL && r.auth_password == NULL);
		CHECK_INT(r.tls, CONFIG_TLS_REQUIRED);
		config_route_release(&r);
	}
	/* ... while what is wrong in the value itself is still refused. */
	CHECK(!config_route_parse("mx auth=/x", 10, false, false, false, &r, err, sizeof err));

	write_file("nopass", "# comment\nuser-only\n", 0600, path);
	CHECK(!config_credentials_read(path, &user, &password, err, sizeof err));
	CHECK(strstr(err, ":2: write USER PASSWORD") != NULL);

	write_file("empty", "# nothing here\n", 0600, path);
	CHECK(!config_credentials_read(path, &user, &password, err, sizeof err));
	CHECK(strstr(err, "no USER PASSWORD line") != NULL);

	write_file("control", "user pass\001word\n", 0600, path);
	CHECK(!config_credentials_read(path, &user, &password, err, sizeof err));
}

static void test_verify(void)
{
	struct config_route r;
	char err[256];

	/* tls=verify: STARTTLS required, the certificate checked. */
	CHECK(parse("smtp:[relay.example.net]:587 tls=verify", false, false, &r, err));
	CHECK_INT(r.tls, CONFIG_TLS_REQUIRED);
	CHECK(r.verify);
	CHECK(r.ca_file == NULL);
	config_route_release(&r);
	/* Implicit TLS, checked. */
	CHECK(parse("[relay.example.net]:465 tls=implicit verify=yes", true, false, &r, err));
	CHECK_INT(r.tls, CONFIG_TLS_IMPLICIT);
	CHECK(r.verify);
	config_route_release(&r);
	/* verify=yes makes an opportunistic route required; without it nothing changes. */
	CHECK(parse("mx verify=yes", false, false, &r, err));
	CHECK_INT(r.tls, CONFIG_TLS_REQUIRED);
	CHECK(r.verify);
	config_route_release(&r);
	CHECK(parse("mx tls=required", false, false, &r, err));
	CHECK(!r.verify);
	config_route_release(&r);
	CHECK(parse("mx", false, false, &r, err));
	CHECK_INT(r.tls, CONFIG_TLS_MAY);
	CHECK(!r.verify);
	CHECK(!config_route_unverified(&r));
	config_route_release(&r);
	/* ca= turns verification on; the file must be readable (when files are read). */
	CHECK(parse("lmtp:[192.0.2.1]:24 ca=/dev/null", false, true, &r, err));
	CHECK(r.verify);
	CHECK_INT(r.tls, CONFIG_TLS_REQUIRED);
	config_route_release(&r);
	CHECK(config_route_parse("mx ca=/nonexistent/ca.pem", strlen("mx ca=/nonexistent/ca.pem"), false, false, false,
	                         &r, err, sizeof err));
	config_route_release(&r);
	refused("mx ca=/nonexistent/ca.pem", false, false, "/nonexistent/ca.pem: cannot read");
	refused("mx tls=verify verify=no", false, false, "write tls=required verify=no");
	refused("mx ca=/dev/null verify=no", false, false, "ca= with verify=no");
	refused("mx tls=none verify=yes", false, false, "tls=none");
	refused("mx tls=none ca=/dev/null", false, false, "tls=none");
	refused("mx verify=maybe", false, false, "verify= takes yes or no");
	refused("mx ca=", false, false, "ca= needs a file");
	refused("mx ca=/a ca=/b", false, false, "ca= given twice");
	refused("lmtp:unix:/run/lmtp verify=yes", false, true, "routes over TCP");
}

static void test_match(void)
{
	struct config_route routes[3];
	memset(routes, 0, sizeof routes);
	routes[0].domain = (char *)".example.com";
	routes[1].domain = (char *)"example.com";
	routes[2].domain = (char *)".b.example.com";
	CHECK(config_route_match(routes, 3, "example.com") == &routes[1]);
	CHECK(config_route_match(routes, 3, "a.example.com") == &routes[0]);
	CHECK(config_route_match(routes, 3, "x.b.example.com") == &routes[2]); /* the nearest parent */
	CHECK(config_route_match(routes, 3, "b.example.com") == &routes[0]);
	CHECK(config_route_match(routes, 3, "example.org") == NULL);
	CHECK(config_route_match(routes, 3, "notexample.com") == NULL);
	CHECK(config_route_match(routes, 0, "example.com") == NULL);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	test_destinations();
	test_refusals();
	test_rates();
	test_credentials();
	test_verify();
	test_match();
	static const char *const files[] = {"ok", "open", "nopass", "empty", "control"};
	char path[512];
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
	return unit_finish("config_route");
}
