/* Outage classification (policy_outage.h). */
#include "config.h"

#include "policy_outage.h"

enum outage_class outage_classify(enum outage_via via, int status)
{
    if (via == OUTAGE_VIA_NETWORK)
        return OUTCOME_OUTAGE;
    if (via != OUTAGE_VIA_HTTP)
        return OUTCOME_OTHER;
    if (status >= 200 && status < 300)
        return OUTCOME_OK;
    if (status == 404)
        return OUTCOME_NOT_FOUND;
    if (status == 401 || status == 403)
        return OUTCOME_DENIED;
    if (status == 429 || status >= 500)
        return OUTCOME_OUTAGE;
    if (status >= 400)
        return OUTCOME_REFUSED;
    return OUTCOME_OTHER;
}

int outage_is_refusal(enum outage_class c)
{
    return c == OUTCOME_NOT_FOUND || c == OUTCOME_DENIED || c == OUTCOME_REFUSED;
}
