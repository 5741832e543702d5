#ifndef CHORUS_NODE_STORES_CMD_H
#define CHORUS_NODE_STORES_CMD_H

#include <stdbool.h>

/*
 * `chorus location add NAME --timezone TZ --country CC [--licence L]
 * [--address A]` and `chorus zone add NAME --location REF`: the stores
 * provisioned from a script (hundreds of shops at once), the same writes
 * as the API's (store/zones.h, with their audit rows, actor "cli"). Each
 * prints the new object's id on stdout; 0, 1 (refused: the reason on
 * stderr) or 2 (usage).
 */
struct stores_cmd {
	const char *data_dir, *db;
	const char *verb, *name;
	const char *timezone, *country, *licence, *address; /* a location */
	const char *location;                               /* a zone's: its id or name */
};

int stores_cmd_location(const struct stores_cmd *c);
int stores_cmd_zone(const struct stores_cmd *c);

#endif
