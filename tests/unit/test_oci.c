/* Unit tests for proxy/oci/oci.c: the name, tag and digest grammars and error bodies. */
#include "config.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "oci.h"

#define NAME_OK(s) cr_assert(oci_name_valid(s, strlen(s)), "rejected name \"%s\"", s)
#define NAME_BAD(s) cr_assert(!oci_name_valid(s, strlen(s)), "accepted name \"%s\"", s)

Test(name, valid)
{
    NAME_OK("nginx");
    NAME_OK("library/nginx");
    NAME_OK("docker-hub/bitnami/charts/redis");
    NAME_OK("a.b_c__d---e/f0");
    NAME_OK("aws-observability/aws-for-fluent-bit");
}

Test(name, invalid)
{
    char longname[300];

    NAME_BAD("");
    NAME_BAD("Nginx");
    NAME_BAD("/nginx");
    NAME_BAD("nginx/");
    NAME_BAD("a//b");
    NAME_BAD("a/../b");
    NAME_BAD("..");
    NAME_BAD("a___b");
    NAME_BAD("a._b");
    NAME_BAD("-a");
    NAME_BAD("a-");
    NAME_BAD("a%2fb");
    NAME_BAD("a b");
    cr_assert(!oci_name_valid("a\0b", 3));
    memset(longname, 'a', sizeof(longname));
    cr_assert(oci_name_valid(longname, 255));
    cr_assert(!oci_name_valid(longname, 256));
}

Test(tag, grammar)
{
    char t[200];

    cr_assert(oci_tag_valid("latest", 6));
    cr_assert(oci_tag_valid("2.23.3", 6));
    cr_assert(oci_tag_valid("_x-Y.z", 6));
    cr_assert(!oci_tag_valid("", 0));
    cr_assert(!oci_tag_valid(".x", 2));
    cr_assert(!oci_tag_valid("-x", 2));
    cr_assert(!oci_tag_valid("a/b", 3));
    cr_assert(!oci_tag_valid("a:b", 3));
    memset(t, 'a', sizeof(t));
    cr_assert(oci_tag_valid(t, 128));
    cr_assert(!oci_tag_valid(t, 129));
}

Test(digest, strict)
{
    const char *d256 = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    char d512[7 + 128 + 1] = "sha512:";

    memset(d512 + 7, 'a', 128);
    d512[135] = '\0';
    cr_assert_eq(oci_digest_parse(d256, strlen(d256)), OCI_DIGEST_SHA256);
    cr_assert_eq(oci_digest_parse(d512, strlen(d512)), OCI_DIGEST_SHA512);
    cr_assert_eq(oci_digest_parse(d256, strlen(d256) - 1), OCI_DIGEST_NONE);
    cr_assert_eq(oci_digest_parse(
                     "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855", 71),
                 OCI_DIGEST_NONE);
    cr_assert_eq(oci_digest_parse("md5:d41d8cd98f00b204e9800998ecf8427e", 36), OCI_DIGEST_NONE);
    cr_assert_eq(oci_digest_parse("sha256", 6), OCI_DIGEST_NONE);
    cr_assert_eq(oci_digest_parse("latest", 6), OCI_DIGEST_NONE);
}

Test(error, body_and_status)
{
    char *body = oci_error_body(OCI_ERR_NAME_INVALID, "invalid repository name", "a//b");
    json_error_t e;
    json_t *root = json_loads(body, 0, &e);
    json_t *err;

    cr_assert_not_null(root, "%s", body);
    err = json_array_get(json_object_get(root, "errors"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(err, "code")), "NAME_INVALID");
    cr_assert_str_eq(json_string_value(json_object_get(err, "message")), "invalid repository name");
    cr_assert_str_eq(json_string_value(json_object_get(err, "detail")), "a//b");
    cr_assert_eq(oci_error_status(OCI_ERR_NAME_INVALID), 400);
    cr_assert_eq(oci_error_status(OCI_ERR_MANIFEST_UNKNOWN), 404);
    cr_assert_eq(oci_error_status(OCI_ERR_TOOMANYREQUESTS), 429);
    cr_assert_str_eq(oci_error_code(OCI_ERR_UNAUTHORIZED), "UNAUTHORIZED");
    json_decref(root);
    free(body);
}
