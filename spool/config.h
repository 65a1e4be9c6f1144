/*
 * NAME
 *	config - mxlane.conf, read with libconfuse
 * DESCRIPTION
 *	The file is -C FILE, else $MXLANE_CONFIG, else
 *	/etc/mxlane/mxlane.conf; when that default file does not exist the
 *	built-in defaults serve. config_load() never exits: it returns
 *	EX_CONFIG with "file:line: what is wrong" in err so the caller can
 *	report it once and queue nothing.
 */
#ifndef MXLANE_CONFIG_H
#define MXLANE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define MXL_DEFAULT_CONFIG MXL_SYSCONFDIR "/mxlane/mxlane.conf"

struct mxl_config {
	char *path;			/* file read, or NULL for defaults */
	char *spool_directory;
	char *myhostname;
	char *myorigin;
	char *alias_maps;
	long long message_size_limit;	/* bytes; 0 = no limit */
	char *default_lane;
	char *log_file;			/* "" = syslog */
	char **lanes;			/* declared lanes; priority, bulk first */
	size_t nlanes;

	/* Delivery (queuerun). Times are in seconds. */
	char *resolver;			/* "" = resolv.conf, or "IP:PORT" */
	int smtp_port;
	char *smtp_helo_name;		/* default myhostname */
	bool smtp_tls;			/* opportunistic STARTTLS */
	int minimal_backoff_time;
	int maximal_backoff_time;
	int maximal_queue_lifetime;
	int delay_warning_time;		/* 0 = never */
	int delivery_lease_time;
	int smtp_connect_timeout;
	int smtp_helo_timeout;
	int smtp_mail_timeout;		/* MAIL and RCPT replies */
	int smtp_data_init_timeout;
	int smtp_data_xfer_timeout;
	int smtp_data_done_timeout;
	long long bounce_size_limit;	/* bytes of original in a bounce */
	bool immediate_delivery;	/* priority lane: run at once */
	char *queuerun_path;
};

/* Parses "30s", "5m", "4h", "5d", "1w" or plain seconds; -1 if bad. */
long long config_parse_time(const char *text);

/*
 * explicit_path: -C argument or NULL. use_environment: false under
 * setgid for a non-root caller, so MXLANE_CONFIG is ignored.
 * Returns 0 or EX_CONFIG (err holds the message).
 */
int config_load(const char *explicit_path, bool use_environment,
    struct mxl_config *cfg, char *err, size_t errlen);
void config_free(struct mxl_config *cfg);
bool config_has_lane(const struct mxl_config *cfg, const char *lane);

#endif
