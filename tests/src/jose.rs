//! Independent JOSE checks: jsonwebtoken (ring) for most algorithms, the
//! RustCrypto p521 crate for ES512, RustCrypto rsa and aws-lc HMAC to compute
//! expected signatures. None of it is josekit, which the signer uses.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::Value;

/// The fixture keys (`tests/fixtures/jwk/NAME`).
pub fn fixture_set(name: &str) -> Value {
    let path = crate::artifacts::workspace_root()
        .join("tests")
        .join("fixtures")
        .join("jwk")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture JSON")
}

/// Key `kid` of a JWK set.
pub fn key_of(set: &Value, kid: &str) -> Value {
    set["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid)
        .cloned()
        .unwrap_or_else(|| panic!("no key {kid}"))
}

fn b64(member: &Value) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(
            member
                .as_str()
                .expect("base64 member")
                .trim_end_matches('='),
        )
        .expect("base64url")
}

/// The three parts of a compact JWS, decoded header and payload as text.
pub struct Parts {
    /// Protected header JSON text.
    pub header: String,
    /// Payload JSON text.
    pub payload: String,
    /// `header.payload` as sent.
    pub signing_input: String,
    /// Raw signature.
    pub signature: Vec<u8>,
}

/// Splits a compact JWS.
pub fn split(token: &str) -> Parts {
    let pieces: Vec<&str> = token.split('.').collect();
    assert_eq!(pieces.len(), 3, "not a compact JWS: {token}");
    let decode =
        |p: &str| String::from_utf8(URL_SAFE_NO_PAD.decode(p).expect("base64url")).expect("utf-8");
    Parts {
        header: decode(pieces[0]),
        payload: decode(pieces[1]),
        signing_input: format!("{}.{}", pieces[0], pieces[1]),
        signature: URL_SAFE_NO_PAD
            .decode(pieces[2])
            .expect("base64url signature"),
    }
}

/// Verifies a compact JWS with the public part of `jwk`; panics on failure.
pub fn verify(token: &str, jwk: &Value) {
    let parts = split(token);
    let header: Value = serde_json::from_str(&parts.header).expect("header JSON");
    let alg = header["alg"].as_str().expect("alg");
    if alg == "ES512" {
        verify_es512(&parts, jwk);
        return;
    }
    let algorithm: jsonwebtoken::Algorithm = alg.parse().expect("known alg");
    let key = if alg.starts_with("HS") {
        jsonwebtoken::DecodingKey::from_secret(&b64(&jwk["k"]))
    } else {
        let mut public = jwk.clone();
        if let Some(map) = public.as_object_mut() {
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                map.remove(private);
            }
            // jsonwebtoken only accepts its own alg names in JWKs.
            map.remove("alg");
        }
        let parsed: jsonwebtoken::jwk::Jwk =
            serde_json::from_value(public).expect("jsonwebtoken JWK");
        jsonwebtoken::DecodingKey::from_jwk(&parsed).expect("decoding key")
    };
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("{alg} token does not verify: {e}"));
}

fn verify_es512(parts: &Parts, jwk: &Value) {
    use p521::ecdsa::{signature::Verifier, Signature, VerifyingKey};
    let x = b64(&jwk["x"]);
    let y = b64(&jwk["y"]);
    let mut sec1 = vec![4u8];
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    let key = VerifyingKey::from_sec1_bytes(&sec1).expect("P-521 public key");
    let signature = Signature::from_slice(&parts.signature).expect("r||s signature");
    key.verify(parts.signing_input.as_bytes(), &signature)
        .expect("ES512 token verifies");
}

/// HMAC-SHA-256 of `input` under the `k` of `jwk`, base64url (aws-lc).
pub fn hs256(input: &str, jwk: &Value) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &b64(&jwk["k"]));
    URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref())
}

/// RSASSA-PKCS1-v1_5 SHA-256 of `input` with the private `jwk`, base64url
/// (RustCrypto rsa).
pub fn rs256(input: &str, jwk: &Value) -> String {
    use rsa::{
        pkcs1v15::SigningKey,
        signature::{SignatureEncoding, Signer},
        BigUint, RsaPrivateKey,
    };
    let int = |name: &str| BigUint::from_bytes_be(&b64(&jwk[name]));
    let key =
        RsaPrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")])
            .expect("RSA key");
    let signer = SigningKey::<rsa::sha2::Sha256>::new(key);
    URL_SAFE_NO_PAD.encode(signer.sign(input.as_bytes()).to_bytes())
}

/// `b64url(text)`.
pub fn b64url(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

/// A compact JWS of `claims` under the private `jwk`, made independently of
/// Sepia: jsonwebtoken (ring) signs, and only ES512, which it lacks, is
/// signed with RustCrypto p521. aws-lc turns JWK members into the DER that
/// jsonwebtoken reads. The header is `{"typ":"JWT","alg","kid"}`.
pub fn mint(alg: &str, kid: &str, jwk: &Value, claims: &Value) -> String {
    if alg == "ES512" {
        return mint_es512(kid, jwk, claims);
    }
    let algorithm: jsonwebtoken::Algorithm = alg.parse().expect("known alg");
    let key = encoding_key(alg, jwk);
    let mut header = jsonwebtoken::Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &key).unwrap_or_else(|e| panic!("{alg}: {e}"))
}

fn encoding_key(alg: &str, jwk: &Value) -> jsonwebtoken::EncodingKey {
    use aws_lc_rs::signature as sig;
    if alg.starts_with("HS") {
        return jsonwebtoken::EncodingKey::from_secret(&b64(&jwk["k"]));
    }
    if alg.starts_with("RS") || alg.starts_with("PS") {
        use rsa::{pkcs1::EncodeRsaPrivateKey, BigUint, RsaPrivateKey};
        let int = |name: &str| BigUint::from_bytes_be(&b64(&jwk[name]));
        let key =
            RsaPrivateKey::from_components(int("n"), int("e"), int("d"), vec![int("p"), int("q")])
                .expect("RSA key");
        let der = key.to_pkcs1_der().expect("PKCS#1 DER");
        return jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes());
    }
    if alg == "EdDSA" {
        let pair = sig::Ed25519KeyPair::from_seed_and_public_key(&b64(&jwk["d"]), &b64(&jwk["x"]))
            .expect("Ed25519 key");
        let der = pair.to_pkcs8v1().expect("PKCS#8");
        return jsonwebtoken::EncodingKey::from_ed_der(der.as_ref());
    }
    let curve = if alg == "ES256" {
        &sig::ECDSA_P256_SHA256_FIXED_SIGNING
    } else {
        &sig::ECDSA_P384_SHA384_FIXED_SIGNING
    };
    let mut point = vec![4u8];
    point.extend_from_slice(&b64(&jwk["x"]));
    point.extend_from_slice(&b64(&jwk["y"]));
    let pair = sig::EcdsaKeyPair::from_private_key_and_public_key(curve, &b64(&jwk["d"]), &point)
        .expect("EC key");
    let der = pair.to_pkcs8v1().expect("PKCS#8");
    jsonwebtoken::EncodingKey::from_ec_der(der.as_ref())
}

fn mint_es512(kid: &str, jwk: &Value, claims: &Value) -> String {
    use p521::ecdsa::{signature::Signer, Signature, SigningKey};
    let key = SigningKey::from_slice(&b64(&jwk["d"])).expect("P-521 key");
    let header = serde_json::json!({"typ": "JWT", "alg": "ES512", "kid": kid});
    let input = format!(
        "{}.{}",
        b64url(&header.to_string()),
        b64url(&claims.to_string())
    );
    let signature: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// The public half of a private JWK set: every private member removed.
pub fn public_set(set: &Value) -> Value {
    let mut public = set.clone();
    for key in public["keys"].as_array_mut().expect("keys") {
        if let Some(map) = key.as_object_mut() {
            if map.get("kty").and_then(Value::as_str) == Some("oct") {
                continue;
            }
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
                map.remove(private);
            }
        }
    }
    public
}
