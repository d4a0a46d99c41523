//! The claims of an access token, read without trusting them: extpy cannot check the
//! signature (that is Exchange's job) and does not need to; it reads what the identity
//! provider says it granted, to name a missing permission before Exchange refuses.

use base64::Engine;
use serde::{Deserialize, Serialize};

/// What an access token says about itself (unverified).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    /// The tenant that issued it (`tid`).
    pub tenant: Option<String>,
    /// The application it was issued to (`appid`, or `azp` in v2 tokens).
    pub app_id: Option<String>,
    /// The application's display name, when the token carries it.
    pub app_name: Option<String>,
    /// The audience (`aud`).
    pub audience: Vec<String>,
    /// Application permissions (`roles`): OAuth Service.
    pub roles: Vec<String>,
    /// Delegated permissions (`scp`, space-separated): OAuth User.
    pub scopes: Vec<String>,
    /// The signed-in user (`upn`, `preferred_username` or `unique_name`), for OAuth User.
    pub user: Option<String>,
    /// Issued at (Unix seconds).
    pub issued_at: Option<i64>,
    /// Expires at (Unix seconds).
    pub expires_at: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawClaims {
    tid: Option<String>,
    appid: Option<String>,
    azp: Option<String>,
    app_displayname: Option<String>,
    aud: Option<OneOrMany>,
    #[serde(default)]
    roles: Vec<String>,
    scp: Option<String>,
    upn: Option<String>,
    preferred_username: Option<String>,
    unique_name: Option<String>,
    iat: Option<i64>,
    exp: Option<i64>,
}

/// Why a token's claims could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClaimsError {
    /// Not three dot-separated parts.
    #[error("the access token is not a JWT (it has {0} parts, not 3)")]
    NotJwt(usize),
    /// The middle part is not base64url.
    #[error("the access token's claims are not base64url")]
    Base64,
    /// The middle part is not a JSON object of claims.
    #[error("the access token's claims are not JSON: {0}")]
    Json(String),
}

/// Reads the claims of `token` without verifying its signature.
pub(crate) fn decode(token: &str) -> Result<Claims, ClaimsError> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return Err(ClaimsError::NotJwt(parts.len()));
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .map_err(|_| ClaimsError::Base64)?;
    let raw: RawClaims =
        serde_json::from_slice(&bytes).map_err(|e| ClaimsError::Json(e.to_string()))?;
    Ok(Claims {
        tenant: raw.tid,
        app_id: raw.appid.or(raw.azp),
        app_name: raw.app_displayname,
        audience: match raw.aud {
            None => Vec::new(),
            Some(OneOrMany::One(a)) => vec![a],
            Some(OneOrMany::Many(a)) => a,
        },
        roles: raw.roles,
        scopes: raw
            .scp
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect(),
        user: raw.upn.or(raw.preferred_username).or(raw.unique_name),
        issued_at: raw.iat,
        expires_at: raw.exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.c2ln",
            b(r#"{"alg":"RS256","typ":"JWT"}"#),
            b(payload)
        )
    }

    #[test]
    fn reads_app_and_user_claims() {
        let c = decode(&jwt(
            r#"{"tid":"t","appid":"a","aud":"https://outlook.office365.com","roles":["IMAP.AccessAsApp"],"iat":10,"exp":20}"#,
        ))
        .unwrap();
        assert_eq!(c.tenant.as_deref(), Some("t"));
        assert_eq!(c.app_id.as_deref(), Some("a"));
        assert_eq!(c.roles, vec!["IMAP.AccessAsApp"]);
        assert_eq!(c.audience, vec!["https://outlook.office365.com"]);
        assert_eq!((c.issued_at, c.expires_at), (Some(10), Some(20)));
        let c = decode(&jwt(
            r#"{"azp":"b","aud":["x","y"],"scp":"IMAP.AccessAsUser.All SMTP.Send","upn":"u@x.example"}"#,
        ))
        .unwrap();
        assert_eq!(c.app_id.as_deref(), Some("b"));
        assert_eq!(c.scopes, vec!["IMAP.AccessAsUser.All", "SMTP.Send"]);
        assert_eq!(c.user.as_deref(), Some("u@x.example"));
        assert_eq!(c.audience.len(), 2);
    }

    #[test]
    fn opaque_and_broken_tokens_are_named() {
        assert_eq!(decode("opaque"), Err(ClaimsError::NotJwt(1)));
        assert_eq!(decode("a.!!!.c"), Err(ClaimsError::Base64));
        assert!(matches!(decode(&jwt("[1,2]")), Err(ClaimsError::Json(_))));
    }
}
