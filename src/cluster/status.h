#ifndef CHORUS_CLUSTER_STATUS_H
#define CHORUS_CLUSTER_STATUS_H

/*
 * `chorus status`: GET URL/api/v1/cluster from one node and print the
 * cluster as that node sees it, one line per node, on stdout. Returns the
 * exit status: 0, or 1 (with "chorus: status: WHY" on stderr) when the node
 * cannot be reached or does not answer with a cluster.
 */
int cluster_status_run(const char *url);

#endif
