#include "hash.h"

#include <ctype.h>

#define FNV_PRIME 1099511628211ULL

uint64_t hash_bytes(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * FNV_PRIME;
    return h;
}

uint64_t hash_str(uint64_t h, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) h = (h ^ *c) * FNV_PRIME;
    return h;
}

uint64_t hash_str_lower(uint64_t h, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++)
        h = (h ^ (unsigned char)tolower(*c)) * FNV_PRIME;
    return h;
}
