/*
 * test_mta_session.c - the client session (src/mta/mta_session.c) driven
 * by a scripted server over an in-memory pair: a whole delivery with a
 * pipelined envelope and multi-line replies, a reply with a bare LF
 * (refused), reply lines whose codes differ, and a 421 in the middle.
 *
 * The session reaches the rest of the mta only through the calls
 * mta_private.h lists under "what a session needs from the mta"; this
 * program defines them itself, so the linker takes them from here and not
 * from mta.c (which needs DNS, the store and the delivery queue).
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "mta/mta_private.h"
#include "net/net_conn.h"
#include "unit.h"
#include "util/util_log.h"
#include "util/util_str.h"

#define LOOP_TURNS 50

/* ---- The mta, as far as a session sees it ---- */

struct mta {
	struct event_base *base;
	struct mta_session *detached;
};

struct mta_dest {
	unsigned sending;
};

static struct {
	int calls;
	enum session_outcome outcome;
	char why[200];
} done;

struct event_base *mta_base(struct mta *mta)
{
	return mta->base;
}

struct tls_client *mta_tls(const struct mta_delivery *d)
{
	return NULL;
}

struct mta_session **mta_detached(struct mta *mta)
{
	return &mta->detached;
}

void mta_delivery_session_done(struct mta_delivery *d, enum session_outcome outcome, const char *why)
{
	done.calls++;
	done.outcome = outcome;
	snprintf(done.why, sizeof done.why, "%s", why);
}

void mta_dest_sending(struct mta_dest *dest)
{
	dest->sending++;
}

void mta_detached_done(struct mta *mta, struct mta_dest *dest)
{
}

/* ---- One delivery of one message to two recipients ---- */

struct world {
	struct mta mta;
	struct mta_dest dest;
	struct config *config;
	struct config_route route;
	struct delivery_rcpt rcpts[2];
	struct delivery_job job;
	struct mta_job mjob;
	size_t index[2];
	struct mta_delivery d;
	struct bufferevent *peer;
	struct mta_session *s;
};

static void turn(struct world *w)
{
	for (int i = 0; i < LOOP_TURNS; i++)
		event_base_loop(w->mta.base, EVLOOP_NONBLOCK);
}

static void world_start(struct world *w, struct event_base *base, struct config *config)
{
	memset(w, 0, sizeof *w);
	memset(&done, 0, sizeof done);
	w->mta.base = base;
	w->config = config;
	w->route.kind = CONFIG_ROUTE_MX;
	w->route.tls = CONFIG_TLS_MAY;
	w->rcpts[0].address = "a@peer.test";
	w->rcpts[1].address = "b@peer.test";
	str_copy(w->job.qid, sizeof w->job.qid, "QID1");
	w->job.sender = "s@mx.test";
	w->job.rcpts = w->rcpts;
	w->job.rcpt_count = 2;
	w->mjob.config = config;
	w->mjob.job = &w->job;
	w->mjob.body = evbuffer_new();
	evbuffer_add_printf(w->mjob.body, "Subject: t\r\n\r\n.dot\r\n");
	w->index[0] = 0;
	w->index[1] = 1;
	w->d.mta = &w->mta;
	w->d.job = &w->mjob;
	w->d.route = &w->route;
	w->d.dest_state = &w->dest;
	w->d.rcpt_index = w->index;
	w->d.rcpt_count = 2;
	struct net_conn *conn = net_conn_pair(base, &w->peer);
	bufferevent_enable(w->peer, EV_READ | EV_WRITE);
	w->s = mta_session_start_conn(&w->d, conn, "peer.test");
}

static void world_end(struct world *w)
{
	mta_session_free(w->s);
	bufferevent_free(w->peer);
	turn(w);
	evbuffer_free(w->mjob.body);
}

/* server - the scripted server says text; what the client sends back is returned (malloc'd). */
static char *server(struct world *w, const char *text)
{
	bufferevent_write(w->peer, text, strlen(text));
	turn(w);
	struct evbuffer *in = bufferevent_get_input(w->peer);
	size_t n = evbuffer_get_length(in);
	char *got = malloc(n + 1);
	if (!got)
		abort();
	evbuffer_remove(in, got, n);
	got[n] = '\0';
	return got;
}

static void expect_sent(struct world *w, const char *text, const char *want)
{
	char *got = server(w, text);
	CHECK_STR(got, want);
	free(got);
}

/* expect_ehlo - the server says text; the client answers EHLO with its configured name. */
static void expect_ehlo(struct world *w, const char *text)
{
	char want[300];
	str_format(want, sizeof want, "EHLO %s\r\n", w->config->hostname);
	expect_sent(w, text, want);
}

static void test_delivery(struct event_base *base, struct config *config)
{
	struct world w;
	world_start(&w, base, config);
	expect_ehlo(&w, "220-peer.test ESMTP\r\n220 more greeting\r\n");
	expect_sent(&w, "250-peer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 1000\r\n",
	            "MAIL FROM:<s@mx.test> SIZE=20\r\nRCPT TO:<a@peer.test>\r\nRCPT TO:<b@peer.test>\r\nDATA\r\n");
	expect_sent(&w, "250 ok\r\n250 ok\r\n550 5.1.1 no such user\r\n354 go\r\n", "Subject: t\r\n\r\n..dot\r\n.\r\n");
	CHECK_INT(done.calls, 0);
	expect_sent(&w, "250 2.0.0 queued\r\n", "");
	CHECK_INT(done.calls, 1);
	CHECK_INT(done.outcome, SESSION_FINAL);
	CHECK_INT(w.rcpts[0].status, DELIVERY_OK);
	CHECK_INT(w.rcpts[1].status, DELIVERY_PERMFAIL);
	CHECK(strncmp(w.rcpts[1].error, "550 5.1.1 no such user", 22) == 0);
	CHECK_INT(w.dest.sending, 1);
	CHECK(mta_session_reusable(w.s, config));
	world_end(&w);
}

/* expect_refused_ehlo - a session whose peer answers EHLO with reply ends for why before sending more. */
static void expect_refused_ehlo(struct event_base *base, struct config *config, const char *reply, const char *why)
{
	struct world w;
	world_start(&w, base, config);
	expect_ehlo(&w, "220 peer.test\r\n");
	expect_sent(&w, reply, "");
	CHECK_INT(done.calls, 1);
	CHECK_INT(done.outcome, SESSION_NEXT);
	CHECK(strstr(done.why, why) != NULL);
	world_end(&w);
}

/* A reply line ends at CRLF only: a bare LF in it ends the session, nothing is sent. */
static void test_bare_lf(struct event_base *base, struct config *config)
{
	struct world w;
	world_start(&w, base, config);
	expect_sent(&w, "220 peer.test\nESMTP\r\n", "");
	CHECK_INT(done.calls, 1);
	CHECK_INT(done.outcome, SESSION_NEXT);
	CHECK(strstr(done.why, "bare CR or LF") != NULL);
	world_end(&w);

	/* In a multi-line EHLO reply too. */
	expect_refused_ehlo(base, config, "250-peer.test\n250 PIPELINING\r\n", "bare CR or LF");
}

static void test_mismatch(struct event_base *base, struct config *config)
{
	expect_refused_ehlo(base, config, "250-peer.test\r\n251 PIPELINING\r\n", "reply lines with different codes");
}

/* 421 to MAIL: every recipient is deferred with the peer's reply, and the connection is not reused. */
static void test_421(struct event_base *base, struct config *config)
{
	struct world w;
	world_start(&w, base, config);
	expect_ehlo(&w, "220 peer.test\r\n");
	expect_sent(&w, "250-peer.test\r\n250 8BITMIME\r\n", "MAIL FROM:<s@mx.test>\r\n");
	expect_sent(&w, "421 4.3.2 going down\r\n", "");
	CHECK_INT(done.calls, 1);
	CHECK_INT(done.outcome, SESSION_FINAL);
	CHECK_INT(w.rcpts[0].status, DELIVERY_TEMPFAIL);
	CHECK_INT(w.rcpts[1].status, DELIVERY_TEMPFAIL);
	CHECK(strncmp(w.rcpts[0].error, "421 4.3.2 going down", 20) == 0);
	CHECK(!mta_session_reusable(w.s, config));
	world_end(&w);
}

/* An over-long reply line ends the session before its end comes. */
static void test_long_reply(struct event_base *base, struct config *config)
{
	struct world w;
	world_start(&w, base, config);
	char big[3000];
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	memcpy(big, "220 ", 4);
	expect_sent(&w, big, "");
	CHECK_INT(done.calls, 1);
	CHECK(strstr(done.why, "reply line too long") != NULL);
	world_end(&w);
}

int main(void)
{
	log_set_level(LOG_LEVEL_ERROR);
	struct event_base *base = event_base_new();
	struct config *config = config_load(NULL, stderr);
	CHECK(config != NULL);
	if (config) {
		test_delivery(base, config);
		test_bare_lf(base, config);
		test_mismatch(base, config);
		test_421(base, config);
		test_long_reply(base, config);
	}
	config_unref(config);
	event_base_free(base);
	return unit_finish("mta_session");
}
