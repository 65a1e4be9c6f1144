/*
 * NAME
 *	escape - strings quoted for JSON and for Prometheus' text format
 * DESCRIPTION
 *	See escape.h.
 */
#include "lib/escape.h"
#include "lib/util.h"

void
escape_json(FILE *out, const char *s)
{
	struct buf b = BUF_INIT;

	json_put_str(&b, s);
	fwrite(b.data, 1, b.len, out);
	buf_free(&b);
}

void
escape_prom_label(FILE *out, const char *s)
{
	fputc('"', out);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\\' || c == '"')
			fprintf(out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", out);
		else if (c < 0x20 || c == 0x7f)
			fputc(' ', out);
		else
			fputc(c, out);
	}
	fputc('"', out);
}
