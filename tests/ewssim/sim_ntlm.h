/* sim_ntlm.h — the server's half of NTLM as Exchange on-premises runs it
 * with Windows authentication on the EWS virtual directory ([MS-NLMP]):
 * a CHALLENGE_MESSAGE with target information for a NEGOTIATE_MESSAGE, and
 * the check of an AUTHENTICATE_MESSAGE's NTLMv2 response (NTProofStr =
 * HMAC-MD5(NTOWFv2, ServerChallenge || blob)). NTLMv1 and LM answers are
 * refused, as a domain at LmCompatibilityLevel 5 refuses them. Messages
 * are raw bytes (the caller handles base64 and HTTP).
 */
#ifndef SIM_NTLM_H
#define SIM_NTLM_H

#include <stddef.h>
#include <stdint.h>

#define SIM_NTLM_MAX 2048

/* 1 when msg is an NTLMSSP message of type (1, 2 or 3). */
int sim_ntlm_is(const uint8_t *msg, size_t len, int type);

/* Writes the CHALLENGE_MESSAGE for server challenge ch into out (at least
 * SIM_NTLM_MAX bytes); returns its length. */
size_t sim_ntlm_challenge(const uint8_t ch[8], uint8_t *out);

/* 1 when the AUTHENTICATE_MESSAGE answers ch for user (compared without
 * case, any domain) with password; 0 otherwise, also for a malformed one. */
int sim_ntlm_verify(const uint8_t *msg, size_t len, const uint8_t ch[8], const char *user,
                    const char *password);

#endif
