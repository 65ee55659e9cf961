//! Transaction-manager requests (MS-TDS 2.2.6.9, packet type 0x0E): ALL_HEADERS, a USHORT
//! request type and its payload. The local-transaction requests (begin, commit, rollback)
//! go to the model; the distributed-transaction ones (DTC address, propagate, promote) and
//! savepoints are refused with an ERROR token.

use super::rpc::skip_all_headers;
use super::wire::{DecodeError, DecodeResult, Reader};
use crate::backend::TransactionRequest;

/// TM request types (MS-TDS 2.2.6.9).
const TM_GET_DTC_ADDRESS: u16 = 0;
const TM_PROPAGATE_XACT: u16 = 1;
const TM_BEGIN_XACT: u16 = 5;
const TM_PROMOTE_XACT: u16 = 6;
const TM_COMMIT_XACT: u16 = 7;
const TM_ROLLBACK_XACT: u16 = 8;
const TM_SAVE_XACT: u16 = 9;

/// TM_COMMIT_XACT/TM_ROLLBACK_XACT flag: begin a new transaction once this one ends.
const F_BEGIN_XACT: u8 = 0x01;

/// A decoded transaction-manager request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TmRequest {
    Local(TransactionRequest),
    /// A request the simulator does not serve, by its MS-TDS name.
    Unsupported(&'static str),
}

/// Decodes a transaction-manager request. The isolation level and transaction names are read
/// and ignored: the model has one isolation behaviour and no named transactions.
pub fn decode_tm_request(payload: &[u8]) -> DecodeResult<TmRequest> {
    let mut r = Reader::new(payload);
    skip_all_headers(&mut r)?;
    let ty = r.u16("TM RequestType")?;
    Ok(match ty {
        TM_BEGIN_XACT => {
            r.u8("TM_BEGIN_XACT isolation level")?;
            r.b_varchar("TM_BEGIN_XACT transaction name")?;
            TmRequest::Local(TransactionRequest::Begin)
        }
        TM_COMMIT_XACT | TM_ROLLBACK_XACT => {
            r.b_varchar("TM transaction name")?;
            let flags = r.u8("TM flags")?;
            let begin_next = flags & F_BEGIN_XACT != 0;
            if begin_next {
                r.u8("TM new transaction isolation level")?;
                r.b_varchar("TM new transaction name")?;
            }
            TmRequest::Local(if ty == TM_COMMIT_XACT {
                TransactionRequest::Commit { begin_next }
            } else {
                TransactionRequest::Rollback { begin_next }
            })
        }
        TM_GET_DTC_ADDRESS => TmRequest::Unsupported("TM_GET_DTC_ADDRESS"),
        TM_PROPAGATE_XACT => TmRequest::Unsupported("TM_PROPAGATE_XACT"),
        TM_PROMOTE_XACT => TmRequest::Unsupported("TM_PROMOTE_XACT"),
        TM_SAVE_XACT => TmRequest::Unsupported("TM_SAVE_XACT"),
        other => {
            return Err(DecodeError(format!(
                "transaction manager request type {other} is not defined"
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ALL_HEADERS with one transaction descriptor header, as drivers send it.
    fn all_headers(descriptor: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&22u32.to_le_bytes());
        v.extend_from_slice(&18u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&descriptor.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v
    }

    #[test]
    fn begin_commit_and_rollback_requests_decode_with_their_begin_next_flag() {
        let mut begin = all_headers(0);
        begin.extend_from_slice(&TM_BEGIN_XACT.to_le_bytes());
        begin.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode_tm_request(&begin).unwrap(),
            TmRequest::Local(TransactionRequest::Begin)
        );
        let mut commit = all_headers(7);
        commit.extend_from_slice(&TM_COMMIT_XACT.to_le_bytes());
        commit.extend_from_slice(&[0, F_BEGIN_XACT, 0, 0]);
        assert_eq!(
            decode_tm_request(&commit).unwrap(),
            TmRequest::Local(TransactionRequest::Commit { begin_next: true })
        );
        let mut rollback = all_headers(7);
        rollback.extend_from_slice(&TM_ROLLBACK_XACT.to_le_bytes());
        rollback.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode_tm_request(&rollback).unwrap(),
            TmRequest::Local(TransactionRequest::Rollback { begin_next: false })
        );
    }

    #[test]
    fn dtc_address_request_decodes_as_unsupported() {
        let mut dtc = all_headers(0);
        dtc.extend_from_slice(&TM_GET_DTC_ADDRESS.to_le_bytes());
        dtc.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode_tm_request(&dtc).unwrap(),
            TmRequest::Unsupported("TM_GET_DTC_ADDRESS")
        );
    }
}
