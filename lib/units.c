/*
 * NAME
 *	units - durations and rates as the configuration writes them
 * DESCRIPTION
 *	See units.h.
 */
#include "lib/units.h"

#include <stdlib.h>

long long
config_parse_time(const char *text)
{
	char *end;
	long long v;

	if (text == NULL || *text < '0' || *text > '9')
		return -1;
	v = strtoll(text, &end, 10);
	if (v < 0 || v > 100LL * 365 * 86400)
		return -1;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		v *= 60;
		break;
	case 'h':
		v *= 3600;
		break;
	case 'd':
		v *= 86400;
		break;
	case 'w':
		v *= 7 * 86400;
		break;
	default:
		return -1;
	}
	if (*end && end[1] != '\0')
		return -1;
	return v;
}

bool
config_parse_rate(const char *text, long *count, int *period)
{
	char *end;
	long n;

	if (text == NULL || *text < '1' || *text > '9')
		return false;
	n = strtol(text, &end, 10);
	if (n <= 0 || n > 100000000 || *end != '/' || end[1] == '\0' ||
	    end[2] != '\0')
		return false;
	switch (end[1]) {
	case 's':
		*period = 1;
		break;
	case 'm':
		*period = 60;
		break;
	case 'h':
		*period = 3600;
		break;
	case 'd':
		*period = 86400;
		break;
	default:
		return false;
	}
	*count = n;
	return true;
}
