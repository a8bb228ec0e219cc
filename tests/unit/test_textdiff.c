/* test_textdiff.c - the edits textdiff finds turn a into b exactly, on boundaries between UTF-8
 * characters: fixed cases, then many random mutations of a JSON-like document. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "textdiff.h"
#include "util.h"
#include "unit.h"

/* a with the edits applied (new, NUL-terminated). */
static char *apply(const char *a, size_t alen, const char *b, const TextEdit *ed, size_t n, size_t *len)
{
    Buf out;
    buf_init(&out);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert(ed[i].start >= at && ed[i].end >= ed[i].start && ed[i].end <= alen);
        ck_assert(ed[i].bend >= ed[i].bstart);
        buf_append(&out, a + at, ed[i].start - at);
        buf_append(&out, b + ed[i].bstart, ed[i].bend - ed[i].bstart);
        at = ed[i].end;
    }
    buf_append(&out, a + at, alen - at);
    return buf_steal(&out, len);
}

static void check_pair(const char *a, size_t alen, const char *b, size_t blen, size_t max)
{
    TextEdit ed[64];
    size_t n = textdiff(a, alen, b, blen, ed, max);
    if (n > max)
        return; /* more than max edits: the caller stores the whole document */
    size_t len;
    char *got = apply(a, alen, b, ed, n, &len);
    ck_assert_uint_eq(len, blen);
    ck_assert(!memcmp(got, b, blen));
    for (size_t i = 0; i < n; i++) {
        ck_assert(ed[i].start == alen || (a[ed[i].start] & 0xC0) != 0x80);
        ck_assert(ed[i].end == alen || (a[ed[i].end] & 0xC0) != 0x80);
        ck_assert(ed[i].bstart == blen || (b[ed[i].bstart] & 0xC0) != 0x80);
        ck_assert(ed[i].bend == blen || (b[ed[i].bend] & 0xC0) != 0x80);
    }
    free(got);
}

START_TEST(test_cases)
{
    TextEdit ed[8];
    ck_assert_uint_eq(textdiff("same", 4, "same", 4, ed, 8), 0);
    ck_assert_uint_eq(textdiff("", 0, "", 0, ed, 8), 0);
    check_pair("", 0, "new", 3, 8);
    check_pair("old", 3, "", 0, 8);
    check_pair("abc", 3, "abXc", 4, 8);
    check_pair("prefix-é-suffix", strlen("prefix-é-suffix"), "prefix-è-suffix", strlen("prefix-è-suffix"), 8);
    check_pair("xé", strlen("xé"), "x€", strlen("x€"), 8);
    /* a change at the start and an insertion at the end: two edits, not the whole document */
    char a[4096], b[4200];
    memset(a, 'r', sizeof(a));
    memcpy(a, "{\"time\":\"2026-12-03T10:00:00Z\",", 31);
    memcpy(b, a, sizeof(a));
    memcpy(b + 9, "2026-12-03T10:00:07Z", 20);
    memcpy(b + 4000, "INSERTED-RESOURCE-", 18);
    memcpy(b + 4018, a + 4000, 96);
    size_t n = textdiff(a, sizeof(a), b, 4114, ed, 8);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_lt(ed[0].end - ed[0].start, 32);
    ck_assert_uint_lt(ed[1].bend - ed[1].bstart, 32);
    check_pair(a, sizeof(a), b, 4114, 8);
    ck_assert_uint_eq(textdiff("abcdefgh", 8, "Xbcdefgh", 8, ed, 0), 1); /* over max */
}
END_TEST

START_TEST(test_random_mutations)
{
    static const char *pieces[] = {"{\"urn\":\"urn:pulumi:dev::p::pulumi:Stash::r",
                                   "\"},",
                                   "\"inputs\":{\"v\":",
                                   "é",
                                   "€",
                                   "日本",
                                   "0123456789",
                                   "\"outputs\":",
                                   "]",
                                   ",",
                                   "\n    "};
    srand(42);
    for (int round = 0; round < 3000; round++) {
        Buf a;
        buf_init(&a);
        int parts = rand() % 200;
        for (int i = 0; i < parts; i++)
            buf_puts(&a, pieces[rand() % 11]);
        Buf b;
        buf_init(&b);
        buf_append(&b, a.data, a.len);
        int muts = rand() % 5;
        for (int m = 0; m < muts; m++) {
            /* replace a run of whole pieces: cut only at piece boundaries of the current text */
            size_t at = b.len ? (size_t)rand() % (b.len + 1) : 0;
            while (at < b.len && ((unsigned char)b.data[at] & 0xC0) == 0x80)
                at++;
            size_t cut = (size_t)(rand() % 40);
            size_t end = at + cut > b.len ? b.len : at + cut;
            while (end < b.len && ((unsigned char)b.data[end] & 0xC0) == 0x80)
                end++;
            Buf next;
            buf_init(&next);
            buf_append(&next, b.data, at);
            int ins = rand() % 4;
            for (int k = 0; k < ins; k++)
                buf_puts(&next, pieces[rand() % 11]);
            buf_append(&next, b.data + end, b.len - end);
            buf_free(&b);
            b = next;
        }
        check_pair(a.data ? a.data : "", a.len, b.data ? b.data : "", b.len, 1 + (size_t)(rand() % 16));
        buf_free(&a);
        buf_free(&b);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("textdiff");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_cases);
    tcase_add_test(tc, test_random_mutations);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_NOFORK);
}
