/*
 * NAME
 *	aliasdb - the compiled aliases table inside the spool
 * DESCRIPTION
 *	newaliases replaces the whole table in one transaction, so a
 *	submitter expanding an alias at that moment sees the old table or
 *	the new one, never a mix. Targets are stored NUL-separated. The key
 *	"@built" (no alias name can contain '@') marks a table that has been
 *	compiled at least once, even if it is empty.
 */
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "spool/spool_impl.h"

#define BUILT_KEY "@built"

static int
put_string(DB *db, DB_TXN *txn, const char *name, const void *val,
    size_t len)
{
	DBT key, data;

	memset(&key, 0, sizeof(key));
	memset(&data, 0, sizeof(data));
	key.data = (void *)name;
	key.size = (u_int32_t)strlen(name);
	data.data = (void *)val;
	data.size = (u_int32_t)len;
	return db->put(db, txn, &key, &data, 0);
}

static int
replace_once(struct spool *sp, const struct spool_alias *aliases, size_t n)
{
	DB_TXN *txn;
	u_int32_t count;
	struct buf val = BUF_INIT;
	int rc;

	if ((rc = sp->env->txn_begin(sp->env, NULL, &txn, 0)) != 0)
		return rc;
	if ((rc = sp->aliases->truncate(sp->aliases, txn, &count, 0)) != 0)
		goto err;
	for (size_t i = 0; i < n; i++) {
		buf_reset(&val);
		for (size_t t = 0; t < aliases[i].ntargets; t++)
			buf_append(&val, aliases[i].targets[t],
			    strlen(aliases[i].targets[t]) + 1);
		if ((rc = put_string(sp->aliases, txn, aliases[i].name,
		    val.data ? val.data : "", val.len)) != 0)
			goto err;
	}
	if ((rc = put_string(sp->aliases, txn, BUILT_KEY, "", 0)) != 0)
		goto err;
	buf_free(&val);
	return txn->commit(txn, 0);
err:
	buf_free(&val);
	txn->abort(txn);
	return rc;
}

int
spool_aliases_replace(struct spool *sp, const struct spool_alias *aliases,
    size_t n)
{
	SPOOL_GUARD;
	int rc = DB_LOCK_DEADLOCK;

	SPOOL_RETRY(sp, rc, i)
		rc = replace_once(sp, aliases, n);
	if (rc != 0) {
		log_error("spool: cannot store aliases: %s", db_strerror(rc));
		return SPOOL_ERR;
	}
	return SPOOL_OK;
}

static int
get_string(struct spool *sp, const char *name, DBT *val)
{
	DBT key;
	int rc = DB_LOCK_DEADLOCK;

	memset(&key, 0, sizeof(key));
	key.data = (void *)name;
	key.size = (u_int32_t)strlen(name);
	SPOOL_RETRY(sp, rc, i) {
		memset(val, 0, sizeof(*val));
		val->flags = DB_DBT_MALLOC;
		rc = sp->aliases->get(sp->aliases, NULL, &key, val,
		    DB_READ_UNCOMMITTED);
	}
	return rc;
}

int
spool_alias_lookup(struct spool *sp, const char *name, char ***targets,
    size_t *ntargets)
{
	SPOOL_GUARD;
	DBT val;
	int rc = get_string(sp, name, &val);

	if (rc == DB_NOTFOUND || strchr(name, '@') != NULL) {
		if (rc == 0)
			free(val.data);
		return SPOOL_NOTFOUND;
	}
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
spool_has_aliases(struct spool *sp)
{
	SPOOL_GUARD;
	DBT val;
	int rc = get_string(sp, BUILT_KEY, &val);

	if (rc == 0)
		free(val.data);
	return rc == 0;
}
