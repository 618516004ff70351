//! Turning claims into a JWS exactly as krakend-jose (go-jose) writes it:
//! header `{"alg","kid","typ"}` and payload in Go's JSON encoding, base64url
//! without padding, compact or flattened JSON serialisation.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

use crate::key_set::SigningKey;

/// Signs `payload`, the claims already in Go's JSON encoding; `full` gives
/// the flattened JSON serialisation `{"payload","protected","signature"}` as
/// text.
pub fn sign(payload: &[u8], key: &SigningKey, full: bool) -> Result<String, String> {
    let payload_b64 = URL_SAFE_NO_PAD.encode(payload);
    let mut signing_input = String::with_capacity(key.header_b64.len() + payload_b64.len() + 100);
    signing_input.push_str(&key.header_b64);
    signing_input.push('.');
    signing_input.push_str(&payload_b64);
    let signature = key
        .signer
        .sign(signing_input.as_bytes())
        .map_err(|e| format!("signing failed: {e}"))?;
    let signature_b64 = URL_SAFE_NO_PAD.encode(signature);
    if full {
        // go-jose's field order: payload, protected, signature.
        return Ok(format!(
            r#"{{"payload":"{payload_b64}","protected":"{}","signature":"{signature_b64}"}}"#,
            key.header_b64
        ));
    }
    signing_input.push('.');
    signing_input.push_str(&signature_b64);
    Ok(signing_input)
}
