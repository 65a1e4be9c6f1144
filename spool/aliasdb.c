/*
 * NAME
 *	aliasdb - the compiled aliases table, a file beside the queue
 * DESCRIPTION
 *	newaliases writes a whole new table (a BerkeleyDB hash file of its
 *	own, outside the transactional environment) under a temporary
 *	name, makes it durable and renames it over "aliases.map": a
 *	submitter expanding an alias at that moment sees the old table or
 *	the new one, never a mix, and reads it without joining the
 *	environment or taking any lock, as Postfix's sendmail reads
 *	aliases.db. Targets are stored NUL-separated. The key "@built" (no
 *	alias name can contain '@') marks a table compiled at least once,
 *	even if it is empty.
 *
 *	BerkeleyDB opens files by name; the name used is
 *	/proc/self/fd/N/aliases.map with N the spool directory already
 *	opened and checked (lib/proc.h), so it is the same directory
 *	whatever happens to the path meanwhile.
 */
#include <db.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "spool/spool_impl.h"
#include "spool/txn.h"

#define MAP_FILE	"aliases.map"
#define BUILT_KEY	"@built"

struct aliasmap {
	DB *db;
};

static char *
map_path(int dirfd, const char *name)
{
	return xasprintf("/proc/self/fd/%d/%s", dirfd, name);
}

static int
write_table(DB *db, const struct spool_alias *aliases, size_t n)
{
	struct buf val = BUF_INIT;
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		buf_reset(&val);
		for (size_t t = 0; t < aliases[i].ntargets; t++)
			buf_append(&val, aliases[i].targets[t],
			    strlen(aliases[i].targets[t]) + 1);
		rc = spool_put(db, NULL, aliases[i].name,
		    strlen(aliases[i].name), val.data ? val.data : "", val.len,
		    0);
	}
	if (rc == 0)
		rc = spool_put(db, NULL, BUILT_KEY, strlen(BUILT_KEY), "", 0, 0);
	buf_free(&val);
	return rc;
}

int
aliasmap_replace(int dirfd, const struct spool_alias *aliases, size_t n)
{
	char tmp[64];
	DB *db = NULL;
	int rc, fd;

	snprintf(tmp, sizeof(tmp), "%s.new.%ld", MAP_FILE, (long)getpid());
	(void)unlinkat(dirfd, tmp, 0);
	char *path = map_path(dirfd, tmp);
	if ((rc = db_create(&db, NULL, 0)) != 0)
		goto err;
	rc = db->open(db, NULL, path, NULL, DB_HASH, DB_CREATE | DB_EXCL,
	    0600);
	if (rc == 0)
		rc = write_table(db, aliases, n);
	int crc = db->close(db, 0);
	db = NULL;
	if (rc == 0)
		rc = crc;
	if (rc != 0)
		goto err;
	/* close() wrote the pages; fsync makes them durable before the swap. */
	fd = openat(dirfd, tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0) {
		rc = errno;
		if (fd >= 0)
			close(fd);
		goto err;
	}
	close(fd);
	if (renameat(dirfd, tmp, dirfd, MAP_FILE) != 0 || fsync(dirfd) != 0) {
		rc = errno;
		goto err;
	}
	free(path);
	return SPOOL_OK;
err:
	if (db)
		db->close(db, 0);
	(void)unlinkat(dirfd, tmp, 0);
	log_error("spool: cannot store aliases: %s",
	    rc > 0 ? strerror(rc) : db_strerror(rc));
	free(path);
	return SPOOL_ERR;
}

struct aliasmap *
aliasmap_open(int dirfd)
{
	struct aliasmap *map = xcalloc(1, sizeof(*map));
	char *path = map_path(dirfd, MAP_FILE);
	int rc = db_create(&map->db, NULL, 0);

	if (rc == 0)
		rc = map->db->open(map->db, NULL, path, NULL, DB_HASH,
		    DB_RDONLY, 0);
	free(path);
	if (rc != 0) {
		if (rc != ENOENT)
			log_error("spool: cannot read the aliases table: %s",
			    rc > 0 ? strerror(rc) : db_strerror(rc));
		if (map->db)
			map->db->close(map->db, 0);
		free(map);
		return NULL;
	}
	return map;
}

void
aliasmap_close(struct aliasmap *map)
{
	if (map == NULL)
		return;
	map->db->close(map->db, 0);
	free(map);
}

static int
get_string(struct aliasmap *map, const char *name, DBT *val)
{
	DBT key;

	memset(&key, 0, sizeof(key));
	memset(val, 0, sizeof(*val));
	key.data = (void *)name;
	key.size = (u_int32_t)strlen(name);
	val->flags = DB_DBT_MALLOC;
	return map->db->get(map->db, NULL, &key, val, 0);
}

int
aliasmap_lookup(struct aliasmap *map, const char *name, char ***targets,
    size_t *ntargets)
{
	DBT val;

	if (map == NULL || strchr(name, '@') != NULL)
		return SPOOL_NOTFOUND;
	int rc = get_string(map, name, &val);
	if (rc == DB_NOTFOUND)
		return SPOOL_NOTFOUND;
	if (rc != 0) {
		log_error("spool: alias lookup %s: %s", name, db_strerror(rc));
		return SPOOL_ERR;
	}
	char **list = NULL;
	size_t n = 0;
	const char *p = val.data, *end = p + val.size;
	while (p < end) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		size_t len = nul ? (size_t)(nul - p) : (size_t)(end - p);
		list = xrealloc(list, (n + 1) * sizeof(*list));
		list[n++] = xstrndup(p, len);
		p += len + 1;
	}
	free(val.data);
	*targets = list;
	*ntargets = n;
	return SPOOL_OK;
}

bool
aliasmap_built(struct aliasmap *map)
{
	DBT val;

	if (map == NULL || get_string(map, BUILT_KEY, &val) != 0)
		return false;
	free(val.data);
	return true;
}

/* The queue's own view, for the runner (postmaster) and the tests. */
int
spool_aliases_replace(struct spool *sp, const struct spool_alias *aliases,
    size_t n)
{
	int rc = aliasmap_replace(sp->dirfd, aliases, n);

	/* The next look-up reads the new table. */
	aliasmap_close(sp->aliasmap);
	sp->aliasmap = NULL;
	return rc;
}

static struct aliasmap *
spool_aliasmap(struct spool *sp)
{
	if (sp->aliasmap == NULL)
		sp->aliasmap = aliasmap_open(sp->dirfd);
	return sp->aliasmap;
}

int
spool_alias_lookup(struct spool *sp, const char *name, char ***targets,
    size_t *ntargets)
{
	return aliasmap_lookup(spool_aliasmap(sp), name, targets, ntargets);
}

bool
spool_has_aliases(struct spool *sp)
{
	return aliasmap_built(spool_aliasmap(sp));
}
