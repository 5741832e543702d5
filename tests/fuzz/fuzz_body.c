/* libFuzzer: a small JSON object body (api/body.h: a login, a new user or
 * key). A body that parses gives each present field as a NUL-terminated
 * string shorter than its cap, with its length; one that does not leaves
 * a message and every field empty. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/body.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char user[8], pw[33], role[16], err[256];
	size_t pwlen = 99;
	struct body_field f[] = {
		{.name = "user", .required = true, .out = user, .cap = sizeof(user)},
		{.name = "password", .out = pw, .cap = sizeof(pw), .len = &pwlen},
		{.name = "role", .out = role, .cap = sizeof(role)},
	};

	err[0] = '\0';
	if (api_body_fields(data, size, f, 3, err, sizeof(err)) == 0) {
		if (!f[0].present || strlen(user) >= sizeof(user) || strlen(role) >= sizeof(role))
			abort();
		if (f[1].present ? pwlen != strlen(pw) || pwlen >= sizeof(pw) : pwlen != 0)
			abort();
		if (!f[2].present && role[0])
			abort();
	} else {
		if (!err[0] || user[0] || pw[0] || role[0])
			abort();
	}
	return 0;
}
