//! Modules by value: an evaluator of the redis method stores its module's bytes under their
//! sha256 (`PREFIX:module:SHA256`), with a count of the searches using it
//! (`PREFIX:module:SHA256.users`, a hash of search id to evaluators); a worker checks the
//! size before it fetches the bytes and the sha256 after. The bytes are deleted when no
//! search uses them any more.

use std::sync::LazyLock;

use super::RedisStorage;
use crate::error::Result;
use crate::sandbox::ModuleHandle;

/// The largest module a worker fetches.
pub const MAX_MODULE: usize = 512 << 20;

/// KEYS users, blob; ARGV search, whole ('1': forget the search whatever its count).
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"if ARGV[2] == '1' then
          redis.call('HDEL', KEYS[1], ARGV[1])
        elseif redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
          redis.call('HDEL', KEYS[1], ARGV[1])
        end
        if redis.call('HLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[2]) end
        return 0",
    )
});

fn keys(storage: &RedisStorage, sha256: &str) -> (String, String) {
    let blob = storage.key(&format!("module:{sha256}"));
    (format!("{blob}.users"), blob)
}

/// Stores the module of `handle` for search `search_id` (once per sha256), and counts this
/// evaluator among its users.
pub(crate) fn put(storage: &RedisStorage, search_id: &str, handle: &ModuleHandle) -> Result<()> {
    let (users, blob) = keys(storage, &handle.sha256);
    storage.run(|c| {
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&blob)
            .arg(handle.wasm.as_slice())
            .arg("NX")
            .ignore()
            .cmd("HINCRBY")
            .arg(&users)
            .arg(search_id)
            .arg(1)
            .ignore()
            .exec(c)
    })
}

/// This evaluator of `search_id` no longer needs module `sha256`.
pub(crate) fn release(storage: &RedisStorage, search_id: &str, sha256: &str) -> Result<()> {
    release_with(storage, search_id, sha256, false)
}

/// Search `search_id` (deleted) no longer needs its module.
pub(crate) fn release_all(storage: &RedisStorage, search_id: &str) -> Result<()> {
    let setup = storage.key(&format!("search:{search_id}.setup"));
    let sha: Option<String> =
        storage.run(|c| redis::cmd("HGET").arg(&setup).arg("module").query(c))?;
    // Deleting the search deleted its setup too; the module named there, if any, is released.
    match sha {
        Some(sha) if valid_sha256(&sha) => release_with(storage, search_id, &sha, true),
        _ => Ok(()),
    }
}

fn release_with(storage: &RedisStorage, search_id: &str, sha256: &str, whole: bool) -> Result<()> {
    let (users, blob) = keys(storage, sha256);
    storage.run(|c| {
        RELEASE
            .key(&users)
            .key(&blob)
            .arg(search_id)
            .arg(if whole { "1" } else { "0" })
            .invoke::<i64>(c)
    })?;
    Ok(())
}

/// The bytes of module `sha256`: refused before it is fetched when larger than
/// [`MAX_MODULE`], and after when they are not the ones named.
pub(crate) fn fetch(storage: &RedisStorage, sha256: &str) -> std::result::Result<Vec<u8>, String> {
    let (_, blob) = keys(storage, sha256);
    let size: usize = storage
        .run(|c| redis::cmd("STRLEN").arg(&blob).query(c))
        .map_err(|e| e.to_string())?;
    if size == 0 {
        return Err(format!(
            "module {sha256} is not in the storage (its searches ended)"
        ));
    }
    if size > MAX_MODULE {
        return Err(format!(
            "module {sha256} is {size} bytes, more than the {MAX_MODULE} a worker fetches"
        ));
    }
    let bytes: Vec<u8> = storage
        .run(|c| redis::cmd("GET").arg(&blob).query(c))
        .map_err(|e| e.to_string())?;
    let found = crate::sandbox::cache::sha256_hex(&bytes);
    if found != sha256 {
        return Err(format!(
            "the bytes stored as module {sha256} have sha256 {found}: refused"
        ));
    }
    Ok(bytes)
}

/// True for a sha256 in hex (what may name a module key).
pub fn valid_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}
