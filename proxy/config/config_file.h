/* The configuration: the JSON file of DESIGN.md's Interface section, or the embedded default. */
#ifndef PROXY_CONFIG_H
#define PROXY_CONFIG_H

#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

struct lc_policy;

#define CONFIG_DEFAULT_LISTEN "0.0.0.0:5000"
#define CONFIG_DEFAULT_DATA_DIR "./ecr-ptc-proxy-data"
#define CONFIG_DEFAULT_REFRESH (24 * 3600)
#define CONFIG_DEFAULT_STALE (7 * 24 * 3600)
#define CONFIG_DEFAULT_MIN_FREE ((int64_t)1 << 30)
#define CONFIG_DEFAULT_HEADER_TIMEOUT 10 /* seconds */
/* max_connections_per_client when absent: a quarter of max_connections (server_create). */
#define CONFIG_DEFAULT_MAX_CONN_PER_CLIENT (-1)
#define CONFIG_MAX_CONNECTIONS_LIMIT (1 << 20)
#define CONFIG_DEFAULT_EGRESS_PRICE_PER_GB 0.045 /* US dollars, NAT Gateway data processing */

/* One rule: a repository prefix mapped to an upstream registry. Owned by its struct config. */
struct config_rule {
    char *rule_prefix;      /* "docker-hub", may hold '/' */
    char *rule_upstream;    /* "https://registry-1.docker.io", no trailing '/' */
    char **rule_mirror_for; /* hosts answered for containerd's ?ns= */
    size_t rule_nmirror_for;
    int rule_default;        /* answers names with neither prefix nor ns */
    int rule_library_prefix; /* one-segment names become library/NAME */
    int rule_allow_private_redirects;
    char *rule_ca_file;  /* PEM bundle trusted for the upstream's host; NULL: the system's */
    char *rule_username; /* NULL when anonymous */
    char *rule_password; /* the secret; never printed */
    int64_t rule_refresh_interval;    /* seconds */
    int64_t rule_stale_if_error;      /* seconds */
    int rule_ecr;                     /* mirrored to the ECR tier (rules[].ecr, default 1) */
    struct lc_policy *rule_lifecycle; /* rules[].lifecycle_policy; NULL: cfg_lifecycle */
};

/* One "key": "value" pair of create_repository.tags. */
struct config_tag {
    char *ct_key;
    char *ct_value;
};

/*
 * The "ecr" block: the private ECR tier (docs/internals/ecr.md). Every key is optional; NULL
 * strings mean "from the environment" as the comments say.
 */
struct config_ecr {
    char *ecr_region;                /* NULL: AWS_REGION, AWS_DEFAULT_REGION, then IMDS */
    char *ecr_registry_id;           /* 12 digits; NULL: the caller's own registry */
    char *ecr_endpoint;              /* the API's URL, no trailing '/'; NULL: AWS_ENDPOINT_URL_ECR,
                                        AWS_ENDPOINT_URL, then https://api.ecr.REGION.amazonaws.com */
    char *ecr_repository_prefix;     /* "" or "cache": goes before the rule prefix, no '/' at
                                        either end */
    int ecr_allow_private_redirects; /* as rules[].allow_private_redirects (tests) */
    int ecr_push;                    /* 1: push what is cached (default); 0: read only */
    /* create_repository: what CreateRepository is sent for a repository the tier creates */
    char *ecr_tag_mutability;         /* "MUTABLE" (default), "MUTABLE_WITH_EXCLUSION",
                                         "IMMUTABLE_WITH_EXCLUSION" */
    char **ecr_mutability_exclusions; /* image_tag_mutability_exclusion_filters: wildcard
                                         filters, required with a *_WITH_EXCLUSION value */
    size_t ecr_nmutability_exclusions;
    int ecr_scan_on_push;      /* default 0 */
    char *ecr_encryption_type; /* NULL (ECR's default), "AES256", "KMS", "KMS_DSSE" */
    char *ecr_kms_key;         /* with KMS: an ARN, alias or key id; NULL: AWS managed */
    struct config_tag *ecr_tags;
    size_t ecr_ntags;
    char *ecr_lifecycle_policy;  /* compact JSON text of the policy object, or NULL */
    char *ecr_repository_policy; /* compact JSON text of the policy object, or NULL */
};

struct config {
    char *cfg_listen; /* "HOST:PORT" */
    char *cfg_data_dir;
    int64_t cfg_refresh_interval;
    int64_t cfg_stale_if_error;
    int64_t cfg_min_free_space;      /* bytes the store leaves free on its filesystem */
    int64_t cfg_max_connections;     /* client connections at once; 0: derived from RLIMIT_NOFILE */
    int64_t cfg_max_conn_per_client; /* client connections from one address; 0: no cap; -1:
                                        absent (a quarter of max_connections) */
    int64_t cfg_header_timeout;      /* seconds from a request's first byte to its end */
    struct config_rule *cfg_rules;
    size_t cfg_nrules;
    struct config_ecr *cfg_ecr;      /* NULL: no "ecr" block, no ECR tier */
    int64_t cfg_cache_size;          /* cache_size: bytes DATA_DIR may hold; 0: no budget */
    struct lc_policy *cfg_lifecycle; /* lifecycle_policy: the rules' default, or NULL */
    char *cfg_admin_socket;          /* admin_socket; NULL: DATA_DIR/admin.sock */
    double cfg_egress_price_per_gb;  /* egress_price_per_gb: the status page's dollars (0.045) */
};

/* The lifecycle policy of <rule>: its own, else the configuration's default, else NULL. */
const struct lc_policy *config_rule_lifecycle(const struct config *cfg,
                                              const struct config_rule *rule);
/* The admin socket's path: admin_socket, else DATA_DIR/admin.sock (caller frees). */
char *config_admin_socket_path(const struct config *cfg);

/*
 * Parse a configuration from the JSON text <json>. Returns a config the caller frees with
 * config_free(), or NULL with *errs set to one line per problem ("rules[1].upstream: not a
 * URL"), newline-separated; the caller frees *errs. Secrets named by password_env and
 * password_file are resolved here. Values of secrets never appear in *errs.
 */
struct config *config_load_string(const char *json, char **errs);

/* As config_load_string, reading the file at <path>. */
struct config *config_load_file(const char *path, char **errs);

/* Print <errs> (config_load_*'s newline-separated problems) to <f>, each line prefixed with
 * "<origin>: ", as check-config, serve, a reload and the admin commands all report them. */
void config_problems_print(FILE *f, const char *origin, const char *errs);

/* The embedded default: DESIGN.md's listen address, data directory and two rules. */
struct config *config_default(void);

/* Free <cfg> and everything it owns; accepts NULL and half-built configs. */
void config_free(struct config *cfg);

/* "90s", "15m", "24h", "7d" → seconds. Returns 0, or -1 on garbage or overflow. */
int config_parse_duration(const char *s, int64_t *out);

/* "500MiB", "200GiB", "1024B", "10MB" → bytes. Returns 0, or -1 on garbage or overflow. */
int config_parse_size(const char *s, int64_t *out);

/*
 * Split "HOST:PORT" / "[V6]:PORT" into <host> (without brackets) and <port>.
 * Returns 0, or -1 when malformed.
 */
int config_parse_listen(const char *s, char *host, size_t hostsize, int *port);

#endif
