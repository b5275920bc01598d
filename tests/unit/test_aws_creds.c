/*
 * Unit tests for proxy/aws/aws_creds.c: the shared files (credentials and config sections,
 * comments, nested settings, partial keys), the container and IMDS JSON, STS's
 * AssumeRoleWithWebIdentity XML (entities, prefixes, errors, malformed input) and ISO 8601.
 */
#include "config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_creds.h"

#define T_2026_12_01_150405 1796137445LL /* 2026-12-01T15:04:05Z */

/* ---- ISO 8601 ------------------------------------------------------------------------------ */

Test(iso8601, forms)
{
    int64_t t = 0;

    cr_assert_eq(aws_parse_iso8601("1970-01-01T00:00:00Z", &t), 0);
    cr_assert_eq(t, 0);
    cr_assert_eq(aws_parse_iso8601("2026-12-01T15:04:05Z", &t), 0);
    cr_assert_eq(t, T_2026_12_01_150405, "%lld", (long long)t);
    cr_assert_eq(aws_parse_iso8601("2026-12-01T15:04:05.123456Z", &t), 0);
    cr_assert_eq(t, T_2026_12_01_150405);
    cr_assert_eq(aws_parse_iso8601("2026-12-01T15:04:05+00:00", &t), 0);
    cr_assert_eq(t, T_2026_12_01_150405);
    cr_assert_eq(aws_parse_iso8601("2026-12-01T17:04:05+02:00", &t), 0);
    cr_assert_eq(t, T_2026_12_01_150405);
    cr_assert_eq(aws_parse_iso8601("2024-02-29T00:00:00Z", &t), 0);
    cr_assert_eq(t, 1709164800LL);
}

Test(iso8601, rejects)
{
    static const char *const bad[] = {
        "",
        "2026-12-01",
        "2026-12-01T15:04:05",
        "2026-12-01 15:04:05Z",
        "2026-13-01T15:04:05Z",
        "2025-02-29T00:00:00Z",
        "2026-12-01T24:00:00Z",
        "2026-12-01T15:04:05.Z",
        "2026-12-01T15:04:05Zjunk",
        "2026-12-01T15:04:05+0000",
        "2026-12-0xT15:04:05Z",
    };
    int64_t t;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(aws_parse_iso8601(bad[i], &t), -1, "accepted %s", bad[i]);
    cr_assert_eq(aws_parse_iso8601(NULL, &t), -1);
}

/* ---- shared files --------------------------------------------------------------------------- */

static const char credentials_file[] = "# a comment\n"
                                       "[default]\n"
                                       "aws_access_key_id = AKIADEFAULT\n"
                                       "aws_secret_access_key=secret/with+chars=\n"
                                       "\n"
                                       "; another comment\n"
                                       "[ ops ]\r\n"
                                       "AWS_ACCESS_KEY_ID = AKIAOPS\r\n"
                                       "aws_secret_access_key = opssecret\r\n"
                                       "aws_session_token = opstoken\r\n"
                                       "s3 =\n"
                                       "    max_concurrent_requests = 20\n"
                                       "[sso]\n"
                                       "sso_session = corp\n"
                                       "[half]\n"
                                       "aws_access_key_id = AKIAHALF\n";

Test(shared_file, credentials_sections)
{
    struct aws_credentials ac;
    char *err = NULL;

    memset(&ac, 0, sizeof(ac));
    cr_assert_eq(aws_parse_shared_file(credentials_file, "default", 0, &ac, &err), 1, "%s", err);
    cr_assert_str_eq(ac.ac_access_key, "AKIADEFAULT");
    cr_assert_str_eq(ac.ac_secret, "secret/with+chars=");
    cr_assert_str_empty(ac.ac_token);
    cr_assert_eq(ac.ac_expires_at, 0);
    cr_assert_str_eq(ac.ac_source, "profile");

    cr_assert_eq(aws_parse_shared_file(credentials_file, "ops", 0, &ac, &err), 1, "%s", err);
    cr_assert_str_eq(ac.ac_access_key, "AKIAOPS");
    cr_assert_str_eq(ac.ac_secret, "opssecret");
    cr_assert_str_eq(ac.ac_token, "opstoken");

    cr_assert_eq(aws_parse_shared_file(credentials_file, "nope", 0, &ac, &err), 0);
    cr_assert_eq(aws_parse_shared_file(credentials_file, "sso", 0, &ac, &err), 0);
    cr_assert_eq(aws_profile_exists(credentials_file, "sso", 0), 1);
    cr_assert_eq(aws_profile_exists(credentials_file, "nope", 0), 0);
    cr_assert_str_eq(aws_profile_unsupported(credentials_file, "sso", 0), "sso_session");
    cr_assert_null(aws_profile_unsupported(credentials_file, "ops", 0));
}

Test(shared_file, partial_keys_are_an_error_without_the_key)
{
    struct aws_credentials ac;
    char *err = NULL;

    cr_assert_eq(aws_parse_shared_file(credentials_file, "half", 0, &ac, &err), -1);
    cr_assert_not_null(err);
    cr_assert_not_null(strstr(err, "aws_secret_access_key"), "%s", err);
    cr_assert_null(strstr(err, "AKIAHALF"), "the error shows the key: %s", err);
    free(err);
}

Test(shared_file, config_sections)
{
    static const char config[] = "[default]\n"
                                 "region = eu-west-1\n"
                                 "aws_access_key_id = AKIACFGDEFAULT\n"
                                 "aws_secret_access_key = d\n"
                                 "[profile  dev ]\n"
                                 "aws_access_key_id = AKIADEV\n"
                                 "aws_secret_access_key = devsecret\n"
                                 "[dev]\n"
                                 "aws_access_key_id = AKIANOTTHIS\n"
                                 "aws_secret_access_key = x\n"
                                 "[profile role]\n"
                                 "role_arn = arn:aws:iam::1:role/r\n"
                                 "source_profile = dev\n";
    struct aws_credentials ac;
    char *err = NULL;

    cr_assert_eq(aws_parse_shared_file(config, "default", 1, &ac, &err), 1, "%s", err);
    cr_assert_str_eq(ac.ac_access_key, "AKIACFGDEFAULT");
    cr_assert_eq(aws_parse_shared_file(config, "dev", 1, &ac, &err), 1, "%s", err);
    cr_assert_str_eq(ac.ac_access_key, "AKIADEV", "a config file's [dev] is no profile");
    cr_assert_eq(aws_parse_shared_file(config, "role", 1, &ac, &err), 0);
    cr_assert_str_eq(aws_profile_unsupported(config, "role", 1), "role_arn");
    /* The same text read as a credentials file: [dev] is the profile there. */
    cr_assert_eq(aws_parse_shared_file(config, "dev", 0, &ac, &err), 1, "%s", err);
    cr_assert_str_eq(ac.ac_access_key, "AKIANOTTHIS");
}

Test(shared_file, malformed)
{
    struct aws_credentials ac;
    char *err = NULL;

    cr_assert_eq(aws_parse_shared_file("[default\nx = y\n", "default", 0, &ac, &err), -1);
    cr_assert_not_null(strstr(err, "line 1"), "%s", err);
    free(err);
    err = NULL;
    cr_assert_eq(aws_parse_shared_file("[default]\njust words\n", "default", 0, &ac, &err), -1);
    cr_assert_not_null(strstr(err, "line 2"), "%s", err);
    free(err);
}

Test(shared_file, value_too_long)
{
    char text[512];
    struct aws_credentials ac;
    char *err = NULL;

    memset(text, 0, sizeof(text));
    strncpy(text, "[default]\naws_access_key_id = ", sizeof(text) - 1);
    memset(text + strlen(text), 'A', 200);
    cr_assert_eq(aws_parse_shared_file(text, "default", 0, &ac, &err), -1);
    cr_assert_null(strstr(err, "AAAA"), "%s", err);
    free(err);
}

/* ---- credential JSON ----------------------------------------------------------------------- */

Test(creds_json, imds_and_container)
{
    static const char imds[] = "{\"Code\":\"Success\",\"LastUpdated\":\"2026-12-01T09:00:00Z\","
                               "\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"ASIAIMDS\","
                               "\"SecretAccessKey\":\"imdssecret\",\"Token\":\"imdstoken\","
                               "\"Expiration\":\"2026-12-01T15:04:05Z\"}";
    static const char container[] = "{\"AccessKeyId\":\"ASIACONT\",\"SecretAccessKey\":\"s\","
                                    "\"Token\":\"t\",\"AccountId\":\"123\","
                                    "\"Expiration\":\"2026-12-01T15:04:05+00:00\"}";
    static const char static_keys[] = "{\"AccessKeyId\":\"AKIA\",\"SecretAccessKey\":\"s\"}";
    struct aws_credentials ac;
    char *err = NULL;

    cr_assert_eq(aws_parse_creds_json(imds, strlen(imds), &ac, &err), 0, "%s", err);
    cr_assert_str_eq(ac.ac_access_key, "ASIAIMDS");
    cr_assert_str_eq(ac.ac_secret, "imdssecret");
    cr_assert_str_eq(ac.ac_token, "imdstoken");
    cr_assert_eq(ac.ac_expires_at, T_2026_12_01_150405);
    cr_assert_eq(aws_parse_creds_json(container, strlen(container), &ac, &err), 0, "%s", err);
    cr_assert_str_eq(ac.ac_access_key, "ASIACONT");
    cr_assert_eq(ac.ac_expires_at, T_2026_12_01_150405);
    cr_assert_eq(aws_parse_creds_json(static_keys, strlen(static_keys), &ac, &err), 0, "%s", err);
    cr_assert_str_empty(ac.ac_token);
    cr_assert_eq(ac.ac_expires_at, 0);
}

Test(creds_json, rejects_without_showing_values)
{
    static const char *const bad[] = {
        "not json",
        "[]",
        "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"no\"}",
        "{\"SecretAccessKey\":\"topsecret\"}",
        "{\"AccessKeyId\":\"AKIA\",\"SecretAccessKey\":42}",
        "{\"AccessKeyId\":\"AKIA\",\"SecretAccessKey\":\"topsecret\",\"Expiration\":\"soon\"}",
        "{\"AccessKeyId\":\"AKIA\",\"SecretAccessKey\":\"topsecret\",\"Token\":\"\"}",
        "{\"AccessKeyId\":\"AKIA\",\"AccessKeyId\":\"AKIB\",\"SecretAccessKey\":\"topsecret\"}",
    };
    struct aws_credentials ac;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *err = NULL;
        cr_assert_eq(aws_parse_creds_json(bad[i], strlen(bad[i]), &ac, &err), -1, "case %zu", i);
        cr_assert_not_null(err);
        cr_assert_null(strstr(err, "topsecret"), "case %zu: %s", i, err);
        free(err);
    }
}

/* ---- STS XML ------------------------------------------------------------------------------- */

static const char sts_ok[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
    "  <AssumeRoleWithWebIdentityResult>\n"
    "    <SubjectFromWebIdentityToken>system:serviceaccount:ns:sa</SubjectFromWebIdentityToken>\n"
    "    <Audience>sts.amazonaws.com</Audience>\n"
    "    <AssumedRoleUser>\n"
    "      <Arn>arn:aws:sts::123:assumed-role/r/s</Arn>\n"
    "      <AssumedRoleId>AROA:s</AssumedRoleId>\n"
    "    </AssumedRoleUser>\n"
    "    <Credentials>\n"
    "      <SessionToken>tok&amp;en/+=&#65;&#x42;</SessionToken>\n"
    "      <SecretAccessKey>sec&lt;ret</SecretAccessKey>\n"
    "      <Expiration>2026-12-01T15:04:05Z</Expiration>\n"
    "      <AccessKeyId>ASIASTS</AccessKeyId>\n"
    "    </Credentials>\n"
    "    <Provider>oidc</Provider>\n"
    "  </AssumeRoleWithWebIdentityResult>\n"
    "  <ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>\n"
    "</AssumeRoleWithWebIdentityResponse>\n";

Test(sts, credentials)
{
    struct aws_credentials ac;
    char *err = NULL;

    cr_assert_eq(aws_parse_sts_web_identity(sts_ok, strlen(sts_ok), &ac, &err), 0, "%s", err);
    cr_assert_str_eq(ac.ac_access_key, "ASIASTS");
    cr_assert_str_eq(ac.ac_secret, "sec<ret");
    cr_assert_str_eq(ac.ac_token, "tok&en/+=AB");
    cr_assert_eq(ac.ac_expires_at, T_2026_12_01_150405);
    cr_assert_str_eq(ac.ac_source, "web-identity");
}

Test(sts, prefixed_names_comments_and_cdata)
{
    static const char xml[] = "<sts:AssumeRoleWithWebIdentityResponse xmlns:sts=\"x\" a='q>'>"
                              "<!-- a > comment -->"
                              "<sts:AssumeRoleWithWebIdentityResult><sts:Credentials>"
                              "<sts:AccessKeyId>ASIAP</sts:AccessKeyId>"
                              "<sts:SecretAccessKey><![CDATA[a<b&c]]></sts:SecretAccessKey>"
                              "<sts:SessionToken>t</sts:SessionToken>"
                              "<sts:Expiration>2026-12-01T15:04:05.000Z</sts:Expiration>"
                              "</sts:Credentials></sts:AssumeRoleWithWebIdentityResult>"
                              "</sts:AssumeRoleWithWebIdentityResponse>";
    struct aws_credentials ac;
    char *err = NULL;

    cr_assert_eq(aws_parse_sts_web_identity(xml, strlen(xml), &ac, &err), 0, "%s", err);
    cr_assert_str_eq(ac.ac_access_key, "ASIAP");
    cr_assert_str_eq(ac.ac_secret, "a<b&c");
}

Test(sts, error_response)
{
    static const char xml[] =
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n"
        "  <Error>\n"
        "    <Type>Sender</Type>\n"
        "    <Code>InvalidIdentityToken</Code>\n"
        "    <Message>Token &quot;expired&quot;</Message>\n"
        "  </Error>\n"
        "  <RequestId>x</RequestId>\n"
        "</ErrorResponse>\n";
    struct aws_credentials ac;
    char *err = NULL;

    cr_assert_eq(aws_parse_sts_web_identity(xml, strlen(xml), &ac, &err), -1);
    cr_assert_str_eq(err, "STS error InvalidIdentityToken: Token \"expired\"");
    free(err);
}

Test(sts, malformed)
{
    static const char *const bad[] = {
        "",
        "plain text",
        "<a><b></a></b>",
        "<a>",
        "<a></a><b></b>",
        "<a>&unknown;</a>",
        "<a>&#0;</a>",
        "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
        "<AccessKeyId>A</AccessKeyId><SecretAccessKey>topsecret</SecretAccessKey>"
        "<Expiration>2026-12-01T15:04:05Z</Expiration></Credentials>"
        "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials>"
        "<AccessKeyId>A</AccessKeyId><SecretAccessKey>topsecret</SecretAccessKey>"
        "<SessionToken>t</SessionToken><Expiration>later</Expiration></Credentials>"
        "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        /* Credentials in the wrong place count for nothing. */
        "<R><Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>topsecret</SecretAccessKey>"
        "<SessionToken>t</SessionToken><Expiration>2026-12-01T15:04:05Z</Expiration>"
        "</Credentials></R>",
    };
    struct aws_credentials ac;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *err = NULL;
        cr_assert_eq(aws_parse_sts_web_identity(bad[i], strlen(bad[i]), &ac, &err), -1, "case %zu",
                     i);
        cr_assert_not_null(err);
        cr_assert_null(strstr(err, "topsecret"), "case %zu: %s", i, err);
        free(err);
    }
}

Test(sts, token_over_the_cap)
{
    size_t n = AWS_TOKEN_MAX + 10;
    char *xml = malloc(n + 512), *p = xml;
    struct aws_credentials ac;
    char *err = NULL;

    p += snprintf(p, 512, "<A><AssumeRoleWithWebIdentityResult><Credentials><SessionToken>");
    memset(p, 'x', n);
    p += n;
    p += snprintf(p, 512, "</SessionToken></Credentials></AssumeRoleWithWebIdentityResult></A>");
    cr_assert_eq(aws_parse_sts_web_identity(xml, (size_t)(p - xml), &ac, &err), -1);
    free(err);
    free(xml);
}
