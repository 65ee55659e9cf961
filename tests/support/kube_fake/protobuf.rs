//! Decoding of the few protobuf bodies kubectl sends: typed kubectl commands (`kubectl create
//! secret|configmap|namespace`) POST built-in objects as `application/vnd.kubernetes.protobuf`.
//! Only Secret, ConfigMap and Namespace are decoded (metadata name, generateName, namespace,
//! labels, annotations, and the kind's data fields); answers are always JSON, which kubectl
//! accepts.

use serde_json::{Map, Value, json};

/// One protobuf field: number and value (varint or length-delimited bytes).
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("varint too long".into())
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (number, wire) = (key >> 3, key & 7);
        let field = match wire {
            0 => Field::Varint(varint(buf, &mut pos)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|_| "length")?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                let bytes = &buf[pos..end];
                pos = end;
                Field::Bytes(bytes)
            }
            1 => {
                pos += 8;
                Field::Varint(0)
            }
            5 => {
                pos += 4;
                Field::Varint(0)
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((number, field));
    }
    Ok(out)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A map entry (key = field 1, value = field 2).
fn entry(bytes: &[u8]) -> Result<(String, Vec<u8>), String> {
    let mut key = String::new();
    let mut value = Vec::new();
    for (n, f) in fields(bytes)? {
        match (n, f) {
            (1, Field::Bytes(b)) => key = text(b),
            (2, Field::Bytes(b)) => value = b.to_vec(),
            _ => {}
        }
    }
    Ok((key, value))
}

fn object_meta(bytes: &[u8]) -> Result<Value, String> {
    let mut meta = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    for (n, f) in fields(bytes)? {
        if let Field::Bytes(b) = f {
            match n {
                1 => {
                    meta.insert("name".into(), json!(text(b)));
                }
                2 => {
                    meta.insert("generateName".into(), json!(text(b)));
                }
                3 => {
                    meta.insert("namespace".into(), json!(text(b)));
                }
                11 => {
                    let (k, v) = entry(b)?;
                    labels.insert(k, json!(text(&v)));
                }
                12 => {
                    let (k, v) = entry(b)?;
                    annotations.insert(k, json!(text(&v)));
                }
                _ => {}
            }
        }
    }
    if !labels.is_empty() {
        meta.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        meta.insert("annotations".into(), Value::Object(annotations));
    }
    Ok(Value::Object(meta))
}

/// Standard base64 with padding, as Kubernetes encodes Secret data.
fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Decodes a `k8s\0`-prefixed protobuf envelope into the JSON object it carries.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let inner = body
        .strip_prefix(b"k8s\0")
        .ok_or("a protobuf body must start with the k8s magic number")?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    for (n, f) in fields(inner)? {
        match (n, f) {
            (1, Field::Bytes(type_meta)) => {
                for (m, g) in fields(type_meta)? {
                    match (m, g) {
                        (1, Field::Bytes(b)) => api_version = text(b),
                        (2, Field::Bytes(b)) => kind = text(b),
                        _ => {}
                    }
                }
            }
            (2, Field::Bytes(b)) => raw = b,
            _ => {}
        }
    }
    let mut obj = json!({"apiVersion": api_version, "kind": kind, "metadata": {}});
    let mut data = Map::new();
    let mut other = Map::new();
    for (n, f) in fields(raw)? {
        match (kind.as_str(), n, f) {
            (_, 1, Field::Bytes(b)) => obj["metadata"] = object_meta(b)?,
            ("Secret", 2, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                data.insert(k, json!(base64(&v)));
            }
            ("Secret", 3, Field::Bytes(b)) => obj["type"] = json!(text(b)),
            ("Secret", 4, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                other.insert(k, json!(text(&v)));
            }
            ("Secret", 5, Field::Varint(v)) | ("ConfigMap", 4, Field::Varint(v)) => {
                obj["immutable"] = json!(v != 0)
            }
            ("ConfigMap", 2, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                data.insert(k, json!(text(&v)));
            }
            ("ConfigMap", 3, Field::Bytes(b)) => {
                let (k, v) = entry(b)?;
                other.insert(k, json!(base64(&v)));
            }
            ("Secret" | "ConfigMap" | "Namespace", _, _) => {}
            (k, _, _) => {
                return Err(format!(
                    "protobuf bodies of kind {k} are not supported by this fake; send JSON"
                ));
            }
        }
    }
    if !data.is_empty() {
        obj["data"] = Value::Object(data);
    }
    if !other.is_empty() {
        let key = if kind == "Secret" {
            "stringData"
        } else {
            "binaryData"
        };
        obj[key] = Value::Object(other);
    }
    Ok(obj)
}
