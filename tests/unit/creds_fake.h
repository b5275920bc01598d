/* The fake endpoints and the harness of test_creds.c (creds_fake.c). */
#ifndef TEST_CREDS_FAKE_H
#define TEST_CREDS_FAKE_H

#include <stddef.h>
#include <stdint.h>

#include "creds.h"

#define IMDS_SECRET "imds-secret-value"
#define IMDS_SESSION "imds-session-token"
#define CONTAINER_SECRET "container-secret-value"
#define STS_SECRET "sts-secret-value"
#define STS_SESSION "sts-session-token"

extern struct creds *cr; /* the chain under test, made by start_chain */
extern char meta_url[64], home[64];
extern int64_t clock_offset; /* added to the real clock for co_clock */

/* What the servers do. */
extern int imds_v1_only;                                    /* PUT /latest/api/token answers 405 */
extern int imds_lifetime, container_lifetime, sts_lifetime; /* seconds */
extern int container_status, sts_status;
extern int delay_ms;         /* credential answers wait this long */
extern char valid_token[64]; /* the IMDS token GETs must carry; "" is a "restart" */

/* What they saw. */
extern int hits_put, hits_role, hits_imds_creds, hits_region, hits_container, hits_sts;
extern int hits_get_without_token;
extern char container_auth[256], sts_token[256], sts_role[256], sts_session[256];

/* What co_changed was told. */
extern int changed_ok, changed_fail;
extern char last_err[512];
extern double fail_at[16]; /* mono_s() of each failure */

void set_env(const char *name, const char *value);
int64_t test_clock(void);
double mono_s(void);
void write_file(const char *path, const char *text);

/* Run the loop until *<counter> reaches <want> (asserted), at most <secs> seconds. */
void run_until(const int *counter, int want, int secs);
/* Run the loop for <ms> milliseconds. */
void run_for(int ms);

/* creds_create on the test's transport with the fake environment and clock, creds_start. */
void start_chain(void);
/* The held credentials (asserted held), and the stats. */
struct aws_credentials creds_fake_held(void);
struct creds_stats creds_fake_stats(void);

void creds_fake_setup(void);
void creds_fake_teardown(void);

#endif
