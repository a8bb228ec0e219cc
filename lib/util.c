/* util.c - allocation that aborts on OOM, Buf, and a thread-safe stderr logger. */
#include "util.h"

#include <limits.h>

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <uuid/uuid.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
    fprintf(stderr, "out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    Buf b;
    va_list ap;
    buf_init(&b);
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(&b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b.data, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b.len = (size_t)n;
    return b.data;
}

void buf_init(Buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void buf_reserve(Buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    /* Double (amortised appends), but a single big reservation gets exactly what it asks for. */
    size_t cap = b->cap ? b->cap * 2 : 256;
    if (cap < need)
        cap = need;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void buf_append(Buf *b, const void *data, size_t n)
{
    buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void buf_puts(Buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_printf(Buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *buf_steal(Buf *b, size_t *len)
{
    if (!b->data)
        buf_reserve(b, 0), b->data[0] = '\0';
    char *p = b->data;
    if (len)
        *len = b->len;
    buf_init(b);
    return p;
}

void buf_free(Buf *b)
{
    free(b->data);
    buf_init(b);
}

static LogLevel log_level = LOG_INFO;
static const char *log_program = "pulumi-state";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_level(LogLevel level)
{
    log_level = level;
}

void log_set_program(const char *name)
{
    log_program = name;
}

static bool log_json;

bool log_set_file(const char *path)
{
    if (!path || !*path)
        return true;
    return freopen(path, "a", stderr) != NULL;
}

void log_set_json(bool on)
{
    log_json = on;
}

/* s as the inside of a JSON string. */
static void json_escape_to(Buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            buf_puts(b, "\\n");
        else if (*p < 0x20 || *p == 0x7f)
            buf_printf(b, "\\u%04x", *p);
        else
            buf_append(b, (const char *)p, 1);
    }
}

/* The context of what this thread is doing (a request id, a deployment id), set once per unit of
 * work, so every line logged from anywhere below carries it. */
static __thread char log_context[64];

void log_set_context(const char *id)
{
    snprintf(log_context, sizeof(log_context), "%s", id ? id : "");
}

const char *log_get_context(void)
{
    return log_context;
}

void log_msg(LogLevel level, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < log_level)
        return;
    char when[32];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    char msg[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One line, one write(2): lines of several processes sharing a pipe or file never interleave. */
    Buf line;
    buf_init(&line);
    if (log_json) {
        buf_printf(&line, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"program\":\"%s\",\"pid\":%d,", when,
                   ts.tv_nsec / 1000000, names[level], log_program, (int)getpid());
        if (log_context[0]) {
            buf_puts(&line, "\"context\":\"");
            json_escape_to(&line, log_context);
            buf_puts(&line, "\",");
        }
        buf_puts(&line, "\"message\":\"");
        json_escape_to(&line, msg);
        buf_puts(&line, "\"}\n");
    } else {
        buf_printf(&line, "%s.%03ldZ %s[%d] %s: ", when, ts.tv_nsec / 1000000, log_program, (int)getpid(),
                   names[level]);
        if (log_context[0])
            buf_printf(&line, "[%s] ", log_context);
        buf_printf(&line, "%s\n", msg);
    }
    pthread_mutex_lock(&log_lock);
    fflush(stderr);
    for (size_t off = 0; off < line.len;) {
        ssize_t n = write(STDERR_FILENO, line.data + off, line.len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    pthread_mutex_unlock(&log_lock);
    buf_free(&line);
}

void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool hex_decode(const char *s, size_t len, unsigned char *out)
{
    if (len % 2)
        return false;
    for (size_t i = 0; i < len; i += 2) {
        int hi = hex_digit((unsigned char)s[i]), lo = hex_digit((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

char *url_decode(const char *s, size_t n, bool plus_is_space)
{
    char *out = xmalloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            if (i + 2 >= n)
                goto fail;
            unsigned char byte;
            if (!hex_decode(s + i + 1, 2, &byte))
                goto fail;
            ch = (char)byte;
            if (ch == '\0')
                goto fail;
            i += 2;
        } else if (ch == '+' && plus_is_space) {
            ch = ' ';
        }
        out[j++] = ch;
    }
    out[j] = '\0';
    return out;
fail:
    free(out);
    return NULL;
}

void uuid_new(char out[37])
{
    uuid_t u;
    uuid_generate_random(u);
    uuid_unparse_lower(u, out);
}

bool str_eq_const_time(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la != lb)
        return false;
    return CRYPTO_memcmp(a, b, la) == 0;
}

double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

bool parse_int64(const char *s, long len, long long min, long long max, long long *out)
{
    if (!s)
        return false;
    size_t n = len < 0 ? strlen(s) : (size_t)len, i = 0;
    bool neg = n > 0 && s[0] == '-';
    if (neg)
        i = 1;
    if (i == n)
        return false;
    /* Accumulate as a negative number: its range is the larger one. */
    long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        int d = s[i] - '0';
        if (v < (LLONG_MIN + d) / 10)
            return false;
        v = v * 10 - d;
    }
    if (!neg) {
        if (v == LLONG_MIN)
            return false;
        v = -v;
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}
