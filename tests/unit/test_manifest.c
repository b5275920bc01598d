/* Unit tests for proxy/oci/manifest.c: each manifest type, shape detection, bad input. */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

#define DA "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define DB "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define DC "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define DD "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_ARTIFACT "application/vnd.oci.artifact.manifest.v1+json"

static struct manifest_info mi;

static void parse_ok(const char *body, const char *ct)
{
    const char *err = NULL;

    cr_assert_eq(manifest_parse(body, strlen(body), ct, &mi, &err), 0, "rejected: %s",
                 err ? err : "");
}

static void parse_bad(const char *body, size_t len)
{
    const char *err = NULL;

    cr_assert_eq(manifest_parse(body, len, NULL, &mi, &err), -1, "accepted %.*s", (int)len, body);
    cr_assert_not_null(err);
    cr_assert_eq(mi.mi_nrefs, 0);
    manifest_info_free(&mi);
}

static void ref_is(size_t i, enum manifest_ref_kind kind, const char *digest, const char *mt,
                   long long size)
{
    cr_assert_lt(i, mi.mi_nrefs, "ref %zu of %zu", i, mi.mi_nrefs);
    cr_assert_eq(mi.mi_refs[i].mr_kind, kind, "ref %zu kind %d", i, mi.mi_refs[i].mr_kind);
    cr_assert_str_eq(mi.mi_refs[i].mr_digest, digest, "ref %zu", i);
    cr_assert_str_eq(mi.mi_refs[i].mr_media_type, mt, "ref %zu", i);
    cr_assert_eq(mi.mi_refs[i].mr_size, size, "ref %zu size %lld", i, mi.mi_refs[i].mr_size);
}

static void done(void)
{
    manifest_info_free(&mi);
    cr_assert_null(mi.mi_refs);
    cr_assert_eq(mi.mi_nrefs, 0);
}

static const char docker_manifest[] =
    "{\n"
    "   \"schemaVersion\": 2,\n"
    "   \"mediaType\": \"" MT_DOCKER_MANIFEST "\",\n"
    "   \"config\": {\n"
    "      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n"
    "      \"size\": 7023,\n"
    "      \"digest\": \"" DA "\"\n"
    "   },\n"
    "   \"layers\": [\n"
    "      {\n"
    "         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
    "         \"size\": 32654,\n"
    "         \"digest\": \"" DB "\"\n"
    "      },\n"
    "      {\n"
    "         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n"
    "         \"size\": 16724,\n"
    "         \"digest\": \"" DC "\"\n"
    "      }\n"
    "   ]\n"
    "}";

Test(docker, manifest_v2)
{
    parse_ok(docker_manifest, MT_DOCKER_MANIFEST);
    cr_assert_str_eq(mi.mi_media_type, MT_DOCKER_MANIFEST);
    cr_assert_eq(mi.mi_is_index, 0);
    cr_assert_eq(mi.mi_nrefs, 3);
    ref_is(0, MANIFEST_REF_CONFIG, DA, "application/vnd.docker.container.image.v1+json", 7023);
    ref_is(1, MANIFEST_REF_LAYER, DB, "application/vnd.docker.image.rootfs.diff.tar.gzip", 32654);
    ref_is(2, MANIFEST_REF_LAYER, DC, "application/vnd.docker.image.rootfs.diff.tar.gzip", 16724);
    done();
}

Test(docker, manifest_list)
{
    static const char body[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_LIST "\",\"manifests\":["
        "{\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"size\":7143,\"digest\":\"" DA "\","
        "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
        "{\"mediaType\":\"" MT_DOCKER_MANIFEST "\",\"size\":7682,\"digest\":\"" DB "\","
        "\"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}}]}";

    parse_ok(body, "application/json");
    cr_assert_str_eq(mi.mi_media_type, MT_DOCKER_LIST);
    cr_assert_eq(mi.mi_is_index, 1);
    cr_assert_eq(mi.mi_nrefs, 2);
    ref_is(0, MANIFEST_REF_MANIFEST, DA, MT_DOCKER_MANIFEST, 7143);
    ref_is(1, MANIFEST_REF_MANIFEST, DB, MT_DOCKER_MANIFEST, 7682);
    done();
}

Test(docker, schema1_has_no_refs)
{
    static const char body[] = "{\"schemaVersion\":1,\"name\":\"library/hello\",\"tag\":\"latest\","
                               "\"architecture\":\"amd64\",\"fsLayers\":[{\"blobSum\":\"" DA "\"}],"
                               "\"history\":[{\"v1Compatibility\":\"{}\"}],\"signatures\":[]}";

    parse_ok(body, "application/vnd.docker.distribution.manifest.v1+prettyjws");
    cr_assert_str_eq(mi.mi_media_type, "");
    cr_assert_eq(mi.mi_is_index, 0);
    cr_assert_eq(mi.mi_nrefs, 0);
    done();
    parse_ok(body, NULL);
    cr_assert_eq(mi.mi_nrefs, 0);
    done();
}

Test(docker, foreign_layer_with_bad_digest_skipped)
{
    static const char body[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_DOCKER_MANIFEST "\","
        "\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\","
        "\"size\":1,\"digest\":\"" DA "\"},\"layers\":["
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar\","
        "\"size\":5,\"digest\":\"sha256:NOTHEX\",\"urls\":[\"https://example.com/x\"]},"
        "{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
        "\"size\":6,\"digest\":\"" DB "\"}]}";

    parse_ok(body, NULL);
    cr_assert_eq(mi.mi_nrefs, 2);
    ref_is(0, MANIFEST_REF_CONFIG, DA, "application/vnd.docker.container.image.v1+json", 1);
    ref_is(1, MANIFEST_REF_LAYER, DB, "application/vnd.docker.image.rootfs.diff.tar.gzip", 6);
    done();
}

Test(oci, image_manifest_with_subject)
{
    static const char body[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
        "\"artifactType\":\"application/vnd.example.sbom.v1\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.empty.v1+json\",\"size\":2,"
        "\"digest\":\"" DA "\",\"data\":\"e30=\"},"
        "\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
        "\"size\":1234,\"digest\":\"" DB "\","
        "\"annotations\":{\"org.opencontainers.image.title\":\"sbom.json\"}}],"
        "\"subject\":{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"size\":1020,\"digest\":\"" DC "\"},"
        "\"annotations\":{\"org.opencontainers.image.created\":\"2024-01-01T00:00:00Z\"}}";

    parse_ok(body, MT_OCI_MANIFEST);
    cr_assert_str_eq(mi.mi_media_type, MT_OCI_MANIFEST);
    cr_assert_eq(mi.mi_is_index, 0);
    cr_assert_eq(mi.mi_nrefs, 3);
    ref_is(0, MANIFEST_REF_CONFIG, DA, "application/vnd.oci.empty.v1+json", 2);
    ref_is(1, MANIFEST_REF_LAYER, DB, "application/vnd.oci.image.layer.v1.tar+gzip", 1234);
    ref_is(2, MANIFEST_REF_SUBJECT, DC, MT_OCI_MANIFEST, 1020);
    done();
}

Test(oci, image_index_with_subject)
{
    static const char body[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":["
        "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"size\":1000,\"digest\":\"" DA "\","
        "\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
        "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"size\":566,\"digest\":\"" DB "\","
        "\"annotations\":{\"vnd.docker.reference.type\":\"attestation-manifest\"}}],"
        "\"subject\":{\"mediaType\":\"" MT_OCI_INDEX "\",\"size\":300,\"digest\":\"" DD "\"}}";

    parse_ok(body, MT_OCI_INDEX);
    cr_assert_str_eq(mi.mi_media_type, MT_OCI_INDEX);
    cr_assert_eq(mi.mi_is_index, 1);
    cr_assert_eq(mi.mi_nrefs, 3);
    ref_is(0, MANIFEST_REF_MANIFEST, DA, MT_OCI_MANIFEST, 1000);
    ref_is(1, MANIFEST_REF_MANIFEST, DB, MT_OCI_MANIFEST, 566);
    ref_is(2, MANIFEST_REF_SUBJECT, DD, MT_OCI_INDEX, 300);
    done();
}

Test(oci, artifact_manifest)
{
    static const char body[] =
        "{\"mediaType\":\"" MT_OCI_ARTIFACT "\",\"artifactType\":\"application/vnd.cncf.notary"
        ".signature\",\"blobs\":[{\"mediaType\":\"application/jose+json\",\"size\":2000,"
        "\"digest\":\"" DA "\"},{\"mediaType\":\"application/jose+json\",\"size\":3,"
        "\"digest\":\"" DB "\"}],\"subject\":{\"mediaType\":\"" MT_OCI_MANIFEST "\","
        "\"size\":16724,\"digest\":\"" DC "\"}}";

    parse_ok(body, MT_OCI_ARTIFACT);
    cr_assert_str_eq(mi.mi_media_type, MT_OCI_ARTIFACT);
    cr_assert_eq(mi.mi_is_index, 0);
    cr_assert_eq(mi.mi_nrefs, 3);
    ref_is(0, MANIFEST_REF_BLOB, DA, "application/jose+json", 2000);
    ref_is(1, MANIFEST_REF_BLOB, DB, "application/jose+json", 3);
    ref_is(2, MANIFEST_REF_SUBJECT, DC, MT_OCI_MANIFEST, 16724);
    done();
}

Test(oci, empty_layers)
{
    static const char body[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_MANIFEST "\","
        "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"size\":10,"
        "\"digest\":\"" DA "\"},\"layers\":[]}";

    parse_ok(body, NULL);
    cr_assert_eq(mi.mi_nrefs, 1);
    ref_is(0, MANIFEST_REF_CONFIG, DA, "application/vnd.oci.image.config.v1+json", 10);
    done();
}

Test(oci, empty_index)
{
    parse_ok("{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":[]}", NULL);
    cr_assert_eq(mi.mi_is_index, 1);
    cr_assert_eq(mi.mi_nrefs, 0);
    done();
}

Test(resolve, via_content_type)
{
    static const char body[] =
        "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1"
        "+json\",\"size\":10,\"digest\":\"" DA "\"},\"layers\":[{\"size\":20,\"digest\":\"" DB
        "\"}],\"manifests\":[{\"digest\":\"" DC "\"}]}";

    /* The body has both shapes: the Content-Type decides, parameters and case ignored. */
    parse_ok(body, " Application/VND.OCI.image.manifest.v1+JSON ; charset=utf-8");
    cr_assert_str_eq(mi.mi_media_type, "");
    cr_assert_eq(mi.mi_is_index, 0);
    cr_assert_eq(mi.mi_nrefs, 2);
    ref_is(0, MANIFEST_REF_CONFIG, DA, "application/vnd.oci.image.config.v1+json", 10);
    ref_is(1, MANIFEST_REF_LAYER, DB, "", 20);
    done();

    parse_ok(body, MT_DOCKER_LIST);
    cr_assert_eq(mi.mi_is_index, 1);
    cr_assert_eq(mi.mi_nrefs, 1);
    ref_is(0, MANIFEST_REF_MANIFEST, DC, "", -1);
    done();
}

Test(resolve, body_media_type_beats_content_type)
{
    parse_ok(docker_manifest, MT_OCI_INDEX);
    cr_assert_eq(mi.mi_is_index, 0);
    cr_assert_eq(mi.mi_nrefs, 3);
    done();
}

Test(resolve, via_shape)
{
    static const char index[] =
        "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"" MT_OCI_MANIFEST
        "\",\"size\":7,\"digest\":\"" DA "\"}]}";
    static const char image[] =
        "{\"schemaVersion\":2,\"layers\":[{\"size\":7,\"digest\":\"" DB "\"}]}";
    static const char config_only[] = "{\"config\":{\"digest\":\"" DC "\"}}";
    static const char artifact[] = "{\"blobs\":[{\"digest\":\"" DD "\"}]}";

    parse_ok(index, NULL);
    cr_assert_eq(mi.mi_is_index, 1);
    cr_assert_eq(mi.mi_nrefs, 1);
    ref_is(0, MANIFEST_REF_MANIFEST, DA, MT_OCI_MANIFEST, 7);
    done();

    parse_ok(image, "application/json");
    cr_assert_eq(mi.mi_is_index, 0);
    cr_assert_eq(mi.mi_nrefs, 1);
    ref_is(0, MANIFEST_REF_LAYER, DB, "", 7);
    done();

    parse_ok(config_only, "text/plain");
    cr_assert_eq(mi.mi_nrefs, 1);
    ref_is(0, MANIFEST_REF_CONFIG, DC, "", -1);
    done();

    parse_ok(artifact, "");
    cr_assert_eq(mi.mi_nrefs, 1);
    ref_is(0, MANIFEST_REF_BLOB, DD, "", -1);
    done();

    parse_ok("{\"schemaVersion\":2}", NULL);
    cr_assert_eq(mi.mi_nrefs, 0);
    cr_assert_eq(mi.mi_is_index, 0);
    done();
}

Test(resolve, unknown_media_type_has_no_refs)
{
    static const char body[] = "{\"mediaType\":\"application/vnd.example.thing+json\","
                               "\"layers\":[{\"digest\":\"" DA "\"}]}";

    parse_ok(body, MT_OCI_MANIFEST);
    cr_assert_str_eq(mi.mi_media_type, "application/vnd.example.thing+json");
    cr_assert_eq(mi.mi_nrefs, 0);
    done();
}

Test(refs, invalid_descriptors_skipped)
{
    static const char body[] =
        "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"config\":{\"digest\":\"sha256:abc\"},"
        "\"layers\":["
        "{\"digest\":\"" DA "\",\"size\":-5,\"mediaType\":7},"
        "{\"digest\":\"sha256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"},"
        "{\"digest\":\"md5:d41d8cd98f00b204e9800998ecf8427e\"},"
        "{\"digest\":42},{\"size\":3},\"" DB "\",null,[],"
        "{\"digest\":\"" DC "\",\"size\":1.5},"
        "{\"digest\":\"" DD "\",\"size\":9007199254740993}],"
        "\"subject\":\"" DB "\"}";

    parse_ok(body, NULL);
    cr_assert_eq(mi.mi_nrefs, 3);
    ref_is(0, MANIFEST_REF_LAYER, DA, "", -1);
    ref_is(1, MANIFEST_REF_LAYER, DC, "", -1);
    ref_is(2, MANIFEST_REF_LAYER, DD, "", 9007199254740993LL);
    done();
}

Test(refs, sha512_and_long_media_type)
{
    char body[1200];
    char mt[300];
    const char *d512 = "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
                       "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";

    memset(mt, 'm', 256);
    mt[256] = '\0';
    snprintf(body, sizeof(body),
             "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"layers\":[{\"mediaType\":\"%s\","
             "\"digest\":\"%s\",\"size\":1},{\"mediaType\":\"%.255s\",\"digest\":\"%s\"}]}",
             mt, d512, mt, DA);
    parse_ok(body, NULL);
    cr_assert_eq(mi.mi_nrefs, 2);
    ref_is(0, MANIFEST_REF_LAYER, d512, "", 1);
    mt[255] = '\0';
    ref_is(1, MANIFEST_REF_LAYER, DA, mt, -1);
    done();
}

Test(bad, not_an_object)
{
    parse_bad("[]", 2);
    parse_bad("[{\"mediaType\":\"" MT_OCI_MANIFEST "\"}]",
              strlen("[{\"mediaType\":\"" MT_OCI_MANIFEST "\"}]"));
    parse_bad("\"manifest\"", 10);
    parse_bad("42", 2);
    parse_bad("null", 4);
    parse_bad("", 0);
    parse_bad("{\"layers\":[", 11);
    parse_bad("{} trailing", 11);
    parse_bad("{\"a\":\"\\u0000\"}", 14);
    /* The length is what counts, not a NUL. */
    parse_bad("{}\0", 3);
}

Test(bad, too_large)
{
    size_t len = MANIFEST_MAX_BYTES + 1;
    char *big = malloc(len);
    const char *err = NULL;

    cr_assert_not_null(big);
    memset(big, ' ', len);
    big[0] = '{';
    big[len - 1] = '}';
    cr_assert_eq(manifest_parse(big, len, NULL, &mi, &err), -1);
    cr_assert_not_null(err);
    big[len - 2] = '}';
    cr_assert_eq(manifest_parse(big, len - 1, NULL, &mi, &err), 0);
    cr_assert_eq(mi.mi_nrefs, 0);
    done();
    free(big);
}

Test(api, free_accepts_null_and_twice)
{
    manifest_info_free(NULL);
    parse_ok(docker_manifest, NULL);
    manifest_info_free(&mi);
    manifest_info_free(&mi);
    cr_assert_null(mi.mi_refs);
}

Test(api, accept_all)
{
    static const char *const types[] = {MT_DOCKER_MANIFEST, MT_DOCKER_LIST, MT_OCI_MANIFEST,
                                        MT_OCI_INDEX, MT_OCI_ARTIFACT};
    size_t commas = 0;

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        cr_assert_not_null(strstr(manifest_accept_all, types[i]), "lacks %s", types[i]);
    for (const char *p = manifest_accept_all; *p; p++)
        commas += *p == ',';
    cr_assert_eq(commas, 4);
    cr_assert_null(strstr(manifest_accept_all, "q="));
    cr_assert_null(strstr(manifest_accept_all, "v1+prettyjws"));
}

Test(accept, names_covers_and_ignores_parameters)
{
    /* A client naming no manifest type takes what the tag is. */
    cr_assert_eq(manifest_accepts("", MT_OCI_INDEX), -1);
    cr_assert_eq(manifest_accepts("*/*", MT_OCI_INDEX), -1);
    cr_assert_eq(manifest_accepts("application/json, */*;q=0.5", MT_DOCKER_LIST), -1);
    cr_assert_eq(manifest_accepts(NULL, MT_OCI_INDEX), -1);
    /* Docker v2 only: neither index type. */
    cr_assert_eq(manifest_accepts(MT_DOCKER_MANIFEST, MT_DOCKER_LIST), 0);
    cr_assert_eq(manifest_accepts(MT_DOCKER_MANIFEST, MT_OCI_INDEX), 0);
    cr_assert_eq(manifest_accepts(MT_DOCKER_MANIFEST, MT_DOCKER_MANIFEST), 1);
    /* Joined headers, spaces, parameters, case. */
    cr_assert_eq(manifest_accepts(MT_OCI_MANIFEST ", " MT_DOCKER_LIST ";q=0.9", MT_DOCKER_LIST), 1);
    cr_assert_eq(manifest_accepts(" " MT_OCI_INDEX " ;q=1", MT_OCI_INDEX), 1);
    cr_assert_eq(manifest_accepts("Application/Vnd.Oci.Image.Index.V1+Json", MT_OCI_INDEX), 1);
    /* Naming manifests and the any-type range too: that range covers everything. */
    cr_assert_eq(manifest_accepts(MT_DOCKER_MANIFEST ", */*", MT_OCI_INDEX), 1);
    /* q=0 is "not acceptable" (RFC 9110); other q values are acceptable. */
    cr_assert_eq(manifest_accepts(MT_DOCKER_MANIFEST ", " MT_OCI_INDEX ";q=0", MT_OCI_INDEX), 0);
    cr_assert_eq(manifest_accepts(MT_DOCKER_MANIFEST ", " MT_OCI_INDEX "; q=0.000", MT_OCI_INDEX),
                 0);
    cr_assert_eq(manifest_accepts(MT_DOCKER_MANIFEST ", " MT_OCI_INDEX ";q=0.001", MT_OCI_INDEX),
                 1);
    cr_assert_eq(manifest_accepts(MT_OCI_INDEX ";foo=bar;q=1", MT_OCI_INDEX), 1);
    /* A "type/" + "*" range covers its type's subtypes, not others. */
    cr_assert_eq(manifest_accepts(MT_DOCKER_MANIFEST ", application/*", MT_OCI_INDEX), 1);
    cr_assert_eq(manifest_accepts(MT_DOCKER_MANIFEST ", text/*", MT_OCI_INDEX), 0);
    /* A type that merely starts like another is not it. */
    cr_assert_eq(manifest_accepts(MT_OCI_INDEX "x", MT_OCI_INDEX), 0);
    cr_assert_eq(manifest_is_index_type(MT_OCI_INDEX), 1);
    cr_assert_eq(manifest_is_index_type(MT_DOCKER_LIST), 1);
    cr_assert_eq(manifest_is_index_type(MT_OCI_MANIFEST), 0);
    cr_assert_eq(manifest_is_index_type(NULL), 0);
}

Test(platform, picks_linux_amd64)
{
    static const char idx[] =
        "{\"schemaVersion\":2,\"mediaType\":\"" MT_OCI_INDEX "\",\"manifests\":["
        "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" DA "\",\"size\":1,"
        " \"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"}},"
        "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"sha256:bad\",\"size\":1,"
        " \"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
        "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" DB "\",\"size\":1,"
        " \"platform\":{\"architecture\":\"amd64\",\"os\":\"windows\"}},"
        "{\"digest\":\"" DC "\",\"size\":1,"
        " \"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}},"
        "{\"mediaType\":\"" MT_OCI_MANIFEST "\",\"digest\":\"" DD "\",\"size\":1,"
        " \"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"}}]}";
    char d[140], mt[256], tiny[8];

    /* The first valid linux/amd64 child; a bad digest is skipped; no mediaType gives "". */
    cr_assert_eq(
        manifest_pick_platform(idx, strlen(idx), "linux", "amd64", d, sizeof(d), mt, sizeof(mt)),
        1);
    cr_assert_str_eq(d, DC);
    cr_assert_str_eq(mt, "");
    cr_assert_eq(
        manifest_pick_platform(idx, strlen(idx), "linux", "arm64", d, sizeof(d), mt, sizeof(mt)),
        1);
    cr_assert_str_eq(d, DA);
    cr_assert_str_eq(mt, MT_OCI_MANIFEST);
    cr_assert_eq(
        manifest_pick_platform(idx, strlen(idx), "linux", "s390x", d, sizeof(d), mt, sizeof(mt)),
        0);
    /* A digest that does not fit is not half-copied. */
    cr_assert_eq(manifest_pick_platform(idx, strlen(idx), "linux", "arm64", tiny, sizeof(tiny), mt,
                                        sizeof(mt)),
                 0);
    cr_assert_eq(manifest_pick_platform(docker_manifest, strlen(docker_manifest), "linux", "amd64",
                                        d, sizeof(d), mt, sizeof(mt)),
                 -1);
    cr_assert_eq(manifest_pick_platform("[]", 2, "linux", "amd64", d, sizeof(d), mt, sizeof(mt)),
                 -1);
    cr_assert_eq(manifest_pick_platform(NULL, 0, "linux", "amd64", d, sizeof(d), mt, sizeof(mt)),
                 -1);
}
