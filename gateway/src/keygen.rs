//! `sepia keygen`: a new private JWK set (and its public half) for the
//! signer, so the quick start needs no other tool.

use josekit::jwk::{
    alg::{
        ec::{EcCurve, EcKeyPair},
        ed::{EdCurve, EdKeyPair},
        rsa::RsaKeyPair,
    },
    Jwk, KeyPair,
};
use serde_json::{json, Value};

/// Why no key was made.
#[derive(Debug, thiserror::Error)]
pub enum KeygenError {
    /// An algorithm keygen does not know.
    #[error("cannot make a key for alg \"{0}\": use HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA")]
    UnknownAlg(String),
    /// The crypto library failed.
    #[error("key generation failed: {0}")]
    Crypto(String),
}

/// A generated key: the private set, and the public set for asymmetric keys.
pub struct GeneratedKey {
    /// `{"keys":[private JWK]}`.
    pub private_set: Value,
    /// `{"keys":[public JWK]}`, `None` for HMAC keys.
    pub public_set: Option<Value>,
}

fn pair(alg: &str) -> Result<Option<Box<dyn KeyPair>>, KeygenError> {
    let crypto = |e: josekit::JoseError| KeygenError::Crypto(e.to_string());
    Ok(Some(match alg {
        "HS256" | "HS384" | "HS512" => return Ok(None),
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
            let bits = if alg.ends_with("256") { 2048 } else { 3072 };
            Box::new(RsaKeyPair::generate(bits).map_err(crypto)?)
        }
        "ES256" => Box::new(EcKeyPair::generate(EcCurve::P256).map_err(crypto)?),
        "ES384" => Box::new(EcKeyPair::generate(EcCurve::P384).map_err(crypto)?),
        "ES512" => Box::new(EcKeyPair::generate(EcCurve::P521).map_err(crypto)?),
        "EdDSA" => Box::new(EdKeyPair::generate(EdCurve::Ed25519).map_err(crypto)?),
        other => return Err(KeygenError::UnknownAlg(other.to_owned())),
    }))
}

fn label(mut jwk: Jwk, alg: &str, kid: &str) -> Value {
    jwk.set_key_id(kid);
    jwk.set_algorithm(alg);
    jwk.set_key_use("sig");
    json!({ "keys": [Value::Object(jwk.as_ref().clone())] })
}

/// Makes a key for `alg` named `kid`.
pub fn generate(alg: &str, kid: &str) -> Result<GeneratedKey, KeygenError> {
    match pair(alg)? {
        None => {
            let bytes = match alg {
                "HS256" => 32,
                "HS384" => 48,
                _ => 64,
            };
            let key =
                Jwk::generate_oct_key(bytes).map_err(|e| KeygenError::Crypto(e.to_string()))?;
            Ok(GeneratedKey {
                private_set: label(key, alg, kid),
                public_set: None,
            })
        }
        Some(pair) => Ok(GeneratedKey {
            private_set: label(pair.to_jwk_key_pair(), alg, kid),
            public_set: Some(label(pair.to_jwk_public_key(), alg, kid)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_members_their_algorithm_needs() {
        let hs = generate("HS384", "h").unwrap();
        assert!(hs.public_set.is_none());
        let k = &hs.private_set["keys"][0];
        assert_eq!(k["kty"], "oct");
        assert_eq!(k["kid"], "h");
        assert_eq!(k["alg"], "HS384");
        let es = generate("ES512", "e").unwrap();
        assert_eq!(es.private_set["keys"][0]["crv"], "P-521");
        assert!(es.private_set["keys"][0]["d"].is_string());
        assert!(es.public_set.as_ref().unwrap()["keys"][0]["d"].is_null());
        let ed = generate("EdDSA", "d").unwrap();
        assert_eq!(ed.private_set["keys"][0]["crv"], "Ed25519");
        assert!(matches!(
            generate("XX1", "k"),
            Err(KeygenError::UnknownAlg(_))
        ));
    }
}
