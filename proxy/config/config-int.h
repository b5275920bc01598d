/* Shared by config_file.c (the file, its top level and rules), config_ecr.c (the "ecr" block)
 * and config_lifecycle.c (lifecycle policies); nothing outside proxy/config. */
#ifndef CONFIG_INT_H
#define CONFIG_INT_H

#include <jansson.h>
#include <stddef.h>

#include "config_file.h"

/* Problems found so far, one line each; buf is owned and becomes config_load_string's *errs. */
struct problems {
    char *buf;
    size_t len;
    int count;
};

/* Add one line (no newline in <fmt>) to <p>: "KEY.PATH: what is wrong". */
void config_problem(struct problems *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* <v> as a string into *out (borrowed from <v>), or a problem at <key> and -1. */
int config_get_string(json_t *v, const char *key, struct problems *p, const char **out);
/* <v> as a boolean into *out (1 or 0), or a problem at <key> and -1. */
int config_get_bool(json_t *v, const char *key, struct problems *p, int *out);

/* A base URL: http(s)://host[:port] with nothing after but an optional '/'. 1, or 0 with
 * *why (static) set. */
int config_url_valid(const char *u, const char **why);

/* config_ecr.c: the "ecr" block <o> into a fresh cfg->cfg_ecr (set even when <o> has
 * problems, so config_free frees what was parsed; left NULL when <o> is no object). */
void config_load_ecr(json_t *o, struct config *cfg, struct problems *p);
/* With the ECR tier on: every rule that goes to it (rule_ecr) must make valid ECR names. */
void config_check_ecr_rules(const struct config *cfg, struct problems *p);
/* Free <e> and everything it owns; accepts NULL and half-built blocks. */
void config_ecr_free(struct config_ecr *e);

/*
 * config_lifecycle.c: the ECR lifecycle policy <v> found at <key> ("lifecycle_policy",
 * "rules[0].lifecycle_policy"): a JSON object, or a JSON string holding the policy's text (as
 * Terraform writes it). Validated as ECR does (docs/internals/lifecycle.md), every problem one
 * line in <p> naming its full key path. Returns a policy with its rules sorted by rulePriority,
 * which the caller frees with lifecycle_policy_free(), or NULL when <v> had any problem.
 */
struct lc_policy *config_load_lifecycle(json_t *v, const char *key, struct problems *p);

#endif
