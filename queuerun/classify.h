/*
 * NAME
 *	classify - "queuerun classify REPLY...": which class, by which rule
 * DESCRIPTION
 *	For each reply text: class, rule (name, file:line), the code and
 *	enhanced status read from the text, and the rule's action. provider
 *	(may be NULL) is the provider the reply is taken to come from.
 */
#ifndef MXLANE_CLASSIFY_H
#define MXLANE_CLASSIFY_H

#include <stdio.h>

#include "lib/config.h"

int classify_replies(const struct mxl_config *cfg, const char *provider,
    char **replies, int n, FILE *out);

#endif
