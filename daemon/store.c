/*
 * store: cases, events, idempotency keys and list indexes in LMDB (see store.h).
 *
 * Counters (next id, next seq) are derived from the last keys at open and kept in
 * memory by the one writer; a transaction works on its own copies and publishes them
 * only when it commits, so an aborted batch gives its numbers back and sequence
 * numbers stay dense.
 */
#include "store.h"

#include "case_event.h"
#include "log.h"
#include "sla.h"
#include "escalate_task.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_DEFAULT_MAP_SIZE (64ULL << 30)
#define STORE_DEFAULT_MAP_MAX  (1ULL << 40)
#define INDEX_KEY_MAX          96   /* tag + value (<= 64) + NUL + id */

/* Index tags: one byte in front of each index key. */
enum {
    TAG_STATE = 's', TAG_CHANNEL = 'h', TAG_UNIT = 'u', TAG_DISTRICT = 'd',
    TAG_STREET = 't', TAG_COMMUNITY = 'c', TAG_GRID = 'g', TAG_CATEGORY = 'k',
    TAG_PHONE = 'p', TAG_DUP_GRID = 'x', TAG_DUP_NEAR = 'y',
    TAG_DEADLINE = 'D',   /* due time, id, kind: the deadlines not yet acted on */
    /* unit, '/', state: a unit's cases in one state (its open cases) without reading
     * the unit's closed ones; since schema 2. */
    TAG_UNIT_STATE = 'v',
    /* Last of all tags, so that new cases' entries append at the end (MDB_APPEND). */
    TAG_CREATED = '~'
};

#define POSTING_PART_SHIFT 16
#define POSTING_PART_BYTES 4   /* partitions of ids below 2^48 */

/* A posting list change waiting for the commit (see postings_flush). */
#define POSTING_KEY_MAX (1 + REQUEST_MAX_CODE + 2 + 1 + POSTING_PART_BYTES)
typedef struct {
    uint64_t      id;
    uint32_t      seq;      /* order of the changes to one (key, id): the last one wins */
    uint8_t       len;
    bool          del;
    unsigned char key[POSTING_KEY_MAX];
} posting_op;

struct store {
    MDB_env         *env;
    /* Held shared by every transaction, from its begin to its end, and exclusively by
     * store_grow: LMDB remaps the file when the map grows, which no transaction of the
     * process may see. Writer-preferring, so that reads cannot hold off a grow. */
    pthread_rwlock_t map_lock;
    bool             map_lock_ready;
    bool             map_lost;   /* a grow failed to map the file again: no more txns */
    bool             map_max_told;
    uint64_t         map_size, map_max;   /* map_size: store_grow's (the writer's) */
    /* index: keys that carry their own order (deadlines, created time, duplicate
     * candidates). post: the posting lists of the list filters, a tag and value each
     * with its cases' ids as sorted 8-byte duplicates (since schema 3). */
    MDB_dbi          meta, cases, codes, events, history, idem, requests, index, post;
    bool             idem_legacy;   /* idem holds keys of schemas 1-4: look there too */
    char             code_prefix[16];
    int              utc_offset_min;
    /* Owned by the writer thread; published at commit. */
    uint64_t         next_id, next_seq;
    int64_t          last_created_at;
    store_reader    *reader;          /* the loop thread's cached read transaction */
    msgpack_sbuffer  wbuf;            /* the writer's scratch: a case */
    msgpack_sbuffer  ebuf;            /* the writer's scratch: an event */
    msgpack_zone     wzone;           /* the writer's scratch: unpacking */
    /* The writer's: the open transaction's posting changes, applied at its commit. */
    posting_op      *pops;
    size_t           n_pops, cap_pops;
    unsigned char   *pids;            /* one key's ids for an MDB_MULTIPLE put */
    size_t           cap_pids;
    /* postings_flush's scratch, sized for cap_pops: the changes in order, the keys'
     * hash table, and the distinct keys by rank. */
    struct posting_ref { uint32_t key, seq; uint64_t id; } *prefs;
    uint32_t        *phash, *pkeys;
};

struct store_txn {
    store   *s;
    MDB_txn *txn;
    uint64_t next_id, next_seq;
    int64_t  last_created_at;
};

struct store_reader {
    store       *s;
    MDB_txn     *txn;
    bool         active;
    bool         is_private;   /* not the loop's cached reader: freed at the end */
    msgpack_zone zone;
};

/* Whether a write on this thread met MDB_MAP_FULL since its transaction began (see
 * store_write_map_full). Per thread, as lmdb_code sees only the code; only the writer's
 * thread writes. */
static _Thread_local bool map_full_seen;

static int lmdb_code(int rc)
{
    if (rc == MDB_MAP_FULL) {
        map_full_seen = true;
    }
    /* EIO too: LMDB reports a short write of the data file, which is what a full
     * filesystem gives, as EIO (mdb_page_flush), not ENOSPC. Nothing of the transaction
     * is written either way, and the writes can go on once space is freed: unavailable,
     * not a fault of the daemon's. */
    if (rc == MDB_MAP_FULL || rc == ENOSPC || rc == EDQUOT || rc == MDB_TXN_FULL
        || rc == EIO) {
        return GL_EUNAVAILABLE;
    }
    return GL_EINTERNAL;
}

static MDB_val val_of(const void *p, size_t n)
{
    MDB_val v = { n, (void *)p };
    return v;
}

static int64_t last_created_at_of(MDB_txn *txn, MDB_dbi cases)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int64_t at = 0;
    if (mdb_cursor_open(txn, cases, &cur) != 0) {
        return 0;
    }
    if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0) {
        msgpack_zone zone;
        case_record c;
        msgpack_zone_init(&zone, 2048);
        if (case_record_decode(v.mv_data, v.mv_size, &zone, &c) == 0) {
            at = c.created_at;
        }
        msgpack_zone_destroy(&zone);
    }
    mdb_cursor_close(cur);
    return at;
}

static uint64_t last_key_of(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_cursor *cur;
    MDB_val k, v;
    uint64_t last = 0;
    if (mdb_cursor_open(txn, dbi, &cur) != 0) {
        return 0;
    }
    if (mdb_cursor_get(cur, &k, &v, MDB_LAST) == 0 && k.mv_size == 8) {
        last = mp_get_be64(k.mv_data);
    }
    mdb_cursor_close(cur);
    return last;
}

static int rebuild_postings(store *s, MDB_txn *txn, uint64_t *n);

static int check_schema(store *s, MDB_txn *txn, const char *dir, char *err, size_t errlen)
{
    MDB_val k = val_of("schema", 6), v;
    int rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        if (last_key_of(txn, s->cases) != 0) {
            snprintf(err, errlen, "data directory %s holds cases but no schema version: "
                     "it was not written by gridlined", dir);
            return -1;
        }
        unsigned char ver[4] = { 0, 0, 0, STORE_SCHEMA_VERSION };
        MDB_val nv = val_of(ver, 4);
        return mdb_put(txn, s->meta, &k, &nv, 0) == 0 ? 0 : -1;
    }
    if (rc != 0 || v.mv_size != 4) {
        snprintf(err, errlen, "data directory %s: unreadable schema record", dir);
        return -1;
    }
    const unsigned char *b = v.mv_data;
    unsigned ver = (unsigned)b[0] << 24 | (unsigned)b[1] << 16 | (unsigned)b[2] << 8 | b[3];
    if (ver >= 1 && ver < STORE_SCHEMA_VERSION) {
        /* Schema 2 added the unit-and-state index, schema 3 moved the list filters'
         * entries into posting lists, schema 4 cut the lists into partitions of ids:
         * from 1 to 3 they are rebuilt from the cases, in the opening transaction, so a
         * crash half way leaves the old schema as it was. Schema 5 keys new request_ids
         * in `requests`; those in `idem` stay and are still looked up (idem_legacy). */
        bool rebuild = ver <= 3;
        uint64_t n = 0;
        unsigned char nver[4] = { 0, 0, 0, STORE_SCHEMA_VERSION };
        MDB_val nv = val_of(nver, 4);
        if ((rebuild && rebuild_postings(s, txn, &n) != 0)
            || mdb_put(txn, s->meta, &k, &nv, 0) != 0) {
            snprintf(err, errlen, "data directory %s: cannot upgrade schema %u to %d (is the "
                     "disk full?)", dir, ver, STORE_SCHEMA_VERSION);
            return -1;
        }
        if (rebuild) {
            log_info("store %s: upgraded schema %u to %d: the list indexes of %llu case(s) "
                     "rebuilt", dir, ver, STORE_SCHEMA_VERSION, (unsigned long long)n);
        } else {
            log_info("store %s: upgraded schema %u to %d: request_ids stored before stay in "
                     "the old index and still replay", dir, ver, STORE_SCHEMA_VERSION);
        }
        return 0;
    }
    if (ver != STORE_SCHEMA_VERSION) {
        snprintf(err, errlen, "data directory %s holds schema %u; this gridlined reads "
                 "schema %d", dir, ver, STORE_SCHEMA_VERSION);
        return -1;
    }
    return 0;
}

store *store_new(const char *dir, const store_options *opt, char *err, size_t errlen)
{
    store *s = calloc(1, sizeof *s);
    MDB_txn *txn = NULL;
    int rc;
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    msgpack_sbuffer_init(&s->wbuf);
    msgpack_sbuffer_init(&s->ebuf);
    msgpack_zone_init(&s->wzone, 4096);
    snprintf(s->code_prefix, sizeof s->code_prefix, "%s",
             opt != NULL && opt->code_prefix != NULL ? opt->code_prefix : "GL");
    s->utc_offset_min = opt != NULL ? opt->utc_offset_min : 0;

    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create data directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    if ((rc = mdb_env_create(&s->env)) != 0) {
        snprintf(err, errlen, "lmdb: %s", mdb_strerror(rc));
        goto fail;
    }
    uint64_t map_size = opt != NULL && opt->map_size != 0 ? opt->map_size : STORE_DEFAULT_MAP_SIZE;
    s->map_max = opt != NULL && opt->map_max != 0 ? opt->map_max : STORE_DEFAULT_MAP_MAX;
    if (s->map_max < map_size) {
        s->map_max = map_size;
    }
    pthread_rwlockattr_t la;
    pthread_rwlockattr_init(&la);
    pthread_rwlockattr_setkind_np(&la, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    rc = pthread_rwlock_init(&s->map_lock, &la);
    pthread_rwlockattr_destroy(&la);
    if (rc != 0) {
        snprintf(err, errlen, "cannot create a lock: %s", strerror(rc));
        goto fail;
    }
    s->map_lock_ready = true;
    mdb_env_set_mapsize(s->env, (size_t)map_size);
    mdb_env_set_maxdbs(s->env, 16);
    /* MDB_NOTLS: read transactions are not tied to a thread's slot, so the loop can
     * keep one and renew it. No MDB_NOSYNC, no MDB_NOMETASYNC: full durability. */
    rc = mdb_env_open(s->env, dir, MDB_NOTLS, 0640);
    if (rc != 0) {
        snprintf(err, errlen, "cannot open the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    store_reader_check(s);
    MDB_envinfo info;
    mdb_env_info(s->env, &info);   /* the file may be larger than map_size asked */
    s->map_size = info.me_mapsize;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
        snprintf(err, errlen, "cannot open the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    struct { const char *name; MDB_dbi *dbi; unsigned flags; } dbs[] = {
        { "meta", &s->meta, 0 }, { "cases", &s->cases, 0 }, { "codes", &s->codes, 0 },
        { "events", &s->events, 0 }, { "history", &s->history, 0 }, { "idem", &s->idem, 0 },
        { "requests", &s->requests, 0 }, { "index", &s->index, 0 },
        { "post", &s->post, MDB_DUPSORT | MDB_DUPFIXED },
    };
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0]; i++) {
        if ((rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE | dbs[i].flags, dbs[i].dbi)) != 0) {
            snprintf(err, errlen, "cannot open database %s in %s: %s", dbs[i].name, dir,
                     mdb_strerror(rc));
            goto fail;
        }
    }
    if (check_schema(s, txn, dir, err, errlen) != 0) {
        goto fail;
    }
    MDB_stat idem_stat;
    if ((rc = mdb_stat(txn, s->idem, &idem_stat)) != 0) {
        snprintf(err, errlen, "cannot read the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    s->idem_legacy = idem_stat.ms_entries > 0;
    s->next_id = last_key_of(txn, s->cases) + 1;
    s->next_seq = last_key_of(txn, s->events) + 1;
    s->last_created_at = last_created_at_of(txn, s->cases);
    if ((rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        snprintf(err, errlen, "cannot initialise the store in %s: %s", dir, mdb_strerror(rc));
        goto fail;
    }
    return s;

fail:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    store_destroy(&s);
    return NULL;
}

void store_destroy(store **sp)
{
    if (sp == NULL || *sp == NULL) {
        return;
    }
    store *s = *sp;
    if (s->reader != NULL) {
        if (s->reader->txn != NULL) {
            mdb_txn_abort(s->reader->txn);
        }
        msgpack_zone_destroy(&s->reader->zone);
        free(s->reader);
    }
    if (s->env != NULL) {
        mdb_env_close(s->env);
    }
    if (s->map_lock_ready) {
        pthread_rwlock_destroy(&s->map_lock);
    }
    msgpack_sbuffer_destroy(&s->wbuf);
    msgpack_sbuffer_destroy(&s->ebuf);
    msgpack_zone_destroy(&s->wzone);
    free(s->pops);
    free(s->pids);
    free(s->prefs);
    free(s->phash);
    free(s->pkeys);
    free(s);
    *sp = NULL;
}

int store_reader_check(store *s)
{
    int dead = 0;
    int rc = mdb_reader_check(s->env, &dead);
    if (rc != 0) {
        log_error("store: cannot check the reader table: %s", mdb_strerror(rc));
        return GL_EINTERNAL;
    }
    if (dead > 0) {
        log_warn("cleared %d stale LMDB reader slot(s) left by a dead process", dead);
    }
    return dead;
}

bool store_write_map_full(void)
{
    return map_full_seen;
}

int store_grow(store *s)
{
    uint64_t old = s->map_size, want = old * 2 > s->map_max ? s->map_max : old * 2;
    if (want <= old) {
        /* Checked before the lock: at the limit, each refused batch must not wait for
         * every read to end (and hold up the loop's) only to learn it. */
        if (!s->map_max_told) {
            s->map_max_told = true;
            log_error("store: the LMDB map is full at %llu MiB and --map-max is %llu MiB: "
                      "writes are refused until the daemon is restarted with a higher "
                      "--map-max", (unsigned long long)(old >> 20),
                      (unsigned long long)(s->map_max >> 20));
        }
        return GL_EUNAVAILABLE;
    }
    /* LMDB unmaps the file before it maps it at the new size, and if that fails it has
     * no map at all (and a second call does not map it again). So the address space is
     * tried first, and given back just before LMDB takes it. */
    void *room = mmap(NULL, (size_t)want, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
    if (room == MAP_FAILED) {
        log_error("store: cannot grow the LMDB map from %llu to %llu MiB: no room in the "
                  "address space (%s); writes are refused", (unsigned long long)(old >> 20),
                  (unsigned long long)(want >> 20), strerror(errno));
        return GL_EUNAVAILABLE;
    }
    munmap(room, (size_t)want);
    pthread_rwlock_wrlock(&s->map_lock);
    /* No transaction of this process is open (the lock), so LMDB may remap. */
    int rc = mdb_env_set_mapsize(s->env, (size_t)want);
    if (rc != 0) {
        s->map_lost = true;   /* any transaction would read through a null map */
    } else {
        s->map_size = want;
    }
    pthread_rwlock_unlock(&s->map_lock);
    if (rc != 0) {
        log_error("store: cannot grow the LMDB map from %llu to %llu MiB: %s; the store "
                  "cannot be read or written any more: restart the daemon",
                  (unsigned long long)(old >> 20), (unsigned long long)(want >> 20),
                  mdb_strerror(rc));
        return GL_EUNAVAILABLE;
    }
    log_info("store: the LMDB map was full at %llu MiB; grown to %llu MiB",
             (unsigned long long)(old >> 20), (unsigned long long)(want >> 20));
    return 0;
}

uint64_t store_case_count(store *s)
{
    return s->next_id - 1;
}

/* --- backup --- */

/* Opens the environment in dir read-only (flags: MDB_NOLOCK too for a copy no one else
 * uses) and reads its schema, cases and events. Returns 0 or -1 with err. */
static int backup_read(const char *dir, unsigned flags, MDB_env **envp, store_backup_info *info,
                       char *err, size_t errlen)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi meta, cases, events;
    MDB_val k = val_of("schema", 6), v;
    int rc;
    if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, 16)) != 0
        || (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS | flags, 0)) != 0
        || (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0
        || (rc = mdb_dbi_open(txn, "meta", 0, &meta)) != 0
        || (rc = mdb_dbi_open(txn, "cases", 0, &cases)) != 0
        || (rc = mdb_dbi_open(txn, "events", 0, &events)) != 0
        || (rc = mdb_get(txn, meta, &k, &v)) != 0) {
        snprintf(err, errlen, "cannot read the store in %s: %s", dir,
                 rc == MDB_NOTFOUND ? "it is not a gridlined store (no schema)"
                 : mdb_strerror(rc));
        if (txn != NULL) {
            mdb_txn_abort(txn);
        }
        mdb_env_close(env);
        return -1;
    }
    const unsigned char *b = v.mv_data;
    info->schema = v.mv_size == 4
                       ? (unsigned)b[0] << 24 | (unsigned)b[1] << 16 | (unsigned)b[2] << 8 | b[3]
                       : 0;
    info->cases = last_key_of(txn, cases);
    info->last_seq = last_key_of(txn, events);
    mdb_txn_abort(txn);
    *envp = env;
    return 0;
}

int store_backup(const char *dir, const char *dest, store_backup_info *info, char *err,
                 size_t errlen)
{
    char path[PATH_MAX], real_dir[PATH_MAX], real_dest[PATH_MAX];
    struct stat st;
    MDB_env *env = NULL;
    int fd = -1, dfd = -1, rc = -1;

    memset(info, 0, sizeof *info);
    snprintf(path, sizeof path, "%s/data.mdb", dir);
    if (stat(path, &st) != 0) {
        snprintf(err, errlen, "no store in %s (%s): give the daemon's --data", dir,
                 strerror(errno));
        return -1;
    }
    bool made = mkdir(dest, 0750) == 0;
    if (!made && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", dest, strerror(errno));
        return -1;
    }
    DIR *d = opendir(dest);
    if (d == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", dest, strerror(errno));
        goto done;
    }
    struct dirent *e;
    bool empty = true;
    while ((e = readdir(d)) != NULL) {
        empty = empty && (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0);
    }
    closedir(d);
    if (realpath(dir, real_dir) != NULL && realpath(dest, real_dest) != NULL
        && strcmp(real_dir, real_dest) == 0) {
        snprintf(err, errlen, "%s is the store itself: back up into another folder", dest);
        goto done;
    }
    if (!empty) {
        snprintf(err, errlen, "%s is not empty: back up into a new or empty folder (nothing "
                 "was written)", dest);
        goto done;
    }
    if (backup_read(dir, 0, &env, info, err, errlen) != 0) {
        goto done;
    }
    /* One read transaction: the copy is the store as of one commit, while the daemon
     * goes on writing; compacted, so free pages are left out. Then made durable, the
     * file and its name, before it is called a backup. */
    snprintf(path, sizeof path, "%s/data.mdb", dest);
    if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640)) < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    int mrc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
    for (int i = 0; mrc == MDB_MAP_RESIZED && i < 3; i++) {
        /* The daemon grew its map past this process's view: adopt it, start over. */
        if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0
            || (mrc = mdb_env_set_mapsize(env, 0)) != 0) {
            break;
        }
        mrc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
    }
    if (mrc != 0 || fsync(fd) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path,
                 mrc != 0 ? mdb_strerror(mrc) : strerror(errno));
        goto done;
    }
    if (fstat(fd, &st) == 0) {
        info->bytes = (uint64_t)st.st_size;
    }
    if ((dfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(dfd) != 0) {
        snprintf(err, errlen, "cannot sync %s: %s", dest, strerror(errno));
        goto done;
    }
    if (made) {
        /* The new folder's own name, in its parent. */
        snprintf(real_dest, sizeof real_dest, "%s/..", dest);
        int pfd = open(real_dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        bool synced = pfd >= 0 && fsync(pfd) == 0;
        if (pfd >= 0) {
            close(pfd);
        }
        if (!synced) {
            snprintf(err, errlen, "cannot sync the folder holding %s: %s", dest,
                     strerror(errno));
            goto done;
        }
    }
    /* The copy must read back as a store: what it holds is what is reported. */
    mdb_env_close(env);
    env = NULL;
    if (backup_read(dest, MDB_NOLOCK, &env, info, err, errlen) != 0) {
        goto done;
    }
    rc = 0;
done:
    if (fd >= 0) {
        close(fd);
    }
    if (dfd >= 0) {
        close(dfd);
    }
    if (env != NULL) {
        mdb_env_close(env);
    }
    if (rc != 0 && fd >= 0) {
        unlink(path);   /* no half copy that could pass for a backup */
    }
    if (rc != 0 && made) {
        rmdir(dest);
    }
    return rc;
}

uint64_t store_last_seq(store *s)
{
    return s->next_seq - 1;
}

/* --- writing --- */

static int postings_flush(store_txn *t);

int store_write_begin(store *s, store_txn **out)
{
    store_txn *t = calloc(1, sizeof *t);
    if (t == NULL) {
        return GL_EUNAVAILABLE;
    }
    map_full_seen = false;
    pthread_rwlock_rdlock(&s->map_lock);
    int rc = s->map_lost ? EIO : mdb_txn_begin(s->env, NULL, 0, &t->txn);
    if (rc != 0) {
        pthread_rwlock_unlock(&s->map_lock);
        log_error("store: cannot begin a write transaction: %s", mdb_strerror(rc));
        free(t);
        return lmdb_code(rc);
    }
    t->s = s;
    t->next_id = s->next_id;
    t->next_seq = s->next_seq;
    t->last_created_at = s->last_created_at;
    *out = t;
    return 0;
}

int store_write_commit(store_txn **tp)
{
    store_txn *t = *tp;
    int rc = postings_flush(t);
    if (rc != 0) {
        log_error("store: cannot write the list indexes: %s", gl_error_name(rc));
        store_write_abort(tp);
        return rc;
    }
    rc = mdb_txn_commit(t->txn);
    pthread_rwlock_unlock(&t->s->map_lock);
    if (rc == 0) {
        t->s->next_id = t->next_id;
        t->s->next_seq = t->next_seq;
        t->s->last_created_at = t->last_created_at;
    } else if (lmdb_code(rc) == GL_EUNAVAILABLE) {
        /* Told by the caller, which knows what can be done about it (store_grow). */
        log_debug("store: commit failed: %s", mdb_strerror(rc));
    } else {
        log_error("store: commit failed: %s", mdb_strerror(rc));
    }
    free(t);
    *tp = NULL;
    return rc == 0 ? 0 : lmdb_code(rc);
}

void store_write_abort(store_txn **tp)
{
    if (tp == NULL || *tp == NULL) {
        return;
    }
    (*tp)->s->n_pops = 0;   /* the aborted batch's posting changes go with it */
    mdb_txn_abort((*tp)->txn);
    pthread_rwlock_unlock(&(*tp)->s->map_lock);
    free(*tp);
    *tp = NULL;
}

/* A posting key: tag, value, NUL, partition. Its data are the ids of the cases holding
 * that value, as 8-byte big-endian duplicates, so they sort in id order and pack 500 to
 * a page. The partition (id >> POSTING_PART_SHIFT, big-endian) cuts a value's list into
 * runs of 65,536 ids: each run's tree stays two pages deep however large the store
 * grows, so appending to a list dirties two pages, not one more per level (a batch
 * appends to a dozen lists). Values hold no NUL, so one value's keys are contiguous. */
static size_t posting_prefix(unsigned char *out, int tag, gl_str value)
{
    out[0] = (unsigned char)tag;
    memcpy(out + 1, value.p, value.n);
    out[1 + value.n] = 0;
    return 2 + value.n;
}

static size_t posting_key(unsigned char *out, int tag, gl_str value, uint64_t id)
{
    size_t n = posting_prefix(out, tag, value);
    uint64_t part = id >> POSTING_PART_SHIFT;
    for (int i = POSTING_PART_BYTES - 1; i >= 0; i--) {
        out[n + (size_t)i] = (unsigned char)part;
        part >>= 8;
    }
    return n + POSTING_PART_BYTES;
}

/* The tags whose entries are posting lists (in post); the others stay in index. */
static bool tag_is_posting(int tag)
{
    return tag == TAG_STATE || tag == TAG_CHANNEL || tag == TAG_UNIT || tag == TAG_UNIT_STATE
           || tag == TAG_DISTRICT || tag == TAG_STREET || tag == TAG_COMMUNITY
           || tag == TAG_GRID || tag == TAG_CATEGORY || tag == TAG_PHONE;
}

static size_t index_key_time(unsigned char *out, int64_t at, uint64_t id)
{
    out[0] = TAG_CREATED;
    /* Flip the sign bit so that negative times sort before positive ones. */
    mp_put_be64(out + 1, (uint64_t)at ^ (1ULL << 63));
    mp_put_be64(out + 9, id);
    return 17;
}

/* All the index keys of one case. */
#define INDEX_KEYS_MAX 17
#define INDEX_KEY_CAP  (1 + 2 * REQUEST_MAX_CODE + 2 + 16)

typedef struct {
    unsigned char key[INDEX_KEYS_MAX][INDEX_KEY_CAP];
    size_t        len[INDEX_KEYS_MAX];
    /* posting lists: the id; duplicate keys: duplicate_of, lat, lon */
    unsigned char val[INDEX_KEYS_MAX][24];
    size_t        vlen[INDEX_KEYS_MAX];
    bool          posting[INDEX_KEYS_MAX];   /* in post, not index */
    size_t        n;
} index_keys;

static void keys_add_posting(index_keys *k, int tag, gl_str value, uint64_t id)
{
    if (value.n == 0 || value.n > REQUEST_MAX_CODE + 2 || k->n == INDEX_KEYS_MAX) {
        return;
    }
    k->len[k->n] = posting_key(k->key[k->n], tag, value, id);
    mp_put_be64(k->val[k->n], id);
    k->vlen[k->n] = 8;
    k->posting[k->n] = true;
    k->n++;
}

static void keys_add_str(index_keys *k, int tag, gl_str value, uint64_t id)
{
    if (value.n <= REQUEST_MAX_CODE) {
        keys_add_posting(k, tag, value, id);
    }
}

/* The value of a TAG_UNIT_STATE key: unit, '/', the state's digit. Returns its length
 * (out holds REQUEST_MAX_CODE + 2). */
static size_t unit_state_value(char *out, gl_str unit, int state)
{
    memcpy(out, unit.p, unit.n);
    out[unit.n] = '/';
    out[unit.n + 1] = (char)('0' + state);
    return unit.n + 2;
}

static void keys_add_unit_state(index_keys *k, const case_record *c)
{
    char v[REQUEST_MAX_CODE + 2];
    if (c->unit.n == 0 || c->unit.n > REQUEST_MAX_CODE) {
        return;
    }
    keys_add_posting(k, TAG_UNIT_STATE,
                     gl_str_of(v, unit_state_value(v, c->unit, (int)c->state)), c->id);
}

static void put_double(unsigned char *out, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, 8);
    mp_put_be64(out, bits);
}

static double get_double(const unsigned char *in)
{
    uint64_t bits = mp_get_be64(in);
    double d;
    memcpy(&d, &bits, 8);
    return d;
}

/* A duplicate-candidate key: tag, category, NUL, place, NUL, created_at, id. Scanned
 * by (category, place) over a window of time. */
static size_t dup_key(unsigned char *out, int tag, gl_str category, gl_str place, int64_t at,
                      uint64_t id)
{
    size_t n = 0;
    out[n++] = (unsigned char)tag;
    memcpy(out + n, category.p, category.n);
    n += category.n;
    out[n++] = 0;
    memcpy(out + n, place.p, place.n);
    n += place.n;
    out[n++] = 0;
    mp_put_be64(out + n, (uint64_t)at ^ (1ULL << 63));
    n += 8;
    mp_put_be64(out + n, id);
    return n + 8;
}

/* The value carries what a candidate needs (duplicate_of, and the coordinates when
 * there are some), so candidates are found without reading cases. */
static void keys_add_dup(index_keys *k, int tag, const case_record *c, gl_str place)
{
    if (c->category.n == 0 || c->category.n > REQUEST_MAX_CODE || place.n == 0
        || place.n > REQUEST_MAX_CODE || k->n == INDEX_KEYS_MAX) {
        return;
    }
    k->len[k->n] = dup_key(k->key[k->n], tag, c->category, place, c->created_at, c->id);
    mp_put_be64(k->val[k->n], c->duplicate_of);
    k->vlen[k->n] = 8;
    k->posting[k->n] = false;
    if (c->location.has_coords) {
        put_double(k->val[k->n] + 8, c->location.lat);
        put_double(k->val[k->n] + 16, c->location.lon);
        k->vlen[k->n] = 24;
    }
    k->n++;
}

/* A deadline key: tag, due time (sign flipped), id, kind. Ordered by due time. */
static size_t deadline_key(unsigned char *out, int64_t due, uint64_t id, deadline_kind kind)
{
    out[0] = TAG_DEADLINE;
    mp_put_be64(out + 1, (uint64_t)due ^ (1ULL << 63));
    mp_put_be64(out + 9, id);
    out[17] = (unsigned char)kind;
    return 18;
}

static void keys_add_deadline(index_keys *k, int64_t due, uint64_t id, deadline_kind kind)
{
    if (k->n + 1 >= INDEX_KEYS_MAX) {
        return;   /* the created-time key always needs the last slot */
    }
    k->len[k->n] = deadline_key(k->key[k->n], due, id, kind);
    k->vlen[k->n] = 0;
    k->posting[k->n] = false;
    k->n++;
}

static bool case_is_open(case_state st)
{
    return st == CASE_REGISTERED || st == CASE_DISPATCHED || st == CASE_ACCEPTED
           || st == CASE_RETURNED;
}

/* Every index entry of a case; the created-time key comes last (see index_put_all). */
static void index_keys_of(const case_record *c, index_keys *k)
{
    char st = (char)('0' + c->state), ch = (char)('0' + c->channel);
    k->n = 0;
    keys_add_str(k, TAG_STATE, gl_str_of(&st, 1), c->id);
    if (c->channel != CHANNEL_NONE) {
        keys_add_str(k, TAG_CHANNEL, gl_str_of(&ch, 1), c->id);
    }
    keys_add_str(k, TAG_UNIT, c->unit, c->id);
    keys_add_unit_state(k, c);
    keys_add_str(k, TAG_DISTRICT, c->location.district, c->id);
    keys_add_str(k, TAG_STREET, c->location.street, c->id);
    keys_add_str(k, TAG_COMMUNITY, c->location.community, c->id);
    keys_add_str(k, TAG_GRID, c->location.grid, c->id);
    keys_add_str(k, TAG_CATEGORY, c->category, c->id);
    keys_add_str(k, TAG_PHONE, c->reporter_phone, c->id);
    /* Only open cases can be the case a new report duplicates: the others leave these
     * two indexes, so a scan of them reads no case. */
    if (case_is_open(c->state)) {
        keys_add_dup(k, TAG_DUP_GRID, c, c->location.grid);
        if (c->location.has_coords) {
            keys_add_dup(k, TAG_DUP_NEAR, c, c->location.district);
        }
    }
    /* The next deadline to act on. A case with a unit to sign for it or resolve it has
     * up to three; only the earliest not yet acted on is indexed (ties: warn, accept,
     * resolve), since one is acted on at a time: firing it sets its bit in
     * deadlines_fired, and the rewrite of the case indexes the next. One entry a case
     * instead of three is two puts fewer at every dispatch, and fewer pages a commit. */
    if (c->state == CASE_DISPATCHED || c->state == CASE_ACCEPTED) {
        int64_t due[DEADLINE_COUNT] = {
            [DEADLINE_WARN] = (c->deadlines_fired & CASE_FIRED_WARN) == 0 ? c->warn_at : 0,
            [DEADLINE_ACCEPT] = c->state == CASE_DISPATCHED
                                        && (c->deadlines_fired & CASE_FIRED_ACCEPT) == 0
                                    ? c->accept_by : 0,
            [DEADLINE_RESOLVE] = (c->deadlines_fired & CASE_FIRED_RESOLVE) == 0
                                     ? c->resolve_by : 0,
        };
        int next = -1;
        for (int kind = 0; kind < DEADLINE_COUNT; kind++) {
            if (due[kind] != 0 && (next < 0 || due[kind] < due[next])) {
                next = kind;
            }
        }
        if (next >= 0) {
            keys_add_deadline(k, due[next], c->id, (deadline_kind)next);
        }
    }
    k->len[k->n] = index_key_time(k->key[k->n], c->created_at, c->id);
    k->vlen[k->n] = 0;
    k->posting[k->n] = false;
    k->n++;
}

/* Schemas 1 to 3 -> 4: the list filters' entries were keys of index (tag, value, NUL,
 * id; schemas 1 and 2) or posting lists without partitions (3). Both are dropped, and
 * every case's posting entries written from the case. */
static int rebuild_postings(store *s, MDB_txn *txn, uint64_t *n)
{
    MDB_cursor *cur;
    MDB_val k, v;
    msgpack_zone zone;
    int rc;
    if (mdb_cursor_open(txn, s->index, &cur) != 0) {
        return -1;
    }
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
        if (tag_is_posting(((const unsigned char *)k.mv_data)[0])) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0) {
                break;
            }
            rc = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        } else {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
        }
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND || mdb_drop(txn, s->post, 0) != 0
        || mdb_cursor_open(txn, s->cases, &cur) != 0) {
        return -1;
    }
    msgpack_zone_init(&zone, 4096);
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        case_record c;
        index_keys keys;
        msgpack_zone_clear(&zone);
        if (case_record_decode(v.mv_data, v.mv_size, &zone, &c) != 0) {
            rc = -1;
            break;
        }
        index_keys_of(&c, &keys);
        for (size_t i = 0; i < keys.n && rc == 0; i++) {
            if (keys.posting[i]) {
                MDB_val ik = val_of(keys.key[i], keys.len[i]);
                MDB_val iv = val_of(keys.val[i], keys.vlen[i]);
                rc = mdb_put(txn, s->post, &ik, &iv, 0);
            }
        }
        if (rc != 0) {
            break;
        }
        (*n)++;
    }
    msgpack_zone_destroy(&zone);
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : -1;
}

/* The position of key in k, or -1. */
static int keys_find(const index_keys *k, const unsigned char *key, size_t len)
{
    for (size_t i = 0; i < k->n; i++) {
        if (k->len[i] == len && memcmp(k->key[i], key, len) == 0) {
            return (int)i;
        }
    }
    return -1;
}

static bool keys_same_value(const index_keys *a, size_t i, const index_keys *b, size_t j)
{
    return a->vlen[i] == b->vlen[j] && memcmp(a->val[i], b->val[j], a->vlen[i]) == 0;
}

/* Queues a posting change for the commit. Returns 0 or GL_EUNAVAILABLE (no memory). */
static int posting_queue(store *s, const index_keys *ks, size_t i, bool del)
{
    if (s->n_pops == s->cap_pops) {
        size_t cap = s->cap_pops > 0 ? s->cap_pops * 2 : 1024;
        posting_op *p = realloc(s->pops, cap * sizeof *p);
        if (p == NULL) {
            return GL_EUNAVAILABLE;
        }
        s->pops = p;
        s->cap_pops = cap;
    }
    posting_op *op = &s->pops[s->n_pops];
    op->id = mp_get_be64(ks->val[i]);
    op->seq = (uint32_t)s->n_pops;
    op->len = (uint8_t)ks->len[i];
    op->del = del;
    memcpy(op->key, ks->key[i], ks->len[i]);
    s->n_pops++;
    return 0;
}

static int index_put(store_txn *t, const index_keys *ks, size_t i, unsigned flags)
{
    if (ks->posting[i]) {
        return posting_queue(t->s, ks, i, false);
    }
    MDB_val k = val_of(ks->key[i], ks->len[i]), v = val_of(ks->val[i], ks->vlen[i]);
    int rc = mdb_put(t->txn, t->s->index, &k, &v, flags);
    return rc == 0 ? 0 : lmdb_code(rc);
}

typedef struct posting_ref posting_ref;

static int posting_ref_cmp(const void *a, const void *b)
{
    const posting_ref *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool posting_same_key(const posting_op *a, const posting_op *b)
{
    return a->len == b->len && memcmp(a->key, b->key, a->len) == 0;
}

/* qsort's comparator has no context argument: the ops being ranked. Writer thread only. */
static const posting_op *ranking;

static int posting_key_cmp(const void *a, const void *b)
{
    const posting_op *x = &ranking[*(const uint32_t *)a], *y = &ranking[*(const uint32_t *)b];
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* Gives every queued change its key's rank among the distinct keys (in key order),
 * into s->prefs, ready to sort by (key, id, seq) with integer compares: a batch has a
 * few dozen distinct keys and hundreds of changes. Returns the number of distinct keys,
 * or -1 without memory. */
static long postings_rank(store *s)
{
    size_t n = s->n_pops, slots = 16;
    while (slots < 2 * n) {
        slots *= 2;
    }
    posting_ref *prefs = realloc(s->prefs, n * sizeof *prefs);
    if (prefs != NULL) s->prefs = prefs;
    uint32_t *phash = realloc(s->phash, slots * sizeof *phash);
    if (phash != NULL) s->phash = phash;
    uint32_t *pkeys = realloc(s->pkeys, n * sizeof *pkeys);
    if (pkeys != NULL) s->pkeys = pkeys;
    if (prefs == NULL || phash == NULL || pkeys == NULL) {
        return -1;
    }
    /* Intern the keys: phash holds 1 + the op that first had each key. */
    memset(phash, 0, slots * sizeof *phash);
    size_t n_keys = 0;
    for (size_t i = 0; i < n; i++) {
        const posting_op *op = &s->pops[i];
        size_t h = (size_t)mp_fnv1a64(MP_FNV1A64_INIT, op->key, op->len) & (slots - 1);
        while (phash[h] != 0 && !posting_same_key(&s->pops[phash[h] - 1], op)) {
            h = (h + 1) & (slots - 1);
        }
        if (phash[h] == 0) {
            phash[h] = (uint32_t)i + 1;
            pkeys[n_keys++] = (uint32_t)i;
        }
        prefs[i] = (posting_ref){ (uint32_t)h, op->seq, op->id };
    }
    /* Rank the distinct keys in key order, so the main tree is walked one way. */
    ranking = s->pops;
    qsort(pkeys, n_keys, sizeof *pkeys, posting_key_cmp);
    for (size_t r = 0; r < n_keys; r++) {
        size_t h = (size_t)mp_fnv1a64(MP_FNV1A64_INIT, s->pops[pkeys[r]].key,
                                      s->pops[pkeys[r]].len) & (slots - 1);
        while (phash[h] != pkeys[r] + 1) {
            h = (h + 1) & (slots - 1);
        }
        phash[h] = UINT32_MAX - (uint32_t)r;   /* slot -> rank, marked apart from op+1 */
    }
    for (size_t i = 0; i < n; i++) {
        prefs[i].key = UINT32_MAX - phash[prefs[i].key];
    }
    return (long)n_keys;
}

/* Applies the transaction's posting changes, grouped by key so that each key is found
 * once and the ids it gains go in with one MDB_MULTIPLE put: a batch of cases mostly
 * shares its states, channels, districts and categories. For each (key, id) only the
 * last change counts, so a case indexed and unindexed in one batch comes out right. */
static int postings_flush(store_txn *t)
{
    store *s = t->s;
    MDB_cursor *cur;
    int rc = 0;
    if (s->n_pops == 0) {
        return 0;
    }
    if (postings_rank(s) < 0) {
        return GL_EUNAVAILABLE;
    }
    qsort(s->prefs, s->n_pops, sizeof s->prefs[0], posting_ref_cmp);
    if (s->cap_pids < s->n_pops * 8) {
        unsigned char *p = realloc(s->pids, s->n_pops * 8);
        if (p == NULL) {
            return GL_EUNAVAILABLE;
        }
        s->pids = p;
        s->cap_pids = s->n_pops * 8;
    }
    if ((rc = mdb_cursor_open(t->txn, s->post, &cur)) != 0) {
        return lmdb_code(rc);
    }
    const posting_ref *p = s->prefs;
    for (size_t i = 0; i < s->n_pops && rc == 0;) {
        /* One key's changes: [i, end), ids ascending. */
        size_t end = i + 1, n_ids = 0;
        while (end < s->n_pops && p[end].key == p[i].key) {
            end++;
        }
        const posting_op *op = &s->pops[p[i].seq];
        MDB_val k = val_of(op->key, op->len);
        for (size_t j = i; j < end && rc == 0; j++) {
            if (j + 1 < end && p[j + 1].id == p[j].id) {
                continue;   /* a later change to the same id decides */
            }
            if (!s->pops[p[j].seq].del) {
                mp_put_be64(s->pids + 8 * n_ids++, p[j].id);
                continue;
            }
            unsigned char idb[8];
            mp_put_be64(idb, p[j].id);
            MDB_val v = val_of(idb, 8);
            int r = mdb_del(t->txn, s->post, &k, &v);
            rc = r == 0 || r == MDB_NOTFOUND ? 0 : r;
        }
        if (rc == 0 && n_ids > 0) {
            /* New cases' ids are the largest yet: appended, without a search each. */
            MDB_val data[2] = { { 8, s->pids }, { n_ids, NULL } };
            rc = mdb_cursor_put(cur, &k, data, MDB_MULTIPLE | MDB_APPENDDUP);
            if (rc == MDB_KEYEXIST) {
                /* Not all after the last id listed (a changed case): one at a time. */
                rc = 0;
                for (size_t j = 0; j < n_ids && rc == 0; j++) {
                    MDB_val v = val_of(s->pids + 8 * j, 8);
                    int r = mdb_put(t->txn, s->post, &k, &v, MDB_NODUPDATA);
                    rc = r == 0 || r == MDB_KEYEXIST ? 0 : r;
                }
            }
        }
        i = end;
    }
    mdb_cursor_close(cur);
    s->n_pops = 0;
    return rc == 0 ? 0 : lmdb_code(rc);
}

/* A new case's entries. Its created-time key is the largest in the index (created_at
 * never decreases with id, and its tag sorts last), so it is appended. */
static int index_add_case(store_txn *t, const case_record *c)
{
    index_keys k;
    index_keys_of(c, &k);
    for (size_t i = 0; i < k.n; i++) {
        int rc = index_put(t, &k, i, i + 1 == k.n ? MDB_APPEND : 0);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* A changed case's entries: removes the old record's keys the new one lacks, adds the
 * new one's the old lacked or held with another value. */
static int index_update_case(store_txn *t, const case_record *old, const case_record *c)
{
    index_keys *ko = malloc(2 * sizeof *ko), *kn;
    int rc = 0;
    if (ko == NULL) {
        return GL_EINTERNAL;
    }
    kn = ko + 1;
    index_keys_of(old, ko);
    index_keys_of(c, kn);
    for (size_t i = 0; i < ko->n && rc == 0; i++) {
        if (keys_find(kn, ko->key[i], ko->len[i]) < 0) {
            if (ko->posting[i]) {
                rc = posting_queue(t->s, ko, i, true);
                continue;
            }
            MDB_val k = val_of(ko->key[i], ko->len[i]);
            int r = mdb_del(t->txn, t->s->index, &k, NULL);
            rc = r == 0 || r == MDB_NOTFOUND ? 0 : lmdb_code(r);
        }
    }
    for (size_t i = 0; i < kn->n && rc == 0; i++) {
        int j = keys_find(ko, kn->key[i], kn->len[i]);
        if (j < 0 || !keys_same_value(kn, i, ko, (size_t)j)) {
            rc = index_put(t, kn, i, 0);
        }
    }
    free(ko);
    return rc;
}

/* A `requests` key: request_id, NUL, sender. The request_id leads so that ids which
 * grow with time (UUIDv7s, counters under a timestamp) from every sender land at the same
 * end of the tree, a few pages a commit, where sender first would put each sender's at a
 * place of its own. Unambiguous: a principal's name has no NUL, so the sender is what
 * follows the last one. */
static size_t request_key(unsigned char *out, gl_str sender, gl_str request_id)
{
    memcpy(out, request_id.p, request_id.n);
    out[request_id.n] = 0;
    memcpy(out + request_id.n + 1, sender.p, sender.n);
    return request_id.n + 1 + sender.n;
}

/* An `idem` key, as schemas 1-4 wrote them: sender, NUL, request_id. */
static size_t idem_key(unsigned char *out, gl_str sender, gl_str request_id)
{
    memcpy(out, sender.p, sender.n);
    out[sender.n] = 0;
    memcpy(out + sender.n + 1, request_id.p, request_id.n);
    return sender.n + 1 + request_id.n;
}

/* The next number in the city's day (YYYYMMDD local), kept in meta. */
static int next_code(store_txn *t, int64_t now_ms, char *code, size_t cap)
{
    time_t secs = (time_t)(now_ms / 1000) + (time_t)t->s->utc_offset_min * 60;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[16];
    strftime(day, sizeof day, "%Y%m%d", &tm);

    char keybuf[24];
    int kn = snprintf(keybuf, sizeof keybuf, "day:%s", day);
    MDB_val k = val_of(keybuf, (size_t)kn), v;
    uint64_t n = 0;
    int rc = mdb_get(t->txn, t->s->meta, &k, &v);
    if (rc == 0 && v.mv_size == 8) {
        n = mp_get_be64(v.mv_data);
    } else if (rc != 0 && rc != MDB_NOTFOUND) {
        return lmdb_code(rc);
    }
    n++;
    unsigned char nb[8];
    mp_put_be64(nb, n);
    MDB_val nv = val_of(nb, 8);
    if ((rc = mdb_put(t->txn, t->s->meta, &k, &nv, 0)) != 0) {
        return lmdb_code(rc);
    }
    snprintf(code, cap, "%s-%s-%06llu", t->s->code_prefix, day, (unsigned long long)n);
    return 0;
}

static int copy_out(const void *p, size_t n, store_created *out)
{
    out->data = malloc(n);
    if (out->data == NULL) {
        return GL_EINTERNAL;
    }
    memcpy(out->data, p, n);
    out->len = n;
    return 0;
}

static int replay(store_txn *t, const MDB_val *idv, uint64_t fingerprint, gl_str request_id,
                  store_created *out, gl_error *err)
{
    if (idv->mv_size != 16) {
        return gl_error_set(err, GL_EINTERNAL, NULL, "corrupt idempotency record");
    }
    uint64_t id = mp_get_be64(idv->mv_data);
    uint64_t fp = mp_get_be64((const unsigned char *)idv->mv_data + 8);
    unsigned char kb[8];
    mp_put_be64(kb, id);
    MDB_val k = val_of(kb, 8), v;
    if (mdb_get(t->txn, t->s->cases, &k, &v) != 0) {
        return gl_error_set(err, GL_EINTERNAL, NULL, "request_id points at missing case %llu",
                            (unsigned long long)id);
    }
    if (fp != fingerprint) {
        return gl_error_set(err, GL_ECONFLICT, "request_id",
                            "request_id \"%.*s\" was already used for a different request "
                            "(case %llu); use a new request_id for a new case",
                            (int)(request_id.n > 64 ? 64 : request_id.n), request_id.p,
                            (unsigned long long)id);
    }
    out->id = id;
    out->replayed = true;
    return copy_out(v.mv_data, v.mv_size, out);
}

/* Appends e (its seq, case and place fields filled here from c) to the event log and
 * the case's history. The log's keys only grow, so it appends. */
static int append_event(store_txn *t, const case_record *c, case_event *e)
{
    store *s = t->s;
    msgpack_packer pk;
    unsigned char sb[8], hb[16];
    int rc;

    e->seq = t->next_seq;
    e->case_id = c->id;
    e->code = c->code;
    e->state = c->state;
    e->unit = c->unit;
    e->district = c->location.district;
    e->category = c->category;
    msgpack_sbuffer_clear(&s->ebuf);
    msgpack_packer_init(&pk, &s->ebuf, msgpack_sbuffer_write);
    if (case_event_pack(&pk, e) != 0) {
        return GL_EINTERNAL;
    }
    mp_put_be64(sb, e->seq);
    MDB_val ek = val_of(sb, 8), ev = val_of(s->ebuf.data, s->ebuf.size);
    if ((rc = mdb_put(t->txn, s->events, &ek, &ev, MDB_APPEND)) != 0) {
        return lmdb_code(rc);
    }
    mp_put_be64(hb, c->id);
    memcpy(hb + 8, sb, 8);
    MDB_val hk = val_of(hb, 16), hv = val_of("", 0);
    if ((rc = mdb_put(t->txn, s->history, &hk, &hv, 0)) != 0) {
        return lmdb_code(rc);
    }
    t->next_seq++;
    return 0;
}

static int case_create(store_txn *t, gl_str sender, const request_create *r, int64_t now_ms,
                       store_created *out, gl_error *err)
{
    store *s = t->s;
    uint64_t fingerprint = request_create_fingerprint(r);
    unsigned char ikey[256 + REQUEST_MAX_ID];
    int rc;

    memset(out, 0, sizeof *out);
    if (sender.n > 255) {
        return gl_error_set(err, GL_EINTERNAL, NULL, "sender name too long");
    }
    MDB_val ik = val_of(ikey, request_key(ikey, sender, r->request_id)), iv;
    rc = mdb_get(t->txn, s->requests, &ik, &iv);
    if (rc == MDB_NOTFOUND && s->idem_legacy) {
        unsigned char lkey[256 + REQUEST_MAX_ID];
        MDB_val lk = val_of(lkey, idem_key(lkey, sender, r->request_id));
        rc = mdb_get(t->txn, s->idem, &lk, &iv);
    }
    if (rc == 0) {
        return replay(t, &iv, fingerprint, r->request_id, out, err);
    }
    if (rc != MDB_NOTFOUND) {
        return gl_error_set(err, lmdb_code(rc), NULL, "store: %s", mdb_strerror(rc));
    }

    /* Times only move forward, so created_at orders like id (see index '~'). */
    int64_t at = now_ms > t->last_created_at ? now_ms : t->last_created_at;
    char code[48];
    if ((rc = next_code(t, at, code, sizeof code)) != 0) {
        return gl_error_set(err, rc, NULL, "store: cannot number the case");
    }

    case_record c;
    memset(&c, 0, sizeof c);
    c.id = t->next_id;
    c.code = gl_str_c(code);
    c.version = 1;
    c.state = r->resolved_on_spot ? CASE_RESOLVED : CASE_REGISTERED;
    c.channel = r->channel;
    c.category = r->category;
    c.urgency = r->urgency;
    c.title = r->title;
    c.description = r->description;
    c.location = r->location;
    c.reporter_name = r->reporter_name;
    c.reporter_phone = r->reporter_phone;
    c.n_attachments = r->n_attachments;
    memcpy(c.attachments, r->attachments, sizeof c.attachments);
    c.request_id = r->request_id;
    c.created_by = sender;
    c.reported_at = r->reported_at;
    c.resolved_on_spot = r->resolved_on_spot;
    c.agent = r->agent;
    if (r->resolved_on_spot) {
        c.resolved_at = at;
    }
    c.created_at = at;
    c.updated_at = at;

    msgpack_packer pk;
    msgpack_sbuffer_clear(&s->wbuf);
    msgpack_packer_init(&pk, &s->wbuf, msgpack_sbuffer_write);
    if (case_record_pack_stored(&pk, &c) != 0) {
        return gl_error_set(err, GL_EINTERNAL, NULL, "out of memory packing a case");
    }
    unsigned char idb[8];
    mp_put_be64(idb, c.id);
    MDB_val k = val_of(idb, 8), v = val_of(s->wbuf.data, s->wbuf.size);
    if ((rc = mdb_put(t->txn, s->cases, &k, &v, MDB_APPEND)) != 0) {
        return gl_error_set(err, lmdb_code(rc), NULL, "store: %s", mdb_strerror(rc));
    }
    if ((rc = copy_out(s->wbuf.data, s->wbuf.size, out)) != 0) {
        return gl_error_set(err, rc, NULL, "out of memory");
    }
    out->id = c.id;

    MDB_val ck = val_of(code, strlen(code)), cv = val_of(idb, 8);
    if ((rc = mdb_put(t->txn, s->codes, &ck, &cv, MDB_NOOVERWRITE)) != 0) {
        return gl_error_set(err, lmdb_code(rc), NULL, "store: code %s: %s", code,
                            mdb_strerror(rc));
    }
    if ((rc = index_add_case(t, &c)) != 0) {
        return gl_error_set(err, rc, NULL, "store: cannot index the case");
    }

    case_event e;
    memset(&e, 0, sizeof e);
    e.at = at;
    e.type = EVENT_CREATED;
    e.actor = sender;
    if ((rc = append_event(t, &c, &e)) != 0) {
        return gl_error_set(err, rc, NULL, "store: cannot append the event");
    }

    unsigned char idv[16];
    mp_put_be64(idv, c.id);
    mp_put_be64(idv + 8, fingerprint);
    MDB_val iv2 = val_of(idv, 16);
    if ((rc = mdb_put(t->txn, s->requests, &ik, &iv2, 0)) != 0) {
        return gl_error_set(err, lmdb_code(rc), NULL, "store: %s", mdb_strerror(rc));
    }
    t->next_id++;
    t->last_created_at = at;
    return 0;
}

int store_case_create(store_txn *t, gl_str sender, const request_create *r, int64_t now_ms,
                      store_created *out, gl_error *err)
{
    int rc = case_create(t, sender, r, now_ms, out, err);
    if (rc == GL_EUNAVAILABLE) {
        /* Whichever put ran out of room ("cannot number the case", MDB_MAP_FULL...),
         * the client is told the one thing it can act on. */
        gl_error_set(err, rc, NULL, "the store is full (its map or its disk): nothing was "
                     "stored; retry with the same request_id later");
    }
    return rc;
}

/* Reads case id in the write transaction into c. The raw bytes are copied to the
 * writer's zone first: a put to the same key may reuse the page they live on. */
static int read_case_for_update(store_txn *t, uint64_t id, case_record *c)
{
    unsigned char kb[8];
    mp_put_be64(kb, id);
    MDB_val k = val_of(kb, 8), v;
    int rc = mdb_get(t->txn, t->s->cases, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return GL_ENOT_FOUND;
    }
    if (rc != 0) {
        return lmdb_code(rc);
    }
    char *copy = msgpack_zone_malloc(&t->s->wzone, v.mv_size);
    if (copy == NULL) {
        return GL_EINTERNAL;
    }
    memcpy(copy, v.mv_data, v.mv_size);
    if (case_record_decode(copy, v.mv_size, &t->s->wzone, c) != 0) {
        log_error("store: case %llu does not decode", (unsigned long long)id);
        return GL_EINTERNAL;
    }
    return 0;
}

/* Writes c over old (same id): the record, the index entries that changed, the event. */
static int rewrite_case(store_txn *t, const case_record *old, const case_record *c,
                        case_event *e)
{
    msgpack_packer pk;
    unsigned char kb[8];
    int rc;
    msgpack_sbuffer_clear(&t->s->wbuf);
    msgpack_packer_init(&pk, &t->s->wbuf, msgpack_sbuffer_write);
    if (case_record_pack_stored(&pk, c) != 0) {
        return GL_EINTERNAL;
    }
    mp_put_be64(kb, c->id);
    MDB_val k = val_of(kb, 8), v = val_of(t->s->wbuf.data, t->s->wbuf.size);
    if ((rc = mdb_put(t->txn, t->s->cases, &k, &v, 0)) != 0) {
        return lmdb_code(rc);
    }
    if ((rc = index_update_case(t, old, c)) != 0) {
        return rc;
    }
    return append_event(t, c, e);
}

/* New deadlines from now: the class's times, and none of them acted on yet. */
static void set_deadlines(const city *town, case_record *c, int64_t now_ms)
{
    const city_sla *cls = sla_class_for(town, c->category, c->urgency);
    c->deadlines_fired = 0;
    c->deadlines_at = now_ms;
    if (cls != NULL) {
        sla_times t;
        sla_deadlines(town, cls, now_ms, &t);
        c->accept_by = t.accept_by;
        c->resolve_by = t.resolve_by;
        c->warn_at = t.warn_at;
    }
}

int store_case_dispatch(store_txn *t, const city *town, const route_decision *d, int64_t now_ms,
                        gl_str actor, gl_error *err)
{
    case_record old, c;
    int rc;
    msgpack_zone_clear(&t->s->wzone);
    if ((rc = read_case_for_update(t, d->id, &old)) != 0) {
        return gl_error_set(err, rc, NULL, "case %llu: cannot read it",
                            (unsigned long long)d->id);
    }
    if (old.version != d->version
        || (old.state != CASE_REGISTERED && old.state != CASE_RETURNED)) {
        return gl_error_set(err, GL_ECONFLICT, NULL, "case %llu has moved on (version %llu, "
                            "%s); decision for version %llu discarded",
                            (unsigned long long)d->id, (unsigned long long)old.version,
                            case_state_name(old.state), (unsigned long long)d->version);
    }
    if (city_unit_find(town, d->unit) < 0) {
        return gl_error_set(err, GL_EINVALID, NULL, "case %llu: no unit \"%.*s\" in the city",
                            (unsigned long long)d->id, (int)(d->unit.n > 64 ? 64 : d->unit.n),
                            d->unit.p);
    }
    if (d->duplicate_of == d->id) {
        return gl_error_set(err, GL_EINVALID, NULL, "case %llu cannot duplicate itself",
                            (unsigned long long)d->id);
    }
    uint64_t root = d->duplicate_of;
    if (root != 0) {
        /* Link to the case the named one joined, if it joined one: decisions in one task
         * are made apart, but committed in order, so an earlier item's link is here. */
        case_record joined;
        rc = read_case_for_update(t, root, &joined);
        if (rc == GL_ENOT_FOUND) {
            return gl_error_set(err, GL_EINVALID, NULL, "case %llu: duplicate_of %llu does "
                                "not exist", (unsigned long long)d->id,
                                (unsigned long long)root);
        }
        if (rc != 0) {
            return gl_error_set(err, rc, NULL, "store: cannot read case %llu",
                                (unsigned long long)root);
        }
        if (joined.duplicate_of != 0) {
            root = joined.duplicate_of;
        }
        if (root == d->id) {
            return gl_error_set(err, GL_EINVALID, NULL, "case %llu cannot duplicate itself",
                                (unsigned long long)d->id);
        }
    }
    c = old;
    c.state = CASE_DISPATCHED;
    c.unit = d->unit;
    c.level = 0;
    c.duplicate_of = root;
    c.version = old.version + 1;
    c.updated_at = now_ms;
    set_deadlines(town, &c, now_ms);
    if (c.dispatched_at == 0) {
        c.dispatched_at = now_ms;
    }
    case_event e;
    memset(&e, 0, sizeof e);
    e.at = now_ms;
    e.type = EVENT_DISPATCHED;
    e.actor = actor;
    e.note = d->reason.n > 500 ? gl_str_of(d->reason.p, 500) : d->reason;
    if ((rc = rewrite_case(t, &old, &c, &e)) != 0) {
        return gl_error_set(err, rc, NULL, "store: cannot write case %llu",
                            (unsigned long long)d->id);
    }
    return 0;
}

/* The states from which each action may be taken (bit per case_state). */
#define ST(x) (1u << (x))
#define ST_OPEN (ST(CASE_REGISTERED) | ST(CASE_DISPATCHED) | ST(CASE_ACCEPTED) | ST(CASE_RETURNED))
#define ST_AT_UNIT (ST(CASE_DISPATCHED) | ST(CASE_ACCEPTED))

static const unsigned act_from[ACT_COUNT] = {
    [ACT_ACCEPT]            = ST(CASE_DISPATCHED),
    [ACT_NOTE]              = (1u << CASE_STATE_COUNT) - 1,
    [ACT_RESOLVE]           = ST(CASE_ACCEPTED),
    [ACT_RETURN]            = ST_AT_UNIT,
    [ACT_EXTEND]            = ST_AT_UNIT,
    [ACT_APPROVE_EXTENSION] = ST_AT_UNIT,
    [ACT_REJECT_EXTENSION]  = ST_AT_UNIT,
    [ACT_URGE]              = ST_AT_UNIT,
    [ACT_SUPERVISE]         = ST_OPEN,
    [ACT_ESCALATE]          = ST_AT_UNIT,
    [ACT_REASSIGN]          = ST_OPEN,
    [ACT_MERGE]             = ST_OPEN,
    [ACT_CALLBACK]          = ST(CASE_RESOLVED),
    [ACT_WITHDRAW]          = ST_OPEN,
};

/* "dispatched or accepted" for a conflict message. */
static void states_of(unsigned mask, char *out, size_t cap)
{
    size_t n = 0;
    int count = 0, total = 0;
    out[0] = '\0';
    for (int i = 0; i < CASE_STATE_COUNT; i++) {
        total += (mask & ST(i)) != 0;
    }
    for (int i = 0; i < CASE_STATE_COUNT && n < cap; i++) {
        if ((mask & ST(i)) == 0) {
            continue;
        }
        count++;
        n += (size_t)snprintf(out + n, cap - n, "%s%s",
                              count == 1 ? "" : count == total ? " or " : ", ",
                              case_state_name((case_state)i));
    }
}



int store_case_act(store_txn *t, const city *town, const request_act *a,
                   const store_actor *actor, int64_t now_ms, store_created *out,
                   gl_error *err)
{
    case_record old, c;
    case_event e;
    int rc;

    memset(out, 0, sizeof *out);
    msgpack_zone_clear(&t->s->wzone);
    if ((rc = read_case_for_update(t, a->id, &old)) != 0) {
        if (rc == GL_ENOT_FOUND) {
            return gl_error_set(err, rc, "id", "no case with id %llu", (unsigned long long)a->id);
        }
        return gl_error_set(err, rc, NULL, "store: cannot read case %llu",
                            (unsigned long long)a->id);
    }
    /* Scope before anything else: a refused principal learns nothing of the case's
     * version or state. */
    if (actor->check != NULL && (rc = actor->check(actor->arg, &old, err)) != 0) {
        return rc;
    }
    if (a->version != 0 && a->version != old.version) {
        return gl_error_set(err, GL_ECONFLICT, "version", "the case is at version %llu, not "
                            "%llu: read it again and decide on what it is now",
                            (unsigned long long)old.version, (unsigned long long)a->version);
    }
    if ((act_from[a->action] & ST(old.state)) == 0) {
        char from[96];
        states_of(act_from[a->action], from, sizeof from);
        return gl_error_set(err, GL_ECONFLICT, "action", "cannot %s a case that is %s: only "
                            "a case that is %s can", case_action_name(a->action),
                            case_state_name(old.state), from);
    }
    c = old;
    c.version = old.version + 1;
    c.updated_at = now_ms;
    memset(&e, 0, sizeof e);
    e.at = now_ms;
    e.actor = actor->name;
    e.note = a->note;
    /* A reason and a note both reach the event. */
    char both[REQUEST_MAX_NOTE * 2 + 16];
    gl_str reason_and_note = a->reason;
    if (a->reason.n > 0 && a->note.n > 0) {
        int n = snprintf(both, sizeof both, "%.*s (note: %.*s)", (int)a->reason.n, a->reason.p,
                         (int)a->note.n, a->note.p);
        reason_and_note = gl_str_of(both, (size_t)n < sizeof both ? (size_t)n : sizeof both - 1);
    }

    switch (a->action) {
    case ACT_ACCEPT:
        c.state = CASE_ACCEPTED;
        c.accepted_at = now_ms;
        e.type = EVENT_ACCEPTED;
        break;
    case ACT_NOTE:
        e.type = EVENT_NOTED;
        break;
    case ACT_RESOLVE:
        c.state = CASE_RESOLVED;
        c.reply = a->reply;
        c.resolved_at = now_ms;
        c.extension_until = 0;
        e.type = EVENT_RESOLVED;
        if (e.note.n == 0) {
            e.note = a->reply;
        }
        break;
    case ACT_RETURN: {
        /* The supervision unit is where returned cases end: it decides by reassigning. */
        int u = city_unit_find(town, c.unit);
        if (u >= 0 && town->units[u].kind == UNIT_SUPERVISION) {
            return gl_error_set(err, GL_ECONFLICT, "action", "the supervision unit cannot "
                                "return a case: it decides where it goes (reassign)");
        }
        /* Back to routing, which will not choose this unit again. */
        if (c.n_returned_by < CASE_MAX_RETURNED && c.unit.n > 0) {
            c.returned_by[c.n_returned_by++] = c.unit;
        }
        c.return_count++;
        c.state = CASE_RETURNED;
        c.unit = GL_STR_NULL;
        c.level = 0;
        c.accept_by = c.resolve_by = c.warn_at = c.extension_until = c.deadlines_at = 0;
        c.deadlines_fired = 0;
        e.type = EVENT_RETURNED;
        e.note = reason_and_note;
        break;
    }
    case ACT_EXTEND:
        if (c.extension_until != 0) {
            return gl_error_set(err, GL_ECONFLICT, "action", "an extension to %lld is already "
                                "waiting for a decision", (long long)c.extension_until);
        }
        if (c.resolve_by != 0 && a->until <= c.resolve_by) {
            return gl_error_set(err, GL_EINVALID, "until", "must be later than the current "
                                "resolve_by (%lld)", (long long)c.resolve_by);
        }
        c.extension_until = a->until;
        e.type = EVENT_EXTENSION_REQUESTED;
        e.note = reason_and_note;
        break;
    case ACT_APPROVE_EXTENSION:
    case ACT_REJECT_EXTENSION:
        if (c.extension_until == 0) {
            return gl_error_set(err, GL_ECONFLICT, "action", "no extension is waiting for a "
                                "decision on this case");
        }
        if (a->action == ACT_APPROVE_EXTENSION) {
            /* The new limit gets its own warning: at the same share of the longer time,
             * counted from when the current deadlines were set. */
            int64_t base = c.deadlines_at != 0 ? c.deadlines_at : c.dispatched_at;
            if (c.resolve_by > base && c.warn_at > 0 && base > 0) {
                double share = (double)(c.warn_at - base) / (double)(c.resolve_by - base);
                c.warn_at = base + (int64_t)(share * (double)(c.extension_until - base));
            }
            c.resolve_by = c.extension_until;
            c.deadlines_fired &= ~(CASE_FIRED_WARN | CASE_FIRED_RESOLVE);
            e.type = EVENT_EXTENSION_APPROVED;
        } else {
            e.type = EVENT_EXTENSION_REJECTED;
        }
        c.extension_until = 0;
        break;
    case ACT_URGE:
        e.type = EVENT_URGED;
        break;
    case ACT_SUPERVISE:
        if (c.supervised) {
            return gl_error_set(err, GL_ECONFLICT, "action", "the case is already supervised");
        }
        c.supervised = true;
        e.type = EVENT_SUPERVISED;
        break;
    case ACT_ESCALATE:
        c.level++;
        e.type = EVENT_ESCALATED;
        break;
    case ACT_REASSIGN:
        if (city_unit_find(town, a->unit) < 0) {
            return gl_error_set(err, GL_EINVALID, "unit", "no unit \"%.*s\": catalog.get "
                                "lists the units", (int)a->unit.n, a->unit.p);
        }
        if (gl_str_eq2(a->unit, old.unit) && old.state != CASE_RETURNED) {
            /* It would only reset the deadlines: that is what an extension is for. */
            return gl_error_set(err, GL_ECONFLICT, "unit", "the case is already with %.*s",
                                (int)a->unit.n, a->unit.p);
        }
        c.state = CASE_DISPATCHED;
        c.unit = a->unit;
        c.level = 0;
        c.extension_until = 0;
        set_deadlines(town, &c, now_ms);
        if (c.dispatched_at == 0) {
            c.dispatched_at = now_ms;
        }
        e.type = EVENT_REASSIGNED;
        break;
    case ACT_MERGE: {
        case_record into;
        if ((rc = read_case_for_update(t, a->into, &into)) != 0) {
            if (rc == GL_ENOT_FOUND) {
                return gl_error_set(err, rc, "into", "no case with id %llu",
                                    (unsigned long long)a->into);
            }
            return gl_error_set(err, rc, NULL, "store: cannot read case %llu",
                                (unsigned long long)a->into);
        }
        /* The target is checked like the case itself: a principal merges only into a
         * case it may see, and learns nothing of one it may not (not even its state). */
        if (actor->check != NULL && (rc = actor->check(actor->arg, &into, err)) != 0) {
            snprintf(err->field, sizeof err->field, "into");
            return rc;
        }
        if (into.state == CASE_MERGED || into.state == CASE_WITHDRAWN) {
            return gl_error_set(err, GL_EINVALID, "into", "case %llu is %s: merge into the "
                                "case it joined instead", (unsigned long long)a->into,
                                case_state_name(into.state));
        }
        c.state = CASE_MERGED;
        c.extension_until = 0;
        c.duplicate_of = into.duplicate_of != 0 ? into.duplicate_of : into.id;
        if (c.duplicate_of == c.id) {
            return gl_error_set(err, GL_EINVALID, "into", "case %llu is a duplicate of this one",
                                (unsigned long long)a->into);
        }
        e.type = EVENT_MERGED;
        break;
    }
    case ACT_CALLBACK:
        c.satisfaction = a->satisfaction;
        if (a->satisfaction == SATISFACTION_UNSATISFIED) {
            /* Not satisfied: back to the unit, to sign for again, with new deadlines. */
            c.state = CASE_DISPATCHED;
            c.reopen_count++;
            set_deadlines(town, &c, now_ms);
            e.type = EVENT_REOPENED;
        } else {
            c.state = CASE_CLOSED;
            e.type = EVENT_CALLBACK;
        }
        break;
    case ACT_WITHDRAW:
        c.state = CASE_WITHDRAWN;
        c.extension_until = 0;
        e.type = EVENT_WITHDRAWN;
        break;
    default:
        return gl_error_set(err, GL_EINVALID, "action", "unknown action");
    }
    if ((rc = rewrite_case(t, &old, &c, &e)) != 0) {
        return gl_error_set(err, rc, NULL, "store: cannot write case %llu",
                            (unsigned long long)a->id);
    }
    if ((rc = copy_out(t->s->wbuf.data, t->s->wbuf.size, out)) != 0) {
        return gl_error_set(err, rc, NULL, "out of memory");
    }
    out->id = c.id;
    return 0;
}

static const uint32_t fired_bit[DEADLINE_COUNT] = {
    CASE_FIRED_WARN, CASE_FIRED_ACCEPT, CASE_FIRED_RESOLVE
};

/* Whether the deadline of this kind is set, not acted on, and one the state still has. */
static bool deadline_pending(const case_record *c, deadline_kind kind)
{
    if ((c->deadlines_fired & fired_bit[kind]) != 0) {
        return false;
    }
    switch (kind) {
    case DEADLINE_WARN:
        return c->warn_at != 0 && (c->state == CASE_DISPATCHED || c->state == CASE_ACCEPTED);
    case DEADLINE_ACCEPT:
        return c->accept_by != 0 && c->state == CASE_DISPATCHED;
    case DEADLINE_RESOLVE:
        return c->resolve_by != 0 && (c->state == CASE_DISPATCHED || c->state == CASE_ACCEPTED);
    default:
        return false;
    }
}

int store_case_deadline(store_txn *t, const city *town, const escalate_decision *d,
                        int64_t now_ms, gl_str actor, gl_error *err)
{
    case_record old, c;
    case_event e;
    int rc;
    msgpack_zone_clear(&t->s->wzone);
    if ((rc = read_case_for_update(t, d->id, &old)) != 0) {
        return gl_error_set(err, rc, NULL, "case %llu: cannot read it",
                            (unsigned long long)d->id);
    }
    if (old.version != d->version || !deadline_pending(&old, d->kind)) {
        return gl_error_set(err, GL_ECONFLICT, NULL, "case %llu has moved on; the decision on "
                            "its %s deadline is discarded", (unsigned long long)d->id,
                            deadline_kind_name(d->kind));
    }
    c = old;
    c.version = old.version + 1;
    c.updated_at = now_ms;
    c.deadlines_fired |= fired_bit[d->kind];
    memset(&e, 0, sizeof e);
    e.at = now_ms;
    e.actor = actor;
    e.note = d->reason.n > 500 ? gl_str_of(d->reason.p, 500) : d->reason;
    switch (d->outcome) {
    case OUTCOME_WARN:
        e.type = EVENT_WARNED;
        break;
    case OUTCOME_URGE:
        e.type = EVENT_URGED;
        break;
    case OUTCOME_SUPERVISE:
        c.supervised = true;
        e.type = EVENT_SUPERVISED;
        break;
    case OUTCOME_ESCALATE:
        if (city_unit_find(town, d->unit) < 0) {
            return gl_error_set(err, GL_EINVALID, NULL, "case %llu: escalation to no unit "
                                "\"%.*s\"", (unsigned long long)d->id,
                                (int)(d->unit.n > 64 ? 64 : d->unit.n), d->unit.p);
        }
        /* The unit above takes the case: it signs for it again, under new deadlines. */
        c.unit = d->unit;
        c.level = old.level + 1;
        c.state = CASE_DISPATCHED;
        c.extension_until = 0;
        set_deadlines(town, &c, now_ms);
        e.type = EVENT_ESCALATED;
        break;
    default:
        return gl_error_set(err, GL_EINVALID, NULL, "unknown outcome");
    }
    if ((rc = rewrite_case(t, &old, &c, &e)) != 0) {
        return gl_error_set(err, rc, NULL, "store: cannot write case %llu",
                            (unsigned long long)d->id);
    }
    return 0;
}

/* --- reading --- */

int store_read_begin(store *s, store_reader **out)
{
    store_reader *r = s->reader;
    int rc;
    if (r == NULL) {
        r = calloc(1, sizeof *r);
        if (r == NULL) {
            return GL_EINTERNAL;
        }
        r->s = s;
        msgpack_zone_init(&r->zone, 4096);
        s->reader = r;
    }
    if (r->active) {
        return GL_EINTERNAL;    /* one read at a time on the loop thread */
    }
    pthread_rwlock_rdlock(&s->map_lock);
    if (s->map_lost) {
        rc = EIO;
    } else if (r->txn == NULL) {
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
    } else {
        rc = mdb_txn_renew(r->txn);
    }
    if (rc != 0) {
        pthread_rwlock_unlock(&s->map_lock);
        log_error("store: cannot begin a read transaction: %s", mdb_strerror(rc));
        return GL_EINTERNAL;
    }
    r->active = true;
    *out = r;
    return 0;
}

int store_read_begin_private(store *s, store_reader **out)
{
    store_reader *r = calloc(1, sizeof *r);
    if (r == NULL) {
        return GL_EINTERNAL;
    }
    r->s = s;
    r->is_private = true;
    msgpack_zone_init(&r->zone, 4096);
    pthread_rwlock_rdlock(&s->map_lock);
    int rc = s->map_lost ? EIO : mdb_txn_begin(s->env, NULL, MDB_RDONLY, &r->txn);
    if (rc != 0) {
        pthread_rwlock_unlock(&s->map_lock);
        log_error("store: cannot begin a read transaction: %s", mdb_strerror(rc));
        msgpack_zone_destroy(&r->zone);
        free(r);
        return GL_EINTERNAL;
    }
    r->active = true;
    *out = r;
    return 0;
}

void store_read_end(store_reader **rp)
{
    if (rp == NULL || *rp == NULL) {
        return;
    }
    store_reader *r = *rp;
    if (r->is_private) {
        mdb_txn_abort(r->txn);
        pthread_rwlock_unlock(&r->s->map_lock);
        msgpack_zone_destroy(&r->zone);
        free(r);
        *rp = NULL;
        return;
    }
    /* Reset, not abort: the handle is renewed by the next read, with no allocation. */
    mdb_txn_reset(r->txn);
    pthread_rwlock_unlock(&r->s->map_lock);
    msgpack_zone_clear(&r->zone);
    r->active = false;
    *rp = NULL;
}

int store_case_decode(gl_str raw, msgpack_zone *zone, case_record *c)
{
    msgpack_zone_clear(zone);
    return case_record_decode(raw.p, raw.n, zone, c) == 0 ? 0 : GL_EINTERNAL;
}

int store_case_wire(gl_str raw, unsigned flags, msgpack_sbuffer *out)
{
    msgpack_zone zone;
    case_record c;
    msgpack_packer pk;
    int rc;
    if (!msgpack_zone_init(&zone, 2048)) {
        return GL_EINTERNAL;
    }
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    rc = store_case_decode(raw, &zone, &c);
    if (rc == 0 && case_record_pack(&pk, &c, flags) != 0) {
        rc = GL_EINTERNAL;
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

int store_read_case(store_reader *r, uint64_t id, gl_str *raw)
{
    unsigned char kb[8];
    mp_put_be64(kb, id);
    MDB_val k = val_of(kb, 8), v;
    int rc = mdb_get(r->txn, r->s->cases, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return GL_ENOT_FOUND;
    }
    if (rc != 0) {
        return GL_EINTERNAL;
    }
    *raw = gl_str_of(v.mv_data, v.mv_size);
    return 0;
}

int store_read_case_by_code(store_reader *r, gl_str code, gl_str *raw)
{
    MDB_val k = val_of(code.p, code.n), v;
    if (code.n == 0 || code.n > 511) {
        return GL_ENOT_FOUND;
    }
    int rc = mdb_get(r->txn, r->s->codes, &k, &v);
    if (rc == MDB_NOTFOUND) {
        return GL_ENOT_FOUND;
    }
    if (rc != 0 || v.mv_size != 8) {
        return GL_EINTERNAL;
    }
    return store_read_case(r, mp_get_be64(v.mv_data), raw);
}

int store_read_history(store_reader *r, uint64_t id, store_event_fn fn, void *arg)
{
    MDB_cursor *cur;
    unsigned char kb[16];
    mp_put_be64(kb, id);
    memset(kb + 8, 0, 8);
    MDB_val k = val_of(kb, 16), v;
    int rc = mdb_cursor_open(r->txn, r->s->history, &cur);
    if (rc != 0) {
        return GL_EINTERNAL;
    }
    int out = 0;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == 16 && mp_get_be64(k.mv_data) == id) {
        unsigned char sb[8];
        memcpy(sb, (const unsigned char *)k.mv_data + 8, 8);
        MDB_val ek = val_of(sb, 8), ev;
        if (mdb_get(r->txn, r->s->events, &ek, &ev) != 0) {
            out = GL_EINTERNAL;
            break;
        }
        if ((out = fn(arg, gl_str_of(ev.mv_data, ev.mv_size))) != 0) {
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return out;
}

static bool have_candidate(const route_candidate *out, uint32_t n, uint64_t id)
{
    for (uint32_t i = 0; i < n; i++) {
        if (out[i].id == id) {
            return true;
        }
    }
    return false;
}

/* Scans one duplicate index (tag, category, place) from c's created_at - window up to
 * c itself. Everything in these indexes is an open case, so the entry alone (key:
 * created_at and id; value: duplicate_of and coordinates) makes the candidate. */
static uint32_t scan_candidates(store_reader *r, int tag, const case_record *c, gl_str place,
                                int64_t window_ms, route_candidate *out, uint32_t n,
                                uint32_t cap)
{
    unsigned char kb[INDEX_KEY_CAP];
    MDB_cursor *cur;
    MDB_val k, v;
    if (c->category.n == 0 || c->category.n > REQUEST_MAX_CODE || place.n == 0
        || place.n > REQUEST_MAX_CODE || mdb_cursor_open(r->txn, r->s->index, &cur) != 0) {
        return n;
    }
    size_t klen = dup_key(kb, tag, c->category, place, c->created_at - window_ms, 0);
    size_t prefix = klen - 16;
    k = val_of(kb, klen);
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && n < cap) {
        const unsigned char *key = k.mv_data;
        if (k.mv_size != prefix + 16 || memcmp(key, kb, prefix) != 0) {
            break;
        }
        uint64_t id = mp_get_be64(key + prefix + 8);
        if (id >= c->id) {
            break;   /* only older cases; created_at grows with id */
        }
        if (!have_candidate(out, n, id) && v.mv_size >= 8) {
            const unsigned char *val = v.mv_data;
            route_candidate *x = &out[n++];
            memset(x, 0, sizeof *x);
            x->id = id;
            x->category = c->category;
            x->grid = tag == TAG_DUP_GRID ? place : GL_STR_NULL;
            x->created_at = (int64_t)(mp_get_be64(key + prefix) ^ (1ULL << 63));
            x->duplicate_of = mp_get_be64(val);
            if (v.mv_size == 24) {
                x->has_coords = true;
                x->lat = get_double(val + 8);
                x->lon = get_double(val + 16);
            }
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return n;
}

uint32_t store_route_candidates(store_reader *r, const case_record *c, int64_t window_ms,
                                route_candidate *out, uint32_t cap)
{
    /* In the same cell the oldest open case is the one a report joins, so a few of the
     * oldest are enough; by distance, more are needed to find those within reach. */
    uint32_t grid_cap = cap < ROUTE_GRID_CANDIDATES ? cap : ROUTE_GRID_CANDIDATES;
    uint32_t n = scan_candidates(r, TAG_DUP_GRID, c, c->location.grid, window_ms, out, 0,
                                 grid_cap);
    if (c->location.has_coords) {
        n = scan_candidates(r, TAG_DUP_NEAR, c, c->location.district, window_ms, out, n, cap);
    }
    return n;
}

uint64_t store_read_head(store_reader *r)
{
    return last_key_of(r->txn, r->s->events);
}

int store_read_events(store_reader *r, uint64_t after, uint32_t limit, gl_str unit,
                      gl_str district, gl_str category, uint32_t scan_budget,
                      store_event_fn fn, void *arg, uint64_t *examined)
{
    MDB_cursor *cur;
    unsigned char kb[8];
    bool filtered = unit.n > 0 || district.n > 0 || category.n > 0;
    uint32_t found = 0, seen = 0;
    int out = 0;

    *examined = after;
    if (after == UINT64_MAX || limit == 0) {
        return 0;
    }
    mp_put_be64(kb, after + 1);
    MDB_val k = val_of(kb, 8), v;
    if (mdb_cursor_open(r->txn, r->s->events, &cur) != 0) {
        return GL_EINTERNAL;
    }
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && found < limit && seen < scan_budget && k.mv_size == 8) {
        uint64_t seq = mp_get_be64(k.mv_data);
        bool take = true;
        seen++;
        if (filtered) {
            case_event e;
            if (case_event_decode(gl_str_of(v.mv_data, v.mv_size), &r->zone, &e) != 0) {
                log_error("store: event %llu does not decode", (unsigned long long)seq);
                out = GL_EINTERNAL;
                break;
            }
            take = (unit.n == 0 || gl_str_eq2(unit, e.unit))
                   && (district.n == 0 || gl_str_eq2(district, e.district))
                   && (category.n == 0 || gl_str_eq2(category, e.category));
        }
        if (take) {
            out = fn(arg, gl_str_of(v.mv_data, v.mv_size));
            if (out != 0 && out != STORE_EVENT_SKIP) {
                break;
            }
            found += out == 0;
            out = 0;
        }
        *examined = seq;
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return out;
}

int store_next_deadline(store_reader *r, int64_t *due)
{
    MDB_cursor *cur;
    unsigned char kb[1] = { TAG_DEADLINE };
    MDB_val k = val_of(kb, 1), v;
    int found = GL_ENOT_FOUND;
    if (mdb_cursor_open(r->txn, r->s->index, &cur) != 0) {
        return GL_EINTERNAL;
    }
    if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size == 18
        && ((const unsigned char *)k.mv_data)[0] == TAG_DEADLINE) {
        *due = (int64_t)(mp_get_be64((const unsigned char *)k.mv_data + 1) ^ (1ULL << 63));
        found = 0;
    }
    mdb_cursor_close(cur);
    return found;
}

int store_due_deadlines(store_reader *r, int64_t now_ms, uint32_t max, store_deadline_fn fn,
                        void *arg)
{
    MDB_cursor *cur;
    unsigned char kb[1] = { TAG_DEADLINE };
    MDB_val k = val_of(kb, 1), v;
    uint32_t n = 0;
    if (mdb_cursor_open(r->txn, r->s->index, &cur) != 0) {
        return GL_EINTERNAL;
    }
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && n < max && k.mv_size == 18) {
        const unsigned char *key = k.mv_data;
        if (key[0] != TAG_DEADLINE) {
            break;
        }
        int64_t due = (int64_t)(mp_get_be64(key + 1) ^ (1ULL << 63));
        if (due > now_ms || key[17] >= DEADLINE_COUNT) {
            break;
        }
        n++;
        if (fn(arg, mp_get_be64(key + 9), (deadline_kind)key[17], due) != 0) {
            break;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return 0;
}

bool store_case_is_overdue(const case_record *c, int64_t now_ms)
{
    if (c->state == CASE_DISPATCHED && c->accept_by != 0 && now_ms > c->accept_by) {
        return true;
    }
    bool open = c->state == CASE_DISPATCHED || c->state == CASE_ACCEPTED
                || c->state == CASE_RETURNED;
    return open && c->resolve_by != 0 && now_ms > c->resolve_by;
}

static bool filter_match(const request_filter *f, const case_record *c, int64_t now_ms)
{
    if (f->state >= 0 && (int)c->state != f->state) return false;
    if (f->channel >= 0 && (int)c->channel != f->channel) return false;
    if (f->unit.n > 0 && !gl_str_eq2(f->unit, c->unit)) return false;
    if (f->district.n > 0 && !gl_str_eq2(f->district, c->location.district)) return false;
    if (f->street.n > 0 && !gl_str_eq2(f->street, c->location.street)) return false;
    if (f->community.n > 0 && !gl_str_eq2(f->community, c->location.community)) return false;
    if (f->grid.n > 0 && !gl_str_eq2(f->grid, c->location.grid)) return false;
    if (f->category.n > 0 && !gl_str_eq2(f->category, c->category)) return false;
    if (f->reporter_phone.n > 0 && !gl_str_eq2(f->reporter_phone, c->reporter_phone)) return false;
    if (f->supervised >= 0 && (int)c->supervised != f->supervised) return false;
    if (f->overdue >= 0 && (int)store_case_is_overdue(c, now_ms) != f->overdue) return false;
    if (c->created_at < f->created_from || c->created_at >= f->created_to) return false;
    return true;
}

/* The equality filter that drives the scan: the most selective one given. onebyte
 * holds REQUEST_MAX_CODE + 2 bytes. */
static int driver_of(const request_filter *f, gl_str *value, char *onebyte)
{
    if (f->reporter_phone.n > 0) { *value = f->reporter_phone; return TAG_PHONE; }
    if (f->grid.n > 0) { *value = f->grid; return TAG_GRID; }
    if (f->community.n > 0) { *value = f->community; return TAG_COMMUNITY; }
    if (f->unit.n > 0 && f->unit.n <= REQUEST_MAX_CODE && f->state >= 0) {
        *value = gl_str_of(onebyte, unit_state_value(onebyte, f->unit, f->state));
        return TAG_UNIT_STATE;
    }
    if (f->unit.n > 0) { *value = f->unit; return TAG_UNIT; }
    if (f->street.n > 0) { *value = f->street; return TAG_STREET; }
    if (f->category.n > 0) { *value = f->category; return TAG_CATEGORY; }
    if (f->district.n > 0) { *value = f->district; return TAG_DISTRICT; }
    if (f->state >= 0) {
        *onebyte = (char)('0' + f->state);
        *value = gl_str_of(onebyte, 1);
        return TAG_STATE;
    }
    if (f->channel >= 0) {
        *onebyte = (char)('0' + f->channel);
        *value = gl_str_of(onebyte, 1);
        return TAG_CHANNEL;
    }
    return 0;
}

/* The first id created at or after `from`, from the '~' index; UINT64_MAX if none. */
static uint64_t first_id_created_from(store_reader *r, int64_t from)
{
    MDB_cursor *cur;
    unsigned char kb[17];
    MDB_val k = val_of(kb, index_key_time(kb, from, 0)), v;
    uint64_t id = UINT64_MAX;
    if (mdb_cursor_open(r->txn, r->s->index, &cur) != 0) {
        return id;
    }
    if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size == 17
        && ((const unsigned char *)k.mv_data)[0] == TAG_CREATED) {
        id = mp_get_be64((const unsigned char *)k.mv_data + 9);
    }
    mdb_cursor_close(cur);
    return id;
}

int store_list(store_reader *r, const request_filter *f, uint64_t after, uint32_t limit,
               int64_t now_ms, uint32_t scan_budget, store_case_fn fn, void *arg,
               uint64_t *next)
{
    store *s = r->s;
    gl_str value = GL_STR_NULL;
    char onebyte[REQUEST_MAX_CODE + 2];
    int tag = driver_of(f, &value, onebyte);
    unsigned char kb[INDEX_KEY_MAX + REQUEST_MAX_CODE], idb[8];
    size_t prefix = 0;
    MDB_cursor *cur;
    MDB_val k, v;
    uint32_t found = 0, examined = 0;
    uint64_t last = after;
    int rc, out = 0;

    *next = 0;
    if (after == UINT64_MAX) {
        return 0;
    }
    if (tag != 0) {
        if (value.n > REQUEST_MAX_CODE + 2) {
            return 0;
        }
        prefix = posting_prefix(kb, tag, value);
        k = val_of(kb, posting_key(kb, tag, value, after + 1));
        mp_put_be64(idb, after + 1);
        rc = mdb_cursor_open(r->txn, s->post, &cur);
    } else {
        uint64_t start = after + 1;
        if (f->created_from != INT64_MIN) {
            uint64_t first = first_id_created_from(r, f->created_from);
            start = first > start ? first : start;
            if (start == UINT64_MAX) {
                return 0;
            }
        }
        mp_put_be64(kb, start);
        k = val_of(kb, 8);
        rc = mdb_cursor_open(r->txn, s->cases, &cur);
    }
    if (rc != 0) {
        return GL_EINTERNAL;
    }

    MDB_val start = k;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (tag != 0 && rc == 0 && k.mv_size == start.mv_size
        && memcmp(k.mv_data, start.mv_data, start.mv_size) == 0) {
        /* after+1's own partition: from the first id past after in it, if any. */
        MDB_val kk = start, vv = val_of(idb, 8);
        rc = mdb_cursor_get(cur, &kk, &vv, MDB_GET_BOTH_RANGE);
        if (rc == 0) {
            v = vv;
        } else if (rc == MDB_NOTFOUND) {
            rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP);
        }
    }
    while (rc == 0) {
        uint64_t id;
        if (tag != 0) {
            /* The value's partitions, in id order, then another value: the end. */
            if (k.mv_size != prefix + POSTING_PART_BYTES || memcmp(k.mv_data, kb, prefix) != 0) {
                break;
            }
            if (v.mv_size != 8) {
                out = GL_EINTERNAL;
                break;
            }
            id = mp_get_be64(v.mv_data);
        } else {
            id = mp_get_be64(k.mv_data);
        }
        if (found == limit || examined == scan_budget) {
            /* There is more to look at: hand back a cursor to go on from. */
            *next = last;
            break;
        }
        examined++;
        last = id;

        gl_str raw;
        if (tag != 0) {
            if (store_read_case(r, id, &raw) != 0) {
                out = GL_EINTERNAL;
                break;
            }
        } else {
            raw = gl_str_of(v.mv_data, v.mv_size);
        }
        case_record c;
        msgpack_zone_clear(&r->zone);
        if (case_record_decode(raw.p, raw.n, &r->zone, &c) != 0) {
            log_error("store: case %llu does not decode", (unsigned long long)id);
            out = GL_EINTERNAL;
            break;
        }
        if (tag == 0 && c.created_at >= f->created_to) {
            break;   /* created_at grows with id: nothing later can match */
        }
        if (filter_match(f, &c, now_ms)) {
            int took = fn(arg, raw, &c);
            if (took < 0) {
                out = took;
                break;
            }
            found += took == 0;
        }
        rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return out;
}
