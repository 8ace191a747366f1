//! Block sync messages: a lagging validator asks a peer for committed
//! blocks `from..=to` and gets back as many as fit in one response, each
//! with its commit certificate. The receiver checks every certificate (the
//! replica does) and every block against it (the committer does).

use stele_types::codec::{Decode, DecodeError, Encode, Reader, put_bytes};
use stele_types::{Block, CommitCertificate, Limits};

use crate::store::{BlockReader, StoreError};

/// Blocks served per request at most.
pub const SYNC_BLOCKS_MAX: u64 = 64;

/// A request for committed blocks `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRequest {
    pub from: u64,
    pub to: u64,
}

impl SyncRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16);
        out.extend_from_slice(&self.from.to_be_bytes());
        out.extend_from_slice(&self.to.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<SyncRequest> {
        let bytes: &[u8; 16] = bytes.try_into().ok()?;
        let (a, b) = bytes.split_at(8);
        let from = u64::from_be_bytes(a.try_into().ok()?);
        let to = u64::from_be_bytes(b.try_into().ok()?);
        (from >= 1 && from <= to).then_some(SyncRequest { from, to })
    }
}

/// A question about the snapshots a peer keeps (ADR 0012), on the sync
/// channel beside block requests (which are 16 bytes; these never are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotQuery {
    /// The heights of the snapshots kept, newest first.
    List,
    /// The index (manifest and anchor) of the snapshot of `height`.
    Index { height: u64 },
    /// Chunk `index` of the snapshot of `height`.
    Chunk { height: u64, index: u32 },
}

const QUERY_LIST: u8 = 1;
const QUERY_INDEX: u8 = 2;
const QUERY_CHUNK: u8 = 3;
/// Heights a list answer names at most.
pub const SNAPSHOTS_LISTED_MAX: usize = 16;

impl SnapshotQuery {
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            SnapshotQuery::List => vec![QUERY_LIST],
            SnapshotQuery::Index { height } => {
                let mut out = vec![QUERY_INDEX];
                out.extend_from_slice(&height.to_le_bytes());
                out
            }
            SnapshotQuery::Chunk { height, index } => {
                let mut out = vec![QUERY_CHUNK];
                out.extend_from_slice(&height.to_le_bytes());
                out.extend_from_slice(&index.to_le_bytes());
                out
            }
        }
    }

    /// Exactly [`Self::encode`]'s output, or `None`.
    pub fn decode(bytes: &[u8]) -> Option<SnapshotQuery> {
        let (&tag, rest) = bytes.split_first()?;
        let u64_at = |at: usize| -> Option<u64> {
            Some(u64::from_le_bytes(rest.get(at..at + 8)?.try_into().ok()?))
        };
        match (tag, rest.len()) {
            (QUERY_LIST, 0) => Some(SnapshotQuery::List),
            (QUERY_INDEX, 8) => Some(SnapshotQuery::Index { height: u64_at(0)? }),
            (QUERY_CHUNK, 12) => Some(SnapshotQuery::Chunk {
                height: u64_at(0)?,
                index: u32::from_le_bytes(rest.get(8..12)?.try_into().ok()?),
            }),
            _ => None,
        }
    }
}

/// Answers `query` from the snapshots folder `dir`: a list is a count and
/// the heights (u32, then u64s); an index or a chunk is 1 and its bytes,
/// or 0 when this node does not keep it.
pub fn serve_snapshot(dir: &std::path::Path, query: SnapshotQuery) -> std::io::Result<Vec<u8>> {
    let item = |path: std::path::PathBuf| -> std::io::Result<Vec<u8>> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let mut out = Vec::with_capacity(1 + bytes.len());
                out.push(1);
                out.extend_from_slice(&bytes);
                Ok(out)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![0]),
            Err(e) => Err(e),
        }
    };
    match query {
        SnapshotQuery::List => {
            let heights = crate::node::kept_heights(dir);
            let heights = &heights[..heights.len().min(SNAPSHOTS_LISTED_MAX)];
            let mut out = Vec::with_capacity(4 + 8 * heights.len());
            out.extend_from_slice(&(heights.len() as u32).to_le_bytes());
            for h in heights {
                out.extend_from_slice(&h.to_le_bytes());
            }
            Ok(out)
        }
        SnapshotQuery::Index { height } => item(
            dir.join(height.to_string())
                .join(crate::snapshot::INDEX_FILE),
        ),
        SnapshotQuery::Chunk { height, index } => item(
            dir.join(height.to_string())
                .join(crate::snapshot::chunk_file(index as usize)),
        ),
    }
}

/// A list answer's heights, at most [`SNAPSHOTS_LISTED_MAX`].
pub fn decode_snapshot_list(bytes: &[u8]) -> Option<Vec<u64>> {
    let (count, rest) = bytes.split_first_chunk::<4>()?;
    let count = u32::from_le_bytes(*count) as usize;
    if count > SNAPSHOTS_LISTED_MAX || rest.len() != 8 * count {
        return None;
    }
    Some(
        rest.chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect(),
    )
}

/// An index or chunk answer's bytes; `None` if the peer does not keep it.
pub fn decode_snapshot_item(bytes: &[u8]) -> Option<&[u8]> {
    match bytes.split_first()? {
        (1, item) => Some(item),
        _ => None,
    }
}

/// One committed block as served: the encoded block and its certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedBlock {
    pub payload: Vec<u8>,
    pub certificate: CommitCertificate,
}

impl SyncedBlock {
    /// One block as a sync answer carries it, and as a validator pushes it
    /// to its followers (`Channel::Blocks`): the encoded block, then its
    /// certificate.
    pub fn encode_item(payload: &[u8], certificate: &CommitCertificate) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 4 + 256);
        put_bytes(&mut out, payload);
        certificate.encode_to(&mut out);
        out
    }

    /// Decodes a pushed block ([`encode_item`](Self::encode_item)) within
    /// `limits`, no trailing bytes. The block itself is decoded by whoever
    /// checks it against the certificate.
    pub fn decode_item(bytes: &[u8], limits: &Limits) -> Result<SyncedBlock, DecodeError> {
        let mut r = Reader::new(bytes, limits);
        let payload = r.bytes(limits.input_bytes_max, "pushed block")?;
        let certificate = CommitCertificate::decode_from(&mut r)?;
        r.finish()?;
        Ok(SyncedBlock {
            payload,
            certificate,
        })
    }
}

/// Answers `request` from the store, stopping at `bytes_max` of response.
pub fn serve(
    reader: &BlockReader<'_>,
    request: SyncRequest,
    bytes_max: usize,
) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::new();
    let mut count: u32 = 0;
    let mut body = Vec::new();
    // A peer chooses `from`: near u64::MAX the sum must not overflow.
    let last = request
        .to
        .min(request.from.saturating_add(SYNC_BLOCKS_MAX - 1));
    for height in request.from..=last {
        let (Some(block), Some(cert)) = (reader.block(height)?, reader.certificate(height)?) else {
            break;
        };
        let item = SyncedBlock::encode_item(&block.to_bytes(), &cert);
        if count > 0 && body.len() + item.len() + 4 > bytes_max {
            break;
        }
        body.extend_from_slice(&item);
        count += 1;
    }
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes a response: at most [`SYNC_BLOCKS_MAX`] blocks, each a block
/// that decodes within `limits`, no trailing bytes.
pub fn decode_response(bytes: &[u8], limits: &Limits) -> Result<Vec<SyncedBlock>, DecodeError> {
    let mut r = Reader::new(bytes, limits);
    let count = r.u32("sync block count")?;
    if u64::from(count) > SYNC_BLOCKS_MAX {
        return Err(DecodeError::LengthOverLimit {
            what: "sync blocks",
            len: count as usize,
            max: SYNC_BLOCKS_MAX as usize,
        });
    }
    let mut blocks = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let payload = r.bytes(limits.input_bytes_max, "sync block")?;
        // The payload must be a block; the committer decodes it again.
        let _: Block = stele_types::decode(&payload, limits)?;
        let certificate = CommitCertificate::decode_from(&mut r)?;
        blocks.push(SyncedBlock {
            payload,
            certificate,
        });
    }
    r.finish()?;
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::BLOCK_STORE_CFS;
    use stele_state::{State, StateConfig};

    #[test]
    fn a_pushed_block_round_trips_and_refuses_trailing_or_short_bytes() {
        let cert = CommitCertificate {
            height: 7,
            epoch: 0,
            view: 1,
            block_hash: stele_types::Hash([3; 32]),
            signatures: Vec::new(),
        };
        let limits = Limits::DEFAULT;
        let bytes = SyncedBlock::encode_item(b"block bytes", &cert);
        let item = SyncedBlock::decode_item(&bytes, &limits).expect("decodes");
        assert_eq!(item.payload, b"block bytes");
        assert_eq!(item.certificate, cert);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(SyncedBlock::decode_item(&trailing, &limits).is_err());
        for cut in 0..bytes.len() {
            assert!(SyncedBlock::decode_item(&bytes[..cut], &limits).is_err());
        }
    }

    #[test]
    fn a_request_at_the_top_of_the_height_range_is_answered_without_overflow() {
        let dir = tempfile::tempdir().expect("tempdir");
        let state =
            State::open_with_column_families(dir.path(), StateConfig::default(), &BLOCK_STORE_CFS)
                .expect("state opens");
        let reader = BlockReader::new(&state);
        for from in [u64::MAX, u64::MAX - 1, u64::MAX - SYNC_BLOCKS_MAX] {
            let request = SyncRequest::decode(&SyncRequest { from, to: u64::MAX }.encode())
                .expect("a well-formed request");
            let response = serve(&reader, request, 1 << 20).expect("served");
            assert_eq!(
                response,
                0u32.to_le_bytes(),
                "no such blocks: an empty answer"
            );
        }
    }
}
