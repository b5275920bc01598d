/* What a user types for an image ("nginx", "public.ecr.aws/x/y:1") → the rule and names. Pure. */
#ifndef POLICY_IMAGE_H
#define POLICY_IMAGE_H

#include <stddef.h>

#include "policy_rules.h"

#define IMAGE_HOST_MAX 256
#define IMAGE_REF_MAX 141 /* a tag (at most 128) or "sha512:" + 128 hex, with its NUL */

struct rules_image {
    size_t ri_rule;                   /* index into the rules array */
    char ri_host[IMAGE_HOST_MAX];     /* the registry host as typed, "" when none was */
    char ri_name[RULES_NAME_MAX];     /* the repository on the upstream: "library/nginx" */
    char ri_reference[IMAGE_REF_MAX]; /* the tag ("latest" when none) or the digest */
    int ri_by_digest;                 /* ri_reference is a digest ("sha256:...") */
};

/*
 * Map <image> as users write it over <rules>[0..<n>): "nginx", "docker.io/library/nginx:1.27",
 * "public.ecr.aws/x/y:1", "x/y@sha256:<64 hex>". The first segment is a registry host when
 * it holds '.' or ':' or is "localhost" (and more segments follow): the rule whose mirror_for
 * lists it (case-insensitive). Without a host: the default rule. One-segment names get
 * "library/" when the rule has library_prefix. The tag defaults to "latest"; a digest is kept
 * (and wins over a tag given with it). 0 with <out> filled, or -1 with a line for the user in
 * <err> (<errsize> bytes) naming what was wrong (the host no rule mirrors, a bad name).
 */
int rules_map_image(const struct rules_rule *rules, size_t n, const char *image,
                    struct rules_image *out, char *err, size_t errsize);

#endif
