/*
 * NAME
 *	dkim - DKIM signing (RFC 6376, RFC 8463) with libopendkim
 * DESCRIPTION
 *	The keys of the configuration's dkim sections are read once, when
 *	queuerun starts (dkim_keys_load()), as the spool's owner; delivery
 *	workers inherit them across fork(). A key file that is missing,
 *	unreadable, readable by everyone, or not an RSA key of 1024 bits or
 *	more or an Ed25519 key is a configuration error with the file and
 *	line of its key section. sendmail never reads them: it runs as the
 *	submitting user.
 *
 *	How a message is signed is decided in one place, dkim_choose(): the
 *	domain of its From: address, or the nearest parent domain that has
 *	a dkim section (DMARC's relaxed alignment), else
 *	dkim_fallback_domain, else not at all. Every key of that domain
 *	signs (RSA-SHA256 or Ed25519-SHA256, relaxed/relaxed), over the
 *	header fields of dkim_headers that the message has, From always
 *	and over-signed.
 *
 *	dkim_sign_message() signs the content exactly as delivery sends it
 *	(longlines.h): the stored message with its over-long lines made
 *	short. Nothing changes it afterwards; the DKIM-Signature fields go
 *	before it (deliver.h). It is called once per message and job (the
 *	job keeps the result for every transaction of the message).
 *
 *	A message that cannot be signed (the spool cannot be read, or
 *	libopendkim refuses it, e.g. for a malformed header) goes unsigned,
 *	with a warning in the log: its next attempt would fail the same way.
 * SEE ALSO
 *	dkimtool.h (keygen, check dkim), mxlane.conf(5), queuerun(8)
 */
#ifndef MXLANE_DKIM_H
#define MXLANE_DKIM_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/config.h"
#include "spool/spool.h"

/*
 * Reads and checks every key file of cfg. Returns 0, or EX_CONFIG with
 * "file:line: dkim DOMAIN: key SELECTOR: PATH: what is wrong" in err.
 */
int dkim_keys_load(const struct mxl_config *cfg, char *err, size_t errlen);
void dkim_keys_free(void);

/* How one message is (to be) signed, and why. */
enum dkim_reason {
	DKIM_NOT_CONFIGURED,		/* no dkim section at all */
	DKIM_FROM_DOMAIN,		/* the From: domain's section */
	DKIM_PARENT_DOMAIN,		/* a parent of the From: domain's */
	DKIM_FALLBACK,			/* dkim_fallback_domain's */
	DKIM_UNMATCHED,			/* none matched, no fallback */
};

struct dkim_choice {
	const struct mxl_dkim_domain *domain;	/* NULL: not signed */
	char from_domain[256];		/* "" when no From: address */
	enum dkim_reason reason;
};

/*
 * Reads the message's From: field from the spool and decides. Returns
 * SPOOL_OK, or the spool's error.
 */
int dkim_choose(const struct mxl_config *cfg, struct spool *sp,
    const char *id, struct dkim_choice *out);
/* "example.org/s2026,ed2026" for a domain and its selectors. */
char *dkim_signer_name(const struct mxl_dkim_domain *d);
/*
 * The choice in words: "example.org/s2026,ed2026 (From: domain
 * example.org)", "none (the From: domain other.test has no dkim
 * section, and no dkim_fallback_domain)"...
 */
char *dkim_choice_text(const struct dkim_choice *c);

/*
 * The message's DKIM-Signature fields, each ending in CRLF, ready to
 * go before its content; NULL when it is not signed. *signer gets
 * dkim_signer_name() of the domain that signed (else NULL). Both are
 * the caller's to free.
 */
char *dkim_sign_message(const struct mxl_config *cfg, struct spool *sp,
    const struct spool_msg *env, char **signer);

/*
 * The public half of a loaded key as a DKIM key record has it (RFC
 * 6376 3.6.1, RFC 8463 4): k= ("rsa" or "ed25519") and p= (base64 of
 * the SubjectPublicKeyInfo for RSA, of the raw 32-octet key for
 * Ed25519). bits: the RSA modulus size, 256 for Ed25519.
 */
struct evp_pkey_st;
int dkim_public_record(struct evp_pkey_st *pkey, const char **k, char **p,
    int *bits);
/* The loaded key of a configured key, or NULL if keys are not loaded. */
struct evp_pkey_st *dkim_loaded_key(const struct mxl_dkim_key *key);

#endif
