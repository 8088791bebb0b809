/*
 * fuzz_dns.c - MX RDATA as a DNS server could send it (net/net_dns.c): every
 * accepted record yields a host name of at most 255 characters made only of
 * letters, digits, '-', '_' and dots, never starting with or doubling a dot.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *copy = malloc(size ? size : 1);
	if (!copy)
		abort();
	memcpy(copy, data, size);
	struct dns_mx mx;
	if (dns_parse_mx(copy, size, &mx)) {
		size_t len = strlen(mx.host);
		if (len > DNS_NAME_MAX || mx.preference > 65535 || (len > 0 && mx.host[0] == '.') ||
		    strstr(mx.host, ".."))
			abort();
		for (size_t i = 0; i < len; i++)
			if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", mx.host[i]))
				abort();
	}
	free(copy);
	return 0;
}
