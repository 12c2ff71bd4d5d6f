/* fuzz_common.h — what every calbridge libFuzzer harness shares: the time
 * zone tables (loaded once, as calbridge does at start), a NUL-terminated
 * copy of the input, and a fixed mapping context. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../mapping/ews_item.h"
#include "../../mapping/tzmap.h"

static tzmap *fuzz_tz;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    cb_err e;
    if (tzmap_load(TZMAP_CLDR_PATH, TZMAP_TZDATA_PATH, &fuzz_tz, &e)) abort();
    return 0;
}

static inline char *fuzz_text(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static inline map_ctx fuzz_ctx(void)
{
    /* A fixed "now" keeps a failing input failing. */
    map_ctx mc = {NULL, fuzz_tz, "Europe/Berlin", 60, 1893456000LL, NULL, "fuzz-owner"};
    return mc;
}

#endif
