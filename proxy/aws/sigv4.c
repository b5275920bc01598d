/* AWS Signature Version 4: canonical request, string to sign, signature (OpenSSL HMAC). */
#include "config.h"

#include "sigv4.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sigv4-int.h"
#include "util.h"

#define SIGV4_ALGORITHM "AWS4-HMAC-SHA256"
#define SIGV4_TERMINATOR "aws4_request"
#define SIGV4_EMPTY_HASH "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_FD_BUF (64 * 1024)

static int check_amz_date(const char *d)
{
    size_t i;

    if (strlen(d) != SIGV4_AMZ_DATE_LEN || d[8] != 'T' || d[15] != 'Z')
        return -1;
    for (i = 0; i < 15; i++)
        if (i != 8 && (d[i] < '0' || d[i] > '9'))
            return -1;
    return 0;
}

/* A region or service name: 1 to SIGV4_MAX_SCOPE_PART of [A-Za-z0-9._-]. */
static int check_scope_part(const char *what, const char *s, char **err)
{
    size_t i, n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > SIGV4_MAX_SCOPE_PART) {
        sigv4_set_err(err, "sigv4: the %s must have 1 to %d bytes", what, SIGV4_MAX_SCOPE_PART);
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!sigv4_is_unreserved(c) || c == '~') {
            sigv4_set_err(err, "sigv4: the %s has a byte outside [A-Za-z0-9._-] at %zu", what, i);
            return -1;
        }
    }
    return 0;
}

static int check_payload_hash(const char *h)
{
    size_t i;

    if (strcmp(h, SIGV4_UNSIGNED_PAYLOAD) == 0)
        return 0;
    if (strlen(h) != SIGV4_HEX_LEN)
        return -1;
    for (i = 0; i < SIGV4_HEX_LEN; i++)
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return -1;
    return 0;
}

/* HMAC-SHA256 of <n> bytes at <data> with <key> (<keylen>) into <out>. */
static int hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                       unsigned char out[SIGV4_KEY_LEN])
{
    unsigned int len = 0;

    if (HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len) == NULL || len != SIGV4_KEY_LEN)
        return -1;
    return 0;
}

int sigv4_amz_date(time_t t, char out[SIGV4_AMZ_DATE_LEN + 1])
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return -1;
    if (strftime(out, SIGV4_AMZ_DATE_LEN + 1, "%Y%m%dT%H%M%SZ", &tm) != SIGV4_AMZ_DATE_LEN)
        return -1;
    return 0;
}

int sigv4_signing_key(const char *secret, const char *date8, const char *region,
                      const char *service, unsigned char key[SIGV4_KEY_LEN], char **err)
{
    unsigned char k_date[SIGV4_KEY_LEN], k_region[SIGV4_KEY_LEN], k_service[SIGV4_KEY_LEN];
    char *k_secret = NULL;
    size_t sn, i;
    int rc = -1;

    if (secret == NULL || (sn = strlen(secret)) == 0 || sn > SIGV4_MAX_VALUE) {
        sigv4_set_err(err, "sigv4: the secret must have 1 to %d bytes", SIGV4_MAX_VALUE);
        goto out;
    }
    if (date8 == NULL || strlen(date8) != 8) {
        sigv4_set_err(err, "sigv4: the scope's date is not YYYYMMDD");
        goto out;
    }
    for (i = 0; i < 8; i++) {
        if (date8[i] < '0' || date8[i] > '9') {
            sigv4_set_err(err, "sigv4: the scope's date is not YYYYMMDD");
            goto out;
        }
    }
    if (check_scope_part("region", region, err) == -1 ||
        check_scope_part("service", service, err) == -1)
        goto out;
    k_secret = xmalloc(sn + 5);
    memcpy(k_secret, "AWS4", 4);
    memcpy(k_secret + 4, secret, sn + 1);
    if (hmac_sha256(k_secret, sn + 4, date8, 8, k_date) == -1 ||
        hmac_sha256(k_date, sizeof(k_date), region, strlen(region), k_region) == -1 ||
        hmac_sha256(k_region, sizeof(k_region), service, strlen(service), k_service) == -1 ||
        hmac_sha256(k_service, sizeof(k_service), SIGV4_TERMINATOR, strlen(SIGV4_TERMINATOR),
                    key) == -1) {
        sigv4_set_err(err, "sigv4: HMAC-SHA256 failed");
        OPENSSL_cleanse(key, SIGV4_KEY_LEN);
        goto out;
    }
    rc = 0;
out:
    if (k_secret != NULL) {
        OPENSSL_cleanse(k_secret, sn + 4);
        free(k_secret);
    }
    OPENSSL_cleanse(k_date, sizeof(k_date));
    OPENSSL_cleanse(k_region, sizeof(k_region));
    OPENSSL_cleanse(k_service, sizeof(k_service));
    return rc;
}

void sigv4_signed_free(struct sigv4_signed *s)
{
    if (s == NULL)
        return;
    free(s->sg_canonical_request);
    free(s->sg_string_to_sign);
    free(s->sg_authorization);
    free(s->sg_signed_headers);
    free(s->sg_token);
    memset(s, 0, sizeof(*s));
}

/* The access key: 1 to SIGV4_MAX_NAME letters and digits (AKIA..., ASIA...). */
static int check_access_key(const char *k, char **err)
{
    size_t i, n = k != NULL ? strlen(k) : 0;

    if (n == 0 || n > SIGV4_MAX_NAME) {
        sigv4_set_err(err, "sigv4: the access key must have 1 to %d bytes", SIGV4_MAX_NAME);
        return -1;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            sigv4_set_err(err, "sigv4: the access key has a byte outside [A-Za-z0-9] at %zu", i);
            return -1;
        }
    }
    return 0;
}

/*
 * Signing, as AWS documents it ("Create a signed AWS API request"): the canonical request
 * (method, URI, query, headers, signed header names, payload hash, one per line), the string
 * to sign (algorithm, date, scope, SHA-256 of the canonical request), and the signature, the
 * HMAC of the string to sign under the key derived for the scope's day.
 */
int sigv4_sign(const struct sigv4_request *rq, const struct sigv4_credentials *cr,
               const struct sigv4_scope *sc, struct sigv4_signed *out, char **err)
{
    struct sbuf creq = {0}, headers = {0}, names = {0}, sts = {0};
    unsigned char derived[SIGV4_KEY_LEN], md[EVP_MAX_MD_SIZE], sig[SIGV4_KEY_LEN];
    const unsigned char *key;
    char date8[9], creq_hash[SIGV4_HEX_LEN + 1];
    const char *payload, *token;
    unsigned int mdlen = 0;
    size_t i;
    int rc = -1, have_derived = 0;

    memset(out, 0, sizeof(*out));
    if (rq == NULL || cr == NULL || sc == NULL || rq->sr_method == NULL || rq->sr_path == NULL) {
        sigv4_set_err(err, "sigv4: no request, credentials, scope, method or path");
        goto out;
    }
    if (check_access_key(cr->cr_access_key, err) == -1)
        goto out;
    if (sc->sc_amz_date != NULL) {
        if (check_amz_date(sc->sc_amz_date) == -1) {
            sigv4_set_err(err, "sigv4: the date is not YYYYMMDDTHHMMSSZ");
            goto out;
        }
        memcpy(out->sg_amz_date, sc->sc_amz_date, SIGV4_AMZ_DATE_LEN + 1);
    } else if (sigv4_amz_date(sc->sc_time, out->sg_amz_date) == -1) {
        sigv4_set_err(err, "sigv4: the time %lld is out of range", (long long)sc->sc_time);
        goto out;
    }
    memcpy(date8, out->sg_amz_date, 8);
    date8[8] = '\0';
    if (check_scope_part("region", sc->sc_region, err) == -1 ||
        check_scope_part("service", sc->sc_service, err) == -1)
        goto out;
    payload = rq->sr_payload_hash != NULL ? rq->sr_payload_hash : SIGV4_EMPTY_HASH;
    if (check_payload_hash(payload) == -1) {
        sigv4_set_err(err, "sigv4: the payload hash is neither 64 lowercase hex digits nor %s",
                      SIGV4_UNSIGNED_PAYLOAD);
        goto out;
    }
    for (i = 0; rq->sr_method[i] != '\0'; i++) {
        if (!sigv4_is_tchar((unsigned char)rq->sr_method[i]) || i >= SIGV4_MAX_NAME) {
            sigv4_set_err(err, "sigv4: the method is not a token of at most %d bytes",
                          SIGV4_MAX_NAME);
            goto out;
        }
    }
    if (i == 0) {
        sigv4_set_err(err, "sigv4: the method is empty");
        goto out;
    }

    /* What the signer adds, signed with the rest. */
    out->sg_added[out->sg_nadded].sh_name = "X-Amz-Date";
    out->sg_added[out->sg_nadded++].sh_value = out->sg_amz_date;
    token = cr->cr_session_token;
    if (token != NULL && token[0] != '\0') {
        out->sg_token = xstrdup(token);
        out->sg_added[out->sg_nadded].sh_name = "X-Amz-Security-Token";
        out->sg_added[out->sg_nadded++].sh_value = out->sg_token;
    }
    if (rq->sr_flags & SIGV4_CONTENT_SHA256) {
        str_copy(out->sg_content_sha256, sizeof(out->sg_content_sha256), payload);
        out->sg_added[out->sg_nadded].sh_name = "X-Amz-Content-Sha256";
        out->sg_added[out->sg_nadded++].sh_value = out->sg_content_sha256;
    }

    sigv4_sb_adds(&creq, rq->sr_method);
    sigv4_sb_addc(&creq, '\n');
    if (sigv4_canonical_uri(&creq, rq->sr_path, rq->sr_flags, err) == -1)
        goto out;
    sigv4_sb_addc(&creq, '\n');
    if (sigv4_canonical_query(&creq, rq->sr_query, err) == -1)
        goto out;
    sigv4_sb_addc(&creq, '\n');
    if (sigv4_canonical_headers(&headers, &names, rq, cr, out->sg_added, out->sg_nadded, err) == -1)
        goto out;
    sigv4_sb_add(&creq, headers.sb_p != NULL ? headers.sb_p : "", headers.sb_len);
    sigv4_sb_addc(&creq, '\n');
    sigv4_sb_add(&creq, names.sb_p != NULL ? names.sb_p : "", names.sb_len);
    sigv4_sb_addc(&creq, '\n');
    sigv4_sb_adds(&creq, payload);

    if (EVP_Digest(creq.sb_p, creq.sb_len, md, &mdlen, EVP_sha256(), NULL) != 1) {
        sigv4_set_err(err, "sigv4: SHA-256 failed");
        goto out;
    }
    sigv4_hex(md, mdlen, creq_hash);
    sigv4_sb_adds(&sts, SIGV4_ALGORITHM "\n");
    sigv4_sb_adds(&sts, out->sg_amz_date);
    sigv4_sb_addc(&sts, '\n');
    sigv4_sb_adds(&sts, date8);
    sigv4_sb_addc(&sts, '/');
    sigv4_sb_adds(&sts, sc->sc_region);
    sigv4_sb_addc(&sts, '/');
    sigv4_sb_adds(&sts, sc->sc_service);
    sigv4_sb_adds(&sts, "/" SIGV4_TERMINATOR "\n");
    sigv4_sb_adds(&sts, creq_hash);

    if (cr->cr_signing_key != NULL) {
        key = cr->cr_signing_key;
    } else {
        if (sigv4_signing_key(cr->cr_secret, date8, sc->sc_region, sc->sc_service, derived, err) ==
            -1)
            goto out;
        have_derived = 1;
        key = derived;
    }
    if (hmac_sha256(key, SIGV4_KEY_LEN, sts.sb_p, sts.sb_len, sig) == -1) {
        sigv4_set_err(err, "sigv4: HMAC-SHA256 failed");
        goto out;
    }
    sigv4_hex(sig, sizeof(sig), out->sg_signature);
    out->sg_signed_headers = sigv4_sb_take(&names);
    out->sg_canonical_request = sigv4_sb_take(&creq);
    out->sg_string_to_sign = sigv4_sb_take(&sts);
    out->sg_authorization = xasprintf(SIGV4_ALGORITHM " Credential=%s/%s/%s/%s/" SIGV4_TERMINATOR
                                                      ", SignedHeaders=%s, Signature=%s",
                                      cr->cr_access_key, date8, sc->sc_region, sc->sc_service,
                                      out->sg_signed_headers, out->sg_signature);
    rc = 0;
out:
    if (have_derived)
        OPENSSL_cleanse(derived, sizeof(derived));
    free(creq.sb_p);
    free(headers.sb_p);
    free(names.sb_p);
    free(sts.sb_p);
    if (rc == -1)
        sigv4_signed_free(out);
    return rc;
}

void sigv4_payload_hash(const void *data, size_t len, char out[SIGV4_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    if (EVP_Digest(len > 0 ? data : "", len, md, &n, EVP_sha256(), NULL) != 1 ||
        n != SIGV4_HEX_LEN / 2)
        abort(); /* SHA-256 in the default provider does not fail but out of memory */
    sigv4_hex(md, n, out);
}

int sigv4_payload_hash_fd(int fd, int64_t offset, int64_t length, char out[SIGV4_HEX_LEN + 1],
                          char **err)
{
    EVP_MD_CTX *ctx = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char *buf = NULL;
    int64_t done = 0;
    int rc = -1;

    if (offset < 0 || length < 0 || offset > INT64_MAX - length) {
        sigv4_set_err(err, "sigv4: a bad file range (%lld, %lld)", (long long)offset,
                      (long long)length);
        goto out;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        sigv4_set_err(err, "sigv4: SHA-256 failed");
        goto out;
    }
    buf = xmalloc(SIGV4_FD_BUF);
    while (done < length) {
        size_t want = length - done < SIGV4_FD_BUF ? (size_t)(length - done) : SIGV4_FD_BUF;
        ssize_t got = pread(fd, buf, want, (off_t)(offset + done));

        if (got == -1) {
            if (errno == EINTR)
                continue;
            sigv4_set_err(err, "sigv4: reading the body at %lld: %s", (long long)(offset + done),
                          strerror(errno));
            goto out;
        }
        if (got == 0) {
            sigv4_set_err(err, "sigv4: the body file ends at %lld, before %lld",
                          (long long)(offset + done), (long long)(offset + length));
            goto out;
        }
        if (EVP_DigestUpdate(ctx, buf, (size_t)got) != 1) {
            sigv4_set_err(err, "sigv4: SHA-256 failed");
            goto out;
        }
        done += got;
    }
    if (EVP_DigestFinal_ex(ctx, md, &n) != 1) {
        sigv4_set_err(err, "sigv4: SHA-256 failed");
        goto out;
    }
    sigv4_hex(md, n, out);
    rc = 0;
out:
    free(buf);
    EVP_MD_CTX_free(ctx);
    return rc;
}
