/* apierror.c - filling ApiError values. */
#include "apierror.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

bool api_fail(ApiError *e, int status, const char *fmt, ...)
{
    if (!e)
        return false;
    va_list ap;
    va_start(ap, fmt);
    e->status = status;
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return false;
}

bool api_internal(ApiError *e)
{
    return api_fail(e, 500, "Internal server error");
}

bool api_json_into(json_t *o, Buf *out, ApiError *e)
{
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!text)
        return api_internal(e);
    buf_puts(out, text);
    free(text);
    return true;
}
