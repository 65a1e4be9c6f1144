/*
 * NAME
 *	dkimtool - "queuerun dkim keygen" and "queuerun check dkim"
 * DESCRIPTION
 *	dkimtool_keygen() makes a new private key with OpenSSL (RSA of
 *	bits bits, or Ed25519), writes it in PEM (PKCS#8) to path, which
 *	must not exist yet, with mode 0600, as the user queuerun runs as
 *	(the spool's owner, who signs with it), and prints the key record
 *	to publish in DNS at SELECTOR._domainkey.DOMAIN and the key section
 *	for mxlane.conf.
 *
 *	dkimtool_check() looks up the key record of every key of every dkim
 *	section (or of domain's only) through the configured resolver, the
 *	way a receiver would, and says for each whether it publishes the
 *	public half of the key that signs. The keys must have been loaded
 *	(dkim_keys_load()).
 * DIAGNOSTICS
 *	Both return sysexits codes: keygen EX_USAGE for a bad name or size,
 *	EX_CANTCREAT when the file exists or cannot be written; check 0
 *	when every record matches, EX_DATAERR when one is missing, revoked
 *	or another key, EX_TEMPFAIL when DNS did not answer, EX_USAGE when
 *	domain has no dkim section.
 */
#ifndef MXLANE_DKIMTOOL_H
#define MXLANE_DKIMTOOL_H

#include <stdbool.h>
#include <stdio.h>

#include "lib/config.h"

/* Where keygen writes when no --out is given. */
#define DKIMTOOL_KEY_DIR MXL_SYSCONFDIR "/mxlane/dkim"

int dkimtool_keygen(const char *domain, const char *selector, bool ed25519,
    int bits, const char *path, FILE *out);
int dkimtool_check(const struct mxl_config *cfg, const char *domain,
    FILE *out);

#endif
