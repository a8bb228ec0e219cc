/* fuzz_config.c - the config file parser and every setting's value parser. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/fuzz-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    Config cfg;
    char err[512];
    config_load(&cfg, path, err, sizeof(err));
    config_free(&cfg); /* what config_load filled, whether it succeeded or not (as main does) */
    unlink(path);
    return 0;
}
