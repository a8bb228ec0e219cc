/* apierror.c - filling ApiError values. */
#include "apierror.h"

#include <stdarg.h>
#include <stdio.h>

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
