/*
 * NAME
 *	record - the byte layout of envelope and recipient records
 * DESCRIPTION
 *	Records are versioned, length-counted and validated when read back:
 *	a record that does not decode cleanly (truncated, trailing bytes,
 *	unknown version, out-of-range enum, string with a NUL inside) is
 *	refused rather than half-used. Integers are big-endian.
 *
 *	Pure functions of bytes and values: nothing here knows BerkeleyDB
 *	or the spool, only the types in spool_types.h.
 */
#ifndef MXLANE_RECORD_H
#define MXLANE_RECORD_H

#include "lib/util.h"
#include "spool/spool_types.h"

void record_encode_msg(const struct spool_msg *msg, struct buf *out);
int record_decode_msg(const void *data, size_t len, struct spool_msg *msg);
void record_encode_rcpt(const struct spool_rcpt *rcpt, struct buf *out);
int record_decode_rcpt(const void *data, size_t len, struct spool_rcpt *rcpt);

/* Recipient and content keys: queue id, NUL, 32-bit big-endian index. */
#define RECORD_SUBKEY_LEN (SPOOL_ID_SIZE + 4)
void record_subkey(const char *id, uint32_t index,
    unsigned char key[RECORD_SUBKEY_LEN]);

#endif
