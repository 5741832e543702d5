/* libFuzzer: what chorus upload reads from a tus server and from its
 * state file (client/tus.c, client/resume.c, included to reach their
 * statics): answer headers line by line, an answer's body for its error
 * message, a Location resolved against the endpoint, and the state
 * file's lines. Nothing may crash or read out of bounds; every string
 * kept stays within its buffer; a resolved Location is an http(s) URL
 * without white space. */
#include "../../src/client/resume.c"
#include "../../src/client/tus.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct reply r;
	char line[8192], out[TUS_URL_MAX], msg[256], *text;
	struct entry *e = NULL;
	size_t start = 0, n;

	memset(&r, 0, sizeof(r));
	for (size_t i = 0; i <= size; i++) {
		if (i < size && data[i] != '\n')
			continue;
		n = i - start < sizeof(line) - 2 ? i - start : sizeof(line) - 2;
		memcpy(line, data + start, n);
		line[n] = '\n';
		on_header(line, 1, n + 1, &r);
		start = i + 1;
	}
	if (strnlen(r.location, sizeof(r.location)) == sizeof(r.location) ||
	    strnlen(r.version, sizeof(r.version)) == sizeof(r.version) ||
	    strnlen(r.extension, sizeof(r.extension)) == sizeof(r.extension))
		abort();
	(void)list_has(r.extension, "checksum");
	on_answer((char *)data, 1, size, &r);
	if (r.body_len > ANSWER_KEEP)
		abort();
	answer_message(&r, msg, sizeof(msg));
	for (const char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20)
			abort();

	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	if (tus_resolve("https://node.example:8080/api/v1/uploads", text, out, sizeof(out)) == 0 &&
	    (strncmp(out, "https://", 8) != 0 || strpbrk(out, " \t\r\n")))
		abort();
	n = parse(text, &e);
	for (size_t i = 0; i < n; i++)
		if (strlen(e[i].key) != 64 || memchr(e[i].url, '\n', e[i].url_len))
			abort();
	free(e);
	free(text);
	return 0;
}
