/*
 * Unit tests for proxy/ecr/creds.c (and creds_local.c, creds_imds.c): the chain's sources in
 * order and precedence, IMDSv2's token (fetched first, again on a 401, IMDSv1 refused), the
 * container endpoint and its rotating token file, web identity and its rotating token file,
 * renewal ahead of expiry while the old credentials serve, backoff and counting of failures,
 * and no secret in the log. Live requests on a real libevent base against the fake endpoints
 * of creds_fake.c on 127.0.0.1: "metadata" (IMDS and the container endpoint, registered as
 * denied to other requests) and "sts"; the environment comes through co_getenv, the clock
 * through co_clock.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "creds_fake.h"
#include "log.h"

TestSuite(creds, .init = creds_fake_setup, .fini = creds_fake_teardown, .timeout = 60);

/* ---- the sources, in order ------------------------------------------------------------------ */

/* The environment's keys win over every other source, and nothing is asked of any server. */
Test(creds, environment_first)
{
    char path[128];
    struct aws_credentials ac;

    set_env("AWS_ACCESS_KEY_ID", "AKIAENV");
    set_env("AWS_SECRET_ACCESS_KEY", "envsecret");
    set_env("AWS_SESSION_TOKEN", "envtoken");
    set_env("AWS_CREDENTIAL_EXPIRATION", "2099-01-01T00:00:00Z");
    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path);
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/r");
    start_chain();
    cr_assert_eq(creds_get(cr, &ac), 0, "credentials before the loop ran");
    run_until(&changed_ok, 1, 5);
    ac = creds_fake_held();
    cr_assert_str_eq(ac.ac_access_key, "AKIAENV");
    cr_assert_str_eq(ac.ac_secret, "envsecret");
    cr_assert_str_eq(ac.ac_token, "envtoken");
    cr_assert_eq(ac.ac_expires_at, 4070908800LL);
    cr_assert_str_eq(creds_fake_stats().cs_source, "environment");
    cr_assert_eq(creds_fake_stats().cs_refreshes, 1);
    cr_assert_eq(hits_sts + hits_put + hits_container, 0);
}

/* One key alone is not the environment's: the chain goes on to the profile, which wins over
 * web identity; a profile named but absent is the chain's failure. */
Test(creds, shared_files_then_config)
{
    char dir[128], path[160];

    set_env("AWS_ACCESS_KEY_ID", "AKIALONE");
    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path); /* comes after the profile */
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/r");
    snprintf(dir, sizeof(dir), "%s/.aws", home);
    cr_assert_eq(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/credentials", dir);
    write_file(path, "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = fs\n");
    start_chain();
    run_until(&changed_ok, 1, 5);
    cr_assert_str_eq(creds_fake_held().ac_access_key, "AKIAFILE");
    cr_assert_str_eq(creds_fake_held().ac_source, "profile");
    cr_assert_eq(creds_fake_held().ac_expires_at, 0);
    creds_destroy(cr);
    cr = NULL;

    /* A named profile that only the config file (AWS_CONFIG_FILE) has. */
    snprintf(path, sizeof(path), "%s/cfg", home);
    write_file(path, "[profile ops]\naws_access_key_id = AKIACFG\naws_secret_access_key = cs\n");
    set_env("AWS_CONFIG_FILE", path);
    set_env("AWS_PROFILE", "ops");
    changed_ok = 0;
    start_chain();
    run_until(&changed_ok, 1, 5);
    cr_assert_str_eq(creds_fake_held().ac_access_key, "AKIACFG");
    creds_destroy(cr);
    cr = NULL;

    /* A profile that neither file has, named: the chain fails, and does not go on. */
    set_env("AWS_PROFILE", "nowhere");
    start_chain();
    run_until(&changed_fail, 1, 5);
    cr_assert_not_null(strstr(last_err, "nowhere"), "%s", last_err);
    cr_assert_eq(hits_put + hits_sts, 0, "the chain went past the profile");
}

/* A profile that wants more than static keys is logged and skipped: the next source decides. */
Test(creds, unsupported_profile_falls_through)
{
    char path[128], arn[32];

    snprintf(path, sizeof(path), "%s/credentials", home);
    write_file(path, "[default]\nrole_arn = arn:aws:iam::1:role/r\nsource_profile = x\n");
    set_env("AWS_SHARED_CREDENTIALS_FILE", path);
    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt-token\n");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path);
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/web");
    start_chain();
    run_until(&changed_ok, 1, 5);
    cr_assert_str_eq(creds_fake_held().ac_source, "web-identity");
    cr_assert_str_eq(creds_fake_held().ac_secret, STS_SECRET);
    cr_assert_str_eq(creds_fake_held().ac_token, STS_SESSION);
    cr_assert_str_eq(sts_token, "jwt-token", "the token file's newline was sent");
    cr_assert_str_eq(sts_role, "arn:aws:iam::1:role/web");
    snprintf(arn, sizeof(arn), "ecr-ptc-proxy-%ld", (long)getpid());
    cr_assert_str_eq(sts_session, arn);
    cr_assert_eq(hits_put + hits_container, 0);
}

/* Web identity is configured, STS refuses: that is the chain's failure, IMDS is not asked. */
Test(creds, web_identity_failure_is_final)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt-secret-value");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path);
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/web");
    set_env("AWS_ROLE_SESSION_NAME", "my session");
    sts_status = 400;
    start_chain();
    run_until(&changed_fail, 1, 5);
    cr_assert_not_null(strstr(last_err, "InvalidIdentityToken"), "%s", last_err);
    cr_assert_null(strstr(last_err, "jwt-secret-value"), "%s", last_err);
    cr_assert_str_eq(sts_session, "my session");
    cr_assert_eq(hits_sts, 1, "a 400 was retried");
    cr_assert_eq(hits_put + hits_container, 0, "the chain went past a failing web identity");
    cr_assert_eq(creds_fake_stats().cs_failures, 1);
    cr_assert_str_empty(creds_fake_stats().cs_source);
}

/* The token file is read again for every renewal (IRSA rotates it). */
Test(creds, web_identity_token_file_read_again)
{
    char path[128];

    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt-1");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path);
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/web");
    sts_lifetime = 3; /* renewed after 1 or 2 s */
    start_chain();
    run_until(&changed_ok, 1, 5);
    cr_assert_str_eq(sts_token, "jwt-1");
    write_file(path, "jwt-2");
    sts_lifetime = 3600;
    run_until(&changed_ok, 2, 5);
    cr_assert_str_eq(sts_token, "jwt-2");
    cr_assert_eq(hits_sts, 2);
    cr_assert_eq(creds_fake_stats().cs_refreshes, 2);
}

/* The container endpoint wins over IMDS; its token file is read again on every renewal. */
Test(creds, container_full_uri_token_file_read_again)
{
    char path[128], url[128];

    snprintf(url, sizeof(url), "%s/container/creds", meta_url);
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    snprintf(path, sizeof(path), "%s/eks-token", home);
    write_file(path, "pod-token-1\n");
    set_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path);
    set_env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "not-this-one");
    container_lifetime = 3;
    start_chain();
    run_until(&changed_ok, 1, 5);
    cr_assert_str_eq(container_auth, "pod-token-1");
    cr_assert_str_eq(creds_fake_held().ac_source, "container");
    cr_assert_str_eq(creds_fake_held().ac_secret, CONTAINER_SECRET);
    write_file(path, "pod-token-2");
    container_lifetime = 3600;
    run_until(&changed_ok, 2, 5);
    cr_assert_str_eq(container_auth, "pod-token-2");
    cr_assert_eq(hits_put, 0, "IMDS was asked with a container endpoint configured");

    /* Without the file, the variable's token. */
    creds_destroy(cr);
    cr = NULL;
    set_env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "");
    start_chain();
    run_until(&changed_ok, 3, 5);
    cr_assert_str_eq(container_auth, "not-this-one");
}

/* A FULL_URI over http to a host that is neither loopback nor the ECS/EKS hosts is refused,
 * without a request. */
Test(creds, container_full_uri_host_refused)
{
    static const char *const bad[] = {"http://example.com/creds", "http://10.0.0.1/creds",
                                      "http://169.254.169.254/latest/meta-data/",
                                      "http://127.0.0.1.example.com/creds", "ftp://127.0.0.1/"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", bad[i]);
        changed_fail = 0;
        start_chain();
        run_until(&changed_fail, 1, 5);
        cr_assert_not_null(strstr(last_err, "FULL_URI"), "%s: %s", bad[i], last_err);
        creds_destroy(cr);
        cr = NULL;
    }
    cr_assert_eq(hits_container + hits_put, 0);
}

/* An endpoint that does not answer: the error names its host, never its path. */
Test(creds, container_unreachable_path_not_shown)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char url[128];
    int s = socket(AF_INET, SOCK_STREAM, 0);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
    close(s); /* nobody listens there now */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/credentials/capability-uuid",
             ntohs(sin.sin_port));
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    start_chain();
    run_until(&changed_fail, 1, 10);
    cr_assert_null(strstr(last_err, "capability-uuid"), "%s", last_err);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d: ", ntohs(sin.sin_port));
    cr_assert_not_null(strstr(last_err, url), "%s", last_err);
}

/* IMDSv2: a token first, then the role, then its credentials, each GET with the token; the
 * region with the same token. */
Test(creds, imds_v2)
{
    struct aws_credentials ac;

    start_chain();
    run_until(&changed_ok, 1, 10);
    ac = creds_fake_held();
    cr_assert_str_eq(ac.ac_source, "imds");
    cr_assert_str_eq(ac.ac_secret, IMDS_SECRET);
    cr_assert_str_eq(ac.ac_token, IMDS_SESSION);
    cr_assert_gt(ac.ac_expires_at, test_clock() + 3000);
    cr_assert_eq(hits_put, 1);
    cr_assert_eq(hits_role, 1);
    cr_assert_eq(hits_imds_creds, 1);
    cr_assert_eq(hits_get_without_token, 0);
}

static int region_calls;
static char region_got[64], region_err[256];

static void on_region(void *arg, const char *region, const char *err)
{
    (void)arg;
    region_calls++;
    snprintf(region_got, sizeof(region_got), "%s", region != NULL ? region : "(null)");
    snprintf(region_err, sizeof(region_err), "%s", err != NULL ? err : "");
}

Test(creds, imds_region)
{
    start_chain();
    run_until(&changed_ok, 1, 10);
    creds_imds_region(cr, on_region, NULL);
    cr_assert_eq(region_calls, 0, "called back from inside creds_imds_region");
    run_until(&region_calls, 1, 5);
    cr_assert_str_eq(region_got, "eu-west-3", "%s", region_err);
    cr_assert_eq(hits_put, 1, "the held token was not used");
    cr_assert_eq(hits_region, 1);

    /* Disabled: an error, from the loop. */
    creds_destroy(cr);
    set_env("AWS_EC2_METADATA_DISABLED", "true");
    start_chain();
    creds_imds_region(cr, on_region, NULL);
    cr_assert_eq(region_calls, 1);
    run_until(&region_calls, 2, 5);
    cr_assert_str_eq(region_got, "(null)");
    cr_assert_not_null(strstr(region_err, "disabled"), "%s", region_err);
    run_until(&changed_fail, 1, 5);
    cr_assert_eq(hits_put, 1);
}

/* A server that only speaks IMDSv1 is not used: the PUT fails, no GET goes without a token. */
Test(creds, imds_v1_only_refused)
{
    imds_v1_only = 1;
    start_chain();
    run_until(&changed_fail, 1, 10);
    cr_assert_not_null(strstr(last_err, "IMDSv1 is not used"), "%s", last_err);
    cr_assert_eq(hits_put, 1);
    cr_assert_eq(hits_role + hits_imds_creds, 0, "a GET went without a token");
    cr_assert_eq(creds_fake_stats().cs_failures, 1);
}

/* A 401 (the token expired, or IMDS restarted) fetches a fresh token and asks again, once. */
Test(creds, imds_token_fetched_again_on_401)
{
    start_chain();
    run_until(&changed_ok, 1, 10);
    cr_assert_eq(hits_put, 1);
    valid_token[0] = '\0'; /* IMDS "restarted": the held token is no longer valid */
    creds_start(cr);
    run_until(&changed_ok, 2, 10);
    cr_assert_eq(hits_put, 2);
    cr_assert_eq(hits_role, 3, "role: ok, 401, ok");
    cr_assert_eq(hits_imds_creds, 2);
}

/* ---- renewal ------------------------------------------------------------------------------ */

/*
 * Credentials of a 6 s lifetime are renewed 3 s ahead (half their lifetime; 10 min for real
 * ones), and while the renewal waits on a slow endpoint the old credentials keep serving.
 */
Test(creds, renewal_ahead_old_credentials_meanwhile)
{
    struct aws_credentials first, during, after;
    double t0;

    imds_lifetime = 6;
    start_chain();
    run_until(&changed_ok, 1, 10);
    first = creds_fake_held();
    t0 = mono_s();
    delay_ms = 1000;
    imds_lifetime = 3600;
    run_until(&hits_imds_creds, 2, 5); /* the renewal asked */
    cr_assert_leq(test_clock(), first.ac_expires_at - 2, "the renewal began too late");
    cr_assert_gt(mono_s() - t0, 0.5, "renewed at once, not ahead of expiry");
    during = creds_fake_held();
    cr_assert_str_eq(during.ac_access_key, first.ac_access_key);
    run_until(&changed_ok, 2, 5);
    after = creds_fake_held();
    cr_assert_str_neq(after.ac_access_key, first.ac_access_key);
    cr_assert_gt(after.ac_expires_at, first.ac_expires_at);
    cr_assert_eq(creds_fake_stats().cs_refreshes, 2);
    cr_assert_eq(creds_fake_stats().cs_expires_at, after.ac_expires_at);
}

/* Failures are counted and retried after 1 s, 2 s, 4 s ...; a renewal that fails keeps the
 * held credentials until they expire, and never past. */
Test(creds, failure_backoff_and_counting)
{
    char url[128];

    snprintf(url, sizeof(url), "%s/container/creds", meta_url);
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    container_status = 500;
    start_chain();
    run_until(&changed_fail, 3, 10);
    cr_assert_eq(creds_fake_stats().cs_failures, 3);
    cr_assert_eq(hits_container, 9, "each failure is 3 attempts (2 retries)");
    cr_assert_gt(fail_at[1] - fail_at[0], 0.8, "%f", fail_at[1] - fail_at[0]);
    cr_assert_lt(fail_at[1] - fail_at[0], 1.6, "%f", fail_at[1] - fail_at[0]);
    cr_assert_gt(fail_at[2] - fail_at[1], 1.8, "%f", fail_at[2] - fail_at[1]);
    cr_assert_lt(fail_at[2] - fail_at[1], 2.6, "%f", fail_at[2] - fail_at[1]);
    cr_assert_not_null(strstr(last_err, "answered 500"), "%s", last_err);
    cr_assert_null(strstr(last_err, "/container/creds"), "the path was shown: %s", last_err);

    /* It recovers: the backoff starts again from 1 s after a success. */
    container_status = 200;
    container_lifetime = 2;
    run_until(&changed_ok, 1, 6);
    cr_assert_eq(creds_fake_stats().cs_failures, 3);
    container_status = 500;
    run_until(&changed_fail, 4, 5);
    {
        struct aws_credentials ac;
        /* Still held, until the clock passes their expiry. */
        if (creds_get(cr, &ac) == 1)
            cr_assert_lt(test_clock(), ac.ac_expires_at);
        clock_offset = 5;
        cr_assert_eq(creds_get(cr, &ac), 0, "expired credentials were returned");
    }
}

/* creds_get never returns credentials past their expiry, whatever the timers did. */
Test(creds, never_expired)
{
    struct aws_credentials ac;

    imds_lifetime = 900;
    start_chain();
    run_until(&changed_ok, 1, 10);
    ac = creds_fake_held();
    clock_offset = ac.ac_expires_at - test_clock() - 1;
    cr_assert_eq(creds_get(cr, &ac), 1, "one second before expiry");
    clock_offset += 1;
    cr_assert_eq(creds_get(cr, &ac), 0, "at the expiry");
    clock_offset += 100;
    cr_assert_eq(creds_get(cr, &ac), 0);
    cr_assert_neq(creds_fake_stats().cs_expires_at, 0);

    /* Environment credentials past AWS_CREDENTIAL_EXPIRATION are never held. */
    creds_destroy(cr);
    clock_offset = 0;
    set_env("AWS_ACCESS_KEY_ID", "AKIAENV");
    set_env("AWS_SECRET_ACCESS_KEY", "envsecret");
    set_env("AWS_CREDENTIAL_EXPIRATION", "2001-01-01T00:00:00Z");
    start_chain();
    run_until(&changed_fail, 1, 5);
    cr_assert_eq(creds_get(cr, &ac), 0);
}

/* ---- the log ------------------------------------------------------------------------------- */

/* Every line the chain logged, successes and failures of every source: no secret in any. */
Test(creds, no_secret_in_the_log)
{
    static const char *const secrets[] = {
        IMDS_SECRET,  IMDS_SESSION, CONTAINER_SECRET, STS_SECRET, STS_SESSION, "imds-token-",
        "jwt-secret", "pod-secret", "ASIA",           "AKIAENV",  "envsecret"};
    char logpath[128], path[128], url[128], *text;
    int saved = dup(STDERR_FILENO), fd;
    FILE *f;
    long n;

    snprintf(logpath, sizeof(logpath), "%s/log", home);
    fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_neq(fd, -1);
    cr_assert_neq(dup2(fd, STDERR_FILENO), -1);
    close(fd);
    log_setup(LOG_FORMAT_TEXT, LOG_DEBUG);

    /* IMDS: success, region, then a failure of its renewal. */
    start_chain();
    run_until(&changed_ok, 1, 10);
    creds_imds_region(cr, on_region, NULL);
    run_until(&region_calls, 1, 5);
    imds_v1_only = 1;
    valid_token[0] = '\0';
    creds_start(cr);
    run_until(&changed_fail, 1, 10);
    creds_destroy(cr);

    /* The container endpoint with a token, success then 500 (retried: upstream-retry lines). */
    snprintf(url, sizeof(url), "%s/container/creds", meta_url);
    set_env("AWS_CONTAINER_CREDENTIALS_FULL_URI", url);
    set_env("AWS_CONTAINER_AUTHORIZATION_TOKEN", "pod-secret-token");
    start_chain();
    run_until(&changed_ok, 2, 5);
    container_status = 500;
    creds_start(cr);
    run_until(&changed_fail, 2, 5);
    creds_destroy(cr);

    /* Web identity, success then STS's error. */
    snprintf(path, sizeof(path), "%s/jwt", home);
    write_file(path, "jwt-secret-token");
    set_env("AWS_WEB_IDENTITY_TOKEN_FILE", path);
    set_env("AWS_ROLE_ARN", "arn:aws:iam::1:role/web");
    start_chain();
    run_until(&changed_ok, 3, 5);
    sts_status = 403;
    creds_start(cr);
    run_until(&changed_fail, 3, 5);
    creds_destroy(cr);

    /* The environment, and one key alone. */
    set_env("AWS_ACCESS_KEY_ID", "AKIAENV");
    set_env("AWS_SECRET_ACCESS_KEY", "envsecret");
    start_chain();
    run_until(&changed_ok, 4, 5);
    creds_destroy(cr);
    set_env("AWS_ACCESS_KEY_ID", "");
    start_chain();
    run_for(200);

    log_flush();
    dup2(saved, STDERR_FILENO);
    close(saved);
    f = fopen(logpath, "r");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)n + 1);
    cr_assert_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    cr_assert_not_null(strstr(text, "aws-credentials source=imds"), "%s", text);
    cr_assert_not_null(strstr(text, "aws-credentials-failed source=web-identity"), "%s", text);
    cr_assert_not_null(strstr(text, "upstream-retry"), "%s", text);
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        cr_assert_null(strstr(text, secrets[i]), "%s is in the log:\n%s", secrets[i], text);
    free(text);
}
