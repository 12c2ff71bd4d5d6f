#include "sim_ntlm.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/provider.h>
#include <string.h>

#define FLAGS (0x00000001u /* UNICODE */ | 0x00000004u /* REQUEST_TARGET */ |     \
               0x00000200u /* NTLM */ | 0x00008000u /* ALWAYS_SIGN */ |           \
               0x00010000u /* TARGET_TYPE_DOMAIN */ | 0x00080000u /* EXTENDED */ | \
               0x00800000u /* TARGET_INFO */)
#define DOMAIN "SIM"

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v & 0xffff), put16(p + 2, v >> 16); }
static unsigned get16(const uint8_t *p) { return p[0] | (unsigned)p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | (uint32_t)get16(p + 2) << 16; }

/* ASCII into UTF-16LE; returns bytes written. */
static size_t utf16(const char *s, int upper, uint8_t *out)
{
    size_t n = 0;
    for (; *s; s++) {
        char c = upper && *s >= 'a' && *s <= 'z' ? (char)(*s - 32) : *s;
        out[n++] = (uint8_t)c, out[n++] = 0;
    }
    return n;
}

int sim_ntlm_is(const uint8_t *msg, size_t len, int type)
{
    return len >= 12 && !memcmp(msg, "NTLMSSP", 8) && get32(msg + 8) == (uint32_t)type;
}

size_t sim_ntlm_challenge(const uint8_t ch[8], uint8_t *out)
{
    memset(out, 0, 48);
    memcpy(out, "NTLMSSP", 8);
    put32(out + 8, 2);
    size_t at = 48, name = utf16(DOMAIN, 0, out + at);
    put16(out + 12, (unsigned)name), put16(out + 14, (unsigned)name), put32(out + 16, (uint32_t)at);
    put32(out + 20, FLAGS);
    memcpy(out + 24, ch, 8);
    at += name;
    size_t info = at;
    put16(out + at, 2);   /* MsvAvNbDomainName */
    put16(out + at + 2, (unsigned)name);
    memcpy(out + at + 4, out + 48, name);
    at += 4 + name;
    put32(out + at, 0);   /* MsvAvEOL */
    at += 4;
    put16(out + 40, (unsigned)(at - info)), put16(out + 42, (unsigned)(at - info));
    put32(out + 44, (uint32_t)info);
    return at;
}

/* A field of an AUTHENTICATE_MESSAGE (length, offset), checked in bounds. */
static const uint8_t *field(const uint8_t *msg, size_t len, size_t at, size_t *n)
{
    *n = get16(msg + at);
    size_t off = get32(msg + at + 4);
    return off <= len && *n <= len - off ? msg + off : NULL;
}

static int md4(const uint8_t *in, size_t n, uint8_t out[16])
{
    /* MD4 lives in OpenSSL 3's legacy provider (Debian ships it). */
    static OSSL_PROVIDER *legacy;
    if (!legacy) legacy = OSSL_PROVIDER_load(NULL, "legacy"), OSSL_PROVIDER_load(NULL, "default");
    EVP_MD *m = EVP_MD_fetch(NULL, "MD4", NULL);
    unsigned len = 0;
    int ok = m && EVP_Digest(in, n, out, &len, m, NULL) && len == 16;
    EVP_MD_free(m);
    return ok;
}

static void hmac_md5(const uint8_t *key, const uint8_t *in, size_t n, uint8_t out[16])
{
    unsigned len = 16;
    HMAC(EVP_md5(), key, 16, in, n, out, &len);
}

int sim_ntlm_verify(const uint8_t *msg, size_t len, const uint8_t ch[8], const char *user,
                    const char *password)
{
    if (!sim_ntlm_is(msg, len, 3) || len < 64 || strlen(user) > 200 || strlen(password) > 200)
        return 0;
    size_t nt_len, dom_len, user_len;
    const uint8_t *nt = field(msg, len, 20, &nt_len), *dom = field(msg, len, 28, &dom_len),
                  *usr = field(msg, len, 36, &user_len);
    uint8_t want[512], buf[SIM_NTLM_MAX + 8], hash[16], owf[16], proof[16];
    size_t wn = utf16(user, 1, want);
    /* The user, without case; NTLMv2 only (a v1 answer is 24 bytes). */
    if (!nt || !dom || !usr || nt_len <= 16 + 28 || nt_len > SIM_NTLM_MAX ||
        dom_len > 256 || user_len != wn)
        return 0;
    for (size_t i = 0; i < wn; i += 2) {
        uint8_t c = usr[i] >= 'a' && usr[i] <= 'z' ? (uint8_t)(usr[i] - 32) : usr[i];
        if (c != want[i] || usr[i + 1]) return 0;
    }
    size_t pn = utf16(password, 0, buf);
    if (!md4(buf, pn, hash)) return 0;
    memcpy(buf, want, wn);   /* NTOWFv2: HMAC(NT hash, UPPER(user) || domain) */
    memcpy(buf + wn, dom, dom_len);
    hmac_md5(hash, buf, wn + dom_len, owf);
    memcpy(buf, ch, 8);
    memcpy(buf + 8, nt + 16, nt_len - 16);
    hmac_md5(owf, buf, 8 + nt_len - 16, proof);
    return !memcmp(proof, nt, 16);
}
