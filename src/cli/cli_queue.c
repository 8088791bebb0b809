/*
 * cli_queue.c - `tern queue ...`: what is waiting in the queue, as a table
 * for people (in the manner of mailq) or as JSON for programs, and what an
 * operator does to it: flush, retry, hold, release, delete. The actions go
 * through the database (store_queue.c), so they work whether or not the
 * server runs; a running server acts on them within a second and logs them
 * with the user who ran the command.
 *
 * Everything printed comes from the database and may hold bytes a peer
 * chose (senders, recipients, error texts), so nothing is printed raw: the
 * table shows control bytes as \xNN, and JSON escapes them as \u00XX; in a
 * string that is not valid UTF-8, bytes >= 0x80 are escaped too (JSON
 * reads them as U+0080 to U+00FF), so the output always parses.
 *
 * Times are UTC, ISO 8601, to the second.
 */
#include "cli/cli.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "smtp/smtp_address.h"
#include "util/util_id.h"
#include "util/util_str.h"

struct queue_totals {
	bool json;
	size_t messages, rcpts;
	int64_t bytes;
};

/* ---- The table ---- */

static void queue_table_rcpt(const struct store_queue_rcpt *r)
{
	fputs("    ", stdout);
	cli_print_safe(r->address);
	if (r->mailbox[0] == '\0') {
		/* Another domain: how it leaves, and by which rule of the configuration. */
		printf(" (remote, %s", r->route);
		if (r->route_key) {
			fputs(" by ", stdout);
			cli_print_safe(r->route_key);
		}
		fputs(")", stdout);
	} else if (strcmp(r->address, r->mailbox) != 0) {
		fputs(" -> ", stdout);
		cli_print_safe(r->mailbox);
	}
	printf("  %s, %" PRId64 " attempt%s", r->state, r->attempts, r->attempts == 1 ? "" : "s");
	if (r->next_attempt_ms > 0) {
		char when[CLI_TIME_MAX];
		printf(", next %s", cli_time(when, r->next_attempt_ms));
	}
	putchar('\n');
	if (r->last_error && r->history_count == 0) {
		fputs("        (", stdout);
		cli_print_safe(r->last_error);
		fputs(")\n", stdout);
	}
	for (size_t i = 0; i < r->history_count; i++) {
		char when[CLI_TIME_MAX];
		printf("        %s %s: ", cli_time(when, r->history[i].at_ms), r->history[i].outcome);
		cli_print_safe(r->history[i].reply);
		putchar('\n');
	}
}

static void queue_table_header(void)
{
	printf("%-12s  %10s  %-20s  %s\n", "Queue ID", "Size", "Arrival (UTC)", "Sender/Recipients");
}

static void queue_table_entry(const struct store_queue_entry *e)
{
	char when[CLI_TIME_MAX];
	printf("%-12s  %10" PRId64 "  %-20s  <", e->qid, e->size, cli_time(when, e->arrival_ms));
	cli_print_safe(e->sender);
	fputs(">\n", stdout);
	for (size_t i = 0; i < e->rcpt_count; i++)
		queue_table_rcpt(&e->rcpts[i]);
}

/* ---- JSON ---- */

/* queue_json_string - s as a JSON string (RFC 8259 7), always valid UTF-8 out. */
static void queue_json_string(const char *s)
{
	bool utf8 = smtp_utf8_valid(s, strlen(s));
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

static void queue_json_rcpt(const struct store_queue_rcpt *r)
{
	fputs("{\"address\":", stdout);
	queue_json_string(r->address);
	fputs(",\"mailbox\":", stdout);
	queue_json_string(r->mailbox);
	fputs(",\"route\":", stdout);
	queue_json_string(r->route);
	fputs(",\"route_key\":", stdout);
	if (r->route_key)
		queue_json_string(r->route_key);
	else
		fputs("null", stdout);
	fputs(",\"state\":", stdout);
	queue_json_string(r->state);
	printf(",\"attempts\":%" PRId64 ",\"next_attempt\":", r->attempts);
	if (r->next_attempt_ms > 0) {
		char when[CLI_TIME_MAX];
		printf("\"%s\"", cli_time(when, r->next_attempt_ms));
	} else {
		fputs("null", stdout);
	}
	fputs(",\"last_error\":", stdout);
	if (r->last_error)
		queue_json_string(r->last_error);
	else
		fputs("null", stdout);
	if (r->history) {
		fputs(",\"attempts_failed\":[", stdout);
		for (size_t i = 0; i < r->history_count; i++) {
			char when[CLI_TIME_MAX];
			printf("%s{\"at\":\"%s\",\"outcome\":", i ? "," : "", cli_time(when, r->history[i].at_ms));
			queue_json_string(r->history[i].outcome);
			fputs(",\"reply\":", stdout);
			queue_json_string(r->history[i].reply);
			putchar('}');
		}
		putchar(']');
	}
	putchar('}');
}

static void queue_json_entry(const struct store_queue_entry *e)
{
	char when[CLI_TIME_MAX];
	fputs("{\"qid\":", stdout);
	queue_json_string(e->qid);
	fputs(",\"sender\":", stdout);
	queue_json_string(e->sender);
	printf(",\"arrival\":\"%s\",\"size\":%" PRId64 ",\"recipients\":[", cli_time(when, e->arrival_ms), e->size);
	for (size_t i = 0; i < e->rcpt_count; i++) {
		if (i > 0)
			putchar(',');
		queue_json_rcpt(&e->rcpts[i]);
	}
	fputs("]}", stdout);
}

/* ---- Commands ---- */

/* queue_print - one message, as a table block or as an element of the JSON array. */
static void queue_print(void *ctx, const struct store_queue_entry *entry)
{
	struct queue_totals *totals = ctx;
	if (totals->json) {
		fputs(totals->messages ? ",\n" : "[\n", stdout);
		queue_json_entry(entry);
	} else {
		if (totals->messages == 0)
			queue_table_header();
		queue_table_entry(entry);
	}
	totals->messages++;
	totals->rcpts += entry->rcpt_count;
	totals->bytes += entry->size;
}

static void queue_list_end(const struct queue_totals *totals)
{
	if (totals->json)
		fputs(totals->messages ? "\n]\n" : "[]\n", stdout);
	else if (totals->messages == 0)
		puts("Queue is empty");
	else
		printf("-- %zu message%s, %" PRId64 " bytes, %zu recipient%s\n", totals->messages,
		       totals->messages == 1 ? "" : "s", totals->bytes, totals->rcpts, totals->rcpts == 1 ? "" : "s");
}

static int queue_list(struct store_admin *admin, bool json, const struct store_queue_filter *filter)
{
	struct queue_totals totals = {.json = json};
	char err[512];
	if (!store_queue_each(admin, filter, queue_print, &totals, err, sizeof err))
		return cli_fail("%s", err);
	queue_list_end(&totals);
	return cli_flush(CLI_OK);
}

int cli_queue_table(const struct config *config)
{
	struct store_admin *admin = cli_admin_open(config);
	struct store_queue_filter all = {0};
	int rc = admin ? queue_list(admin, false, &all) : CLI_FAIL;
	store_admin_close(admin);
	return rc;
}

/* queue_show_one - like queue_print, but JSON is one object, not an array. */
static void queue_show_one(void *ctx, const struct store_queue_entry *entry)
{
	const bool *json = ctx;
	if (*json) {
		queue_json_entry(entry);
		putchar('\n');
	} else {
		queue_table_header();
		queue_table_entry(entry);
	}
}

/* queue_id - arg as a queue id: ids are Crockford base32, so a well-formed one is taken in either case. */
static char *queue_id(const char *arg)
{
	char *qid = str_dup(arg);
	for (char *p = qid; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	if (!id_valid(qid)) {
		free(qid);
		qid = str_dup(arg);
	}
	return qid;
}

static int queue_show(struct store_admin *admin, const char *arg, bool json)
{
	char *qid = queue_id(arg);
	char err[512];
	bool found = store_queue_show(admin, qid, queue_show_one, &json, err, sizeof err);
	free(qid);
	return found ? cli_flush(CLI_OK) : cli_fail("%s", err);
}

/* ---- Actions ---- */

static const struct {
	const char *verb;
	enum store_queue_action action;
	const char *done; /* what happened to the recipients */
} queue_verbs[] = {
        {"flush", QUEUE_FLUSH, "due now"},   {"retry", QUEUE_RETRY, "due now, backoff restarted"},
        {"hold", QUEUE_HOLD, "held"},        {"release", QUEUE_RELEASE, "released, due now"},
        {"delete", QUEUE_DELETE, "deleted"},
};

#define QUEUE_VERB_COUNT (sizeof queue_verbs / sizeof queue_verbs[0])

static int queue_verb(const char *word)
{
	for (size_t i = 0; i < QUEUE_VERB_COUNT; i++)
		if (strcmp(queue_verbs[i].verb, word) == 0)
			return (int)i;
	return -1;
}

static int queue_act(struct store_admin *admin, const char *verb, const char *arg)
{
	int v = queue_verb(verb);
	char *target = arg ? queue_id(arg) : NULL;
	if (target && !id_valid(target)) {
		/* Not a queue id: for flush, a domain. */
		for (char *p = target; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	char who[160], err[512];
	size_t count = 0;
	cli_who(who, sizeof who);
	bool ok = store_queue_act(admin, queue_verbs[v].action, target, who, &count, err, sizeof err);
	if (ok)
		printf("%s: %zu recipient%s %s\n", target ? target : "all deferred mail", count, count == 1 ? "" : "s",
		       queue_verbs[v].done);
	free(target);
	return ok ? cli_flush(CLI_OK) : cli_fail("%s", err);
}

/* ---- Arguments ---- */

/* queue_age - an age written as durations are in the configuration, as milliseconds. */
static bool queue_age(const char *s, int64_t *ms)
{
	uint64_t seconds;
	if (!config_duration_parse(s, strlen(s), &seconds) || seconds > (uint64_t)INT64_MAX / 1000)
		return false;
	*ms = (int64_t)seconds * 1000;
	return true;
}

/* queue_filter_take - the list options into filter; false after a message. */
static bool queue_filter_take(int *argc, char **argv, struct store_queue_filter *filter, char *domain, size_t size)
{
	static const char *const states[] = {"queued", "deferred", "held", "bounced"};
	const char *state = NULL, *dom = NULL, *older = NULL, *newer = NULL;
	if (cli_take_option(argc, argv, "--state", &state) < 0 || cli_take_option(argc, argv, "--domain", &dom) < 0 ||
	    cli_take_option(argc, argv, "--older-than", &older) < 0 ||
	    cli_take_option(argc, argv, "--newer-than", &newer) < 0)
		return false;
	for (size_t i = 0; state && i < sizeof states / sizeof states[0]; i++)
		if (strcmp(state, states[i]) == 0)
			filter->state = states[i];
	if (state && !filter->state) {
		cli_fail("--state takes queued, deferred, held or bounced");
		return false;
	}
	if (dom) {
		if (!str_copy(domain, size, dom)) {
			cli_fail("--domain: too long");
			return false;
		}
		str_lower(domain);
		filter->domain = domain;
	}
	if ((older && !queue_age(older, &filter->older_than_ms)) ||
	    (newer && !queue_age(newer, &filter->newer_than_ms))) {
		cli_fail("--older-than and --newer-than take an age: 90s, 30m, 4h, 2d");
		return false;
	}
	return true;
}

/* queue_args_ok - the verb is known and has its arguments. */
static bool queue_args_ok(int argc, char **argv)
{
	if (argc < 1)
		return false;
	if (strcmp(argv[0], "list") == 0)
		return argc == 1;
	if (strcmp(argv[0], "show") == 0)
		return argc == 2;
	if (strcmp(argv[0], "flush") == 0)
		return argc <= 2;
	return queue_verb(argv[0]) >= 0 && argc == 2;
}

int cli_queue(int argc, char **argv, const char *config_path)
{
	bool json = cli_take_flag(&argc, argv, "--json");
	struct store_queue_filter filter = {0};
	char domain[256];
	if (!queue_filter_take(&argc, argv, &filter, domain, sizeof domain))
		return CLI_USAGE;
	if (cli_unknown_option(argc, argv) || !queue_args_ok(argc, argv))
		return cli_usage("queue");
	bool listing = strcmp(argv[0], "list") == 0;
	if ((!listing && (filter.state || filter.domain || filter.older_than_ms || filter.newer_than_ms)) ||
	    (json && !listing && strcmp(argv[0], "show") != 0))
		return cli_usage("queue");
	struct config *config = config_load(config_path, stderr);
	if (!config)
		return CLI_FAIL;
	struct store_admin *admin = cli_admin_open(config);
	int rc = CLI_FAIL;
	if (admin && listing)
		rc = queue_list(admin, json, &filter);
	else if (admin && strcmp(argv[0], "show") == 0)
		rc = queue_show(admin, argv[1], json);
	else if (admin)
		rc = queue_act(admin, argv[0], argc == 2 ? argv[1] : NULL);
	store_admin_close(admin);
	config_unref(config);
	return rc;
}
