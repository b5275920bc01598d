/*
 * ECR repository names: what the tier calls the ECR repository that mirrors a local one, and
 * whether ECR can hold a name at all (its pattern, 2 to 256 bytes). Pure functions.
 */
#ifndef AWS_ECR_NAME_H
#define AWS_ECR_NAME_H

#include <stddef.h>

#define ECR_NAME_MAX 256

/*
 * 1 when <name> matches ECR's repositoryName pattern
 * (?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)* and is 2 to 256 bytes long;
 * else 0 with *why (a static string) set when <why> is not NULL.
 */
int ecr_name_valid(const char *name, const char **why);

/*
 * "<repository_prefix>/<rule_prefix>/<name>" into <out> (<size> bytes), the first part left
 * out when <repository_prefix> is NULL or "": ("", "docker-hub", "library/nginx") →
 * "docker-hub/library/nginx". 0, or -1 with *why (static) when the result is not a valid ECR
 * name or does not fit.
 */
int ecr_repo_name(const char *repository_prefix, const char *rule_prefix, const char *name,
                  char *out, size_t size, const char **why);

#endif
