//! The JWS algorithms, which key each needs, the signer for a private key
//! that fits and the verifier for a public one.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use josekit::{
    jwk::Jwk,
    jws::{self, JwsSigner},
};

/// A JWS algorithm Sepia signs and verifies with (krakend-jose's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC with SHA-2.
    Hs256,
    /// HMAC with SHA-384.
    Hs384,
    /// HMAC with SHA-512.
    Hs512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256.
    Es256,
    /// ECDSA on P-384.
    Es384,
    /// ECDSA on P-521.
    Es512,
    /// Ed25519 (or Ed448).
    EdDsa,
}

const ALL: &[(&str, Algorithm)] = &[
    ("HS256", Algorithm::Hs256),
    ("HS384", Algorithm::Hs384),
    ("HS512", Algorithm::Hs512),
    ("RS256", Algorithm::Rs256),
    ("RS384", Algorithm::Rs384),
    ("RS512", Algorithm::Rs512),
    ("PS256", Algorithm::Ps256),
    ("PS384", Algorithm::Ps384),
    ("PS512", Algorithm::Ps512),
    ("ES256", Algorithm::Es256),
    ("ES384", Algorithm::Es384),
    ("ES512", Algorithm::Es512),
    ("EdDSA", Algorithm::EdDsa),
];

/// Why a key cannot serve an algorithm. Never contains key material.
pub type KeyProblem = String;

fn member<'a>(jwk: &'a Jwk, name: &str) -> Option<&'a str> {
    jwk.parameter(name).and_then(|v| v.as_str())
}

fn decoded(jwk: &Jwk, name: &str) -> Option<Vec<u8>> {
    member(jwk, name).and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok())
}

impl Algorithm {
    /// Parses a configured `alg`; the error lists what is supported.
    pub fn parse(name: &str) -> Result<Self, String> {
        if name.eq_ignore_ascii_case("none") {
            return Err(
                "alg \"none\" would send unsigned tokens: choose a signing algorithm".into(),
            );
        }
        ALL.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .ok_or_else(|| {
                format!(
                    "alg \"{name}\" is not supported: use one of {}",
                    ALL.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                )
            })
    }

    /// The name in a JWS header.
    pub fn name(self) -> &'static str {
        ALL.iter()
            .find(|(_, a)| *a == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Whether the key has a public half (everything but HMAC).
    pub fn is_asymmetric(self) -> bool {
        !matches!(self, Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512)
    }

    /// Whether signing is heavy enough to keep off the gateway's I/O
    /// threads: every asymmetric algorithm (RSA takes about a millisecond).
    pub fn is_expensive(self) -> bool {
        self.is_asymmetric()
    }

    /// Checks that `jwk` is a private key of the right type and size for
    /// this algorithm, and is meant for signing.
    pub fn check_key(self, jwk: &Jwk) -> Result<(), KeyProblem> {
        self.check_key_shape(jwk)?;
        let private_member = if self.is_asymmetric() { "d" } else { "k" };
        if jwk.parameter(private_member).is_none() {
            return Err(format!(
                "it is a public key (no \"{private_member}\" member): signing needs the private key"
            ));
        }
        Ok(())
    }

    /// Checks that `jwk` is a key of the right type and size for this
    /// algorithm, meant for signatures: what verifying needs.
    pub fn check_verification_key(self, jwk: &Jwk) -> Result<(), KeyProblem> {
        self.check_key_shape(jwk)
    }

    fn check_key_shape(self, jwk: &Jwk) -> Result<(), KeyProblem> {
        let kty = jwk.key_type();
        let want_kty = match self {
            Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => "oct",
            Algorithm::Rs256
            | Algorithm::Rs384
            | Algorithm::Rs512
            | Algorithm::Ps256
            | Algorithm::Ps384
            | Algorithm::Ps512 => "RSA",
            Algorithm::Es256 | Algorithm::Es384 | Algorithm::Es512 => "EC",
            Algorithm::EdDsa => "OKP",
        };
        if kty != want_kty {
            return Err(format!(
                "its key type is {kty}, but {} needs key type {want_kty}",
                self.name()
            ));
        }
        match self {
            Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
                let needed = match self {
                    Algorithm::Hs256 => 32,
                    Algorithm::Hs384 => 48,
                    _ => 64,
                };
                // Every byte of a secret counts, zeros included (one random
                // secret in 256 starts with a zero byte).
                let len = decoded(jwk, "k")
                    .ok_or("its \"k\" member is missing or not base64url")?
                    .len();
                if len < needed {
                    return Err(format!(
                        "it is {len} bytes long, but {} needs at least {needed} bytes",
                        self.name()
                    ));
                }
            }
            Algorithm::Es256 | Algorithm::Es384 | Algorithm::Es512 => {
                let want = match self {
                    Algorithm::Es256 => "P-256",
                    Algorithm::Es384 => "P-384",
                    _ => "P-521",
                };
                let crv = jwk.curve().unwrap_or("(none)");
                if crv != want {
                    return Err(format!(
                        "it is on curve {crv}, but {} needs {want}",
                        self.name()
                    ));
                }
            }
            Algorithm::EdDsa => {
                let crv = jwk.curve().unwrap_or("(none)");
                if crv != "Ed25519" && crv != "Ed448" {
                    return Err(format!(
                        "it is on curve {crv}, but EdDSA needs Ed25519 or Ed448"
                    ));
                }
            }
            _ => {
                let modulus = decoded(jwk, "n").ok_or("its \"n\" member is not base64url")?;
                // Leading zero bytes do not count towards a modulus' size.
                let leading = modulus.iter().take_while(|b| **b == 0).count();
                let bits = (modulus.len() - leading) * 8;
                if bits < 2048 {
                    return Err(format!(
                        "it is a {bits}-bit RSA key: at least 2048 bits are needed"
                    ));
                }
            }
        }
        if let Some(alg) = jwk.algorithm() {
            if alg != self.name() {
                return Err(format!(
                    "it is marked for {alg} (its \"alg\" member), not {}",
                    self.name()
                ));
            }
        }
        if let Some(key_use) = jwk.key_use() {
            if key_use != "sig" {
                return Err(format!(
                    "it is marked \"use\": \"{key_use}\", not for signatures"
                ));
            }
        }
        Ok(())
    }

    /// The signer for a key that passed [`Algorithm::check_key`]. HMAC goes
    /// through aws-lc with the key prepared once: josekit's HMAC sets up an
    /// OpenSSL 3 context on every call, which took most of the time of an
    /// HS256 endpoint. The other algorithms sign with josekit.
    pub fn signer(self, jwk: &Jwk) -> Result<Signer, KeyProblem> {
        let hmac = match self {
            Algorithm::Hs256 => Some(aws_lc_rs::hmac::HMAC_SHA256),
            Algorithm::Hs384 => Some(aws_lc_rs::hmac::HMAC_SHA384),
            Algorithm::Hs512 => Some(aws_lc_rs::hmac::HMAC_SHA512),
            _ => None,
        };
        if let Some(hmac) = hmac {
            let secret = member(jwk, "k")
                .and_then(|k| URL_SAFE_NO_PAD.decode(k.trim_end_matches('=')).ok())
                .ok_or("its \"k\" member is not base64url")?;
            return Ok(Signer::Hmac(Box::new(aws_lc_rs::hmac::Key::new(
                hmac, &secret,
            ))));
        }
        self.josekit_signer(jwk).map(Signer::Josekit)
    }

    fn josekit_signer(self, jwk: &Jwk) -> Result<Box<dyn JwsSigner>, KeyProblem> {
        let result: Result<Box<dyn JwsSigner>, josekit::JoseError> = match self {
            Algorithm::Hs256 => jws::HS256.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::Hs384 => jws::HS384.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::Hs512 => jws::HS512.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::Rs256 => jws::RS256.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::Rs384 => jws::RS384.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::Rs512 => jws::RS512.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::Ps256 => jws::PS256.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::Ps384 => jws::PS384.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::Ps512 => jws::PS512.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::Es256 => jws::ES256.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::Es384 => jws::ES384.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::Es512 => jws::ES512.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
            Algorithm::EdDsa => jws::EdDSA.signer_from_jwk(jwk).map(|s| Box::new(s) as _),
        };
        // josekit's messages name parameters, never their values.
        result.map_err(|e| format!("the key is not usable for {}: {e}", self.name()))
    }
}

/// Makes signatures with one key.
pub enum Signer {
    /// HMAC, through aws-lc (boxed: the prepared key is over a kilobyte).
    Hmac(Box<aws_lc_rs::hmac::Key>),
    /// Everything else, through josekit.
    Josekit(Box<dyn JwsSigner>),
}

impl Signer {
    /// The raw JWS signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Signer::Hmac(key) => Ok(aws_lc_rs::hmac::sign(key, message).as_ref().to_vec()),
            Signer::Josekit(signer) => signer.sign(message).map_err(|e| e.to_string()),
        }
    }
}

/// Checks signatures with one key. Every algorithm goes through aws-lc with
/// the key parsed once, so a request pays for the signature check alone.
pub enum Verifier {
    /// HMAC (boxed: the prepared key is over a kilobyte).
    Hmac(Box<aws_lc_rs::hmac::Key>),
    /// RSA, ECDSA and Ed25519.
    Public(aws_lc_rs::signature::ParsedPublicKey),
}

impl Verifier {
    /// Whether `signature` is a valid signature of `message`; HMAC tags are
    /// compared in constant time.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::Hmac(key) => aws_lc_rs::hmac::verify(key, message, signature).is_ok(),
            Verifier::Public(key) => key.verify_sig(message, signature).is_ok(),
        }
    }
}

impl Algorithm {
    /// The verifier for a key that passed
    /// [`Algorithm::check_verification_key`]: the public members of an
    /// asymmetric key (a private JWK works too), the secret of an HMAC one.
    pub fn verifier(self, jwk: &Jwk) -> Result<Verifier, KeyProblem> {
        use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
        let need = |name: &str| {
            decoded(jwk, name)
                .ok_or_else(|| format!("its \"{name}\" member is missing or not base64url"))
        };
        let rejected = |e: aws_lc_rs::error::KeyRejected| {
            format!("the key is not usable for {}: {e}", self.name())
        };
        let hmac = match self {
            Algorithm::Hs256 => Some(aws_lc_rs::hmac::HMAC_SHA256),
            Algorithm::Hs384 => Some(aws_lc_rs::hmac::HMAC_SHA384),
            Algorithm::Hs512 => Some(aws_lc_rs::hmac::HMAC_SHA512),
            _ => None,
        };
        if let Some(hmac) = hmac {
            let secret = need("k")?;
            return Ok(Verifier::Hmac(Box::new(aws_lc_rs::hmac::Key::new(
                hmac, &secret,
            ))));
        }
        let rsa: Option<&'static sig::RsaParameters> = match self {
            Algorithm::Rs256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
            Algorithm::Rs384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
            Algorithm::Rs512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
            Algorithm::Ps256 => Some(&sig::RSA_PSS_2048_8192_SHA256),
            Algorithm::Ps384 => Some(&sig::RSA_PSS_2048_8192_SHA384),
            Algorithm::Ps512 => Some(&sig::RSA_PSS_2048_8192_SHA512),
            _ => None,
        };
        if let Some(params) = rsa {
            let (n, e) = (need("n")?, need("e")?);
            let key = RsaPublicKeyComponents {
                n: strip_zeros(&n),
                e: strip_zeros(&e),
            }
            .to_parsed_public_key(params)
            .map_err(rejected)?;
            return Ok(Verifier::Public(key));
        }
        let (algorithm, field): (&'static dyn sig::VerificationAlgorithm, usize) = match self {
            Algorithm::Es256 => (&sig::ECDSA_P256_SHA256_FIXED, 32),
            Algorithm::Es384 => (&sig::ECDSA_P384_SHA384_FIXED, 48),
            Algorithm::Es512 => (&sig::ECDSA_P521_SHA512_FIXED, 66),
            _ => {
                // go-jose, under krakend-jose, verifies EdDSA with Ed25519
                // keys only.
                if jwk.curve() != Some("Ed25519") {
                    return Err(
                        "EdDSA tokens are verified with Ed25519 keys only (as krakend-jose does)"
                            .into(),
                    );
                }
                let key = ParsedPublicKey::new(&sig::ED25519, need("x")?).map_err(rejected)?;
                return Ok(Verifier::Public(key));
            }
        };
        // An uncompressed point: 0x04, then x and y at the field's width.
        let (x, y) = (need("x")?, need("y")?);
        if x.len() > field || y.len() > field {
            return Err(format!(
                "its point does not fit the curve of {}",
                self.name()
            ));
        }
        let mut point = Vec::with_capacity(1 + 2 * field);
        point.push(4);
        point.resize(1 + field - x.len(), 0);
        point.extend_from_slice(&x);
        point.resize(1 + 2 * field - y.len(), 0);
        point.extend_from_slice(&y);
        let key = ParsedPublicKey::new(algorithm, point).map_err(rejected)?;
        Ok(Verifier::Public(key))
    }
}

/// A big-endian integer without its leading zero bytes.
fn strip_zeros(bytes: &[u8]) -> &[u8] {
    let leading = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[leading..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_none_is_refused() {
        for (name, alg) in ALL {
            assert_eq!(Algorithm::parse(name).unwrap(), *alg);
            assert_eq!(alg.name(), *name);
        }
        assert!(Algorithm::parse("none").unwrap_err().contains("unsigned"));
        assert!(Algorithm::parse("HS999")
            .unwrap_err()
            .contains("use one of HS256"));
    }

    fn oct(secret: &[u8]) -> Jwk {
        let mut jwk = Jwk::new("oct");
        jwk.set_parameter(
            "k",
            Some(serde_json::Value::String(URL_SAFE_NO_PAD.encode(secret))),
        )
        .unwrap();
        jwk
    }

    #[test]
    fn an_hmac_secret_counts_its_leading_zero_bytes() {
        // `sepia keygen` draws random bytes: one key in 256 starts with 0.
        let mut secret = [7u8; 32];
        secret[0] = 0;
        assert!(Algorithm::Hs256.check_key(&oct(&secret)).is_ok());
        let error = Algorithm::Hs256.check_key(&oct(&secret[1..])).unwrap_err();
        assert!(error.contains("31 bytes long"), "{error}");
    }

    fn key_pair(alg: Algorithm) -> (Jwk, Jwk) {
        fn both(pair: impl josekit::jwk::KeyPair) -> (Jwk, Jwk) {
            let strip = |mut jwk: Jwk| {
                jwk.set_parameter("alg", None).unwrap();
                jwk
            };
            (
                strip(pair.to_jwk_private_key()),
                strip(pair.to_jwk_public_key()),
            )
        }
        match alg {
            Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
                let jwk = oct(&[9u8; 64]);
                (jwk.clone(), jwk)
            }
            Algorithm::Rs256 | Algorithm::Rs384 | Algorithm::Rs512 => {
                both(jws::RS256.generate_key_pair(2048).unwrap())
            }
            Algorithm::Ps256 | Algorithm::Ps384 | Algorithm::Ps512 => {
                both(jws::PS256.generate_key_pair(2048).unwrap())
            }
            Algorithm::Es256 => both(jws::ES256.generate_key_pair().unwrap()),
            Algorithm::Es384 => both(jws::ES384.generate_key_pair().unwrap()),
            Algorithm::Es512 => both(jws::ES512.generate_key_pair().unwrap()),
            Algorithm::EdDsa => both(
                jws::EdDSA
                    .generate_key_pair(josekit::jwk::alg::ed::EdCurve::Ed25519)
                    .unwrap(),
            ),
        }
    }

    #[test]
    fn every_algorithm_verifies_its_own_signatures_and_nothing_else() {
        for (name, alg) in ALL {
            let (private, public) = key_pair(*alg);
            alg.check_key(&private).unwrap();
            alg.check_verification_key(&public).unwrap();
            let signature = alg
                .signer(&private)
                .unwrap()
                .sign(b"header.payload")
                .unwrap();
            let verifier = alg.verifier(&public).unwrap();
            assert!(verifier.verify(b"header.payload", &signature), "{name}");
            assert!(!verifier.verify(b"header.payloae", &signature), "{name}");
            let mut bent = signature.clone();
            bent[0] ^= 1;
            assert!(!verifier.verify(b"header.payload", &bent), "{name}");
        }
    }

    #[test]
    fn a_key_of_another_family_is_refused() {
        let (_, rsa_public) = key_pair(Algorithm::Rs256);
        let error = Algorithm::Hs256
            .check_verification_key(&rsa_public)
            .unwrap_err();
        assert!(error.contains("key type is RSA"), "{error}");
        let error = Algorithm::Rs256.check_key(&rsa_public).unwrap_err();
        assert!(error.contains("public key"), "{error}");
    }
}
