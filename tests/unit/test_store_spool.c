/*
 * test_store_spool.c - spool files (src/store/store_spool.c) in a fresh
 * data directory under $TMPDIR: written from memory and from a spill file,
 * read back byte for byte, made durable, removed, and swept when no
 * message names them; names that are not queue ids are never touched.
 */
#include <event2/buffer.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_spool.h"
#include "unit.h"
#include "unit_store.h"
#include "util/util_str.h"

static bool file_exists(const char *name)
{
	char path[600];
	struct stat st;
	str_format(path, sizeof path, "%s/spool/%s", data_dir, name);
	return stat(path, &st) == 0;
}

/* a_body - size octets that are not all alike, so a misplaced chunk shows. */
static struct evbuffer *a_body(size_t size)
{
	struct evbuffer *b = evbuffer_new();
	for (size_t i = 0; i < size; i++) {
		char c = (char)('a' + (i * 7 + i / 997) % 26);
		evbuffer_add(b, &c, 1);
	}
	return b;
}

static bool same(struct evbuffer *a, struct evbuffer *b)
{
	size_t n = evbuffer_get_length(a);
	return n == evbuffer_get_length(b) && memcmp(evbuffer_pullup(a, -1), evbuffer_pullup(b, -1), n) == 0;
}

static void test_write_read_remove(struct store_spool *spool)
{
	struct evbuffer *body = a_body(200000);
	CHECK(store_spool_write(spool, "0A1B2C3D4E5F", body, -1, evbuffer_get_length(body)));
	CHECK_INT(evbuffer_get_length(body), 200000); /* left as it was */
	CHECK(store_spool_sync(spool));
	struct evbuffer *back = evbuffer_new();
	CHECK(store_spool_read(spool, "0A1B2C3D4E5F", back));
	CHECK(same(body, back));

	/* Written again (a batch that failed before): the new content wins. */
	struct evbuffer *shorter = a_body(40000);
	CHECK(store_spool_write(spool, "0A1B2C3D4E5F", shorter, -1, evbuffer_get_length(shorter)));
	evbuffer_drain(back, evbuffer_get_length(back));
	CHECK(store_spool_read(spool, "0A1B2C3D4E5F", back));
	CHECK(same(shorter, back));

	store_spool_remove(spool, "0A1B2C3D4E5F");
	CHECK(!file_exists("0A1B2C3D4E5F"));
	store_spool_remove(spool, "0A1B2C3D4E5F"); /* gone already: no harm */
	evbuffer_drain(back, evbuffer_get_length(back));
	CHECK(!store_spool_read(spool, "0A1B2C3D4E5F", back));
	evbuffer_free(body);
	evbuffer_free(shorter);
	evbuffer_free(back);
}

static void test_from_spill(struct store_spool *spool)
{
	char path[600];
	str_format(path, sizeof path, "%s/spill", root);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	struct evbuffer *body = a_body(300001);
	size_t size = evbuffer_get_length(body);
	CHECK(write(fd, evbuffer_pullup(body, -1), size) == (ssize_t)size);
	/* Trailing bytes past the message's size are not part of it. */
	CHECK(write(fd, "junk", 4) == 4);
	CHECK(store_spool_write(spool, "1111111111A1", NULL, fd, size));
	struct evbuffer *back = evbuffer_new();
	CHECK(store_spool_read(spool, "1111111111A1", back));
	CHECK(same(body, back));

	/* A spill file shorter than the size given: refused, and no file is left. */
	CHECK(!store_spool_write(spool, "1111111111A2", NULL, fd, size + 100));
	CHECK(!file_exists("1111111111A2"));
	close(fd);
	unlink(path);
	evbuffer_free(body);
	evbuffer_free(back);
}

/* known_but_ab - every message is known but the one whose id ends in AB. */
static bool known_but_ab(const char *qid, void *arg)
{
	(*(int *)arg)++;
	return strcmp(qid + 10, "AB") != 0;
}

static void test_names_and_sweep(struct store_spool *spool)
{
	struct evbuffer *body = a_body(10);
	/* Only queue ids name files. */
	CHECK(!store_spool_write(spool, "../escape", body, -1, 10));
	CHECK(!store_spool_write(spool, "", body, -1, 10));
	CHECK(!store_spool_write(spool, "0A1B2C3D4E5", body, -1, 10));
	CHECK(store_spool_write(spool, "2222222222AA", body, -1, 10));
	CHECK(store_spool_write(spool, "2222222222AB", body, -1, 10));
	/* Something that is not a queue file is not the sweep's business. */
	char path[600];
	str_format(path, sizeof path, "%s/spool/notes.txt", data_dir);
	FILE *f = fopen(path, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	int asked = 0;
	/* 1111111111A1 (from test_from_spill) and 2222222222AA are known; 2222222222AB is not. */
	CHECK_INT(store_spool_sweep(spool, known_but_ab, &asked), 1);
	CHECK_INT(asked, 3);
	CHECK(file_exists("1111111111A1") && file_exists("2222222222AA") && !file_exists("2222222222AB"));
	CHECK(file_exists("notes.txt"));
	/* Twice in a row: the second sweep sees the same files again. */
	asked = 0;
	CHECK_INT(store_spool_sweep(spool, known_but_ab, &asked), 0);
	CHECK_INT(asked, 2);
	unlink(path);
	store_spool_remove(spool, "1111111111A1");
	store_spool_remove(spool, "2222222222AA");
	evbuffer_free(body);
}

static void test_reader_without_spool(void)
{
	/* A reader of a data directory where nothing was ever spooled. */
	char other[400], err[256] = "";
	str_format(other, sizeof other, "%s/empty", root);
	CHECK(mkdir(other, 0700) == 0);
	struct store_spool *spool = store_spool_open(other, false, err, sizeof err);
	CHECK(spool != NULL);
	struct evbuffer *out = evbuffer_new();
	CHECK(!store_spool_read(spool, "0A1B2C3D4E5F", out));
	store_spool_close(spool);
	evbuffer_free(out);
	rmdir(other);
}

int main(void)
{
	if (!unit_store_dir("store-spool"))
		return unit_finish("store_spool");
	CHECK(mkdir(data_dir, 0700) == 0);
	char err[256] = "";
	struct store_spool *spool = store_spool_open(data_dir, true, err, sizeof err);
	CHECK(spool != NULL);
	if (spool) {
		test_write_read_remove(spool);
		test_from_spill(spool);
		test_names_and_sweep(spool);
		store_spool_close(spool);
	}
	test_reader_without_spool();
	unit_store_remove();
	return unit_finish("store_spool");
}
