#ifndef CHORUS_CLUSTER_STATUS_H
#define CHORUS_CLUSTER_STATUS_H

#include <stddef.h>

/* In a data directory: where this machine reaches the node serving it. */
#define STATUS_NODE_FILE "node.json"

/*
 * `chorus status`: GET URL/api/v1/overview from one node (an admin's key
 * in $CHORUS_KEY) and print the console's overview: one line per node
 * with its figures, then the health line, on stdout. URL is url
 * (--url) when not NULL, else $CHORUS_URL, else the one in
 * data_dir/node.json (written by the node serving data_dir), else
 * http://127.0.0.1:8080. Returns the exit status: 0, or 1 (with
 * "chorus: status: WHY" on stderr) when the node cannot be reached, does
 * not answer with a cluster, or data_dir/node.json is unreadable.
 */
int cluster_status_run(const char *url, const char *data_dir);

/*
 * Writes data_dir/node.json, {"url": url}, atomically (readers see the old
 * record or the new one), for cluster_status_run on the same machine. 0,
 * or -errno with the reason in err.
 */
int cluster_status_record(const char *data_dir, const char *url, char *err, size_t errlen);

#endif
