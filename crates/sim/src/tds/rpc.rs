//! RPC requests (MS-TDS 2.2.6.6): ALL_HEADERS, the procedure by id or name, option flags and
//! parameters. `sp_executesql` (id 10 or by name) becomes `RpcRequest::ExecuteSql`.

use super::decode::{read_type_info, read_value};
use super::wire::{DecodeError, DecodeResult, Reader};
use crate::backend::{RpcParam, RpcRequest, Value};

/// Procedure ids a client may send instead of a name (MS-TDS 2.2.6.6).
const PROC_NAMES: [&str; 15] = [
    "sp_cursor",
    "sp_cursoropen",
    "sp_cursorprepare",
    "sp_cursorexecute",
    "sp_cursorprepexec",
    "sp_cursorunprepare",
    "sp_cursorfetch",
    "sp_cursoroption",
    "sp_cursorclose",
    "sp_executesql",
    "sp_prepare",
    "sp_execute",
    "sp_prepexec",
    "sp_prepexecrpc",
    "sp_unprepare",
];

/// Parameter status: passed by reference (an OUTPUT parameter).
const STATUS_BYREF: u8 = 0x01;

/// Skips ALL_HEADERS (mandatory from TDS 7.2): its first DWORD is its own total length.
pub fn skip_all_headers(r: &mut Reader<'_>) -> DecodeResult<()> {
    let total = r.u32("ALL_HEADERS TotalLength")? as usize;
    if total < 4 {
        return Err(DecodeError(format!(
            "ALL_HEADERS TotalLength {total} is below 4"
        )));
    }
    r.skip(total - 4, "ALL_HEADERS")
}

/// Decodes a SQL batch's text.
pub fn decode_batch(payload: &[u8]) -> DecodeResult<String> {
    let mut r = Reader::new(payload);
    skip_all_headers(&mut r)?;
    let rest = r.remaining();
    let bytes = r.bytes(rest, "SQL batch text")?;
    super::wire::utf16_to_string(bytes, "SQL batch text")
}

fn is_executesql(name: &str) -> bool {
    let base = name.rsplit('.').next().unwrap_or(name);
    base.trim_matches(|c| c == '[' || c == ']')
        .eq_ignore_ascii_case("sp_executesql")
}

/// An RPC request and the names of its parameters in wire order (including `@stmt` and
/// `@params` of `sp_executesql`): a RETURNVALUE names its parameter by that ordinal.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedRpc {
    pub request: RpcRequest,
    pub wire_names: Vec<String>,
}

/// Decodes an RPC request.
pub fn decode_rpc(payload: &[u8]) -> DecodeResult<DecodedRpc> {
    let mut r = Reader::new(payload);
    skip_all_headers(&mut r)?;
    let name_len = r.u16("RPC NameLenProcID")?;
    let name = if name_len == 0xFFFF {
        let id = r.u16("RPC ProcID")?;
        PROC_NAMES
            .get((id as usize).wrapping_sub(1))
            .map(|s| s.to_string())
            .ok_or_else(|| DecodeError(format!("RPC ProcID {id} is not a known procedure")))?
    } else {
        r.utf16(name_len as usize, "RPC ProcName")?
    };
    let _flags = r.u16("RPC OptionFlags")?;
    let mut params = Vec::new();
    while r.remaining() > 0 {
        let what = format!("RPC parameter {}", params.len() + 1);
        let first = r.u8(&what)?;
        // BatchFlag/NoExecFlag separate several RPCs in one message; a client without MARS
        // batching (tiberius, mssql-tds) never sends them.
        if first == 0x80 || first == 0xFF || first == 0xFE {
            return Err(DecodeError(
                "several RPC requests in one message are not supported".into(),
            ));
        }
        let param_name = r.utf16(first as usize, &what)?;
        let status = r.u8(&what)?;
        let ty = read_type_info(&mut r, &what)?;
        let value = read_value(&mut r, ty, &what)?;
        params.push(RpcParam {
            name: param_name,
            value,
            output: status & STATUS_BYREF != 0,
        });
    }
    let wire_names = params.iter().map(|p| p.name.clone()).collect();
    if !is_executesql(&name) {
        return Ok(DecodedRpc {
            request: RpcRequest::Procedure { name, params },
            wire_names,
        });
    }
    let mut params = params.into_iter();
    let statement = match params.next() {
        Some(RpcParam {
            value: Value::NVarChar(s),
            ..
        }) => s,
        _ => {
            return Err(DecodeError(
                "sp_executesql: the first parameter (@stmt) must be NVARCHAR text".into(),
            ));
        }
    };
    // The second parameter is the declaration list (@params), needed only by a server that
    // compiles the statement; the values carry their own names.
    let rest: Vec<RpcParam> = params.collect();
    let params = match rest.first() {
        Some(p)
            if p.name
                .trim_start_matches('@')
                .eq_ignore_ascii_case("params")
                || p.name.is_empty() =>
        {
            rest.into_iter().skip(1).collect()
        }
        _ => rest,
    };
    Ok(DecodedRpc {
        request: RpcRequest::ExecuteSql { statement, params },
        wire_names,
    })
}
