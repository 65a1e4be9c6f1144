/*
 * NAME
 *	escape - strings quoted for JSON and for Prometheus' text format
 * SYNOPSIS
 *	#include "lib/escape.h"
 * DESCRIPTION
 *	escape_json() writes s as a JSON string, quotes included ("null"
 *	for NULL); bytes below 0x20 and DEL become \u00XX, other bytes go
 *	out as they are (the caller's strings are UTF-8 or ASCII).
 *
 *	escape_prom_label() writes s as a Prometheus text-format label
 *	value, quotes included: backslash, double quote and line feed are
 *	the three characters the exposition format escapes (\\, \", \n);
 *	other control characters, which it does not define, become spaces.
 */
#ifndef MXLANE_ESCAPE_H
#define MXLANE_ESCAPE_H

#include <stdio.h>

void escape_json(FILE *out, const char *s);
void escape_prom_label(FILE *out, const char *s);

#endif
