/* chorus upload's pure parts: tus metadata, Location resolution, the
 * endpoint and key rules, and the state file of unfinished uploads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/resume.h"
#include "client/tus.h"
#include "node/upload_cmd.h"
#include "unit.h"

static void test_metadata(void)
{
	char out[64];

	CHECK(tus_metadata_pair("filename", "a.flac", out, sizeof(out)) == 0);
	CHECK_STR(out, "filename YS5mbGFj");
	CHECK(tus_metadata_pair("filename", "", out, sizeof(out)) == 0);
	CHECK_STR(out, "filename ");
	/* Non-ASCII and separators are base64 like the rest. */
	CHECK(tus_metadata_pair("filename", "\xc3\x9c, b c", out, sizeof(out)) == 0);
	CHECK_STR(out, "filename w5wsIGIgYw==");
	CHECK(tus_metadata_pair("filename", "0123456789012345678901234567890123456789012345", out,
				sizeof(out)) < 0);
}

static void test_resolve(void)
{
	const char *base = "http://h:8080/api/v1/uploads";
	char out[TUS_URL_MAX];

	CHECK(tus_resolve(base, "/api/v1/uploads/abc", out, sizeof(out)) == 0);
	CHECK_STR(out, "http://h:8080/api/v1/uploads/abc");
	CHECK(tus_resolve(base, "uploads/abc", out, sizeof(out)) == 0);
	CHECK_STR(out, "http://h:8080/api/v1/uploads/abc");
	CHECK(tus_resolve(base, "http://other:9000/u/1", out, sizeof(out)) == 0);
	CHECK_STR(out, "http://other:9000/u/1");
	CHECK(tus_resolve("https://h/api/v1/uploads", "https://h/api/v1/uploads/x", out,
			  sizeof(out)) == 0);
	/* The key never goes from TLS to clear text, nor to another scheme. */
	CHECK(tus_resolve("https://h/api/v1/uploads", "http://h/api/v1/uploads/x", out,
			  sizeof(out)) < 0);
	CHECK(tus_resolve(base, "ftp://h/x", out, sizeof(out)) < 0);
	CHECK(tus_resolve(base, "http://h/a b", out, sizeof(out)) < 0);
	CHECK(tus_resolve(base, "/api/v1/uploads/abcdef", out, 20) < 0);
}

static void test_endpoint(void)
{
	char out[128];

	CHECK(upload_cmd_endpoint("http://h:8080", out, sizeof(out)) == 0);
	CHECK_STR(out, "http://h:8080/api/v1/uploads");
	CHECK(upload_cmd_endpoint("https://h/", out, sizeof(out)) == 0);
	CHECK_STR(out, "https://h/api/v1/uploads");
	CHECK(upload_cmd_endpoint("http://h/chorus/api/v1/uploads/", out, sizeof(out)) == 0);
	CHECK_STR(out, "http://h/chorus/api/v1/uploads");
	CHECK(upload_cmd_endpoint("http://h/files/uploads", out, sizeof(out)) == 0);
	CHECK_STR(out, "http://h/files/uploads");
	CHECK(upload_cmd_endpoint("ftp://h", out, sizeof(out)) < 0);
	CHECK(upload_cmd_endpoint("h:8080", out, sizeof(out)) < 0);
	CHECK(upload_cmd_endpoint("http://h/a b", out, sizeof(out)) < 0);
	CHECK(upload_cmd_endpoint("http://a-rather-long-host-name.example.net", out, 40) < 0);

	CHECK(upload_cmd_key_ok("chorus_abc_DEF123"));
	CHECK(!upload_cmd_key_ok(""));
	CHECK(!upload_cmd_key_ok("two words"));
	CHECK(!upload_cmd_key_ok("key\r\nX-Injected: 1"));
	CHECK(!upload_cmd_key_ok("caf\xc3\xa9"));
}

static void test_resume(void)
{
	char dir[] = "/tmp/chorus-unit-resume-XXXXXX", path[256], url[TUS_URL_MAX], err[256];
	char k1[65], k2[65], k3[65];
	resume_t *r = NULL;
	struct stat st;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/sub/uploads", dir);
	CHECK(resume_open(path, &r, err, sizeof(err)) == 0);
	if (!r)
		return;
	resume_key("http://h/api/v1/uploads", "/m/a.flac", 100, 5, k1);
	resume_key("http://h/api/v1/uploads", "/m/a.flac", 100, 6, k2); /* touched */
	resume_key("http://g/api/v1/uploads", "/m/a.flac", 100, 5, k3); /* another node */
	CHECK(strlen(k1) == 64 && strcmp(k1, k2) != 0 && strcmp(k1, k3) != 0);
	CHECK(resume_get(r, k1, url, sizeof(url)) == 0);
	CHECK(resume_put(r, k1, "http://h/api/v1/uploads/1") == 0);
	CHECK(resume_put(r, k2, "http://h/api/v1/uploads/2") == 0);
	CHECK(resume_put(r, k1, "http://h/api/v1/uploads/3") == 0); /* replaces */
	CHECK(resume_get(r, k1, url, sizeof(url)) == 1);
	CHECK_STR(url, "http://h/api/v1/uploads/3");
	CHECK(resume_get(r, k2, url, sizeof(url)) == 1);
	CHECK_STR(url, "http://h/api/v1/uploads/2");
	CHECK(resume_get(r, k3, url, sizeof(url)) == 0);
	CHECK(resume_put(r, k3, "http://h/with space") < 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(resume_forget(r, k1) == 0);
	CHECK(resume_get(r, k1, url, sizeof(url)) == 0);
	CHECK(resume_get(r, k2, url, sizeof(url)) == 1);
	resume_close(r);
	/* A second opening (another run) sees the same. */
	CHECK(resume_open(path, &r, err, sizeof(err)) == 0);
	CHECK(resume_get(r, k2, url, sizeof(url)) == 1);
	CHECK(resume_forget(r, k2) == 0);
	resume_close(r);
	snprintf(url, sizeof(url), "rm -rf '%s'", dir);
	CHECK(system(url) == 0);
}

int main(void)
{
	TEST_RUN(test_metadata);
	TEST_RUN(test_resolve);
	TEST_RUN(test_endpoint);
	TEST_RUN(test_resume);
	TEST_EXIT();
}
