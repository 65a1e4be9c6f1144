/*
 * NAME
 *	escape - strings quoted for JSON and for Prometheus' text format
 * SYNOPSIS
 *	#include "lib/escape.h"
 * DESCRIPTION
 *	escape_json() writes s as a JSON string, quotes included ("null"
 *	for NULL), as json_put_str() (lib/util.h) writes it into a buffer.
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
