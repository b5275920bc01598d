/* The OCI distribution grammar (names, tags, digests) and the error codes with their statuses. */
#include "config.h"

#include "oci.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static int is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/*
 * One path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*. Scanned left to right: a run of
 * alphanumerics, then a separator that must be followed by another run.
 */
static int component_valid(const char *s, size_t len)
{
    size_t i = 0;

    if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
        return 0;
    while (i < len) {
        if (is_lower_alnum(s[i])) {
            i++;
            continue;
        }
        if (s[i] == '.') {
            i++;
        } else if (s[i] == '_') {
            i++;
            if (i < len && s[i] == '_')
                i++;
        } else if (s[i] == '-') {
            while (i < len && s[i] == '-')
                i++;
        } else {
            return 0;
        }
        if (i >= len || !is_lower_alnum(s[i]))
            return 0;
    }
    return 1;
}

int oci_name_valid(const char *s, size_t len)
{
    size_t start = 0;

    if (len == 0 || len > OCI_NAME_MAX)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '/') {
            if (!component_valid(s + start, i - start))
                return 0;
            start = i + 1;
        }
    }
    return 1;
}

int oci_tag_valid(const char *s, size_t len)
{
    if (len == 0 || len > OCI_TAG_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int word =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!word && (i == 0 || (c != '.' && c != '-')))
            return 0;
    }
    return 1;
}

static int hex_run(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

enum oci_digest_alg oci_digest_parse(const char *s, size_t len)
{
    if (len == 7 + 64 && strncmp(s, "sha256:", 7) == 0 && hex_run(s + 7, 64))
        return OCI_DIGEST_SHA256;
    if (len == 7 + 128 && strncmp(s, "sha512:", 7) == 0 && hex_run(s + 7, 128))
        return OCI_DIGEST_SHA512;
    return OCI_DIGEST_NONE;
}

static const struct {
    const char *code;
    int status;
} oci_errors[] = {
    [OCI_ERR_BLOB_UNKNOWN] = {"BLOB_UNKNOWN", 404},
    [OCI_ERR_BLOB_UPLOAD_UNKNOWN] = {"BLOB_UPLOAD_UNKNOWN", 404},
    [OCI_ERR_DIGEST_INVALID] = {"DIGEST_INVALID", 400},
    [OCI_ERR_MANIFEST_BLOB_UNKNOWN] = {"MANIFEST_BLOB_UNKNOWN", 404},
    [OCI_ERR_MANIFEST_INVALID] = {"MANIFEST_INVALID", 400},
    [OCI_ERR_MANIFEST_TOO_BIG] = {"MANIFEST_INVALID", 413},
    [OCI_ERR_MANIFEST_UNKNOWN] = {"MANIFEST_UNKNOWN", 404},
    [OCI_ERR_NAME_INVALID] = {"NAME_INVALID", 400},
    [OCI_ERR_NAME_UNKNOWN] = {"NAME_UNKNOWN", 404},
    [OCI_ERR_SIZE_INVALID] = {"SIZE_INVALID", 400},
    [OCI_ERR_UNAUTHORIZED] = {"UNAUTHORIZED", 401},
    [OCI_ERR_DENIED] = {"DENIED", 403},
    [OCI_ERR_UNSUPPORTED] = {"UNSUPPORTED", 405},
    [OCI_ERR_TOOMANYREQUESTS] = {"TOOMANYREQUESTS", 429},
    [OCI_ERR_RANGE_INVALID] = {"RANGE_INVALID", 416},
    [OCI_ERR_PAGINATION_NUMBER_INVALID] = {"PAGINATION_NUMBER_INVALID", 400},
    [OCI_ERR_UPSTREAM] = {"UNKNOWN", 502},
    [OCI_ERR_UNAVAILABLE] = {"UNAVAILABLE", 503},
    [OCI_ERR_NOT_FOUND] = {"NOT_FOUND", 404},
    [OCI_ERR_METHOD] = {"UNSUPPORTED", 405},
};

const char *oci_error_code(enum oci_error e)
{
    return oci_errors[e].code;
}

int oci_error_status(enum oci_error e)
{
    return oci_errors[e].status;
}

char *oci_error_body(enum oci_error e, const char *message, const char *detail)
{
    json_t *err = json_object();
    json_t *arr = json_array();
    json_t *root = json_object();
    char *s, *out;

    json_object_set_new(err, "code", json_string(oci_errors[e].code));
    json_object_set_new(err, "message", json_string(message ? message : ""));
    json_object_set_new(err, "detail", detail ? json_string(detail) : json_null());
    json_array_append_new(arr, err);
    json_object_set_new(root, "errors", arr);
    s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (s == NULL)
        return xstrdup("{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"\"}]}");
    out = xstrdup(s);
    free(s);
    return out;
}
