/*
 * NAME
 *	address - RFC 5322 / RFC 5321 address parsing for submission
 * DESCRIPTION
 *	address_list_parse() reads a header field body (To:, Cc:, Bcc:,
 *	Resent-To: ...) as an RFC 5322 address-list: display names, quoted
 *	strings, comments (nested), groups ("undisclosed-recipients:;" and
 *	"team: a@x, b@y;"), folded lines (CRLF or LF followed by blanks),
 *	angle-addr and bare addr-spec, several addresses per field. Each
 *	mailbox found is appended as a bare addr-spec ("local@domain", or
 *	"local" when unqualified) with comments and display names dropped;
 *	quoted local parts keep their quotes only where RFC 5321 needs them.
 *	An address already in out is not appended again, so one list can
 *	collect To:, Cc: and Bcc:; on error out holds the addresses it held
 *	before, though its array may have grown, so the caller frees it with
 *	addr_list_free() either way.
 *
 *	address_envelope_parse() reads one address given on the command
 *	line, in -f, or in SMTP MAIL FROM/RCPT TO: "user", "user@dom",
 *	"<user@dom>", "Name <user@dom>" (command line only), and "<>" or ""
 *	for the null sender (allow_null). CR, LF, NUL and other control
 *	characters are always errors: they are how header injection starts.
 *
 *	Both return the same canonical form (address_valid() holds for it,
 *	and parsing it again gives it back unchanged); the domain keeps its
 *	case, minus a trailing dot.
 * DIAGNOSTICS
 *	Parsers return 0, or -1 with a one-line reason in err.
 */
#ifndef MXLANE_ADDRESS_H
#define MXLANE_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * A set of addresses under address_equal(), by hash: de-duplicating n
 * recipients costs O(n), not O(n^2) (20,000 took seconds). It holds
 * pointers, not copies: each address must outlive its place in the set.
 */
struct addr_set {
	struct addr_set_slot *slots;
	size_t n;
	size_t cap;		/* a power of 2, or 0 */
};

#define ADDR_SET_INIT {NULL, 0, 0}

struct addr_list {
	char **addrs;
	size_t n;
	size_t cap;
	struct addr_set seen;	/* addrs, for addr_list_add_unique() */
};

#define ADDR_LIST_INIT {NULL, 0, 0, ADDR_SET_INIT}

int address_list_parse(const char *text, size_t len, struct addr_list *out,
    char *err, size_t errlen);
int address_envelope_parse(const char *text, bool allow_null, char **out,
    char *err, size_t errlen);

/* Syntax check of a bare addr-spec ("local@domain" or "local"). */
bool address_valid(const char *addr);
/* Returns a new string: addr with "@origin" added when it has no domain. */
char *address_qualify(const char *addr, const char *origin);
/* Pointer to the domain part (after the last '@'), or NULL. */
const char *address_domain(const char *addr);
/* Same address? Local parts compare exactly, domains ignoring case. */
bool address_equal(const char *a, const char *b);

/*
 * The address in the set equal to addr, or NULL after adding addr
 * itself (the pointer) to the set.
 */
const char *addr_set_add(struct addr_set *set, const char *addr);
void addr_set_free(struct addr_set *set);

/*
 * Appends a copy of addr unless an equal address is already present;
 * true when it appended.
 */
bool addr_list_add_unique(struct addr_list *list, const char *addr);
void addr_list_free(struct addr_list *list);

#endif
