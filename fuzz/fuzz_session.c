/*
 * fuzz_session.c - fuzz target for a whole server session: the input is a
 * client's byte stream, fed through an in-memory pair (net/net_conn.c)
 * into a session (src/smtpd) with the default configuration, as
 * tests/unit/unit_session.h sets it up (a real directory with two users
 * and an alias, an in-process commit and password check; TLS left out).
 *
 * The first byte picks the listener kind (bit 0: mx or submission) and how
 * the rest is cut into writes (bits 1-7: pieces of that many times 8
 * bytes; 0: all at once), so line and content reading across reads is
 * fuzzed too. Each run goes until the session is quiet or closed, then
 * ends it and frees everything: a leak or a use after free shows under
 * ASan.
 */
#include <stdint.h>
#include <stdlib.h>

#include "../tests/unit/unit_session.h"
#include "util/util_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct unit_session world;
static bool world_ready;

static void world_close(void)
{
	unit_session_close(&world);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!world_ready) {
		log_set_level(LOG_LEVEL_ERROR);
		if (!unit_session_open(&world, "fuzz-session"))
			abort();
		atexit(world_close);
		world_ready = true;
	}
	if (size == 0)
		return 0;
	enum listener_kind kind = (data[0] & 1) ? LISTENER_SUBMISSION : LISTENER_MX;
	size_t piece = (size_t)(data[0] >> 1) * 8;
	data++;
	size--;
	unit_session_start(&world, kind);
	for (size_t at = 0; at < size && world.session;) {
		size_t n = piece && piece < size - at ? piece : size - at;
		unit_session_send(&world, data + at, n);
		at += n;
	}
	unit_session_stop(&world);
	evbuffer_drain(world.replies, evbuffer_get_length(world.replies));
	return 0;
}
