//! Token requests to Microsoft's identity platform (v2.0 endpoint) through the one HTTP
//! client, and their answers read as typed documents.

use serde::Deserialize;
use url::Url;

use crate::mechanism::net::{Client, FormAnswer, NetError};
use crate::model::mail::Api;

/// The scope of a request for `api`: its resource with whatever permissions were
/// consented (`https://graph.microsoft.com/.default`, `https://outlook.office365.com/.default`).
pub(crate) fn scope(api: Api) -> String {
    format!("{}/.default", api.audience())
}

/// A secret read from the environment: never shown, never serialized.
#[derive(Clone)]
pub(crate) struct Secret(String);

impl Secret {
    /// The value of `var`, if set and not empty.
    pub(crate) fn from_env(var: &str) -> Option<Self> {
        std::env::var(var).ok().filter(|v| !v.is_empty()).map(Self)
    }

    /// The value, for the request body only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hidden>")
    }
}

/// How the token is asked for.
#[derive(Debug, Clone)]
pub(crate) enum Grant {
    /// OAuth Service: the application with its secret.
    ClientCredentials {
        /// The secret.
        secret: Secret,
    },
    /// OAuth User: the resource-owner password grant.
    Password {
        /// The account.
        username: String,
        /// Its password.
        password: Secret,
        /// The client secret, when the incoming server has one (a confidential client).
        secret: Option<Secret>,
    },
}

impl Grant {
    /// The grant's name in OAuth.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Grant::ClientCredentials { .. } => "client_credentials",
            Grant::Password { .. } => "password",
        }
    }
}

/// `<authority>/<tenant>/oauth2/v2.0/token`.
pub(crate) fn token_url(authority: &Url, tenant: &str) -> Result<Url, url::ParseError> {
    let base = authority.as_str().trim_end_matches('/');
    Url::parse(&format!("{base}/{tenant}/oauth2/v2.0/token"))
}

/// Asks for a token.
pub(crate) fn request(
    client: &Client,
    url: &Url,
    client_id: &str,
    grant: &Grant,
    scope: &str,
) -> Result<FormAnswer, NetError> {
    let mut fields: Vec<(&str, &str)> = vec![
        ("client_id", client_id),
        ("scope", scope),
        ("grant_type", grant.name()),
    ];
    match grant {
        Grant::ClientCredentials { secret } => fields.push(("client_secret", secret.expose())),
        Grant::Password {
            username,
            password,
            secret,
        } => {
            fields.push(("username", username));
            fields.push(("password", password.expose()));
            if let Some(s) = secret {
                fields.push(("client_secret", s.expose()));
            }
        }
    }
    client.post_form(url, &fields)
}

/// A successful answer.
#[derive(Deserialize)]
pub(crate) struct Issued {
    /// The token (a secret).
    pub access_token: String,
}

/// An OAuth error answer, as Microsoft gives it.
#[derive(Debug, Deserialize)]
pub(crate) struct Refusal {
    /// `invalid_client`, `invalid_grant`, …
    pub error: String,
    /// `AADSTS…: words\r\nTrace ID: …`.
    #[serde(default)]
    pub error_description: String,
    /// The AADSTS codes.
    #[serde(default)]
    pub error_codes: Vec<u64>,
    /// For Microsoft support.
    pub correlation_id: Option<String>,
    /// For Microsoft support.
    pub trace_id: Option<String>,
}

impl Refusal {
    /// The AADSTS code: `error_codes`, else the one the description starts with.
    pub(crate) fn code(&self) -> Option<u64> {
        self.error_codes.first().copied().or_else(|| {
            let rest = self.error_description.trim_start().strip_prefix("AADSTS")?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
    }

    /// The first line of the description, without the `AADSTSnnn: ` prefix.
    pub(crate) fn words(&self) -> String {
        let first = self.error_description.lines().next().unwrap_or("").trim();
        let words = match first.split_once(": ") {
            Some((head, rest)) if head.starts_with("AADSTS") => rest,
            _ => first,
        };
        ascii(words, 300)
    }
}

/// What a token endpoint's answer is.
pub(crate) enum Answer {
    /// A token.
    Issued(Issued),
    /// An OAuth error.
    Refused(Refusal),
    /// Not OAuth JSON (an HTML page, a proxy's answer).
    Other {
        /// Its first non-empty line, shortened.
        first_line: String,
    },
}

/// Reads an answer by its shape, not its status.
pub(crate) fn read(answer: &FormAnswer) -> Answer {
    if answer.status.is_success()
        && let Ok(issued) = serde_json::from_slice::<Issued>(&answer.body)
        && !issued.access_token.is_empty()
    {
        return Answer::Issued(issued);
    }
    if let Ok(refusal) = serde_json::from_slice::<Refusal>(&answer.body) {
        return Answer::Refused(refusal);
    }
    let text = String::from_utf8_lossy(&answer.body);
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    Answer::Other {
        first_line: ascii(first, 120),
    }
}

/// `s` in printable ASCII, at most `max` characters.
pub(crate) fn ascii(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_give_their_code_and_words() {
        let r: Refusal = serde_json::from_str(
            r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t\r\nCorrelation ID: c","error_codes":[7000215],"correlation_id":"c"}"#,
        )
        .unwrap();
        assert_eq!(r.code(), Some(7000215));
        assert_eq!(r.words(), "Invalid client secret provided.");
        let r: Refusal = serde_json::from_str(
            r#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found."}"#,
        )
        .unwrap();
        assert_eq!(r.code(), Some(90002));
        let r: Refusal = serde_json::from_str(r#"{"error":"server_error"}"#).unwrap();
        assert_eq!((r.code(), r.words()), (None, String::new()));
    }

    #[test]
    fn secrets_do_not_debug_print() {
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "<hidden>");
        let g = Grant::ClientCredentials { secret: s };
        assert!(!format!("{g:?}").contains("hunter2"));
    }

    #[test]
    fn each_api_has_its_scope() {
        assert_eq!(scope(Api::Graph), "https://graph.microsoft.com/.default");
        assert_eq!(
            scope(Api::Exchange),
            "https://outlook.office365.com/.default"
        );
    }

    #[test]
    fn token_urls() {
        let a = Url::parse("https://login.microsoftonline.com/").unwrap();
        assert_eq!(
            token_url(&a, "contoso.example").unwrap().as_str(),
            "https://login.microsoftonline.com/contoso.example/oauth2/v2.0/token"
        );
    }
}
