/*
 * fuzz_command.c - fuzz target for the command line parser
 * (smtp/smtp_command.c, and through it smtp/smtp_address.c).
 *
 * The input is one command line without its CRLF. Besides the sanitizers'
 * checks (libFuzzer hands over exactly size bytes, so any read past them is
 * caught), the result must hold together:
 *   - every pointer in it points into the line; the status and verb are in
 *     range; a failure has a reason, a success has none;
 *   - parameters are well-formed, distinct and at most SMTP_PARAMS_MAX, and
 *     smtp_param_find finds each of them;
 *   - a parsed MAIL or RCPT path, written back as "<addr>", parses again to
 *     the same address.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp/smtp_command.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool inside(const char *p, size_t len, const char *line, size_t line_len)
{
	return p >= line && len <= line_len && p - line <= (ptrdiff_t)(line_len - len);
}

static void check_params(const struct smtp_command *cmd, const char *line, size_t len)
{
	size_t i, j;

	if (cmd->param_count > SMTP_PARAMS_MAX)
		abort();
	for (i = 0; i < cmd->param_count; i++) {
		const struct smtp_param *p = &cmd->params[i];
		char key[SMTP_COMMAND_LINE_MAX + 1];
		uint64_t size;

		if (p->key_len == 0 || !inside(p->key, p->key_len, line, len))
			abort();
		if (p->value != NULL && (p->value_len == 0 || !inside(p->value, p->value_len, line, len)))
			abort();
		if (p->key_len > SMTP_COMMAND_LINE_MAX || memchr(p->key, '=', p->key_len) != NULL)
			abort();
		for (j = 0; j < i; j++) {
			if (cmd->params[j].key_len == p->key_len &&
			    strncasecmp(cmd->params[j].key, p->key, p->key_len) == 0)
				abort();
		}
		memcpy(key, p->key, p->key_len);
		key[p->key_len] = '\0';
		if (smtp_param_find(cmd, key) != p)
			abort();
		(void)smtp_param_size(p, &size);
	}
}

/* check_path_reparse - "<addr>" (with the same kind) gives addr back. */
static void check_path_reparse(const struct smtp_command *cmd)
{
	const struct smtp_path *path = &cmd->path;
	enum smtp_path_kind kind = cmd->verb == SMTP_VERB_MAIL ? SMTP_PATH_REVERSE : SMTP_PATH_FORWARD;
	char text[SMTP_PATH_MAX + 3];
	struct smtp_path again;
	size_t addr_len = strlen(path->addr), used = 0;
	bool too_long = false;

	if (addr_len > SMTP_PATH_MAX - 2)
		abort();
	if (addr_len != path->local_len + (path->domain_len ? path->domain_len + 1 : 0))
		abort();
	text[0] = '<';
	memcpy(text + 1, path->addr, addr_len);
	text[addr_len + 1] = '>';
	if (!smtp_path_parse(text, addr_len + 2, kind, &again, &used, &too_long, NULL))
		abort();
	if (used != addr_len + 2 || strcmp(again.addr, path->addr) != 0 || again.is_null != path->is_null)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *line = (const char *)data;
	struct smtp_command cmd, again;
	const char *why = NULL;
	enum smtp_parse_status status = smtp_command_parse(line, size, &cmd, &why);

	if ((int)status < SMTP_PARSE_OK || status > SMTP_PARSE_TOO_LONG)
		abort();
	if ((int)cmd.verb < 0 || cmd.verb >= SMTP_VERB_COUNT || smtp_verb_name(cmd.verb) == NULL)
		abort();
	if ((status == SMTP_PARSE_OK) != (why == NULL))
		abort();
	if (smtp_command_parse(line, size, &again, NULL) != status)
		abort();
	if (status != SMTP_PARSE_OK)
		return 0;
	if (!inside(cmd.arg, cmd.arg_len, line, size))
		abort();
	check_params(&cmd, line, size);
	if (cmd.verb == SMTP_VERB_MAIL || cmd.verb == SMTP_VERB_RCPT)
		check_path_reparse(&cmd);
	return 0;
}
