/*
 * cli_queue.c - `tern queue list|show`: what is waiting in the queue, as a
 * table for people (in the manner of mailq) or as JSON for programs.
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
#include <time.h>

#include "cli/cli_util.h"
#include "smtp/smtp_address.h"
#include "util/util_id.h"
#include "util/util_str.h"

#define QUEUE_TIME_MAX 32

struct queue_totals {
	bool json;
	size_t messages, rcpts;
	int64_t bytes;
};

/* queue_time - ms since the epoch as "2026-11-23T11:20:00Z". */
static const char *queue_time(char buf[QUEUE_TIME_MAX], int64_t ms)
{
	time_t when = (time_t)(ms / 1000);
	struct tm tm;
	if (!gmtime_r(&when, &tm) ||
	    !str_format(buf, QUEUE_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
	                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec))
		str_copy(buf, QUEUE_TIME_MAX, "?");
	return buf;
}

/* ---- The table ---- */

/* queue_safe - s with control bytes, DEL, and bytes of broken UTF-8 shown as \xNN. */
static void queue_safe(const char *s)
{
	bool utf8 = smtp_utf8_valid(s, strlen(s));
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

static void queue_table_rcpt(const struct store_queue_rcpt *r)
{
	fputs("    ", stdout);
	queue_safe(r->address);
	if (r->mailbox[0] == '\0') {
		fputs(" (remote)", stdout);
	} else if (strcmp(r->address, r->mailbox) != 0) {
		fputs(" -> ", stdout);
		queue_safe(r->mailbox);
	}
	printf("  %s, %" PRId64 " attempt%s", r->state, r->attempts, r->attempts == 1 ? "" : "s");
	if (r->next_attempt_ms > 0) {
		char when[QUEUE_TIME_MAX];
		printf(", next %s", queue_time(when, r->next_attempt_ms));
	}
	putchar('\n');
	if (r->last_error) {
		fputs("        (", stdout);
		queue_safe(r->last_error);
		fputs(")\n", stdout);
	}
}

static void queue_table_header(void)
{
	printf("%-12s  %10s  %-20s  %s\n", "Queue ID", "Size", "Arrival (UTC)", "Sender/Recipients");
}

static void queue_table_entry(const struct store_queue_entry *e)
{
	char when[QUEUE_TIME_MAX];
	printf("%-12s  %10" PRId64 "  %-20s  <", e->qid, e->size, queue_time(when, e->arrival_ms));
	queue_safe(e->sender);
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
	fputs(",\"state\":", stdout);
	queue_json_string(r->state);
	printf(",\"attempts\":%" PRId64 ",\"next_attempt\":", r->attempts);
	if (r->next_attempt_ms > 0) {
		char when[QUEUE_TIME_MAX];
		printf("\"%s\"", queue_time(when, r->next_attempt_ms));
	} else {
		fputs("null", stdout);
	}
	fputs(",\"last_error\":", stdout);
	if (r->last_error)
		queue_json_string(r->last_error);
	else
		fputs("null", stdout);
	putchar('}');
}

static void queue_json_entry(const struct store_queue_entry *e)
{
	char when[QUEUE_TIME_MAX];
	fputs("{\"qid\":", stdout);
	queue_json_string(e->qid);
	fputs(",\"sender\":", stdout);
	queue_json_string(e->sender);
	printf(",\"arrival\":\"%s\",\"size\":%" PRId64 ",\"recipients\":[", queue_time(when, e->arrival_ms), e->size);
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

static int queue_list(struct store_admin *admin, bool json)
{
	struct queue_totals totals = {.json = json};
	char err[512];
	if (!store_queue_each(admin, queue_print, &totals, err, sizeof err))
		return cli_fail("%s", err);
	queue_list_end(&totals);
	return cli_flush(CLI_OK);
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

static int queue_show(struct store_admin *admin, const char *arg, bool json)
{
	/* Queue ids are Crockford base32: take a well-formed one in either case. */
	char *qid = str_dup(arg);
	for (char *p = qid; *p; p++)
		*p = (char)toupper((unsigned char)*p);
	if (!id_valid(qid)) {
		free(qid);
		qid = str_dup(arg);
	}
	char err[512];
	bool found = store_queue_show(admin, qid, queue_show_one, &json, err, sizeof err);
	free(qid);
	return found ? cli_flush(CLI_OK) : cli_fail("%s", err);
}

/* queue_args_ok - the verb is known and has its arguments. */
static bool queue_args_ok(int argc, char **argv)
{
	if (argc < 1)
		return false;
	if (strcmp(argv[0], "list") == 0)
		return argc == 1;
	return strcmp(argv[0], "show") == 0 && argc == 2;
}

int cli_queue(int argc, char **argv, const char *config_path)
{
	bool json = cli_take_flag(&argc, argv, "--json");
	if (cli_unknown_option(argc, argv) || !queue_args_ok(argc, argv))
		return cli_usage("queue");
	struct config *config = config_load(config_path, stderr);
	if (!config)
		return CLI_FAIL;
	struct store_admin *admin = cli_admin_open(config);
	int rc = CLI_FAIL;
	if (admin && strcmp(argv[0], "list") == 0)
		rc = queue_list(admin, json);
	else if (admin)
		rc = queue_show(admin, argv[1], json);
	store_admin_close(admin);
	config_unref(config);
	return rc;
}
