/* Access decisions (policy_access.h). */
#include "config.h"

#include "policy_access.h"

enum access_decision access_manifest(const struct access_facts *f)
{
    if (f->af_known)
        return ACCESS_SERVE;
    if (f->af_stored && f->af_indexed)
        return ACCESS_CONFIRM;
    return ACCESS_FETCH;
}

enum access_decision access_blob(const struct access_facts *f)
{
    if (f->af_stored || f->af_filling) {
        if (f->af_known || (f->af_filling && f->af_fill_ours))
            return ACCESS_SERVE;
        return ACCESS_CONFIRM;
    }
    return f->af_head ? ACCESS_ASK : ACCESS_FETCH;
}

int access_disk_admits(int64_t free_bytes, int64_t min_free)
{
    return free_bytes < 0 || free_bytes >= min_free;
}
