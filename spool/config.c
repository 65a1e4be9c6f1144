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

static cfg_opt_t root_opts[] = {
	CFG_STR("spool_directory", MXL_SPOOLDIR, CFGF_NONE),
	CFG_STR("myhostname", "", CFGF_NONE),
	CFG_STR("myorigin", "", CFGF_NONE),
	CFG_STR("alias_maps", "/etc/aliases", CFGF_NONE),
	CFG_INT("message_size_limit", 52428800, CFGF_NONE),
	CFG_STR("default_lane", "priority", CFGF_NONE),
	CFG_STR("log_file", "", CFGF_NONE),
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
	for (size_t i = 0; i < cfg->nlanes; i++)
		free(cfg->lanes[i]);
	free(cfg->lanes);
	memset(cfg, 0, sizeof(*cfg));
}
