//! Compiled-module caches: a size-bounded LRU in memory and an artifact
//! directory on disk. Neither is consensus state: a miss only costs
//! compilation time, never gas.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use lru::LruCache;
use stele_types::{Hash, keccak256, keccak256_parts};

/// A least-recently-used map from code hash to `V`, bounded by entry count
/// and by total size (the `lru` crate's order, with sizes counted here).
#[derive(Debug)]
pub struct Lru<V> {
    entries: LruCache<Hash, (V, usize)>,
    bytes: usize,
    entries_max: usize,
    bytes_max: usize,
}

impl<V: Clone> Lru<V> {
    /// An empty cache holding at most `entries_max` values and `bytes_max`
    /// total size.
    pub fn new(entries_max: usize, bytes_max: usize) -> Self {
        Lru {
            entries: LruCache::unbounded(),
            bytes: 0,
            entries_max: entries_max.max(1),
            bytes_max,
        }
    }

    /// The value for `key`, marking it most recently used.
    pub fn get(&mut self, key: &Hash) -> Option<V> {
        self.entries.get(key).map(|(value, _)| value.clone())
    }

    /// Inserts `value` of `size` bytes, evicting least recently used entries
    /// to stay within bounds.
    pub fn insert(&mut self, key: Hash, value: V, size: usize) {
        if let Some((_, old_size)) = self.entries.pop(&key) {
            self.bytes -= old_size;
        }
        while self.entries.len() >= self.entries_max || self.bytes + size > self.bytes_max {
            let Some((_, (_, evicted))) = self.entries.pop_lru() else {
                break;
            };
            self.bytes -= evicted;
        }
        self.entries.put(key, (value, size));
        self.bytes += size;
    }

    /// Number of cached values.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Header of an artifact file: magic, then the Keccak-256 of everything
/// after the header.
const MAGIC: &[u8; 8] = b"STELEVM1";

/// A directory of compiled artifacts named by code hash and engine key.
#[derive(Debug, Clone)]
pub struct DiskCache {
    dir: PathBuf,
    engine_key: Hash,
}

impl DiskCache {
    /// Artifacts in `dir` for the engine identified by `engine_key` (a hash
    /// over wasmtime's compatibility hash, the gas schedule and limits
    /// versions and the instrumentation version).
    pub fn new(dir: &Path, engine_key: Hash) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(DiskCache {
            dir: dir.to_path_buf(),
            engine_key,
        })
    }

    fn path(&self, code_hash: &Hash) -> PathBuf {
        let key = keccak256_parts(&[&code_hash.0, &self.engine_key.0]);
        self.dir.join(format!("{}.cwasm", hex_string(&key.0)))
    }

    /// The artifact for `code_hash` if present and intact: the checksum over
    /// its bytes matches and it was written for this code and engine.
    pub fn load(&self, code_hash: &Hash) -> Option<Vec<u8>> {
        let bytes = fs::read(self.path(code_hash)).ok()?;
        let header = MAGIC.len() + 32 + 32 + 32;
        if bytes.len() < header || &bytes[..8] != MAGIC {
            return None;
        }
        let (head, artifact) = bytes.split_at(header);
        let checksum = &head[8..40];
        if keccak256(artifact).0 != checksum
            || head[40..72] != code_hash.0
            || head[72..104] != self.engine_key.0
        {
            return None;
        }
        Some(artifact.to_vec())
    }

    /// Writes the artifact atomically (temporary file, then rename). Errors
    /// are ignored: the cache is an optimisation.
    pub fn store(&self, code_hash: &Hash, artifact: &[u8]) {
        let path = self.path(code_hash);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&keccak256(artifact).0)?;
            f.write_all(&code_hash.0)?;
            f.write_all(&self.engine_key.0)?;
            f.write_all(artifact)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        if write().is_err() {
            let _ = fs::remove_file(&tmp);
        }
    }

    /// Path of the artifact for `code_hash` (for tests that corrupt it).
    pub fn artifact_path(&self, code_hash: &Hash) -> PathBuf {
        self.path(code_hash)
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_least_recently_used_by_count_and_size() {
        let h = |i: u8| Hash([i; 32]);
        let mut lru = Lru::new(2, 100);
        lru.insert(h(1), 1, 10);
        lru.insert(h(2), 2, 10);
        assert_eq!(lru.get(&h(1)), Some(1));
        lru.insert(h(3), 3, 10);
        assert_eq!(lru.get(&h(2)), None);
        assert_eq!(lru.get(&h(1)), Some(1));
        lru.insert(h(4), 4, 95);
        assert_eq!(lru.len(), 1);
        assert_eq!(lru.get(&h(4)), Some(4));
    }

    #[test]
    fn disk_cache_rejects_corrupt_and_foreign_artifacts() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiskCache::new(dir.path(), Hash([7; 32])).unwrap();
        let code = Hash([1; 32]);
        cache.store(&code, b"artifact");
        assert_eq!(cache.load(&code).as_deref(), Some(&b"artifact"[..]));
        let path = cache.artifact_path(&code);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(cache.load(&code), None);
        let other_engine = DiskCache::new(dir.path(), Hash([8; 32])).unwrap();
        assert_eq!(other_engine.load(&code), None);
    }
}
