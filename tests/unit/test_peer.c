/* Peer fill: the rendezvous ranking (even, stable, site first) and the
 * signatures of peer requests. */
#include <stdio.h>
#include <stdlib.h>

#include "cluster/peer.h"
#include "crypto/sign.h"
#include "unit.h"

static struct member node(const char *id, const char *site)
{
	struct member m = {0};

	snprintf(m.id, sizeof(m.id), "%s", id);
	snprintf(m.site, sizeof(m.site), "%s", site);
	snprintf(m.address, sizeof(m.address), "http://127.0.0.1:1/%s", id);
	return m;
}

static const char *const ids[] = {"0000000000000a01", "0000000000000a02", "0000000000000a03",
				  "0000000000000a04"};

static void blob_of(int i, char out[33])
{
	snprintf(out, 33, "%032x", (unsigned)(i * 2654435761u));
}

/* Each of 3 nodes owns about a third of 30,000 chunks. */
static void test_rank_is_even(void)
{
	int owned[3] = {0};
	char blob[33];

	for (int i = 0; i < 30000; i++) {
		struct member m[3] = {node(ids[0], ""), node(ids[1], ""), node(ids[2], "")};
		blob_of(i / 4, blob);
		peers_rank(m, 3, "", blob, (uint32_t)(i % 4));
		for (int k = 0; k < 3; k++)
			owned[k] += strcmp(m[0].id, ids[k]) == 0;
	}
	for (int k = 0; k < 3; k++)
		CHECK(owned[k] > 9400 && owned[k] < 10600);
}

/* Adding a fourth node moves only the chunks it now owns; the others keep
 * their owner. */
static void test_rank_is_stable(void)
{
	int moved = 0, to_new = 0;
	char blob[33];

	for (int i = 0; i < 10000; i++) {
		struct member a[3] = {node(ids[0], ""), node(ids[1], ""), node(ids[2], "")};
		struct member b[4] = {node(ids[3], ""), node(ids[2], ""), node(ids[0], ""),
				      node(ids[1], "")};
		blob_of(i, blob);
		peers_rank(a, 3, "", blob, 0);
		peers_rank(b, 4, "", blob, 0);
		if (strcmp(a[0].id, b[0].id) != 0) {
			moved++;
			to_new += strcmp(b[0].id, ids[3]) == 0;
		}
	}
	CHECK(moved == to_new);              /* nothing moved between old nodes */
	CHECK(moved > 2200 && moved < 2800); /* about a quarter */
}

/* Nodes of this site come first, whatever their score. */
static void test_rank_site_first(void)
{
	char blob[33];

	for (int i = 0; i < 1000; i++) {
		struct member m[4] = {node(ids[0], "paris"), node(ids[1], "lyon"),
				      node(ids[2], "lyon"), node(ids[3], "paris")};
		blob_of(i, blob);
		peers_rank(m, 4, "lyon", blob, 1);
		CHECK(strcmp(m[0].site, "lyon") == 0 && strcmp(m[1].site, "lyon") == 0);
		CHECK(strcmp(m[2].site, "paris") == 0 && strcmp(m[3].site, "paris") == 0);
	}
}

static void test_sign(void)
{
	uint8_t key[SIGN_KEY_LEN] = {1, 2, 3}, other[SIGN_KEY_LEN] = {1, 2, 4};
	const char *path = "/internal/chunks/0123456789abcdef0123456789abcdef/00000001";
	char sig[65];

	sign_request(key, "GET", path, 1000, "0000000000000a01", sig);
	CHECK(strlen(sig) == 64);
	CHECK(sign_check(key, "GET", path, 1000, "0000000000000a01", sig, 64, 1010));
	CHECK(!sign_check(other, "GET", path, 1000, "0000000000000a01", sig, 64, 1010));
	CHECK(!sign_check(key, "GET", "/internal/chunks/x/00000002", 1000, "0000000000000a01", sig,
			  64, 1010));
	CHECK(!sign_check(key, "GET", path, 1001, "0000000000000a01", sig, 64, 1010));
	CHECK(!sign_check(key, "GET", path, 1000, "0000000000000a02", sig, 64, 1010));
	/* Outside the window, either way. */
	CHECK(!sign_check(key, "GET", path, 1000, "0000000000000a01", sig, 64,
			  1000 + SIGN_WINDOW_S + 1));
	CHECK(!sign_check(key, "GET", path, 1000, "0000000000000a01", sig, 64,
			  1000 - SIGN_WINDOW_S - 1));
	CHECK(!sign_check(key, "GET", path, 1000, "0000000000000a01", sig, 63, 1010));
	sig[10] ^= 1;
	CHECK(!sign_check(key, "GET", path, 1000, "0000000000000a01", sig, 64, 1010));
}

int main(void)
{
	TEST_RUN(test_rank_is_even);
	TEST_RUN(test_rank_is_stable);
	TEST_RUN(test_rank_site_first);
	TEST_RUN(test_sign);
	TEST_EXIT();
}
