/*
 * store_bounce.c - composing and addressing a bounce (see store_bounce.h).
 *
 * The notification itself is made by msg/msg_dsn.c. Here: what goes into
 * it (a recipient's error is "CODE X.Y.Z text (host[address])" when a
 * remote server refused, or "X.Y.Z text" for tern's own reasons). It goes
 * to the original sender, routed by the caller (store_route.c).
 */
#include "store/store_bounce.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "msg/msg_dsn.h"
#include "util/util_log.h"
#include "util/util_str.h"

static void emit_to_buffer(void *ctx, const char *bytes, size_t len)
{
	evbuffer_add(ctx, bytes, len);
}

/* remote_mta - "host" out of an error ending in "(host[address])", into out; NULL if none. */
static const char *remote_mta(const char *error, char *out, size_t size)
{
	const char *open = strrchr(error, '(');
	const char *bracket = open ? strchr(open, '[') : NULL;
	if (!bracket || bracket == open + 1 || !str_copy_n(out, size, open + 1, (size_t)(bracket - open - 1)))
		return NULL;
	return out;
}

/* notification - a report of kind action for the given recipients of job (DSN_DELIVERED: each delivered or relayed). */
static struct store_message *notification(const struct store_settings *settings, const struct delivery_job *job,
                                          const struct delivery_rcpt *const *reported, size_t count,
                                          const char *original, size_t original_len, int64_t now_ms,
                                          enum dsn_action action)
{
	if (job->sender[0] == '\0' || count == 0)
		return NULL;
	struct dsn_rcpt *rcpts = xcalloc(count, sizeof *rcpts);
	char(*status)[DSN_STATUS_SIZE] = xcalloc(count, sizeof *status);
	char(*hosts)[256] = xcalloc(count, sizeof *hosts);
	for (size_t i = 0; i < count; i++) {
		const char *error = reported[i]->error;
		/* Our own reasons start with the status ("5.1.2 ..."); a remote reply with its code ("550 5.1.1 ...").
		 */
		bool ours = error[0] >= '2' && error[0] <= '5' && error[1] == '.';
		if (ours)
			str_copy_n(status[i], DSN_STATUS_SIZE, error, strcspn(error, " "));
		else
			msg_dsn_status_for_reply(error, status[i]);
		/* Given up on after retries: delivery time expired (5.4.7). */
		if (action == DSN_FAILED && status[i][0] != '5')
			str_copy(status[i], DSN_STATUS_SIZE, "5.4.7");
		if (action == DSN_DELAYED && status[i][0] != '4')
			str_copy(status[i], DSN_STATUS_SIZE, "4.0.0");
		enum dsn_action rcpt_action = action;
		if (action == DSN_DELIVERED) {
			str_copy(status[i], DSN_STATUS_SIZE, "2.0.0");
			if (reported[i]->success == SUCCESS_RELAYED)
				rcpt_action = DSN_RELAYED;
		}
		rcpts[i].address = reported[i]->address;
		rcpts[i].orcpt = reported[i]->orcpt;
		rcpts[i].action = rcpt_action;
		if (action == DSN_DELAYED)
			rcpts[i].retry_until_ms = job->arrival_ms + (int64_t)settings->policy.max_queue_lifetime_ms;
		rcpts[i].status = status[i];
		rcpts[i].remote_mta = remote_mta(error, hosts[i], sizeof hosts[i]);
		rcpts[i].diagnostic = error[0] ? error : NULL;
		rcpts[i].last_attempt_ms = now_ms;
	}
	struct store_message *msg = xcalloc(1, sizeof *msg);
	id_next(msg->qid);
	msg->spill_fd = -1;
	msg->sender = str_dup("");
	msg->arrival_ms = now_ms;
	msg->body = evbuffer_new();
	if (!msg->body)
		fatal("evbuffer_new failed");
	struct dsn_report report = {
	        .reporting_mta = settings->hostname,
	        .qid = job->qid,
	        .to = job->sender,
	        .envid = job->envid,
	        .headers_only = job->ret_hdrs || action != DSN_FAILED,
	        .arrival_ms = job->arrival_ms,
	        .now_ms = now_ms,
	        .rcpts = rcpts,
	        .rcpt_count = count,
	        .original = original,
	        .original_len = original_len,
	        .original_max = BOUNCE_ORIGINAL_MAX,
	        .boundary_seed = msg->qid,
	};
	bool ok = msg_dsn_build(&report, emit_to_buffer, msg->body);
	free(rcpts);
	free(status);
	free(hosts);
	if (!ok) {
		log_error("event=notification_failed qid=%s reason=\"cannot compose it\"", job->qid);
		store_message_free(msg);
		return NULL;
	}
	msg->size = evbuffer_get_length(msg->body);
	msg->rcpts = xcalloc(1, sizeof *msg->rcpts);
	msg->rcpt_count = 1;
	msg->rcpts[0].address = str_dup(job->sender);
	return msg;
}

struct store_message *bounce_message(const struct store_settings *settings, const struct delivery_job *job,
                                     const struct delivery_rcpt *const *failed, size_t count, const char *original,
                                     size_t original_len, int64_t now_ms)
{
	return notification(settings, job, failed, count, original, original_len, now_ms, DSN_FAILED);
}

struct store_message *bounce_delay_warning_message(const struct store_settings *settings,
                                                   const struct delivery_job *job,
                                                   const struct delivery_rcpt *const *delayed, size_t count,
                                                   const char *original, size_t original_len, int64_t now_ms)
{
	return notification(settings, job, delayed, count, original, original_len, now_ms, DSN_DELAYED);
}

struct store_message *bounce_success_message(const struct store_settings *settings, const struct delivery_job *job,
                                             const struct delivery_rcpt *const *done, size_t count,
                                             const char *original, size_t original_len, int64_t now_ms)
{
	return notification(settings, job, done, count, original, original_len, now_ms, DSN_DELIVERED);
}
