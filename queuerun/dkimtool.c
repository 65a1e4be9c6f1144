/*
 * NAME
 *	dkimtool - "queuerun dkim keygen" and "queuerun check dkim"
 * DESCRIPTION
 *	See dkimtool.h. The key record is read as RFC 6376 3.6.1 has it:
 *	tag=value pairs separated by ";", white space around them and
 *	inside p= ignored; v=, if present, must be DKIM1; k= defaults to
 *	rsa; an empty p= is a revoked key.
 */
#include "queuerun/dkimtool.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "dns/dns.h"
#include "lib/log.h"
#include "lib/util.h"
#include "queuerun/dkim.h"

/* DNS character-strings hold at most 255 octets (RFC 1035 3.3). */
#define TXT_STRING_MAX	255

/* The record in zone-file form, split into strings DNS can carry. */
static void
print_record(FILE *out, const char *name, const char *k, const char *p)
{
	char *value = xasprintf("v=DKIM1; k=%s; p=%s", k, p);
	size_t len = strlen(value);

	fprintf(out, "%s. IN TXT (", name);
	for (size_t i = 0; i < len; i += TXT_STRING_MAX)
		fprintf(out, "%s\"%.*s\"", i ? "\n        " : " ",
		    (int)(len - i < TXT_STRING_MAX ? len - i : TXT_STRING_MAX),
		    value + i);
	fprintf(out, " )\n");
	free(value);
}

int
dkimtool_keygen(const char *domain, const char *selector, bool ed25519,
    int bits, const char *path, FILE *out)
{
	if (!str_dns_name_ok(domain, false)) {
		log_stderr("dkim keygen: \"%s\" is not a domain name", domain);
		return EX_USAGE;
	}
	if (!str_dns_name_ok(selector, true)) {
		log_stderr("dkim keygen: \"%s\" is not a selector (DNS labels)",
		    selector);
		return EX_USAGE;
	}
	if (!ed25519 && (bits < 1024 || bits > 4096)) {
		log_stderr("dkim keygen: --bits %d: an RSA key for DKIM has "
		    "1024 to 4096 bits (2048 is usual)", bits);
		return EX_USAGE;
	}
	char *lower = xstrdup(domain);
	str_lower(lower);
	char *file = path ? xstrdup(path) : xasprintf("%s/%s.%s.pem",
	    DKIMTOOL_KEY_DIR, lower, selector);
	int rc = 0;
	EVP_PKEY *pkey = ed25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	if (pkey == NULL) {
		log_stderr("dkim keygen: OpenSSL could not make the key");
		rc = EX_SOFTWARE;
		goto out;
	}
	/* Never over an existing key: it may be the one DNS publishes. */
	int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd < 0) {
		log_stderr("dkim keygen: cannot create %s: %s%s", file,
		    strerror(errno), errno == ENOENT ? " (make the directory, "
		    "owned by the mail system's account, mode 0700, or give "
		    "--out)" : "");
		rc = EX_CANTCREAT;
		goto out;
	}
	(void)fchmod(fd, 0600);		/* whatever the umask */
	BIO *bio = BIO_new_fd(fd, BIO_CLOSE);
	int ok = bio && PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0,
	    NULL, NULL) == 1 && BIO_flush(bio) == 1 && fsync(fd) == 0;
	if (bio)
		BIO_free(bio);
	else
		close(fd);
	if (!ok) {
		log_stderr("dkim keygen: cannot write %s", file);
		(void)unlink(file);
		rc = EX_IOERR;
		goto out;
	}
	const char *k;
	char *p;
	int kbits;
	if (dkim_public_record(pkey, &k, &p, &kbits) != 0) {
		rc = EX_SOFTWARE;
		goto out;
	}
	char *name = xasprintf("%s._domainkey.%s", selector, lower);
	fprintf(out, "wrote %s (%s, %d bits, mode 0600)\n\n", file,
	    ed25519 ? "Ed25519" : "RSA", kbits);
	fprintf(out, "Publish this TXT record in DNS:\n\n");
	print_record(out, name, k, p);
	fprintf(out, "\nand add to mxlane.conf:\n\n"
	    "dkim \"%s\" {\n  key \"%s\" { private_key = \"%s\" }\n}\n",
	    lower, selector, file);
	free(name);
	free(p);
out:
	EVP_PKEY_free(pkey);
	free(file);
	free(lower);
	return rc;
}

/* The value of tag in a key record, white space trimmed; NULL if none. */
static char *
record_tag(const char *rec, const char *tag)
{
	size_t tlen = strlen(tag);

	for (const char *p = rec; *p; ) {
		while (*p == ' ' || *p == '\t' || *p == ';')
			p++;
		const char *end = strchr(p, ';');
		if (end == NULL)
			end = p + strlen(p);
		const char *eq = memchr(p, '=', (size_t)(end - p));
		if (eq) {
			const char *n = eq;
			while (n > p && (n[-1] == ' ' || n[-1] == '\t'))
				n--;
			if ((size_t)(n - p) == tlen && strncmp(p, tag, tlen) == 0) {
				struct buf v = BUF_INIT;
				for (const char *c = eq + 1; c < end; c++)
					if (!isspace((unsigned char)*c))
						buf_putc(&v, *c);
				buf_putc(&v, '\0');
				v.len--;
				return buf_steal(&v);
			}
		}
		p = end;
	}
	return NULL;
}

enum verdict { MATCH, OTHER_KEY, REVOKED, NO_RECORD, DNS_FAILED };

static enum verdict
check_key(const struct dns_resolver *dns, const char *name, const char *k,
    const char *p, char *err, size_t errlen)
{
	char **txt = NULL;
	size_t n = 0;
	enum dns_status ds = dns_find_txt(dns, name, &txt, &n, err, errlen);

	if (ds == DNS_PERMFAIL)
		return NO_RECORD;
	if (ds != DNS_OK)
		return DNS_FAILED;
	enum verdict v = NO_RECORD;
	for (size_t i = 0; i < n; i++) {
		char *ver = record_tag(txt[i], "v");
		char *pub = record_tag(txt[i], "p");
		char *kind = record_tag(txt[i], "k");
		if ((ver == NULL || strcmp(ver, "DKIM1") == 0) && pub) {
			if (*pub == '\0' && v == NO_RECORD)
				v = REVOKED;
			else if (strcmp(pub, p) == 0 && strcasecmp(kind ? kind :
			    "rsa", k) == 0)
				v = MATCH;
			else if (*pub && v != MATCH)
				v = OTHER_KEY;
		}
		free(ver);
		free(pub);
		free(kind);
	}
	dns_txt_free(txt, n);
	return v;
}

int
dkimtool_check(const struct mxl_config *cfg, const char *domain, FILE *out)
{
	struct dns_resolver dns;
	char err[512];
	int rc = 0;

	if (domain && config_dkim_domain(cfg, domain) == NULL) {
		log_stderr("check dkim: %s has no dkim section", domain);
		return EX_USAGE;
	}
	if (cfg->ndkim_domains == 0) {
		fprintf(out, "no dkim section is configured: mail goes "
		    "unsigned\n");
		return 0;
	}
	if (dns_resolver_init(&dns, cfg->resolver, err, sizeof(err)) != 0) {
		log_stderr("resolver = \"%s\": %s", cfg->resolver, err);
		return EX_CONFIG;
	}
	for (size_t i = 0; i < cfg->ndkim_domains; i++) {
		const struct mxl_dkim_domain *d = &cfg->dkim_domains[i];
		if (domain && strcasecmp(domain, d->domain) != 0)
			continue;
		for (size_t j = 0; j < d->nkeys; j++) {
			const struct mxl_dkim_key *key = &d->keys[j];
			const char *k;
			char *p;
			int bits;
			if (dkim_public_record(dkim_loaded_key(key), &k, &p,
			    &bits) != 0)
				return EX_SOFTWARE;
			char *name = xasprintf("%s._domainkey.%s",
			    key->selector, d->domain);
			err[0] = '\0';
			enum verdict v = check_key(&dns, name, k, p, err,
			    sizeof(err));
			fprintf(out, "%s %s (%s, %d bits): ", d->domain,
			    key->selector, k, bits);
			switch (v) {
			case MATCH:
				fprintf(out, "ok: %s publishes this key\n",
				    name);
				break;
			case OTHER_KEY:
				fprintf(out, "WRONG: %s publishes another "
				    "key; publish:\n", name);
				break;
			case REVOKED:
				fprintf(out, "REVOKED: %s publishes an empty "
				    "p= (a revoked key); publish:\n", name);
				break;
			case NO_RECORD:
				fprintf(out, "MISSING: %s has no DKIM key "
				    "record%s%s; publish:\n", name,
				    err[0] ? ": " : "", err);
				break;
			case DNS_FAILED:
				fprintf(out, "UNKNOWN: DNS did not answer: "
				    "%s\n", err);
				break;
			}
			if (v == OTHER_KEY || v == REVOKED || v == NO_RECORD) {
				print_record(out, name, k, p);
				rc = EX_DATAERR;
			} else if (v == DNS_FAILED && rc == 0) {
				rc = EX_TEMPFAIL;
			}
			free(name);
			free(p);
		}
	}
	return rc;
}
