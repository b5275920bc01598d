/* ECR repository names: ECR's repositoryName pattern and length, and the tier's naming rule. */
#include "config.h"

#include "ecr_name.h"

#include <stdio.h>
#include <string.h>

#define ECR_NAME_MIN 2

static int alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int separator(char c)
{
    return c == '.' || c == '_' || c == '-';
}

static int fail(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return 0;
}

/*
 * One pass over the name, as the pattern reads: components joined by single '/', each a run
 * of [a-z0-9] where a single '.', '_' or '-' may stand between two such characters. The
 * reason names the first thing wrong, never the name (callers print it themselves).
 */
int ecr_name_valid(const char *name, const char **why)
{
    size_t n = strlen(name);

    if (n > ECR_NAME_MAX)
        return fail(why, "longer than 256 bytes");
    if (n < ECR_NAME_MIN)
        return fail(why, "shorter than 2 bytes");
    if (name[0] == '/')
        return fail(why, "starts with '/'");
    if (name[n - 1] == '/')
        return fail(why, "ends with '/'");
    for (size_t i = 0; i < n; i++) {
        char c = name[i], prev = i > 0 ? name[i - 1] : '/', next = name[i + 1];

        if (alnum(c))
            continue;
        if (c >= 'A' && c <= 'Z')
            return fail(why, "uppercase letter (ECR names are lowercase)");
        if (c == '/') {
            if (prev == '/')
                return fail(why, "empty path component ('//')");
            if (separator(prev))
                return fail(why, "a path component ends with '.', '_' or '-'");
            continue;
        }
        if (!separator(c))
            return fail(why, "character other than a-z, 0-9, '.', '_', '-' and '/'");
        if (prev == '/')
            return fail(why, "a path component starts with '.', '_' or '-'");
        if (separator(prev))
            return fail(why, "two of '.', '_', '-' in a row");
        if (next == '\0')
            return fail(why, "ends with '.', '_' or '-'");
    }
    return 1;
}

int ecr_repo_name(const char *repository_prefix, const char *rule_prefix, const char *name,
                  char *out, size_t size, const char **why)
{
    int with_prefix = repository_prefix != NULL && repository_prefix[0] != '\0';
    size_t total;
    int n;

    if (size > 0)
        out[0] = '\0';
    if (rule_prefix == NULL)
        rule_prefix = "";
    if (name == NULL)
        name = "";
    total =
        (with_prefix ? strlen(repository_prefix) + 1 : 0) + strlen(rule_prefix) + 1 + strlen(name);
    if (total > ECR_NAME_MAX) {
        if (why != NULL)
            *why = "longer than 256 bytes";
        return -1;
    }
    if (total >= size) {
        if (why != NULL)
            *why = "does not fit the buffer";
        return -1;
    }
    if (with_prefix)
        n = snprintf(out, size, "%s/%s/%s", repository_prefix, rule_prefix, name);
    else
        n = snprintf(out, size, "%s/%s", rule_prefix, name);
    if (n < 0 || (size_t)n != total || !ecr_name_valid(out, why)) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}
