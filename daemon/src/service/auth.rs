//! The optional token. When one is configured, writes, rollback, profile
//! changes and reading secrets in clear need `authorization: Bearer <token>`.
//!
//! The token is never compared directly: each side is reduced to an HMAC
//! under a key drawn at start, and the tags are compared in constant time,
//! so neither the token's length nor its first differing byte shows in the
//! time a refusal takes.

use std::sync::Arc;

use ring::hmac;
use tonic::Request;

use crate::error::OpError;

/// The token check.
#[derive(Clone, Default)]
pub(crate) struct Auth {
    token: Option<Arc<Token>>,
}

/// The configured token, kept as its tag under a per-process key.
struct Token {
    key: hmac::Key,
    tag: hmac::Tag,
}

impl Token {
    fn new(token: &str) -> Self {
        let rng = ring::rand::SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .expect("the system random number generator works");
        let tag = hmac::sign(&key, token.as_bytes());
        Self { key, tag }
    }

    fn matches(&self, presented: &str) -> bool {
        hmac::verify(&self.key, presented.as_bytes(), self.tag.as_ref()).is_ok()
    }
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("token", &self.token.as_ref().map(|_| cfgd_settings::MASK))
            .finish()
    }
}

impl Auth {
    /// No token (everything allowed), or this token. An empty token never
    /// gets here: the daemon refuses to start with one
    /// ([`crate::Config::check_security`]).
    pub(crate) fn new(token: Option<String>) -> Self {
        Self {
            token: token.map(|t| Arc::new(Token::new(&t))),
        }
    }

    fn presented<T>(request: &Request<T>) -> Option<&str> {
        let header = request.metadata().get("authorization")?.to_str().ok()?;
        header.strip_prefix("Bearer ").map(str::trim)
    }

    fn valid<T>(&self, request: &Request<T>) -> bool {
        match &self.token {
            None => true,
            Some(token) => Self::presented(request).is_some_and(|p| token.matches(p)),
        }
    }

    /// Refuses `what` unless the request carries the token.
    ///
    /// # Errors
    /// [`OpError::Unauthenticated`], saying how to pass the token.
    pub(crate) fn check<T>(&self, request: &Request<T>, what: &str) -> Result<(), OpError> {
        if self.valid(request) {
            return Ok(());
        }
        let how = if Self::presented(request).is_some() {
            "the token given is not the daemon's"
        } else {
            "no token was given"
        };
        Err(OpError::Unauthenticated(format!(
            "cfgd requires a token to {what}: {how} (pass --token or set CFGD_TOKEN)"
        )))
    }

    /// Whether secrets may be sent in clear: only when `asked`, and then
    /// only to an authorised caller.
    ///
    /// # Errors
    /// [`OpError::Unauthenticated`] when asked without the token.
    pub(crate) fn may_reveal<T>(&self, request: &Request<T>, asked: bool) -> Result<bool, OpError> {
        if !asked {
            return Ok(false);
        }
        self.check(request, "show secrets in clear")?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(token: Option<&str>) -> Request<()> {
        let mut r = Request::new(());
        if let Some(t) = token {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        r
    }

    #[test]
    fn token_is_required_only_when_configured() {
        assert!(Auth::new(None).check(&req(None), "set").is_ok());
        let auth = Auth::new(Some("s3cret".into()));
        assert!(auth.check(&req(Some("s3cret")), "set").is_ok());
        assert_eq!(
            auth.check(&req(None), "set").unwrap_err().to_string(),
            "cfgd requires a token to set: no token was given (pass --token or set CFGD_TOKEN)"
        );
        assert!(
            auth.check(&req(Some("wrong")), "set")
                .unwrap_err()
                .to_string()
                .contains("not the daemon's")
        );
        assert!(!auth.may_reveal(&req(None), false).unwrap());
        assert!(auth.may_reveal(&req(None), true).is_err());
        assert!(auth.may_reveal(&req(Some("s3cret")), true).unwrap());
    }

    #[test]
    fn only_the_exact_token_matches_whatever_its_length() {
        let auth = Auth::new(Some("s3cret".into()));
        for wrong in ["", "s", "s3cre", "s3cret!", "S3cret", "s3cret s3cret"] {
            assert!(
                auth.check(&req(Some(wrong)), "set").is_err(),
                "{wrong:?} was taken"
            );
        }
        assert!(
            auth.check(&req(Some(" s3cret ")), "set").is_ok(),
            "trimmed as before"
        );
        let debug = format!("{auth:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
