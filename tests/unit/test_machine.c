/* test_machine.c - the machine API's pure rules: roles, MAC addresses, host names, addresses, EK
 * fingerprints and signed image URLs. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "machine.h"
#include "unit.h"

START_TEST(test_roles_and_macs)
{
    ck_assert(machine_role_valid("controlplane") && machine_role_valid("worker-infra"));
    ck_assert(machine_role_valid("worker-app"));
    ck_assert(!machine_role_valid("worker") && !machine_role_valid("") && !machine_role_valid(NULL));
    char m[18];
    ck_assert(machine_mac_normalize("52:54:00:AB:cd:EF", m));
    ck_assert_str_eq(m, "52:54:00:ab:cd:ef");
    ck_assert(machine_mac_normalize("52-54-00-ab-cd-ef", m));
    ck_assert_str_eq(m, "52:54:00:ab:cd:ef");
    ck_assert(!machine_mac_normalize("52:54-00:ab:cd:ef", m)); /* mixed separators */
    ck_assert(!machine_mac_normalize("52:54:00:ab:cd", m));
    ck_assert(!machine_mac_normalize("52:54:00:ab:cd:eg", m));
    ck_assert(!machine_mac_normalize("00:00:00:00:00:00", m));
    ck_assert(!machine_mac_normalize("5254.00ab.cdef.", m));
    ck_assert(!machine_mac_normalize(NULL, m));
}
END_TEST

START_TEST(test_hostnames_and_addresses)
{
    ck_assert(machine_fqdn_valid("cp-1.dc1.example.com"));
    ck_assert(machine_fqdn_valid("cp-1.example.com."));
    ck_assert(machine_fqdn_valid("a.b"));
    ck_assert(!machine_fqdn_valid("localhost"));
    ck_assert(!machine_fqdn_valid("-a.example.com"));
    ck_assert(!machine_fqdn_valid("a-.example.com"));
    ck_assert(!machine_fqdn_valid("a..example.com"));
    ck_assert(!machine_fqdn_valid("a_b.example.com"));
    ck_assert(!machine_fqdn_valid("10.0.0.1"));
    ck_assert(!machine_fqdn_valid(""));
    ck_assert(!machine_fqdn_valid("."));
    char label[80];
    memset(label, 'a', 64);
    strcpy(label + 64, ".example.com");
    ck_assert(!machine_fqdn_valid(label)); /* a 64-character label */
    char ip[46];
    ck_assert(machine_ip_normalize("10.1.2.3", ip));
    ck_assert_str_eq(ip, "10.1.2.3");
    ck_assert(machine_ip_normalize("FD00:0:0::1", ip));
    ck_assert_str_eq(ip, "fd00::1");
    ck_assert(!machine_ip_normalize("10.1.2.300", ip));
    ck_assert(!machine_ip_normalize("10.1.2", ip));
    ck_assert(!machine_ip_normalize("host", ip));
}
END_TEST

START_TEST(test_fingerprint_rejects_what_is_not_a_certificate)
{
    char fp[97];
    ApiError e;
    ck_assert(!machine_ek_fingerprint("hello", fp, &e));
    ck_assert_int_eq(e.status, 400);
    ck_assert(!machine_ek_fingerprint("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", fp, &e));
    ck_assert_int_eq(e.status, 400);
    ck_assert(!machine_ek_fingerprint(NULL, fp, &e));
}
END_TEST

START_TEST(test_signed_image_urls)
{
    unsigned char key[CRYPTO_KEY_LEN], other[CRYPTO_KEY_LEN];
    memset(key, 7, sizeof(key));
    memset(other, 8, sizeof(other));
    const char *id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    char *url = machine_iso_url("https://img.example.com/f", key, id, 2000000000);
    const char *prefix = "https://img.example.com/f/0f8fad5b-d9cb-469f-a165-70867728950e.iso?expires=2000000000&"
                         "signature=";
    ck_assert(!strncmp(url, prefix, strlen(prefix)) && strlen(url) == strlen(prefix) + 64);
    char *got = NULL;
    long long exp = 0;
    const char *why = NULL;
    ck_assert(machine_iso_check(url, key, 1000, &got, &exp, &why));
    ck_assert_str_eq(got, id);
    ck_assert(exp == 2000000000 && why == NULL);
    free(got);
    /* Expired: the signature holds, the time does not. */
    ck_assert(!machine_iso_check(url, key, 2000000000, &got, &exp, &why));
    ck_assert_str_eq(why, "the URL has expired");
    free(got);
    ck_assert(!machine_iso_check(url, other, 1000, &got, &exp, &why));
    ck_assert(got == NULL && !strcmp(why, "the signature does not match"));
    char *longer = xasprintf("%s0", url);
    ck_assert(!machine_iso_check(longer, key, 1000, NULL, &exp, &why));
    char *moved = strdup(url);
    strstr(moved, "expires=2")[8] = '3';
    ck_assert(!machine_iso_check(moved, key, 1000, NULL, &exp, &why));
    ck_assert(!machine_iso_check("x.iso?expires=1&signature=00", key, 1000, NULL, &exp, &why));
    ck_assert(!machine_iso_check(NULL, key, 1000, NULL, &exp, &why));
    free(moved);
    free(longer);
    free(url);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("machine");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_roles_and_macs);
    tcase_add_test(tc, test_hostnames_and_addresses);
    tcase_add_test(tc, test_fingerprint_rejects_what_is_not_a_certificate);
    tcase_add_test(tc, test_signed_image_urls);
    suite_add_tcase(s, tc);
    return unit_run(s, CK_FORK_GETENV);
}
