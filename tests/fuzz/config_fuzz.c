/* Fuzzes the configuration parsers (proxy/config/config_file.c and config_ecr.c): the JSON
 * document from memory (config_load_string), and the duration, size and listen-address values
 * inside it. */
#include "config.h"

#include "fuzz.h"
#include "config_file.h"

/* Values are short; longer inputs go to the document parser only. */
#define VALUE_MAX 128

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstring(data, size);
    char *errs = NULL;
    struct config *cfg;

    cfg = config_load_string(text, &errs);
    if (cfg != NULL) {
        FUZZ_CHECK(errs == NULL);
        FUZZ_CHECK(cfg->cfg_listen != NULL && cfg->cfg_data_dir != NULL);
        FUZZ_CHECK(cfg->cfg_nrules == 0 || cfg->cfg_rules != NULL);
        for (size_t i = 0; i < cfg->cfg_nrules; i++) {
            const struct config_rule *r = &cfg->cfg_rules[i];
            size_t n;

            FUZZ_CHECK(r->rule_prefix != NULL && r->rule_upstream != NULL);
            n = strlen(r->rule_upstream);
            FUZZ_CHECK(n > 0 && r->rule_upstream[n - 1] != '/');
            FUZZ_CHECK(r->rule_nmirror_for == 0 || r->rule_mirror_for != NULL);
            FUZZ_CHECK(r->rule_refresh_interval >= 0 && r->rule_stale_if_error >= 0);
        }
        if (cfg->cfg_ecr != NULL) {
            const struct config_ecr *e = cfg->cfg_ecr;

            FUZZ_CHECK(e->ecr_tag_mutability != NULL);
            FUZZ_CHECK(e->ecr_endpoint == NULL ||
                       e->ecr_endpoint[strlen(e->ecr_endpoint) - 1] != '/');
            FUZZ_CHECK(e->ecr_registry_id == NULL || strlen(e->ecr_registry_id) == 12);
            FUZZ_CHECK((e->ecr_nmutability_exclusions > 0) ==
                       (strstr(e->ecr_tag_mutability, "_WITH_EXCLUSION") != NULL));
            FUZZ_CHECK(e->ecr_nmutability_exclusions <= 5 && e->ecr_ntags <= 50);
            FUZZ_CHECK(e->ecr_kms_key == NULL || e->ecr_encryption_type != NULL);
        }
        config_free(cfg);
    } else {
        FUZZ_CHECK(errs != NULL && errs[0] != '\0');
    }
    free(errs);

    if (size <= VALUE_MAX) {
        int64_t v;
        char host[256];
        int port = -1;

        if (config_parse_duration(text, &v) == 0)
            FUZZ_CHECK(v >= 0);
        if (config_parse_size(text, &v) == 0)
            FUZZ_CHECK(v >= 0);
        if (config_parse_listen(text, host, sizeof(host), &port) == 0) {
            FUZZ_CHECK(fuzz_terminated(host, sizeof(host)));
            FUZZ_CHECK(port >= 0 && port <= 65535);
        }
    }
    free(text);
    return 0;
}
