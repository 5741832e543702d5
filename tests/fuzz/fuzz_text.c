/* libFuzzer: tag text cleaning, name keys and the tag number parsers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/probe.h"
#include "util/text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *clean = text_clean((const char *)data, size);
	char *key, *key2, *nul;

	if (!text_is_utf8(clean, strlen(clean)))
		abort();
	key = text_name_key(clean);
	if (!text_is_utf8(key, strlen(key)))
		abort();
	/* Keys are stable: the key of a key is itself. */
	key2 = text_name_key(key);
	if (strcmp(key, key2) != 0)
		abort();
	nul = malloc(size + 1);
	memcpy(nul, data, size);
	nul[size] = '\0';
	(void)probe_parse_number(nul);
	(void)probe_parse_year(nul);
	(void)probe_is_audio_name(nul);
	free(nul);
	free(key2);
	free(key);
	free(clean);
	return 0;
}
