//! Building a whole version from sorted entries, bottom-up: how a node that
//! syncs from a snapshot (ADR 0012) or restores a backup makes its state.
//!
//! Entries arrive in key-hash order. Each leaf's place is fixed by its two
//! neighbours (it sits one nibble below the longer prefix it shares with
//! either), and an internal node exists exactly at every prefix two or more
//! keys share, so one pass with one open internal node per nibble level
//! writes the same nodes as committing all the entries at once would, each
//! node once, with no reads. Nodes and flat-index entries go to disk in
//! batches as they are made; the root pointer and the version go last, in
//! one synced write, so until then the state has no version at all.

use rocksdb::{WriteBatch, WriteOptions};
use stele_types::Hash;
use stele_types::proof::{
    STATE_KEY_BYTES_MAX, StateKey, common_prefix_bits, leaf_hash, value_hash,
};

use crate::error::StateError;
use crate::node::{Child, InternalNode, LeafNode, NIBBLES_MAX, NibblePath, Node, NodeKey, nibble};
use crate::store::{
    CF_FLAT, CF_META, CF_NODES, CF_ROOTS, CF_STALE, META_LATEST, META_OLDEST, State, encode_root,
    flat_key,
};

/// Bytes of writes gathered before a batch goes to disk.
const BATCH_BYTES: usize = 4 << 20;

/// Longest key any flat-index or tree key can have, plus one: every key is
/// below this many 0xff bytes.
const KEY_BYTES_BOUND: usize = 2 * STATE_KEY_BYTES_MAX;

/// A version being built; see the module docs. Made by
/// [`State::import`], fed with [`Importer::push`], ended by
/// [`Importer::finish`].
pub struct Importer<'a> {
    state: &'a mut State,
    version: u64,
    /// The entry waiting for the next one, which fixes its place.
    pending: Option<Entry>,
    /// The key hash before `pending`'s.
    previous: Option<Hash>,
    /// Open internal nodes: `open[k]` is the node at the first `k` nibbles
    /// of the current key, for every `k` below the current depth.
    open: Vec<InternalNode>,
    root: Option<Child>,
    batch: WriteBatch,
    batch_bytes: usize,
    /// Entries pushed.
    pub entries: u64,
}

struct Entry {
    hash: Hash,
    key: StateKey,
    value: Vec<u8>,
}

impl std::fmt::Debug for Importer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("version", &self.version)
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl State {
    /// Deletes every version: the state becomes empty, as before its first
    /// commit (a node that joins by snapshot replaces its genesis state).
    pub fn reset(&mut self) -> Result<(), StateError> {
        let end = vec![0xff; KEY_BYTES_BOUND];
        let mut clear = WriteBatch::default();
        for cf in [CF_NODES, CF_STALE, CF_ROOTS, CF_FLAT] {
            clear.delete_range_cf(self.cf(cf)?, &[][..], &end[..]);
        }
        let meta = self.cf(CF_META)?;
        clear.delete_cf(meta, META_LATEST);
        clear.delete_cf(meta, META_OLDEST);
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db()?.write_opt(clear, &opts)?;
        self.latest = None;
        self.oldest = None;
        self.cache = crate::cache::NodeCache::new(self.config.node_cache_bytes_max);
        Ok(())
    }

    /// Starts building `version` from scratch on a state that has no
    /// version yet. Whatever an interrupted import left behind is cleared
    /// first.
    pub fn import(&mut self, version: u64) -> Result<Importer<'_>, StateError> {
        if let Some(latest) = self.latest {
            return Err(StateError::ImportIntoNonEmpty { latest });
        }
        let end = vec![0xff; KEY_BYTES_BOUND];
        let mut clear = WriteBatch::default();
        for cf in [CF_NODES, CF_STALE, CF_ROOTS, CF_FLAT] {
            clear.delete_range_cf(self.cf(cf)?, &[][..], &end[..]);
        }
        self.db()?.write(clear)?;
        Ok(Importer {
            state: self,
            version,
            pending: None,
            previous: None,
            open: Vec::with_capacity(NIBBLES_MAX),
            root: None,
            batch: WriteBatch::default(),
            batch_bytes: 0,
            entries: 0,
        })
    }
}

/// Nibbles `a` and `b` share.
fn common_nibbles(a: &Hash, b: &Hash) -> usize {
    common_prefix_bits(a, b) / 4
}

impl Importer<'_> {
    /// Adds one entry; keys must come in strictly increasing key-hash
    /// order.
    pub fn push(&mut self, key: StateKey, value: Vec<u8>) -> Result<(), StateError> {
        if key.key.len() > STATE_KEY_BYTES_MAX {
            return Err(StateError::KeyTooLong {
                len: key.key.len(),
                max: STATE_KEY_BYTES_MAX,
            });
        }
        let max = self.state.config.value_bytes_max;
        if value.len() > max {
            return Err(StateError::ValueTooLarge {
                len: value.len(),
                max,
            });
        }
        let hash = key.hash();
        if let Some(last) = &self.pending
            && hash <= last.hash
        {
            return Err(StateError::ImportOutOfOrder {
                index: self.entries,
            });
        }
        let next = Entry { hash, key, value };
        if let Some(entry) = self.pending.replace(next) {
            let following = self.pending.as_ref().map(|e| e.hash);
            self.place(entry, following)?;
        }
        self.entries += 1;
        Ok(())
    }

    /// Places `entry`, whose successor's key hash is `next` (`None` for the
    /// last entry): writes its leaf, opens the internal nodes it shares
    /// with `next`, and closes those it shares with neither.
    fn place(&mut self, entry: Entry, next: Option<Hash>) -> Result<(), StateError> {
        let shared_previous = self.previous.map(|p| common_nibbles(&p, &entry.hash));
        let shared_next = next.map(|n| common_nibbles(&entry.hash, &n));
        // Alone in the tree: the root is the leaf itself.
        let depth = match shared_previous.max(shared_next) {
            None => 0,
            Some(shared) => shared + 1,
        };
        while self.open.len() < depth {
            self.open.push(InternalNode::default());
        }
        let leaf = LeafNode {
            key: entry.hash,
            value: entry.value,
        };
        let child = Child {
            version: self.version,
            hash: leaf_hash(&leaf.key, &value_hash(&leaf.value)),
            leaf: true,
        };
        let path = path_of(&entry.hash, depth);
        self.attach(depth, &entry.hash, child);
        let flat = flat_key(&entry.key);
        self.put(CF_FLAT, flat, leaf.value.clone())?;
        self.put_node(path, Node::Leaf(leaf))?;
        // Close the nodes `next` does not share.
        let keep = shared_next.map_or(0, |s| s + 1);
        while self.open.len() > keep {
            let mut node = self.open.pop().unwrap_or_default();
            let k = self.open.len();
            let child = Child {
                version: self.version,
                hash: node.hash_memo(),
                leaf: false,
            };
            self.attach(k, &entry.hash, child);
            self.put_node(path_of(&entry.hash, k), Node::Internal(node))?;
        }
        self.previous = Some(entry.hash);
        Ok(())
    }

    /// Makes `child`, at the first `depth` nibbles of `key`, a child of
    /// its parent (the open node one level up), or the root.
    fn attach(&mut self, depth: usize, key: &Hash, child: Child) {
        match depth.checked_sub(1) {
            Some(parent) => {
                let slot = usize::from(nibble(key, parent));
                if let Some(node) = self.open.get_mut(parent) {
                    node.set_child(slot, Some(child));
                }
            }
            None => self.root = Some(child),
        }
    }

    fn put_node(&mut self, path: NibblePath, node: Node) -> Result<(), StateError> {
        let key = NodeKey {
            version: self.version,
            path,
        };
        self.put(CF_NODES, key.to_db_key().to_vec(), node.encode())
    }

    fn put(&mut self, cf: &str, key: Vec<u8>, value: Vec<u8>) -> Result<(), StateError> {
        self.batch_bytes += key.len() + value.len();
        self.batch.put_cf(self.state.cf(cf)?, key, value);
        if self.batch_bytes >= BATCH_BYTES {
            let batch = std::mem::take(&mut self.batch);
            self.batch_bytes = 0;
            // Unsynced: the final write is synced, and before it nothing
            // here is reachable.
            let mut opts = WriteOptions::default();
            opts.set_sync(false);
            self.state.db()?.write_opt(batch, &opts)?;
        }
        Ok(())
    }

    /// Places the last entry, writes the root and makes `version` the
    /// state's only version, durably. Returns the root hash: the caller
    /// compares it with the certified one.
    pub fn finish(self) -> Result<Hash, StateError> {
        self.finish_with(|_, _, _| Ok::<(), StateError>(()))
    }

    /// [`Importer::finish`], with `extra` adding its writes to the final
    /// batch, which makes them durable with the version: it is given the
    /// state, the batch and the root, and nothing of the version becomes
    /// durable if it fails (a wrong root, say).
    pub fn finish_with<E: From<StateError>>(
        mut self,
        extra: impl FnOnce(&State, &mut WriteBatch, Hash) -> Result<(), E>,
    ) -> Result<Hash, E> {
        if let Some(entry) = self.pending.take() {
            self.place(entry, None)?;
        }
        let root = self.root.map_or(Hash::ZERO, |c| c.hash);
        let version = self.version;
        let mut batch = std::mem::take(&mut self.batch);
        extra(self.state, &mut batch, root)?;
        batch.put_cf(
            self.state.cf(CF_ROOTS)?,
            version.to_be_bytes(),
            encode_root(self.root),
        );
        let meta = self.state.cf(CF_META)?;
        batch.put_cf(meta, META_LATEST, version.to_le_bytes());
        batch.put_cf(meta, META_OLDEST, version.to_le_bytes());
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.state
            .db()?
            .write_opt(batch, &opts)
            .map_err(StateError::from)?;
        self.state.latest = Some(version);
        self.state.oldest = Some(version);
        Ok(root)
    }
}

/// The first `depth` nibbles of `key`.
fn path_of(key: &Hash, depth: usize) -> NibblePath {
    NibblePath::prefix_of(key, depth)
}
