/*
 * NAME
 *	dkim - DKIM signing (RFC 6376, RFC 8463) with libopendkim
 * DESCRIPTION
 *	See dkim.h. libopendkim canonicalises and signs; this file decides
 *	who signs, checks the keys, and hands libopendkim the octets that
 *	go out. Each key gets its own signing handle, and every handle is
 *	fed the same stream, so a message with an RSA and an Ed25519 key is
 *	read from the spool once.
 */
#include "queuerun/dkim.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <opendkim/dkim.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "lib/log.h"
#include "queuerun/longlines.h"

/* A PEM key is a few KiB; anything much bigger is not one. */
#define KEY_FILE_MAX	(64 * 1024)
#define SIGNATURE_FIELD	"DKIM-Signature"
/*
 * The From: field is looked for in at most this much of a message that
 * has no end of header (a 50 MB message all header is not read whole).
 */
#define HEADER_READ_MAX	(1024 * 1024)

struct loaded_key {
	const struct mxl_dkim_key *conf;
	char *pem;			/* what libopendkim is handed */
	EVP_PKEY *pkey;
	dkim_alg_t alg;
};

static struct loaded_key *keys;
static size_t nkeys;
static DKIM_LIB *lib;
static const char **sign_headers;	/* NULL-terminated, for libopendkim */

static int
key_fail(char *err, size_t errlen, const struct mxl_dkim_domain *d,
    const struct mxl_dkim_key *k, const char *fmt, ...) MXL_PRINTF(5, 6);

static int
key_fail(char *err, size_t errlen, const struct mxl_dkim_domain *d,
    const struct mxl_dkim_key *k, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(err, errlen, "%s:%d: dkim %s: key %s: %s: ", k->file,
	    k->line, d->domain, k->selector, k->private_key);

	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return EX_CONFIG;
}

/* Never ask for a pass phrase: queuerun runs unattended. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int
load_key(const struct mxl_dkim_domain *d, const struct mxl_dkim_key *k,
    struct loaded_key *out, char *err, size_t errlen)
{
	int fd = open(k->private_key, O_RDONLY | O_NOCTTY | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return key_fail(err, errlen, d, k, "%s%s", errno == ENOENT ?
		    "no such file" : "cannot open it: ", errno == ENOENT ? "" :
		    strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return key_fail(err, errlen, d, k, "not a regular file");
	}
	/* A private key anyone can read is a key anyone can sign with. */
	if (st.st_mode & (S_IROTH | S_IWOTH)) {
		close(fd);
		return key_fail(err, errlen, d, k, "readable or writable by "
		    "everyone (mode %04o); chmod 600 it",
		    (unsigned)(st.st_mode & 07777));
	}
	if (st.st_size > KEY_FILE_MAX || st.st_size == 0) {
		close(fd);
		return key_fail(err, errlen, d, k, "%s", st.st_size == 0 ?
		    "empty" : "too big for a PEM key");
	}
	char *pem = xcalloc(1, (size_t)st.st_size + 1);
	ssize_t got = read(fd, pem, (size_t)st.st_size);
	int read_errno = errno;
	close(fd);
	if (got != st.st_size) {
		free(pem);
		return key_fail(err, errlen, d, k, "cannot read it: %s",
		    got < 0 ? strerror(read_errno) : "short read");
	}
	BIO *bio = BIO_new_mem_buf(pem, (int)got);
	EVP_PKEY *pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL,
	    no_passphrase, NULL) : NULL;
	BIO_free(bio);
	if (pkey == NULL) {
		free(pem);
		return key_fail(err, errlen, d, k, "not a private key in PEM "
		    "form (or one that needs a pass phrase)");
	}
	int type = EVP_PKEY_get_base_id(pkey);
	if (type == EVP_PKEY_RSA && EVP_PKEY_get_bits(pkey) < 1024) {
		int bits = EVP_PKEY_get_bits(pkey);
		EVP_PKEY_free(pkey);
		free(pem);
		return key_fail(err, errlen, d, k, "an RSA key of %d bits; "
		    "DKIM needs 1024 or more (RFC 8301), 2048 is usual", bits);
	}
	if (type != EVP_PKEY_RSA && type != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		free(pem);
		return key_fail(err, errlen, d, k, "neither an RSA nor an "
		    "Ed25519 key");
	}
	out->conf = k;
	out->pem = pem;
	out->pkey = pkey;
	out->alg = type == EVP_PKEY_RSA ? DKIM_SIGN_RSASHA256 :
	    DKIM_SIGN_ED25519SHA256;
	return 0;
}

int
dkim_keys_load(const struct mxl_config *cfg, char *err, size_t errlen)
{
	size_t total = 0;

	dkim_keys_free();
	for (size_t i = 0; i < cfg->ndkim_domains; i++)
		total += cfg->dkim_domains[i].nkeys;
	if (total == 0)
		return 0;
	keys = xcalloc(total, sizeof(*keys));
	for (size_t i = 0; i < cfg->ndkim_domains; i++) {
		const struct mxl_dkim_domain *d = &cfg->dkim_domains[i];
		for (size_t k = 0; k < d->nkeys; k++) {
			int rc = load_key(d, &d->keys[k], &keys[nkeys], err,
			    errlen);
			if (rc != 0) {
				dkim_keys_free();
				return rc;
			}
			nkeys++;
		}
	}
	lib = dkim_init(NULL, NULL);
	if (lib == NULL) {
		dkim_keys_free();
		snprintf(err, errlen, "dkim: libopendkim cannot start");
		return EX_SOFTWARE;
	}
	sign_headers = xcalloc(cfg->ndkim_headers + 1, sizeof(char *));
	for (size_t i = 0; i < cfg->ndkim_headers; i++)
		sign_headers[i] = cfg->dkim_headers[i];
	/* An added second From: would break the signature (RFC 6376 8.15). */
	static const char *oversign[] = {"From", NULL};
	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
	    (void *)sign_headers, sizeof(char **)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
	    (void *)oversign, sizeof(char **)) != DKIM_STAT_OK) {
		dkim_keys_free();
		snprintf(err, errlen, "dkim_headers: libopendkim refused the "
		    "list");
		return EX_CONFIG;
	}
	return 0;
}

void
dkim_keys_free(void)
{
	for (size_t i = 0; i < nkeys; i++) {
		EVP_PKEY_free(keys[i].pkey);
		free(keys[i].pem);
	}
	free(keys);
	keys = NULL;
	nkeys = 0;
	if (lib)
		dkim_close(lib);
	lib = NULL;
	free(sign_headers);
	sign_headers = NULL;
}

static const struct loaded_key *
loaded(const struct mxl_dkim_key *k)
{
	for (size_t i = 0; i < nkeys; i++)
		if (keys[i].conf == k)
			return &keys[i];
	return NULL;
}

struct evp_pkey_st *
dkim_loaded_key(const struct mxl_dkim_key *key)
{
	const struct loaded_key *l = loaded(key);

	return l ? l->pkey : NULL;
}

int
dkim_public_record(EVP_PKEY *pkey, const char **k, char **p, int *bits)
{
	unsigned char *der = NULL;
	int len;

	if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
		size_t rawlen = 32;
		der = OPENSSL_malloc(rawlen);
		if (der == NULL || EVP_PKEY_get_raw_public_key(pkey, der,
		    &rawlen) != 1) {
			OPENSSL_free(der);
			return -1;
		}
		len = (int)rawlen;
		*k = "ed25519";
		*bits = 256;
	} else {
		len = i2d_PUBKEY(pkey, &der);
		if (len <= 0)
			return -1;
		*k = "rsa";
		*bits = EVP_PKEY_get_bits(pkey);
	}
	*p = xcalloc(1, (size_t)(len + 2) / 3 * 4 + 1);
	EVP_EncodeBlock((unsigned char *)*p, der, len);
	OPENSSL_free(der);
	return 0;
}

/* Choosing the signer. */

/*
 * The value of the first field called name, unfolded, from the header
 * block; false when there is none.
 */
static bool
header_field(const char *head, size_t len, const char *name, struct buf *out)
{
	size_t nlen = strlen(name);

	for (size_t i = 0; i < len;) {
		size_t end = i;
		while (end < len && head[end] != '\n')
			end++;
		if (end == i || (end == i + 1 && head[i] == '\r'))
			return false;		/* the empty line */
		if (end - i > nlen && strncasecmp(head + i, name, nlen) == 0 &&
		    head[i + nlen] == ':') {
			buf_reset(out);
			size_t v = i + nlen + 1;
			for (;;) {
				for (; v < end; v++)
					if (head[v] != '\r')
						buf_putc(out, head[v]);
				if (end + 1 >= len || (head[end + 1] != ' ' &&
				    head[end + 1] != '\t'))
					return true;
				v = end + 1;	/* a continuation line */
				end = v;
				while (end < len && head[end] != '\n')
					end++;
			}
		}
		i = end + 1;
	}
	return false;
}

/*
 * Reads chunks until the header block is whole, the content ends, or
 * HEADER_READ_MAX octets are in.
 */
static int
read_header(struct spool *sp, const char *id, struct buf *head)
{
	struct buf chunk = BUF_INIT;
	int rc = SPOOL_OK;

	for (uint32_t i = 0;; i++) {
		rc = spool_read_chunk(sp, id, i, &chunk);
		if (rc == SPOOL_NOTFOUND) {	/* the end (or none) */
			rc = SPOOL_OK;
			break;
		}
		if (rc != SPOOL_OK)
			break;
		buf_append(head, chunk.data, chunk.len);
		if (head->len >= HEADER_READ_MAX ||
		    memmem(head->data, head->len, "\n\r\n", 3) ||
		    memmem(head->data, head->len, "\n\n", 2) ||
		    (head->len >= 2 && memcmp(head->data, "\r\n", 2) == 0))
			break;
	}
	buf_free(&chunk);
	return rc;
}

/* The domain of the From: address, as OpenDKIM's own parser reads it. */
static void
from_domain(const char *head, size_t len, char *out, size_t outlen)
{
	struct buf from = BUF_INIT;

	out[0] = '\0';
	if (header_field(head, len, "From", &from) && from.data != NULL) {
		unsigned char *user = NULL, *domain = NULL;
		/* One mailbox is what DMARC aligns with: the first. */
		if (dkim_mail_parse((unsigned char *)from.data, &user,
		    &domain) == 0 && domain != NULL && *domain != '\0') {
			snprintf(out, outlen, "%s", (char *)domain);
			str_lower(out);
			size_t n = strlen(out);
			if (n > 0 && out[n - 1] == '.')
				out[n - 1] = '\0';
		}
	}
	buf_free(&from);
}

int
dkim_choose(const struct mxl_config *cfg, struct spool *sp, const char *id,
    struct dkim_choice *out)
{
	memset(out, 0, sizeof(*out));
	out->reason = DKIM_NOT_CONFIGURED;
	if (cfg->ndkim_domains == 0)
		return SPOOL_OK;
	struct buf head = BUF_INIT;
	int rc = read_header(sp, id, &head);
	if (rc != SPOOL_OK) {
		buf_free(&head);
		return rc;
	}
	from_domain(head.data ? head.data : "", head.len, out->from_domain,
	    sizeof(out->from_domain));
	buf_free(&head);
	for (const char *d = out->from_domain; *d; ) {
		out->domain = config_dkim_domain(cfg, d);
		if (out->domain) {
			out->reason = d == out->from_domain ? DKIM_FROM_DOMAIN :
			    DKIM_PARENT_DOMAIN;
			return SPOOL_OK;
		}
		const char *dot = strchr(d, '.');
		d = dot ? dot + 1 : "";
	}
	out->domain = config_dkim_domain(cfg, cfg->dkim_fallback_domain);
	out->reason = out->domain ? DKIM_FALLBACK : DKIM_UNMATCHED;
	return SPOOL_OK;
}

char *
dkim_choice_text(const struct dkim_choice *c)
{
	struct buf b = BUF_INIT;
	const char *from = c->from_domain;

	if (c->domain) {
		char *name = dkim_signer_name(c->domain);
		buf_printf(&b, "%s ", name);
		free(name);
	} else {
		buf_puts(&b, "none ");
	}
	switch (c->reason) {
	case DKIM_NOT_CONFIGURED:
		buf_puts(&b, "(no dkim section is configured)");
		break;
	case DKIM_FROM_DOMAIN:
		buf_printf(&b, "(From: domain %s)", from);
		break;
	case DKIM_PARENT_DOMAIN:
		buf_printf(&b, "(parent of the From: domain %s)", from);
		break;
	case DKIM_FALLBACK:
		if (*from)
			buf_printf(&b, "(dkim_fallback_domain: the From: domain "
			    "%s has no dkim section)", from);
		else
			buf_puts(&b, "(dkim_fallback_domain: no From: address)");
		break;
	case DKIM_UNMATCHED:
		if (*from)
			buf_printf(&b, "(the From: domain %s has no dkim "
			    "section, and no dkim_fallback_domain)", from);
		else
			buf_puts(&b, "(no From: address, and no "
			    "dkim_fallback_domain)");
		break;
	}
	return buf_steal(&b);
}

char *
dkim_signer_name(const struct mxl_dkim_domain *d)
{
	struct buf b = BUF_INIT;

	buf_printf(&b, "%s/", d->domain);
	for (size_t k = 0; k < d->nkeys; k++)
		buf_printf(&b, "%s%s", k ? "," : "", d->keys[k].selector);
	return buf_steal(&b);
}

/* Signing. */

/* An empty chunk would tell libopendkim the message has ended. */
static DKIM_STAT
feed(DKIM **h, size_t n, const char *data, size_t len)
{
	if (len == 0)
		return DKIM_STAT_OK;
	for (size_t k = 0; k < n; k++) {
		DKIM_STAT st = dkim_chunk(h[k], (unsigned char *)data, len);
		if (st != DKIM_STAT_OK)
			return st;
	}
	return DKIM_STAT_OK;
}

/*
 * Streams the content as delivery sends it (longlines.h) to every
 * handle. A last line without its line end gets the CRLF libESMTP adds.
 */
static int
feed_content(struct spool *sp, const struct spool_msg *env, DKIM **h,
    size_t n, DKIM_STAT *st)
{
	struct longlines ll = {BUF_INIT, false, true, true};
	struct buf raw = BUF_INIT, out = BUF_INIT;
	uint64_t read = 0;
	int rc = SPOOL_OK;

	*st = DKIM_STAT_OK;
	longlines_reset(&ll);
	for (uint32_t i = 0; *st == DKIM_STAT_OK; i++) {
		rc = spool_read_chunk(sp, env->id, i, &raw);
		if (rc == SPOOL_NOTFOUND && read == env->size) {
			rc = SPOOL_OK;
			const struct buf *rest = longlines_rest(&ll);
			buf_reset(&out);
			if (rest->len) {
				buf_append(&out, rest->data, rest->len);
				buf_append(&out, "\r\n", 2);
			}
			*st = feed(h, n, out.data, out.len);
			break;
		}
		if (rc != SPOOL_OK)
			break;
		read += raw.len;
		buf_reset(&out);
		longlines_feed(&ll, raw.data, raw.len, &out);
		*st = feed(h, n, out.data, out.len);
	}
	longlines_free(&ll);
	buf_free(&raw);
	buf_free(&out);
	return rc == SPOOL_OK ? SPOOL_OK : SPOOL_ERR;
}

/* libopendkim folds with LF alone; on the wire every line ends in CRLF. */
static void
append_field(struct buf *b, const unsigned char *value, size_t len)
{
	buf_puts(b, SIGNATURE_FIELD ": ");
	for (size_t i = 0; i < len; i++) {
		if (value[i] == '\r')
			continue;
		if (value[i] == '\n')
			buf_putc(b, '\r');
		buf_putc(b, (char)value[i]);
	}
	buf_append(b, "\r\n", 2);
}

char *
dkim_sign_message(const struct mxl_config *cfg, struct spool *sp,
    const struct spool_msg *env, char **signer)
{
	struct dkim_choice c;
	struct buf fields = BUF_INIT;
	const char *failure = NULL;
	DKIM_STAT st = DKIM_STAT_OK;

	*signer = NULL;
	if (nkeys == 0 || lib == NULL)
		return NULL;
	if (dkim_choose(cfg, sp, env->id, &c) != SPOOL_OK) {
		log_warn("%s: dkim: cannot read the message to sign it; sent "
		    "unsigned", env->id);
		return NULL;
	}
	if (c.domain == NULL)
		return NULL;
	const struct mxl_dkim_domain *d = c.domain;
	DKIM **h = xcalloc(d->nkeys, sizeof(*h));
	size_t n = 0;
	for (; n < d->nkeys; n++) {
		const struct loaded_key *k = loaded(&d->keys[n]);
		if (k == NULL) {
			failure = "its key was not loaded";
			break;
		}
		h[n] = dkim_sign(lib, (const unsigned char *)env->id, NULL,
		    (dkim_sigkey_t)k->pem, (const unsigned char *)
		    k->conf->selector, (const unsigned char *)d->domain,
		    DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, k->alg, -1, &st);
		if (h[n] == NULL)
			break;
	}
	if (n == d->nkeys) {
		if (feed_content(sp, env, h, n, &st) != SPOOL_OK)
			failure = "the spool cannot be read";
		for (size_t k = 0; failure == NULL && st == DKIM_STAT_OK &&
		    k < n; k++)
			if ((st = dkim_chunk(h[k], NULL, 0)) == DKIM_STAT_OK)
				st = dkim_eom(h[k], NULL);
		for (size_t k = 0; failure == NULL && st == DKIM_STAT_OK &&
		    k < n; k++) {
			unsigned char *value;
			size_t len;
			st = dkim_getsighdr_d(h[k], strlen(SIGNATURE_FIELD ": "),
			    &value, &len);
			if (st == DKIM_STAT_OK)
				append_field(&fields, value, len);
		}
	}
	if (failure == NULL && st != DKIM_STAT_OK) {
		const char *detail = NULL;
		for (size_t k = 0; k < n && detail == NULL; k++)
			detail = dkim_geterror(h[k]);
		log_warn("%s: dkim: %s cannot sign it: %s%s%s; sent unsigned",
		    env->id, d->domain, dkim_getresultstr(st),
		    detail ? ": " : "", detail ? detail : "");
		failure = "";
	} else if (failure) {
		log_warn("%s: dkim: %s cannot sign it: %s; sent unsigned",
		    env->id, d->domain, failure);
	}
	for (size_t k = 0; k < n; k++)
		if (h[k])
			dkim_free(h[k]);
	free(h);
	if (failure) {
		buf_free(&fields);
		return NULL;
	}
	*signer = dkim_signer_name(d);
	return buf_steal(&fields);
}
