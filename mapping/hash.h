/* hash.h — FNV-1a, 64-bit: the same value on every run and machine, for
 * what is stored (fingerprints, resource names) and for in-memory tables.
 * Each call continues from h: start from one of the bases below. */
#ifndef HASH_H
#define HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_BASIS 14695981039346656037ULL   /* FNV's offset basis */
/* A digit short of FNV's: what calbridge's stored fingerprints, content
 * prints and resource names were first made with. Kept so that they stay
 * what they are in existing state and calendars. */
#define HASH_BASIS_STORED 1469598103934665603ULL

uint64_t hash_bytes(uint64_t h, const void *p, size_t n);
uint64_t hash_str(uint64_t h, const char *s);
/* ASCII letters folded to lower case, as mail addresses are compared. */
uint64_t hash_str_lower(uint64_t h, const char *s);

#endif
