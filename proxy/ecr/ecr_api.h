/*
 * The ECR API (AWS JSON 1.1, X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.<Op>) on the
 * upstream transport: each call is one POST of a JSON object, signed with SigV4 (service
 * "ecr") afresh on every attempt from the credential chain's current keys. Connect errors and
 * 5xx are retried by the transport; ThrottlingException (a 400) here, with backoff. Error
 * types come from x-amzn-ErrorType, else the body's __type.
 */
#ifndef ECR_API_H
#define ECR_API_H

#include <jansson.h>
#include <stdint.h>

struct creds;
struct ecr_api;
struct ecr_call;
struct event_base;
struct transport;

#define ECR_API_TARGET_PREFIX "AmazonEC2ContainerRegistry_V20150921."
#define ECR_API_MAX_THROTTLE_RETRIES 5

/* How a call ended; valid during the callback only. */
struct ecr_api_result {
    int ok;              /* a 2xx answer with a JSON object body */
    int status;          /* HTTP status, 0 when no answer came */
    const char *type;    /* the AWS error type ("RepositoryNotFoundException"), "" when none */
    const char *message; /* AWS's message or the transport's reason, "" when none */
    json_t *body;        /* the parsed answer (borrowed), NULL when not JSON */
};

typedef void (*ecr_api_fn)(void *arg, const struct ecr_api_result *r);

/*
 * A client for the API at <endpoint> ("https://api.ecr.us-east-1.amazonaws.com", borrowed)
 * in <region> (copied), signing with <cr> (borrowed), sending on <tp> (borrowed). <clock>
 * gives the signing time (seconds; NULL: util_now). Returns NULL with *err (caller frees)
 * for an endpoint that is no http(s) URL.
 */
struct ecr_api *ecr_api_create(struct event_base *base, struct transport *tp, struct creds *cr,
                               const char *endpoint, const char *region, int64_t (*clock)(void),
                               char **err);
/* Cancel every call (no callbacks) and free; accepts NULL. */
void ecr_api_destroy(struct ecr_api *a);

/*
 * Call <op> ("GetAuthorizationToken") with <params> (a JSON object; the reference is
 * stolen). <cb>(<arg>, result) runs exactly once on the loop, never from inside this call,
 * unless the call is cancelled first. Returns the call, owned by the client.
 */
struct ecr_call *ecr_api_call(struct ecr_api *a, const char *op, json_t *params, ecr_api_fn cb,
                              void *arg);
/* Stop <c>; its callback will not run. Not from inside that callback. */
void ecr_call_cancel(struct ecr_call *c);

struct ecr_api_stats {
    uint64_t as_calls;     /* calls made */
    uint64_t as_failed;    /* calls that ended in an error */
    uint64_t as_throttled; /* ThrottlingException answers (each retried while allowed) */
    uint64_t as_unsigned;  /* attempts not sent: no credentials held */
};
void ecr_api_get_stats(const struct ecr_api *a, struct ecr_api_stats *out);

/* "Type:http://internal..." or "com.amazonaws.ecr#Type" → "Type" into <out>. */
void ecr_api_error_type(const char *raw, char *out, size_t size);

#endif
