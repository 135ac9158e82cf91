/* exp_cache.h - the result cache of batch evaluation: SHA-256, cell keys, and a crash-safe cell store.
 *
 * A "cell" (one model x attack x eps, or any other unit of work) is keyed by the SHA-256 of everything
 * that produced it, built with exp_key_*: the canonical text of the relevant part of the experiment
 * (built by the caller), the model file's bytes, the data set's files, the seed, the code version.
 * Same inputs in the same order give the same key; changing any of them gives another key, so a changed
 * attack parameter recomputes only the cells whose key text includes it.
 *
 * Store layout under a root folder:
 *   <root>/cells/<hex[0..1]>/<hex>/          a finished cell: its files + cell.json (the marker)
 *   <root>/cells/tmp/<hex>.<pid>.<random>/   a cell being computed (work folder), never read
 *   <root>/cells/tmp/<hex>.<pid>.old<random>/ a finished cell moved aside by exp_cell_commit_replace
 *
 * Protocol: exp_cell_begin makes a fresh work folder; the caller writes the cell's files there (any way
 * it likes: nothing in a work folder is ever read); exp_cell_commit writes cell.json atomically, fsyncs
 * every file and folder of the work folder, and publishes it with one rename(2) of the folder onto
 * <root>/cells/<hex[0..1]>/<hex>. A cell is finished iff its final folder exists with a cell.json in it,
 * and a final folder only ever appears whole (rename of a complete folder). So an interruption at any
 * moment (Ctrl-C, kill -9, power loss) leaves either a finished cell, or nothing under the final name
 * plus a stale work folder that exp_cache_clean_tmp removes on the next start; the cell is then simply
 * recomputed. After power loss, a commit whose directory fsyncs had not completed may be lost (the cell
 * is recomputed), never half there. A finished cell is never modified, only replaced whole
 * (exp_cell_commit_replace, for --force).
 *
 * The root must be on a local POSIX file system used by one machine (the stale-folder rule uses pids).
 * Thread-safety: functions touching the store are safe to call from several threads and processes on
 * different exp_cell values (each work folder has a unique name; publication is one rename). An
 * exp_hash_memo is not thread-safe: one per thread, or serialize its use. No global mutable state. */
#ifndef EXP_CACHE_H
#define EXP_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "nn_err.h"

/* ---- SHA-256 (FIPS 180-4) ---- */

/* A streaming SHA-256 state. Plain value: copy it to fork a hash of a common prefix. */
typedef struct exp_sha256 {
    uint32_t h[8];
    uint64_t nbytes; /* bytes fed so far */
    unsigned char buf[64];
    size_t nbuf; /* bytes waiting in buf, < 64 */
} exp_sha256;

/* Starts a hash. */
void exp_sha256_init(exp_sha256 *s);
/* Feeds len bytes (data may be NULL when len == 0); any split of a message gives the same digest. */
void exp_sha256_update(exp_sha256 *s, const void *data, size_t len);
/* Writes the 32-byte digest; s must be re-initialized before another use. */
void exp_sha256_final(exp_sha256 *s, unsigned char out[32]);
/* One-shot: out <- lowercase hex of SHA-256(data[0..len)), NUL-terminated. */
void exp_sha256_hex(const void *data, size_t len, char out[65]);
/* out <- lowercase hex SHA-256 of a file's bytes, read in 64 KiB chunks. NN_E_IO (naming the file) if it
 * cannot be opened or read. */
int exp_sha256_file(const char *path, char out[65], nn_err *err);

/* ---- file-hash memo ---- */

/* One remembered file hash. Identity: path (as given, not resolved), device, inode, size, mtime, ctime
 * (both to the nanosecond): any write, truncation, touch or replacement of the file changes at least one. */
typedef struct exp_hash_memo_entry {
    char *path; /* owned */
    uint64_t dev, ino, size;
    int64_t mtime_s, mtime_ns, ctime_s, ctime_ns;
    char hex[65];
} exp_hash_memo_entry;

/* File hashes remembered by the caller (e.g. for one batch run): a data set's files are hashed once even
 * when a thousand cell keys include them. Zero-initialize (or exp_hash_memo_init), free with
 * exp_hash_memo_free. Lookups are linear: meant for tens of files. Not thread-safe. */
typedef struct exp_hash_memo {
    exp_hash_memo_entry *e;
    size_t n, cap;
    size_t hits, misses; /* statistics: lookups answered from the table / by reading the file */
} exp_hash_memo;

/* Zeroes m. */
void exp_hash_memo_init(exp_hash_memo *m);
/* Frees the table and zeroes m. NULL is a no-op. */
void exp_hash_memo_free(exp_hash_memo *m);
/* out <- the file's SHA-256 hex. With m != NULL, an entry whose identity (see above) matches the file's
 * current stat answers without reading (a hit); otherwise the file is read (a miss) and remembered, unless
 * its mtime is within 2 s of now or in the future: a file written in the same timestamp tick as our read
 * could change again without changing its mtime ("racy" file, as in git), so it is re-read every time.
 * NN_E_IO naming the file if it cannot be stat'ed/read or changed while being read; NN_E_NOMEM. */
int exp_hash_memo_file(exp_hash_memo *m, const char *path, char out[65], nn_err *err);

/* ---- cell keys ---- */

/* A key being built. Encoding (stable; a change invalidates every cache): SHA-256 over the bytes
 * "temper-cell-key-v1\n", then per field: one type byte ('s' string, 'u' u64, 'd' double, 'f' file hash),
 * u64le(strlen(name)), name, u64le(value length), value. Values: a string's bytes; u64 as 8 bytes
 * little-endian; a double's IEEE-754 bits as u64le after mapping -0.0 to +0.0 and every NaN to
 * 0x7ff8000000000000; a file as the 64 lowercase hex digits of its SHA-256. Length prefixes and type
 * bytes make the encoding injective: ("ab","c") != ("a","bc"), and a string never equals a number.
 * Field order matters: the caller adds fields in a fixed, canonical order. */
typedef struct exp_key {
    exp_sha256 ctx;
} exp_key;

/* Starts a key. */
void exp_key_init(exp_key *k);
/* Adds a named string field. name and value must not be NULL. */
void exp_key_add_str(exp_key *k, const char *name, const char *value);
/* Adds a named unsigned integer field. */
void exp_key_add_u64(exp_key *k, const char *name, uint64_t value);
/* Adds a named double field by its exact bits (-0.0 == 0.0; all NaNs equal). */
void exp_key_add_double(exp_key *k, const char *name, double value);
/* Adds a named field holding the SHA-256 of the file's bytes (its path is not part of the key: moving
 * a data folder keeps the keys). memo may be NULL (no memo). Errors as exp_hash_memo_file; on error the
 * key is unchanged. */
int exp_key_add_file_hash(exp_key *k, const char *name, const char *path, exp_hash_memo *memo, nn_err *err);
/* hex <- the key (64 lowercase hex digits + NUL); k must be re-initialized before another use. */
void exp_key_final(exp_key *k, char hex[65]);

/* ---- cell store ---- */

#define EXP_CACHE_PATH_MAX 4096

/* A cell being computed (exp_cell_begin .. commit/abort). A plain value; owns its work folder on disk. */
typedef struct exp_cell {
    char root[EXP_CACHE_PATH_MAX];
    char hex[65];
    char dir[EXP_CACHE_PATH_MAX]; /* while open: the work folder to write the cell's files into; after a
                                   * successful commit: the finished folder (ours or the one kept) */
    int open;                     /* 1 between begin and commit/abort */
    int kept_existing;            /* after exp_cell_commit: 1 if a finished cell was already there and
                                   * ours was discarded */
} exp_cell;

/* 1 if the cell <hex> is finished under root (its folder and cell.json exist): dir <- its folder (dir
 * may be NULL: only the answer). 0 if not (nothing finished, or only a work folder). -1 if hex is not 64
 * lowercase hex digits or the path does not fit in cap. Read-only; never sees a cell before its commit
 * completed. With --force the caller skips this call and commits with exp_cell_commit_replace. */
int exp_cell_find(const char *root, const char *hex, char *dir, size_t cap);

/* Creates a fresh, empty work folder <root>/cells/tmp/<hex>.<pid>.<random> (mkdir, retried on a name
 * clash, so it is unique even among concurrent processes) and opens c on it: write the cell's files
 * into c->dir. Creates <root>/cells/tmp as needed. A stale work folder of a dead run under the same hex
 * is ignored. NN_E_INVAL (bad hex, path too long), NN_E_IO naming the folder. */
int exp_cell_begin(const char *root, const char *hex, exp_cell *c, nn_err *err);

/* Finishes the open cell c: writes cell.json (cell_json[0..len), atomically: temporary, fsync, rename)
 * into the work folder, fsyncs every file and folder in it, and renames the folder to
 * <root>/cells/<hex[0..1]>/<hex> (one atomic rename(2)), then fsyncs the folders involved. If a
 * finished cell is already there (an earlier run, or a concurrent one that finished first), rename fails
 * with ENOTEMPTY/EEXIST: ours is discarded and the existing one kept (kept_existing = 1). Both were
 * computed from the same key, and keeping the first keeps any reader of it consistent; replacing would
 * need two renames with a window where the cell is missing. A folder at the final name without a
 * cell.json (never made by this module) is replaced. On success c->dir names the finished folder and c
 * is closed. On failure nothing is published and the work folder is removed (c closed). */
int exp_cell_commit(exp_cell *c, const char *cell_json, size_t len, nn_err *err);

/* Like exp_cell_commit, but an existing finished cell is replaced (for --force): it is renamed aside to
 * <root>/cells/tmp/<hex>.<pid>.old<random>, ours renamed in, then the old one removed. Between the two
 * renames the cell is briefly not found; an interruption there loses the old cell (it was being
 * recomputed anyway): the next run finds nothing, recomputes, and exp_cache_clean_tmp removes the
 * aside. Never leaves a mixture of old and new files. */
int exp_cell_commit_replace(exp_cell *c, const char *cell_json, size_t len, nn_err *err);

/* Removes c's work folder and closes c. No-op if c is not open (after commit, abort, or a failed begin). */
void exp_cell_abort(exp_cell *c);

/* Removes the leftover folders of dead runs from <root>/cells/tmp; call at start. A folder is removed
 * only when its name is <64 hex>.<pid>.<suffix>, the pid is not this process's, and kill(pid, 0) says no
 * such process (ESRCH). So a live concurrent run's folders are never touched (whenever it started), our
 * own are kept (a leftover of an earlier process that had our pid goes on the next run), and a dead
 * run's pid reused by another process only delays the removal. (The other policy, "older than this
 * process", would remove the work folders of a concurrent run that started before us.) Unknown names
 * are left alone. A missing tmp folder is fine. NN_E_IO naming the first folder that could not be
 * removed (the others are still tried). */
int exp_cache_clean_tmp(const char *root, nn_err *err);

#endif
