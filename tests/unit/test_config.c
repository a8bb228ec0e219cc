/* test_config.c - defaults, the file reader, environment overrides and bad values. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

static void clear_env(void)
{
    unsetenv("ITL_PULUMI_TOKEN");
    unsetenv("ITL_PULUMI_ORG");
    unsetenv("ITL_PULUMI_ENABLED");
    unsetenv("PULUMI_STATE_LEASE_TTL");
    unsetenv("PULUMI_STATE_CONFIG");
    unsetenv("PULUMI_STATE_MAX_BODY_BYTES");
    unsetenv("ITL_PULUMI_TOKEN_FILE");
}

START_TEST(test_defaults)
{
    clear_env();
    Config c;
    char err[256];
    ck_assert(config_load(&c, NULL, err, sizeof(err)));
    ck_assert_str_eq(c.org, "itlusions");
    ck_assert(c.enabled);
    ck_assert_int_eq(c.lease_ttl, 300);
    ck_assert_str_eq(c.operator_token, "");
    config_free(&c);
}
END_TEST

START_TEST(test_file_and_env)
{
    clear_env();
    char path[] = "/tmp/ps-config-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# comment\n[server]\norg = acme\nlease_ttl = 60\nmax_body_bytes = 2m\nbase_path = \"/pulumi/\"\n");
    fclose(f);
    setenv("ITL_PULUMI_ORG", "fromenv", 1);
    setenv("ITL_PULUMI_ENABLED", "false", 1);
    Config c;
    char err[256];
    ck_assert(config_load(&c, path, err, sizeof(err)));
    ck_assert_str_eq(c.org, "fromenv");
    ck_assert(!c.enabled);
    ck_assert_int_eq(c.lease_ttl, 60);
    ck_assert_int_eq(c.max_body_bytes, 2 * 1024 * 1024);
    ck_assert_str_eq(c.base_path, "/pulumi");
    config_free(&c);
    unlink(path);
    clear_env();
}
END_TEST

START_TEST(test_bad)
{
    clear_env();
    Config c;
    char err[256];
    setenv("PULUMI_STATE_LEASE_TTL", "abc", 1);
    ck_assert(!config_load(&c, NULL, err, sizeof(err)));
    ck_assert(strstr(err, "lease_ttl") != NULL);
    config_free(&c);
    setenv("PULUMI_STATE_LEASE_TTL", "1", 1);
    ck_assert(!config_load(&c, NULL, err, sizeof(err)));
    config_free(&c);
    clear_env();
    ck_assert(!config_load(&c, "/nonexistent/ps.conf", err, sizeof(err)));
    config_free(&c);
    ck_assert(config_load(&c, NULL, err, sizeof(err)));
    ck_assert(!config_set(&c, "nosuch", "1", err, sizeof(err)));
    ck_assert(!config_set(&c, "enabled", "maybe", err, sizeof(err)));
    config_free(&c);
}
END_TEST

START_TEST(test_token_file)
{
    clear_env();
    char path[] = "/tmp/ps-token-XXXXXX";
    int fd = mkstemp(path);
    ck_assert(write(fd, "  s3cret-operator\n", 18) == 18);
    close(fd);
    Config c;
    char err[256];
    setenv("ITL_PULUMI_TOKEN_FILE", path, 1);
    ck_assert(config_load(&c, NULL, err, sizeof(err)));
    ck_assert_str_eq(c.operator_token, "s3cret-operator");
    config_free(&c);
    setenv("ITL_PULUMI_TOKEN", "given", 1); /* the value itself wins over the file */
    ck_assert(config_load(&c, NULL, err, sizeof(err)));
    ck_assert_str_eq(c.operator_token, "given");
    config_free(&c);
    unsetenv("ITL_PULUMI_TOKEN");
    unlink(path);
    ck_assert(!config_load(&c, NULL, err, sizeof(err)));
    ck_assert(strstr(err, "operator_token_file") != NULL);
    config_free(&c);
    clear_env();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_file_and_env);
    tcase_add_test(tc, test_bad);
    tcase_add_test(tc, test_token_file);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_NOFORK);
}
