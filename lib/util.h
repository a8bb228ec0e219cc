/* util.h - memory helpers that abort on OOM, a growable byte buffer, and the logger. */
#ifndef PS_UTIL_H
#define PS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* new: a formatted string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer; always NUL-terminated past len. */
typedef struct Buf {
    char *data;
    size_t len;
    size_t cap;
} Buf;

void buf_init(Buf *b);
void buf_reserve(Buf *b, size_t extra);
void buf_append(Buf *b, const void *data, size_t n);
void buf_puts(Buf *b, const char *s);
void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* steals: hands the buffer's memory to the caller and resets b. */
char *buf_steal(Buf *b, size_t *len);
void buf_free(Buf *b);

typedef enum { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR } LogLevel;
void log_set_level(LogLevel level);
void log_set_program(const char *name);
/* One JSON object per line ({time, level, program, pid, context?, message}) instead of text. */
void log_set_json(bool on);
/* Append the log to path (NULL or "": stay on stderr). False if it cannot be opened. */
bool log_set_file(const char *path);
/* This thread's log context (a request id, a deployment id; "" or NULL clears it): every line the
 * thread logs from then on starts with "[context] ". */
void log_set_context(const char *id);
const char *log_get_context(void);
void log_msg(LogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

/* Format into the caller's error buffer err[0..errlen) (nothing when err is NULL or errlen 0). */
void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Milliseconds on the monotonic clock, for durations. */
double mono_ms(void);

/* Hex helpers. out must hold 2*len+1 bytes. */
void hex_encode(const unsigned char *in, size_t len, char *out);
/* The value of hex digit c (either case), or -1. */
int hex_digit(int c);
/* Decode len hex digits (len even) into len/2 bytes at out; false on an odd length or a non-digit. */
bool hex_decode(const char *s, size_t len, unsigned char *out);
/* Percent-decode s[0..n) into a new string ('+' is a space in query strings only); NULL on bad
 * escapes or a decoded NUL. */
char *url_decode(const char *s, size_t n, bool plus_is_space);
/* Parse s[0..len) (len < 0: up to the NUL) as a plain decimal integer ('-'? digits, nothing else:
 * no sign '+', no spaces, no suffix) within [min, max]; false on anything else, overflow included. */
bool parse_int64(const char *s, long len, long long min, long long max, long long *out);

/* A new random (version 4) UUID in canonical lowercase text (libuuid). */
void uuid_new(char out[37]);

/* Constant-time comparison of two NUL-terminated strings (lengths may leak). */
bool str_eq_const_time(const char *a, const char *b);

#endif
