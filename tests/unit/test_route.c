/* Unit tests for proxy/oci/route.c: every API form, the query, and each rejection. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "route.h"

#define D256 "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define D512                                                                                       \
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff83"  \
    "18d2877eec2f63b931bd47417a81a538327af927da3e"

static struct route_req req;

static void ok(const char *uri, enum route_kind kind)
{
    enum oci_error e = OCI_ERR_UPSTREAM;
    const char *why = NULL;

    cr_assert_eq(route_parse(uri, &req, &e, &why), 0, "\"%s\" rejected: %s", uri, why ? why : "");
    cr_assert_eq(req.rq_kind, kind, "\"%s\": kind %d", uri, req.rq_kind);
}

static void bad(const char *uri, enum oci_error want)
{
    enum oci_error e = OCI_ERR_UPSTREAM;
    const char *why = NULL;

    cr_assert_eq(route_parse(uri, &req, &e, &why), -1, "\"%s\" accepted", uri);
    cr_assert_eq(e, want, "\"%s\": error %s, want %s", uri, oci_error_code(e),
                 oci_error_code(want));
    cr_assert_not_null(why);
    cr_assert_neq(why[0], '\0');
}

Test(base, both_forms)
{
    ok("/v2", ROUTE_BASE);
    cr_assert_str_eq(req.rq_name, "");
    cr_assert_str_eq(req.rq_ref, "");
    cr_assert_eq(req.rq_n, -1);
    ok("/v2/", ROUTE_BASE);
    ok("/v2/?ns=docker.io", ROUTE_BASE);
    cr_assert_str_eq(req.rq_ns, "docker.io");
    ok("/v2?", ROUTE_BASE);
}

Test(base, outside_the_api)
{
    bad("/", OCI_ERR_NOT_FOUND);
    bad("", OCI_ERR_NOT_FOUND);
    bad("/v1/", OCI_ERR_NOT_FOUND);
    bad("/v2x", OCI_ERR_NOT_FOUND);
    bad("/v22/x/manifests/latest", OCI_ERR_NOT_FOUND);
    bad("v2/x/manifests/latest", OCI_ERR_NOT_FOUND);
    bad("/metrics", OCI_ERR_NOT_FOUND);
    cr_assert_eq(route_parse(NULL, &req, NULL, NULL), -1);
}

Test(manifest, by_tag)
{
    ok("/v2/ecr-public/aws-observability/aws-for-fluent-bit/manifests/2.23.3", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_name, "ecr-public/aws-observability/aws-for-fluent-bit");
    cr_assert_str_eq(req.rq_ref, "2.23.3");
    cr_assert_eq(req.rq_ref_is_digest, 0);
    cr_assert_str_eq(req.rq_ns, "");
    ok("/v2/nginx/manifests/latest", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_name, "nginx");
    cr_assert_str_eq(req.rq_ref, "latest");
    ok("/v2/x/manifests/_Under-Score.1", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ref, "_Under-Score.1");
}

Test(manifest, by_digest)
{
    ok("/v2/library/nginx/manifests/" D256, ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_name, "library/nginx");
    cr_assert_str_eq(req.rq_ref, D256);
    cr_assert_eq(req.rq_ref_is_digest, 1);
    ok("/v2/library/nginx/manifests/" D512, ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ref, D512);
    cr_assert_eq(req.rq_ref_is_digest, 1);
}

Test(manifest, containerd_ns)
{
    ok("/v2/library/nginx/manifests/latest?ns=docker.io", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_name, "library/nginx");
    cr_assert_str_eq(req.rq_ns, "docker.io");
    ok("/v2/library/nginx/manifests/latest?ns=Docker.IO", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ns, "docker.io");
    ok("/v2/x/manifests/latest?ns=localhost:5000", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ns, "localhost:5000");
}

Test(manifest, names_that_look_like_kinds)
{
    ok("/v2/a/manifests/b/manifests/latest", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_name, "a/manifests/b");
    ok("/v2/blobs/tags/manifests/list", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_name, "blobs/tags");
    cr_assert_str_eq(req.rq_ref, "list");
}

Test(manifest, bad_reference_is_manifest_unknown)
{
    /* A manifest GET/HEAD fails only with 404 MANIFEST_UNKNOWN (the spec; conformance's
     * .INVALID_MANIFEST_NAME): no manifest can have these names, digest-like or not. */
    bad("/v2/x/manifests/.INVALID_MANIFEST_NAME", OCI_ERR_MANIFEST_UNKNOWN);
    bad("/v2/x/manifests/sha256:abc", OCI_ERR_MANIFEST_UNKNOWN);
    bad("/v2/x/manifests/md5:d41d8cd98f00b204e9800998ecf8427e", OCI_ERR_MANIFEST_UNKNOWN);
    bad("/v2/x/manifests/sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
        OCI_ERR_MANIFEST_UNKNOWN);
    bad("/v2/x/manifests/" D256 "0", OCI_ERR_MANIFEST_UNKNOWN);
    bad("/v2/x/manifests/latest:", OCI_ERR_MANIFEST_UNKNOWN);
    bad("/v2/x/manifests/.hidden", OCI_ERR_MANIFEST_UNKNOWN);
    bad("/v2/x/manifests/-dash", OCI_ERR_MANIFEST_UNKNOWN);
    bad("/v2/x/manifests/a+b", OCI_ERR_MANIFEST_UNKNOWN);
    /* Blobs are named by digest only. */
    bad("/v2/x/blobs/sha256:abc", OCI_ERR_DIGEST_INVALID);
}

Test(manifest, tag_length_limit)
{
    char uri[300] = "/v2/x/manifests/";
    size_t off = strlen(uri);

    memset(uri + off, 'a', 128);
    uri[off + 128] = '\0';
    ok(uri, ROUTE_MANIFEST);
    cr_assert_eq(strlen(req.rq_ref), 128);
    uri[off + 128] = 'a';
    uri[off + 129] = '\0';
    bad(uri, OCI_ERR_MANIFEST_UNKNOWN);
}

Test(blob, digest_only)
{
    ok("/v2/library/nginx/blobs/" D256, ROUTE_BLOB);
    cr_assert_str_eq(req.rq_name, "library/nginx");
    cr_assert_str_eq(req.rq_ref, D256);
    cr_assert_eq(req.rq_ref_is_digest, 1);
    ok("/v2/x/blobs/" D512 "?ns=public.ecr.aws", ROUTE_BLOB);
    cr_assert_str_eq(req.rq_ns, "public.ecr.aws");
    bad("/v2/x/blobs/latest", OCI_ERR_DIGEST_INVALID);
    bad("/v2/x/blobs/sha256:abc", OCI_ERR_DIGEST_INVALID);
}

Test(blob, uploads_are_not_served)
{
    bad("/v2/x/blobs/uploads/", OCI_ERR_NOT_FOUND);
    bad("/v2/x/blobs/uploads", OCI_ERR_NOT_FOUND);
    bad("/v2/x/blobs/uploads/2f6a1c3e-0d3b-4b5e-9d9e-1b2c3d4e5f60", OCI_ERR_NOT_FOUND);
}

Test(tags, list_and_pagination)
{
    ok("/v2/library/nginx/tags/list", ROUTE_TAGS);
    cr_assert_str_eq(req.rq_name, "library/nginx");
    cr_assert_str_eq(req.rq_ref, "");
    cr_assert_eq(req.rq_n, -1);
    cr_assert_str_eq(req.rq_last, "");
    ok("/v2/library/nginx/tags/list?n=50&last=1.25.3", ROUTE_TAGS);
    cr_assert_eq(req.rq_n, 50);
    cr_assert_str_eq(req.rq_last, "1.25.3");
    ok("/v2/x/tags/list?n=0", ROUTE_TAGS);
    cr_assert_eq(req.rq_n, 0);
    ok("/v2/x/tags/list?n=10000", ROUTE_TAGS);
    cr_assert_eq(req.rq_n, 10000);
    ok("/v2/x/tags/list?n=&last=", ROUTE_TAGS);
    cr_assert_eq(req.rq_n, -1);
    cr_assert_str_eq(req.rq_last, "");
    ok("/v2/x/tags/list?ns=docker.io&n=5", ROUTE_TAGS);
    cr_assert_str_eq(req.rq_ns, "docker.io");
    cr_assert_eq(req.rq_n, 5);
}

Test(tags, n_out_of_range)
{
    bad("/v2/x/tags/list?n=10001", OCI_ERR_PAGINATION_NUMBER_INVALID);
    bad("/v2/x/tags/list?n=-1", OCI_ERR_PAGINATION_NUMBER_INVALID);
    bad("/v2/x/tags/list?n=+5", OCI_ERR_PAGINATION_NUMBER_INVALID);
    bad("/v2/x/tags/list?n=%205", OCI_ERR_PAGINATION_NUMBER_INVALID);
    bad("/v2/x/tags/list?n=5x", OCI_ERR_PAGINATION_NUMBER_INVALID);
    bad("/v2/x/tags/list?n=0x10", OCI_ERR_PAGINATION_NUMBER_INVALID);
    bad("/v2/x/tags/list?n=99999999999999999999", OCI_ERR_PAGINATION_NUMBER_INVALID);
    bad("/v2/x/tags/list?last=a/b", OCI_ERR_PAGINATION_NUMBER_INVALID);
    bad("/v2/x/tags/list?last=.x", OCI_ERR_PAGINATION_NUMBER_INVALID);
}

Test(tags, other_tails_not_found)
{
    bad("/v2/x/tags/lists", OCI_ERR_NOT_FOUND);
    bad("/v2/x/tags/list/", OCI_ERR_NOT_FOUND);
    bad("/v2/x/tags", OCI_ERR_NOT_FOUND);
    bad("/v2/x/TAGS/list", OCI_ERR_NOT_FOUND);
}

Test(tags, pagination_keys_ignored_elsewhere)
{
    ok("/v2/x/manifests/latest?n=abc&last=..", ROUTE_MANIFEST);
    cr_assert_eq(req.rq_n, -1);
    cr_assert_str_eq(req.rq_last, "");
}

Test(referrers, digest_and_artifact_type)
{
    ok("/v2/x/referrers/" D256, ROUTE_REFERRERS);
    cr_assert_str_eq(req.rq_ref, D256);
    cr_assert_eq(req.rq_ref_is_digest, 1);
    cr_assert_str_eq(req.rq_artifact_type, "");
    ok("/v2/x/referrers/" D256 "?artifactType=application/vnd.example.sbom.v1%2Bjson",
       ROUTE_REFERRERS);
    cr_assert_str_eq(req.rq_artifact_type, "application/vnd.example.sbom.v1+json");
    ok("/v2/x/referrers/" D256 "?artifactType=application%2Fvnd.dev.cosign+json", ROUTE_REFERRERS);
    cr_assert_str_eq(req.rq_artifact_type, "application/vnd.dev.cosign+json");
    bad("/v2/x/referrers/latest", OCI_ERR_DIGEST_INVALID);
    bad("/v2/x/referrers/" D256 "?artifactType=a%0Ab", OCI_ERR_NAME_INVALID);
}

Test(referrers, artifact_type_length)
{
    char uri[600];
    size_t off;

    off = (size_t)snprintf(uri, sizeof(uri), "/v2/x/referrers/%s?artifactType=", D256);
    memset(uri + off, 'a', 255);
    uri[off + 255] = '\0';
    ok(uri, ROUTE_REFERRERS);
    cr_assert_eq(strlen(req.rq_artifact_type), 255);
    uri[off + 255] = 'a';
    uri[off + 256] = '\0';
    bad(uri, OCI_ERR_NAME_INVALID);
}

Test(query, decoding_and_keys)
{
    ok("/v2/x/manifests/latest?ns=docker%2Eio", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ns, "docker.io");
    ok("/v2/x/manifests/latest?ns=registry%3a5000", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ns, "registry:5000");
    ok("/v2/x/tags/list?last=v%31.0", ROUTE_TAGS);
    cr_assert_str_eq(req.rq_last, "v1.0");
    ok("/v2/x/manifests/latest?foo=%zz&ns=quay.io&bar", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ns, "quay.io");
    /* The first occurrence of a key wins. */
    ok("/v2/x/manifests/latest?ns=quay.io&ns=%%%", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ns, "quay.io");
    ok("/v2/x/manifests/latest?ns", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ns, "");
    ok("/v2/x/manifests/latest?NS=evil/host", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ns, "");
    ok("/v2/x/manifests/latest?&&ns=ghcr.io&", ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ns, "ghcr.io");
    /* A '%' is fine in the query, only the path refuses it. */
    ok("/v2/x/manifests/latest?x=%25", ROUTE_MANIFEST);
}

Test(query, bad_ns)
{
    char uri[400];
    size_t off;

    bad("/v2/x/manifests/latest?ns=docker.io%2Fx", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/latest?ns=a%00b", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/latest?ns=%", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/latest?ns=%4", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/latest?ns=%g0", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/latest?ns=a+b", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/latest?ns=a_b", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/latest?ns=[::1]", OCI_ERR_NAME_INVALID);
    off = (size_t)snprintf(uri, sizeof(uri), "/v2/x/manifests/latest?ns=");
    memset(uri + off, 'a', ROUTE_NS_MAX);
    uri[off + ROUTE_NS_MAX] = '\0';
    ok(uri, ROUTE_MANIFEST);
    cr_assert_eq(strlen(req.rq_ns), ROUTE_NS_MAX);
    uri[off + ROUTE_NS_MAX] = 'a';
    uri[off + ROUTE_NS_MAX + 1] = '\0';
    bad(uri, OCI_ERR_NAME_INVALID);
}

Test(path, percent_encoding_refused)
{
    bad("/v2/library%2Fnginx/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/library%2fnginx/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/latest%00", OCI_ERR_NAME_INVALID);
    bad("/v2/%2e%2e/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/lat%65st", OCI_ERR_NAME_INVALID);
    bad("/v2%2Fx/manifests/latest", OCI_ERR_NOT_FOUND);
    bad("/v2/%", OCI_ERR_NAME_INVALID);
}

Test(path, dot_and_empty_segments)
{
    bad("/v2/../v2/x/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/x/../y/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/x/./manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/..", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/.", OCI_ERR_NAME_INVALID);
    bad("/v2/..", OCI_ERR_NAME_INVALID);
    bad("/v2//x/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/x//manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/a//b/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2//", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/latest//", OCI_ERR_NAME_INVALID);
}

Test(path, backslash_and_nul)
{
    static const char with_nul[] = "/v2/x/manifests/latest\0/../../etc";

    bad("/v2/x\\y/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/x/manifests/latest\\", OCI_ERR_NAME_INVALID);
    bad("/v2\\x/manifests/latest", OCI_ERR_NOT_FOUND);
    /* A C string ends at its NUL: what follows it is never seen. */
    ok(with_nul, ROUTE_MANIFEST);
    cr_assert_str_eq(req.rq_ref, "latest");
}

Test(path, overlong_uri)
{
    char uri[ROUTE_URI_MAX + 2];
    size_t off = (size_t)snprintf(uri, sizeof(uri), "/v2/x/manifests/latest?pad=");

    memset(uri + off, 'a', ROUTE_URI_MAX - off);
    uri[ROUTE_URI_MAX] = '\0';
    ok(uri, ROUTE_MANIFEST);
    uri[ROUTE_URI_MAX] = 'a';
    uri[ROUTE_URI_MAX + 1] = '\0';
    bad(uri, OCI_ERR_NAME_INVALID);
}

Test(path, name_grammar)
{
    char uri[400];
    size_t off;

    bad("/v2/Library/nginx/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/NGINX/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/a b/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/-x/manifests/latest", OCI_ERR_NAME_INVALID);
    bad("/v2/x_/blobs/" D256, OCI_ERR_NAME_INVALID);
    bad("/v2/X/tags/list", OCI_ERR_NAME_INVALID);
    bad("/v2/X/referrers/" D256, OCI_ERR_NAME_INVALID);
    /* The name is judged before the reference. */
    bad("/v2/X/manifests/sha256:bad", OCI_ERR_NAME_INVALID);

    memcpy(uri, "/v2/", 4);
    memset(uri + 4, 'a', OCI_NAME_MAX);
    off = 4 + OCI_NAME_MAX;
    off += (size_t)snprintf(uri + off, sizeof(uri) - off, "/manifests/latest");
    ok(uri, ROUTE_MANIFEST);
    cr_assert_eq(strlen(req.rq_name), OCI_NAME_MAX);
    memcpy(uri, "/v2/", 4);
    memset(uri + 4, 'a', OCI_NAME_MAX + 1);
    snprintf(uri + 4 + OCI_NAME_MAX + 1, sizeof(uri) - 4 - OCI_NAME_MAX - 1, "/manifests/latest");
    bad(uri, OCI_ERR_NAME_INVALID);
}

Test(path, unknown_shapes_not_found)
{
    bad("/v2/_catalog", OCI_ERR_NOT_FOUND);
    bad("/v2/nginx", OCI_ERR_NOT_FOUND);
    bad("/v2/nginx/manifests", OCI_ERR_NOT_FOUND);
    bad("/v2/manifests/latest", OCI_ERR_NOT_FOUND);
    bad("/v2/x/manifests/latest/", OCI_ERR_NOT_FOUND);
    bad("/v2/x/manifests/", OCI_ERR_NOT_FOUND);
    bad("/v2/x/uploads/", OCI_ERR_NOT_FOUND);
    bad("/v2/x/y/z", OCI_ERR_NOT_FOUND);
    bad("/v2/x/Manifests/latest", OCI_ERR_NOT_FOUND);
}

Test(api, err_and_why_optional)
{
    cr_assert_eq(route_parse("/v2/X/manifests/latest", &req, NULL, NULL), -1);
    cr_assert_eq(route_parse("/v2/x/manifests/latest", &req, NULL, NULL), 0);
}

Test(api, output_reset_between_calls)
{
    ok("/v2/x/tags/list?n=3&last=a&ns=docker.io", ROUTE_TAGS);
    ok("/v2/y/manifests/" D256, ROUTE_MANIFEST);
    cr_assert_eq(req.rq_n, -1);
    cr_assert_str_eq(req.rq_last, "");
    cr_assert_str_eq(req.rq_ns, "");
    ok("/v2/", ROUTE_BASE);
    cr_assert_str_eq(req.rq_name, "");
    cr_assert_str_eq(req.rq_ref, "");
    cr_assert_eq(req.rq_ref_is_digest, 0);
}
