/* Reads the descriptors an image manifest, index or artifact manifest references. */
#include "config.h"

#include "manifest.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "oci.h"
#include "util.h"

#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_V1 "application/vnd.docker.distribution.manifest.v1+json"
#define MT_DOCKER_V1_SIGNED "application/vnd.docker.distribution.manifest.v1+prettyjws"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_ARTIFACT "application/vnd.oci.artifact.manifest.v1+json"

/* Every type with a shape we read; schema 1 is left out so upstreams convert or refuse. */
#define ACCEPT_ALL                                                                                 \
    MT_OCI_INDEX ", " MT_DOCKER_LIST ", " MT_OCI_MANIFEST ", " MT_DOCKER_MANIFEST                  \
                 ", " MT_OCI_ARTIFACT
const char *const manifest_accept_all = ACCEPT_ALL;

/* The shape of a body, which says where its descriptors are. */
enum manifest_shape {
    SHAPE_UNKNOWN = 0, /* schema 1, or a type we do not know: no refs */
    SHAPE_IMAGE,       /* config + layers */
    SHAPE_INDEX,       /* manifests */
    SHAPE_ARTIFACT,    /* blobs */
};

/* The shape of media type <mt> of <len> bytes; SHAPE_UNKNOWN also for schema 1. */
static enum manifest_shape shape_of_type(const char *mt, size_t len)
{
    static const struct {
        const char *type;
        enum manifest_shape shape;
    } types[] = {
        {MT_DOCKER_MANIFEST, SHAPE_IMAGE}, {MT_OCI_MANIFEST, SHAPE_IMAGE},
        {MT_DOCKER_LIST, SHAPE_INDEX},     {MT_OCI_INDEX, SHAPE_INDEX},
        {MT_OCI_ARTIFACT, SHAPE_ARTIFACT},
    };

    for (size_t i = 0; i < ARRAY_LEN(types); i++)
        if (strlen(types[i].type) == len && strncasecmp(types[i].type, mt, len) == 0)
            return types[i].shape;
    return SHAPE_UNKNOWN;
}

/*
 * The media type of a Content-Type header value <ct>: parameters after ';' and surrounding
 * blanks dropped. Sets *<len> and returns the start; *<len> is 0 when there is none.
 */
static const char *content_type_base(const char *ct, size_t *len)
{
    size_t n;

    *len = 0;
    if (ct == NULL)
        return "";
    while (*ct == ' ' || *ct == '\t')
        ct++;
    n = strcspn(ct, ";");
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    *len = n;
    return ct;
}

static int is_schema1(const char *mt, size_t len)
{
    return (len == strlen(MT_DOCKER_V1) && strncasecmp(mt, MT_DOCKER_V1, len) == 0) ||
           (len == strlen(MT_DOCKER_V1_SIGNED) && strncasecmp(mt, MT_DOCKER_V1_SIGNED, len) == 0);
}

/*
 * Which shape to read <root> as: its own mediaType when it has one; else the Content-Type
 * <ct> when that names a known type; else, for a generic or absent Content-Type, the fields
 * present ("manifests" → index, "layers" or "config" → image, "blobs" → artifact).
 */
static enum manifest_shape decide_shape(json_t *root, const char *ct)
{
    json_t *mt = json_object_get(root, "mediaType");
    const char *base;
    size_t blen;
    enum manifest_shape s;

    if (json_is_string(mt) && json_string_length(mt) > 0)
        return shape_of_type(json_string_value(mt), json_string_length(mt));
    base = content_type_base(ct, &blen);
    s = shape_of_type(base, blen);
    if (s != SHAPE_UNKNOWN || is_schema1(base, blen))
        return s;
    if (json_is_array(json_object_get(root, "manifests")))
        return SHAPE_INDEX;
    if (json_is_array(json_object_get(root, "layers")) ||
        json_is_object(json_object_get(root, "config")))
        return SHAPE_IMAGE;
    if (json_is_array(json_object_get(root, "blobs")))
        return SHAPE_ARTIFACT;
    return SHAPE_UNKNOWN;
}

/* Append descriptor <d> as a ref of <kind> to <mi> when its digest is valid; else skip it. */
static void add_ref(struct manifest_info *mi, enum manifest_ref_kind kind, json_t *d)
{
    json_t *digest, *mt, *size;
    struct manifest_ref *r;

    if (!json_is_object(d))
        return;
    digest = json_object_get(d, "digest");
    if (!json_is_string(digest) ||
        oci_digest_parse(json_string_value(digest), json_string_length(digest)) == OCI_DIGEST_NONE)
        return;
    r = &mi->mi_refs[mi->mi_nrefs++];
    r->mr_kind = kind;
    /* A valid digest is at most 135 bytes: it fits. JSON strings here hold no NUL. */
    str_copy(r->mr_digest, sizeof(r->mr_digest), json_string_value(digest));
    r->mr_media_type[0] = '\0';
    mt = json_object_get(d, "mediaType");
    if (json_is_string(mt) && json_string_length(mt) < sizeof(r->mr_media_type))
        str_copy(r->mr_media_type, sizeof(r->mr_media_type), json_string_value(mt));
    size = json_object_get(d, "size");
    r->mr_size = json_is_integer(size) && json_integer_value(size) >= 0
                     ? (long long)json_integer_value(size)
                     : -1;
}

static size_t array_len(json_t *root, const char *key)
{
    json_t *a = json_object_get(root, key);

    return json_is_array(a) ? json_array_size(a) : 0;
}

static void add_array(struct manifest_info *mi, enum manifest_ref_kind kind, json_t *root,
                      const char *key)
{
    json_t *a = json_object_get(root, key);

    if (!json_is_array(a))
        return;
    for (size_t i = 0; i < json_array_size(a); i++)
        add_ref(mi, kind, json_array_get(a, i));
}

int manifest_parse(const char *body, size_t len, const char *content_type,
                   struct manifest_info *out, const char **err)
{
    json_t *root = NULL, *mt;
    enum manifest_shape shape;
    json_error_t jerr;
    size_t cap;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (body == NULL || len > MANIFEST_MAX_BYTES) {
        if (err != NULL)
            *err = "manifest too large";
        goto out;
    }
    root = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(root)) {
        if (err != NULL)
            *err = "manifest is not a JSON object";
        goto out;
    }
    mt = json_object_get(root, "mediaType");
    if (json_is_string(mt) && json_string_length(mt) < sizeof(out->mi_media_type))
        str_copy(out->mi_media_type, sizeof(out->mi_media_type), json_string_value(mt));

    shape = decide_shape(root, content_type);
    out->mi_is_index = shape == SHAPE_INDEX;
    /* Enough room for every descriptor the shape may yield, allocated once. */
    cap = 1;
    if (shape == SHAPE_IMAGE)
        cap += 1 + array_len(root, "layers");
    else if (shape == SHAPE_INDEX)
        cap += array_len(root, "manifests");
    else if (shape == SHAPE_ARTIFACT)
        cap += array_len(root, "blobs");
    out->mi_refs = xcalloc(cap, sizeof(*out->mi_refs));

    switch (shape) {
    case SHAPE_IMAGE:
        add_ref(out, MANIFEST_REF_CONFIG, json_object_get(root, "config"));
        add_array(out, MANIFEST_REF_LAYER, root, "layers");
        break;
    case SHAPE_INDEX: add_array(out, MANIFEST_REF_MANIFEST, root, "manifests"); break;
    case SHAPE_ARTIFACT: add_array(out, MANIFEST_REF_BLOB, root, "blobs"); break;
    case SHAPE_UNKNOWN: break;
    }
    if (shape != SHAPE_UNKNOWN)
        add_ref(out, MANIFEST_REF_SUBJECT, json_object_get(root, "subject"));
    rc = 0;
out:
    json_decref(root);
    return rc;
}

void manifest_info_free(struct manifest_info *mi)
{
    if (mi == NULL)
        return;
    free(mi->mi_refs);
    mi->mi_refs = NULL;
    mi->mi_nrefs = 0;
}

int manifest_is_index_type(const char *media_type)
{
    return media_type != NULL &&
           (strcmp(media_type, MT_OCI_INDEX) == 0 || strcmp(media_type, MT_DOCKER_LIST) == 0);
}

/* 1 when the media range <r> (<n> bytes, parameters stripped) covers <mt>: itself, its
 * "type/" + "*", or "*" "/" "*". */
static int range_covers(const char *r, size_t n, const char *mt)
{
    const char *slash = strchr(mt, '/');

    if (n == 3 && memcmp(r, "*/*", 3) == 0)
        return 1;
    if (slash != NULL && n == (size_t)(slash - mt) + 2 && r[n - 2] == '/' && r[n - 1] == '*' &&
        strncasecmp(r, mt, n - 1) == 0)
        return 1;
    if (n == strlen(mt) && strncasecmp(r, mt, n) == 0)
        return 1;
    return 0;
}

/* 1 when the parameters <p> (<n> bytes after the media range, ";a=b;q=0.5") give q = 0:
 * "not acceptable" (RFC 9110 12.4.2). */
static int params_refuse(const char *p, size_t n)
{
    const char *end = p + n;

    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *next = semi != NULL ? semi + 1 : end;
        while (p < next && (*p == ' ' || *p == '\t' || *p == ';'))
            p++;
        if (next - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            const char *v = p + 2;
            int nonzero = 0;
            for (; v < next && *v != ';' && *v != ' '; v++)
                if (*v >= '1' && *v <= '9')
                    nonzero = 1;
            return !nonzero;
        }
        p = next;
    }
    return 0;
}

int manifest_accepts(const char *accept, const char *media_type)
{
    const char *p = accept;
    int names_manifests = 0, covered = 0;

    if (accept == NULL)
        return -1;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        const char *semi;
        size_t n, pn = 0;
        if (end == NULL)
            end = p + strlen(p);
        semi = memchr(p, ';', (size_t)(end - p));
        if (semi != NULL && semi < end) {
            n = (size_t)(semi - p);
            pn = (size_t)(end - semi);
        } else {
            n = (size_t)(end - p);
        }
        while (n > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            n--;
        }
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 0) {
            /* Media types of manifests: "...manifest..." or "...image.index...". */
            for (size_t i = 0; i + 8 <= n; i++)
                if (strncasecmp(p + i, "manifest", 8) == 0 ||
                    (i + 11 <= n && strncasecmp(p + i, "image.index", 11) == 0))
                    names_manifests = 1;
            if (media_type != NULL && range_covers(p, n, media_type) &&
                !(pn > 0 && params_refuse(semi, pn)))
                covered = 1;
        }
        p = *end == ',' ? end + 1 : end;
    }
    if (!names_manifests)
        return -1;
    return covered;
}

int manifest_pick_platform(const char *body, size_t len, const char *os, const char *arch,
                           char *digest, size_t dsize, char *media_type, size_t mtsize)
{
    json_t *root = NULL, *a;
    json_error_t jerr;
    int rc = -1;

    if (body == NULL || len > MANIFEST_MAX_BYTES)
        return -1;
    root = json_loadb(body, len, 0, &jerr);
    a = json_is_object(root) ? json_object_get(root, "manifests") : NULL;
    if (!json_is_array(a))
        goto out;
    rc = 0;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *d = json_array_get(a, i), *pl, *dg, *mt, *v;
        if (!json_is_object(d))
            continue;
        pl = json_object_get(d, "platform");
        dg = json_object_get(d, "digest");
        if (!json_is_object(pl) || !json_is_string(dg) ||
            oci_digest_parse(json_string_value(dg), json_string_length(dg)) == OCI_DIGEST_NONE)
            continue;
        v = json_object_get(pl, "os");
        if (!json_is_string(v) || strcmp(json_string_value(v), os) != 0)
            continue;
        v = json_object_get(pl, "architecture");
        if (!json_is_string(v) || strcmp(json_string_value(v), arch) != 0)
            continue;
        if (str_copy(digest, dsize, json_string_value(dg)) == -1)
            continue;
        mt = json_object_get(d, "mediaType");
        media_type[0] = '\0';
        if (json_is_string(mt))
            str_copy(media_type, mtsize, json_string_value(mt));
        rc = 1;
        break;
    }
out:
    json_decref(root);
    return rc;
}
