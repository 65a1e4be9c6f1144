/*
 * NAME
 *	config - mxlane.conf, read with libconfuse
 * DESCRIPTION
 *	See config.h. libconfuse reports unknown keys and syntax errors
 *	through an error callback; we keep the first message, prefixed with
 *	"file:line:", and refuse the whole file: a half-understood mail
 *	configuration is worse than none.
 *
 *	include("file") splices another file in (libconfuse's include), so
 *	a site can keep provider lists apart from host settings.
 */
#include "spool/config.h"

#include <confuse.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "spool/util.h"

struct config_error {
	char *msg;		/* first error reported, or NULL */
};

static struct config_error *current_error;

static void
config_error_cb(cfg_t *cfg, const char *fmt, va_list ap)
{
	struct buf b = BUF_INIT;

	if (current_error == NULL || current_error->msg != NULL)
		return;
	if (cfg && cfg->filename)
		buf_printf(&b, "%s:%d: ", cfg->filename, cfg->line);
	buf_vprintf(&b, fmt, ap);
	current_error->msg = buf_steal(&b);
}

static char *
default_hostname(void)
{
	char host[256];
	struct addrinfo hints, *res = NULL;

	if (gethostname(host, sizeof(host) - 1) != 0)
		return xstrdup("localhost");
	host[sizeof(host) - 1] = '\0';
	if (strchr(host, '.'))
		return xstrdup(host);
	/* Ask the resolver (usually /etc/hosts) for the canonical FQDN. */
	memset(&hints, 0, sizeof(hints));
	hints.ai_flags = AI_CANONNAME;
	hints.ai_family = AF_UNSPEC;
	if (getaddrinfo(host, NULL, &hints, &res) == 0 && res &&
	    res->ai_canonname && strchr(res->ai_canonname, '.')) {
		char *fqdn = xstrdup(res->ai_canonname);
		freeaddrinfo(res);
		return fqdn;
	}
	if (res)
		freeaddrinfo(res);
	return xstrdup(host);
}

/* Lane rules and pools arrive with route/; a lane is a name for now. */
static cfg_opt_t lane_opts[] = {
	CFG_END()
};

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

/* Time keys are strings ("5m"); refuse a bad one with file:line. */
static int
validate_time(cfg_t *cfg, cfg_opt_t *opt)
{
	const char *value = cfg_opt_getnstr(opt, 0);

	if (config_parse_time(value) < 0) {
		cfg_error(cfg, "%s = \"%s\": expected a time like 30s, 5m, "
		    "4h or 5d", opt->name, value ? value : "");
		return -1;
	}
	return 0;
}

static int
validate_port(cfg_t *cfg, cfg_opt_t *opt)
{
	long port = cfg_opt_getnint(opt, 0);

	if (port < 1 || port > 65535) {
		cfg_error(cfg, "%s = %ld: not a TCP port", opt->name, port);
		return -1;
	}
	return 0;
}

static const char *const time_keys[] = {
	"minimal_backoff_time", "maximal_backoff_time",
	"maximal_queue_lifetime", "delay_warning_time", "delivery_lease_time",
	"smtp_connect_timeout", "smtp_helo_timeout", "smtp_mail_timeout",
	"smtp_data_init_timeout", "smtp_data_xfer_timeout",
	"smtp_data_done_timeout",
};

static cfg_opt_t root_opts[] = {
	CFG_STR("spool_directory", MXL_SPOOLDIR, CFGF_NONE),
	CFG_STR("myhostname", "", CFGF_NONE),
	CFG_STR("myorigin", "", CFGF_NONE),
	CFG_STR("alias_maps", "/etc/aliases", CFGF_NONE),
	CFG_INT("message_size_limit", 52428800, CFGF_NONE),
	CFG_STR("default_lane", "priority", CFGF_NONE),
	CFG_STR("log_file", "", CFGF_NONE),
	CFG_STR("resolver", "", CFGF_NONE),
	CFG_INT("smtp_port", 25, CFGF_NONE),
	CFG_STR("smtp_helo_name", "", CFGF_NONE),
	CFG_BOOL("smtp_tls", cfg_true, CFGF_NONE),
	CFG_STR("minimal_backoff_time", "5m", CFGF_NONE),
	CFG_STR("maximal_backoff_time", "1h", CFGF_NONE),
	CFG_STR("maximal_queue_lifetime", "5d", CFGF_NONE),
	CFG_STR("delay_warning_time", "4h", CFGF_NONE),
	CFG_STR("delivery_lease_time", "1h", CFGF_NONE),
	/* RFC 5321 section 4.5.3.2 recommendations, as Postfix uses. */
	CFG_STR("smtp_connect_timeout", "30s", CFGF_NONE),
	CFG_STR("smtp_helo_timeout", "5m", CFGF_NONE),
	CFG_STR("smtp_mail_timeout", "5m", CFGF_NONE),
	CFG_STR("smtp_data_init_timeout", "2m", CFGF_NONE),
	CFG_STR("smtp_data_xfer_timeout", "3m", CFGF_NONE),
	CFG_STR("smtp_data_done_timeout", "10m", CFGF_NONE),
	CFG_INT("bounce_size_limit", 50000, CFGF_NONE),
	CFG_BOOL("immediate_delivery", cfg_true, CFGF_NONE),
	CFG_STR("queuerun_path", MXL_SBINDIR "/queuerun", CFGF_NONE),
	CFG_SEC("lane", lane_opts, CFGF_MULTI | CFGF_TITLE | CFGF_NO_TITLE_DUPES),
	CFG_FUNC("include", cfg_include),
	CFG_END()
};

static int
config_fail(struct mxl_config *cfg, char *err, size_t errlen,
    const char *fmt, ...) MXL_PRINTF(4, 5);

static int
config_fail(struct mxl_config *cfg, char *err, size_t errlen,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	config_free(cfg);
	return EX_CONFIG;
}

static void
add_lane(struct mxl_config *cfg, const char *name)
{
	if (config_has_lane(cfg, name))
		return;
	cfg->lanes = xrealloc(cfg->lanes, (cfg->nlanes + 1) * sizeof(char *));
	cfg->lanes[cfg->nlanes++] = xstrdup(name);
}

static int
lane_name_valid(const char *name)
{
	if (*name == '\0' || strlen(name) > 32)
		return 0;
	for (; *name; name++)
		if (!((*name >= 'a' && *name <= 'z') || (*name >= '0' &&
		    *name <= '9') || *name == '-' || *name == '_'))
			return 0;
	return 1;
}

int
config_load(const char *explicit_path, bool use_environment,
    struct mxl_config *cfg, char *err, size_t errlen)
{
	const char *path = explicit_path;
	bool must_exist = true;
	struct config_error error = {NULL};

	memset(cfg, 0, sizeof(*cfg));
	if (path == NULL && use_environment) {
		const char *env = getenv("MXLANE_CONFIG");
		if (env && *env)
			path = env;
	}
	if (path == NULL) {
		path = MXL_DEFAULT_CONFIG;
		must_exist = false;
	}

	cfg_t *parsed = cfg_init(root_opts, CFGF_NONE);
	current_error = &error;
	cfg_set_error_function(parsed, config_error_cb);
	for (size_t i = 0; i < sizeof(time_keys) / sizeof(time_keys[0]); i++)
		cfg_set_validate_func(parsed, time_keys[i], validate_time);
	cfg_set_validate_func(parsed, "smtp_port", validate_port);

	struct stat st;
	int rc = CFG_SUCCESS;
	if (!must_exist && stat(path, &st) != 0 && errno == ENOENT) {
		/* A fresh install runs on built-in defaults. */
		cfg->path = NULL;
	} else {
		cfg->path = xstrdup(path);
		rc = cfg_parse(parsed, path);
	}
	current_error = NULL;
	if (rc == CFG_FILE_ERROR) {
		cfg_free(parsed);
		free(error.msg);
		return config_fail(cfg, err, errlen, "%s: cannot read "
		    "configuration: %s", path, strerror(errno));
	}
	if (rc != CFG_SUCCESS) {
		cfg_free(parsed);
		snprintf(err, errlen, "%s", error.msg ? error.msg :
		    "configuration error");
		free(error.msg);
		config_free(cfg);
		return EX_CONFIG;
	}

	cfg->spool_directory = xstrdup(cfg_getstr(parsed, "spool_directory"));
	cfg->myhostname = xstrdup(cfg_getstr(parsed, "myhostname"));
	cfg->myorigin = xstrdup(cfg_getstr(parsed, "myorigin"));
	cfg->alias_maps = xstrdup(cfg_getstr(parsed, "alias_maps"));
	cfg->message_size_limit = cfg_getint(parsed, "message_size_limit");
	cfg->default_lane = xstrdup(cfg_getstr(parsed, "default_lane"));
	cfg->log_file = xstrdup(cfg_getstr(parsed, "log_file"));
	cfg->resolver = xstrdup(cfg_getstr(parsed, "resolver"));
	cfg->smtp_port = (int)cfg_getint(parsed, "smtp_port");
	cfg->smtp_helo_name = xstrdup(cfg_getstr(parsed, "smtp_helo_name"));
	cfg->smtp_tls = cfg_getbool(parsed, "smtp_tls");
	int *times[] = {&cfg->minimal_backoff_time, &cfg->maximal_backoff_time,
	    &cfg->maximal_queue_lifetime, &cfg->delay_warning_time,
	    &cfg->delivery_lease_time, &cfg->smtp_connect_timeout,
	    &cfg->smtp_helo_timeout, &cfg->smtp_mail_timeout,
	    &cfg->smtp_data_init_timeout, &cfg->smtp_data_xfer_timeout,
	    &cfg->smtp_data_done_timeout};
	for (size_t i = 0; i < sizeof(time_keys) / sizeof(time_keys[0]); i++)
		*times[i] = (int)config_parse_time(cfg_getstr(parsed,
		    time_keys[i]));
	cfg->bounce_size_limit = cfg_getint(parsed, "bounce_size_limit");
	cfg->immediate_delivery = cfg_getbool(parsed, "immediate_delivery");
	cfg->queuerun_path = xstrdup(cfg_getstr(parsed, "queuerun_path"));
	add_lane(cfg, "priority");
	add_lane(cfg, "bulk");
	for (unsigned i = 0; i < cfg_size(parsed, "lane"); i++) {
		const char *name = cfg_title(cfg_getnsec(parsed, "lane", i));
		if (!lane_name_valid(name)) {
			cfg_free(parsed);
			return config_fail(cfg, err, errlen, "%s: lane \"%s\": "
			    "a lane name is 1-32 of a-z 0-9 - _", path, name);
		}
		add_lane(cfg, name);
	}
	cfg_free(parsed);

	if (*cfg->myhostname == '\0') {
		free(cfg->myhostname);
		cfg->myhostname = default_hostname();
	}
	if (*cfg->smtp_helo_name == '\0') {
		free(cfg->smtp_helo_name);
		cfg->smtp_helo_name = xstrdup(cfg->myhostname);
	}
	if (*cfg->myorigin == '\0') {
		free(cfg->myorigin);
		cfg->myorigin = xstrdup(cfg->myhostname);
	}
	if (cfg->spool_directory[0] != '/')
		return config_fail(cfg, err, errlen, "%s: spool_directory "
		    "must be an absolute path, not \"%s\"", path ? path : "",
		    cfg->spool_directory);
	if (cfg->message_size_limit < 0)
		return config_fail(cfg, err, errlen, "%s: message_size_limit "
		    "must be 0 (no limit) or a number of bytes", path);
	if (cfg->minimal_backoff_time < 1 ||
	    cfg->maximal_backoff_time < cfg->minimal_backoff_time)
		return config_fail(cfg, err, errlen, "%s: maximal_backoff_time "
		    "must be at least minimal_backoff_time (and both > 0)",
		    path);
	if (cfg->delivery_lease_time < 1 || cfg->smtp_connect_timeout < 1)
		return config_fail(cfg, err, errlen, "%s: delivery_lease_time "
		    "and smtp_connect_timeout must be positive", path);
	if (!config_has_lane(cfg, cfg->default_lane))
		return config_fail(cfg, err, errlen, "%s: default_lane \"%s\" "
		    "is not a declared lane", path, cfg->default_lane);
	return 0;
}

bool
config_has_lane(const struct mxl_config *cfg, const char *lane)
{
	for (size_t i = 0; i < cfg->nlanes; i++)
		if (strcmp(cfg->lanes[i], lane) == 0)
			return true;
	return false;
}

void
config_free(struct mxl_config *cfg)
{
	free(cfg->path);
	free(cfg->spool_directory);
	free(cfg->myhostname);
	free(cfg->myorigin);
	free(cfg->alias_maps);
	free(cfg->default_lane);
	free(cfg->log_file);
	free(cfg->resolver);
	free(cfg->smtp_helo_name);
	free(cfg->queuerun_path);
	for (size_t i = 0; i < cfg->nlanes; i++)
		free(cfg->lanes[i]);
	free(cfg->lanes);
	memset(cfg, 0, sizeof(*cfg));
}
