//! Where an artifact comes from: an explicit `url:`, the python mirror
//! (`<mirror>/<version>/<file>`), or a package index's Simple API (PEP 691 JSON, PEP 503 HTML).

use serde::Deserialize;
use url::Url;

use crate::base::exit::ExitCode;
use crate::mechanism::digest::Sha256Digest;
use crate::mechanism::net::{Client, NetError};
use crate::model::manifest::{Artifact, ArtifactKind, Manifest};

/// The default package index (the one place its address lives).
pub(crate) const DEFAULT_INDEX_URL: &str = "https://pypi.org/simple/";
/// The default python mirror: python.org's download area.
pub(crate) const DEFAULT_PYTHON_MIRROR: &str = "https://www.python.org/ftp/python/";

const SIMPLE_ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// The configured sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// Base of the python download area.
    pub python_mirror: Url,
    /// Base of the Simple API.
    pub index_url: Url,
}

/// Why an artifact's location could not be found.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A configured base URL is not usable.
    #[error("{what} {value:?} is not a usable http(s) URL: {reason}")]
    BadBase {
        /// `--index-url` or `--python-mirror`.
        what: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
    /// The index has no page for the project.
    #[error(
        "the index {index} has no project {project:?} ({url} answered 404)\n  help: check --index-url; a mirror must serve the Simple API (.../simple/<project>/)"
    )]
    NoProject {
        /// The index base.
        index: Url,
        /// The normalized project name.
        project: String,
        /// The page URL.
        url: Url,
    },
    /// The project page does not list the pinned file.
    #[error(
        "the index page {url} does not list {file}\n  help: the mirror may not carry this version; check the pin or use another --index-url"
    )]
    NotListed {
        /// The page URL.
        url: Url,
        /// The file name.
        file: String,
    },
    /// The index publishes another hash for the file.
    #[error(
        "the index publishes sha256 {published} for {file}, but the manifest pins {pinned}\n  page: {url}\n  help: the index and the manifest disagree about these bytes; do not use either until you know which is right"
    )]
    IndexHashMismatch {
        /// The page URL.
        url: Url,
        /// The file name.
        file: String,
        /// What the index says.
        published: Sha256Digest,
        /// What the manifest says.
        pinned: Sha256Digest,
    },
    /// The page could not be read as a Simple API document.
    #[error("{url} is not a Simple API page ({reason})")]
    BadPage {
        /// The page URL.
        url: Url,
        /// Why.
        reason: String,
    },
    /// The page could not be fetched.
    #[error(transparent)]
    Net(#[from] NetError),
}

impl SourceError {
    /// The exit code: a bad base URL is input, an index that disagrees with a pin a failed
    /// verification, the rest network.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            SourceError::BadBase { .. } => ExitCode::Input,
            SourceError::IndexHashMismatch { .. } => ExitCode::Verification,
            SourceError::Net(n) => n.exit_code(),
            _ => ExitCode::Network,
        }
    }
}

/// A file as an index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Its download URL, absolute.
    pub url: Url,
    /// Its sha256 when the index publishes one.
    pub sha256: Option<Sha256Digest>,
    /// The yank reason, when yanked.
    pub yanked: Option<String>,
}

/// Where an artifact will be downloaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The URL.
    pub url: Url,
    /// The index page consulted, if any.
    pub page: Option<Url>,
    /// A note for the user (yanked file).
    pub warning: Option<String>,
}

impl Sources {
    /// Sources from base URLs; each must be http(s). A missing trailing `/` is added.
    pub fn new(python_mirror: &str, index_url: &str) -> Result<Self, SourceError> {
        Ok(Self {
            python_mirror: base_url("--python-mirror", python_mirror)?,
            index_url: base_url("--index-url", index_url)?,
        })
    }

    /// The URL the embeddable zip is found at, unless the manifest gives one.
    pub fn embeddable_url(&self, manifest: &Manifest) -> Url {
        let a = &manifest.embeddable;
        a.url.clone().unwrap_or_else(|| {
            let rel = format!("{}/{}", manifest.python, a.file);
            self.python_mirror
                .join(&rel)
                .unwrap_or_else(|_| self.python_mirror.clone())
        })
    }

    /// The Simple API page of a project.
    pub fn project_page(&self, project: &str) -> Url {
        self.index_url
            .join(&format!("{project}/"))
            .unwrap_or_else(|_| self.index_url.clone())
    }

    /// Finds where to download `artifact`, consulting the index for wheels without `url:`.
    pub fn locate(
        &self,
        client: &Client,
        manifest: &Manifest,
        artifact: &Artifact,
    ) -> Result<Located, SourceError> {
        if let Some(url) = &artifact.url {
            return Ok(Located {
                url: url.clone(),
                page: None,
                warning: None,
            });
        }
        if artifact.kind == ArtifactKind::Embeddable {
            return Ok(Located {
                url: self.embeddable_url(manifest),
                page: None,
                warning: None,
            });
        }
        let project = artifact.project.as_deref().unwrap_or(&artifact.file);
        let page_url = self.project_page(project);
        let page = client
            .get_page(&page_url, SIMPLE_ACCEPT)
            .map_err(|e| match e.root() {
                NetError::Status { status, .. } if status.as_u16() == 404 => {
                    SourceError::NoProject {
                        index: self.index_url.clone(),
                        project: project.to_string(),
                        url: page_url.clone(),
                    }
                }
                _ => SourceError::Net(e),
            })?;
        let entry = parse_simple_page(&page.url, &page.content_type, &page.body, &artifact.file)?
            .ok_or_else(|| SourceError::NotListed {
            url: page.url.clone(),
            file: artifact.file.clone(),
        })?;
        if let Some(published) = entry.sha256
            && published != artifact.sha256
        {
            return Err(SourceError::IndexHashMismatch {
                url: page.url.clone(),
                file: artifact.file.clone(),
                published,
                pinned: artifact.sha256,
            });
        }
        let warning = entry.yanked.map(|why| {
            let why = if why.is_empty() {
                "no reason given".to_string()
            } else {
                why
            };
            format!(
                "{} is yanked on the index ({why}); it is still used because the manifest pins it",
                artifact.file
            )
        });
        Ok(Located {
            url: entry.url,
            page: Some(page.url),
            warning,
        })
    }
}

fn base_url(what: &'static str, value: &str) -> Result<Url, SourceError> {
    let bad = |reason: String| SourceError::BadBase {
        what,
        value: crate::mechanism::net::auth::shown_text(value.trim()),
        reason,
    };
    let mut s = value.trim().to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    let mut url = Url::parse(&s).map_err(|e| bad(e.to_string()))?;
    // The login goes to the client's logins (`Settings::logins`), never along with the URL.
    let _ = crate::mechanism::net::auth::split_login(&mut url);
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "the scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host".into()));
    }
    Ok(url)
}

/// Finds `file` in a Simple API page, JSON (PEP 691) or HTML (PEP 503), by content type.
pub(crate) fn parse_simple_page(
    page_url: &Url,
    content_type: &str,
    body: &[u8],
    file: &str,
) -> Result<Option<IndexEntry>, SourceError> {
    Ok(parse_project_page(page_url, content_type, body)?
        .into_iter()
        .find(|f| f.filename == file)
        .map(|f| IndexEntry {
            url: f.url,
            sha256: f.sha256,
            yanked: f.yanked,
        }))
}

/// A file as a project page lists it, with everything a resolver needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListedFile {
    /// The file name.
    pub filename: String,
    /// Its download URL, absolute, without fragment.
    pub url: Url,
    /// Its sha256 when the index publishes one.
    pub sha256: Option<Sha256Digest>,
    /// `Requires-Python`, as published (PEP 345 specifiers).
    pub requires_python: Option<String>,
    /// The yank reason (empty when none given), when yanked.
    pub yanked: Option<String>,
    /// PEP 658/714: the index serves `<url>.metadata`; `Some(Some(h))` with its sha256.
    pub core_metadata: Option<Option<Sha256Digest>>,
    /// Its size in bytes, when published (PEP 700).
    pub size: Option<u64>,
}

/// Every file of a Simple API project page, JSON (PEP 691) or HTML (PEP 503), by content type.
pub(crate) fn parse_project_page(
    page_url: &Url,
    content_type: &str,
    body: &[u8],
) -> Result<Vec<ListedFile>, SourceError> {
    if content_type.contains("json") {
        parse_simple_json(page_url, body)
    } else {
        let text = String::from_utf8_lossy(body);
        if !(content_type.contains("html") || content_type.is_empty() || text.contains("<a")) {
            return Err(SourceError::BadPage {
                url: page_url.clone(),
                reason: format!("content type {content_type:?}"),
            });
        }
        parse_simple_html(page_url, &text)
    }
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    url: String,
    #[serde(default)]
    hashes: std::collections::HashMap<String, String>,
    #[serde(default, rename = "requires-python")]
    requires_python: Option<String>,
    #[serde(default)]
    yanked: Option<JsonFlag>,
    #[serde(default, rename = "core-metadata")]
    core_metadata: Option<JsonFlag>,
    #[serde(default, rename = "dist-info-metadata")]
    dist_info_metadata: Option<JsonFlag>,
    #[serde(default)]
    size: Option<u64>,
}

/// `false`/`true`, a reason string (yanked) or a hash table (metadata).
#[derive(Deserialize)]
#[serde(untagged)]
enum JsonFlag {
    Bool(bool),
    Text(String),
    Hashes(std::collections::HashMap<String, String>),
}

fn bad_page(page_url: &Url, reason: String) -> SourceError {
    SourceError::BadPage {
        url: page_url.clone(),
        reason,
    }
}

fn page_hash(page_url: &Url, file: &str, hex: &str) -> Result<Sha256Digest, SourceError> {
    hex.parse().map_err(|e| {
        bad_page(
            page_url,
            format!("the sha256 given for {file} is not one: {e}"),
        )
    })
}

fn parse_simple_json(page_url: &Url, body: &[u8]) -> Result<Vec<ListedFile>, SourceError> {
    let page: JsonPage = serde_json::from_slice(body)
        .map_err(|e| bad_page(page_url, format!("invalid JSON: {e}")))?;
    let mut out = Vec::with_capacity(page.files.len());
    for f in page.files {
        let mut url = page_url
            .join(&f.url)
            .map_err(|e| bad_page(page_url, format!("bad file URL {:?}: {e}", f.url)))?;
        url.set_fragment(None);
        let sha256 = f
            .hashes
            .get("sha256")
            .map(|h| page_hash(page_url, &f.filename, h))
            .transpose()?;
        let yanked = match f.yanked {
            Some(JsonFlag::Bool(true)) => Some(String::new()),
            Some(JsonFlag::Text(s)) => Some(s),
            _ => None,
        };
        let core_metadata = match f.core_metadata.or(f.dist_info_metadata) {
            Some(JsonFlag::Bool(true)) => Some(None),
            Some(JsonFlag::Hashes(h)) => Some(
                h.get("sha256")
                    .map(|h| page_hash(page_url, &f.filename, h))
                    .transpose()?,
            ),
            _ => None,
        };
        out.push(ListedFile {
            filename: f.filename,
            url,
            sha256,
            requires_python: f.requires_python.filter(|r| !r.trim().is_empty()),
            yanked,
            core_metadata,
            size: f.size,
        });
    }
    Ok(out)
}

fn parse_simple_html(page_url: &Url, html: &str) -> Result<Vec<ListedFile>, SourceError> {
    // Lowercased once: ASCII lowercasing keeps byte offsets, so positions found in `lower`
    // index `html` too (a project page can hold thousands of links).
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(found) = lower[pos..].find("<a") {
        let start = pos + found + 2;
        pos = start;
        if !html[start..].starts_with(|c: char| c.is_whitespace()) {
            continue;
        }
        let Some(tag_len) = html[start..].find('>') else {
            break;
        };
        let tag_end = start + tag_len;
        let attrs = &html[start..tag_end];
        let body_start = tag_end + 1;
        let close = lower[body_start..]
            .find("</a>")
            .map_or(html.len(), |c| body_start + c);
        let filename = unescape(html[body_start..close].trim());
        pos = close;
        let Some(href) = attribute(attrs, "href") else {
            continue;
        };
        let href = unescape(&href);
        let mut url = page_url
            .join(&href)
            .map_err(|e| bad_page(page_url, format!("bad file URL {href:?}: {e}")))?;
        let sha256 = url
            .fragment()
            .and_then(|f| f.strip_prefix("sha256="))
            .map(|h| page_hash(page_url, &filename, h))
            .transpose()?;
        url.set_fragment(None);
        let yanked = attribute(attrs, "data-yanked").map(|s| unescape(&s));
        let core_metadata = match attribute(attrs, "data-core-metadata")
            .or_else(|| attribute(attrs, "data-dist-info-metadata"))
            .map(|s| unescape(&s))
        {
            None => None,
            Some(v) if v == "false" => None,
            Some(v) => match v.strip_prefix("sha256=") {
                Some(h) => Some(Some(page_hash(page_url, &filename, h)?)),
                None => Some(None),
            },
        };
        out.push(ListedFile {
            filename,
            url,
            sha256,
            requires_python: attribute(attrs, "data-requires-python")
                .map(|s| unescape(&s))
                .filter(|r| !r.trim().is_empty()),
            yanked,
            core_metadata,
            size: None,
        });
    }
    Ok(out)
}

fn attribute(attrs: &str, name: &str) -> Option<String> {
    let lower = attrs.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(name) {
        let at = from + pos;
        let before_ok = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let after = attrs[at + name.len()..].trim_start();
        if before_ok && let Some(value) = after.strip_prefix('=') {
            let value = value.trim_start();
            let quote = value.chars().next()?;
            if quote == '"' || quote == '\'' {
                let inner = &value[1..];
                return inner.find(quote).map(|end| inner[..end].to_string());
            }
            return Some(value.split_whitespace().next().unwrap_or("").to_string());
        }
        if before_ok && !after.starts_with('=') && name.starts_with("data-") {
            return Some(String::new());
        }
        from = at + name.len();
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> Url {
        Url::parse("https://mirror.example/simple/msal/").unwrap()
    }

    const SHA: &str = "2d2577886906cd7293850dffa2da29119966c213bfc6ec0cecf8bf7621e1ca77";

    #[test]
    fn bases_get_a_trailing_slash_and_must_be_http() {
        let s = Sources::new("https://m.example/python", "https://i.example/simple").unwrap();
        assert_eq!(s.python_mirror.as_str(), "https://m.example/python/");
        assert_eq!(
            s.project_page("msal").as_str(),
            "https://i.example/simple/msal/"
        );
        assert!(Sources::new("ftp://x/", "https://i/").is_err());
        assert!(Sources::new("not a url", "https://i/").is_err());
    }

    #[test]
    fn embeddable_url_follows_python_org_layout() {
        let m = Manifest::builtin().unwrap();
        let s = Sources::new("https://m.example/ftp/python/", "https://i.example/simple/").unwrap();
        assert_eq!(
            s.embeddable_url(&m).as_str(),
            "https://m.example/ftp/python/3.12.10/python-3.12.10-embed-amd64.zip"
        );
    }

    #[test]
    fn json_page_relative_url_hash_and_yank() {
        let body = format!(
            r#"{{"meta":{{"api-version":"1.1"}},"name":"msal","files":[
            {{"filename":"msal-1.38.0-py3-none-any.whl","url":"../../files/old.whl","hashes":{{}}}},
            {{"filename":"msal-1.39.0-py3-none-any.whl","url":"../../files/msal-1.39.0-py3-none-any.whl","hashes":{{"sha256":"{SHA}"}},"yanked":"broken"}}]}}"#
        );
        let e = parse_simple_page(
            &page(),
            "application/vnd.pypi.simple.v1+json",
            body.as_bytes(),
            "msal-1.39.0-py3-none-any.whl",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            e.url.as_str(),
            "https://mirror.example/files/msal-1.39.0-py3-none-any.whl"
        );
        assert_eq!(e.sha256.unwrap().to_string(), SHA);
        assert_eq!(e.yanked.as_deref(), Some("broken"));
        let none = parse_simple_page(
            &page(),
            "application/vnd.pypi.simple.v1+json",
            body.as_bytes(),
            "other.whl",
        )
        .unwrap();
        assert!(none.is_none());
        assert!(parse_simple_page(&page(), "application/json", b"{nope", "x").is_err());
    }

    #[test]
    fn html_page_with_fragment_hash_and_entities() {
        let html = format!(
            "<!DOCTYPE html><html><body>\n<a href=\"/files/x.whl\">msal-1.38.0-py3-none-any.whl</a><br/>\n<A HREF='https://cdn.example/f/msal-1.39.0-py3-none-any.whl?a=1&amp;b=2#sha256={SHA}' data-requires-python=\"&gt;=3.8\">msal-1.39.0-py3-none-any.whl</A>\n</body></html>"
        );
        let e = parse_simple_page(
            &page(),
            "text/html",
            html.as_bytes(),
            "msal-1.39.0-py3-none-any.whl",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            e.url.as_str(),
            "https://cdn.example/f/msal-1.39.0-py3-none-any.whl?a=1&b=2"
        );
        assert_eq!(e.sha256.unwrap().to_string(), SHA);
        assert_eq!(e.yanked, None);
        let old = parse_simple_page(
            &page(),
            "text/html",
            html.as_bytes(),
            "msal-1.38.0-py3-none-any.whl",
        )
        .unwrap()
        .unwrap();
        assert_eq!(old.url.as_str(), "https://mirror.example/files/x.whl");
        assert_eq!(old.sha256, None);
    }

    #[test]
    fn html_page_with_thousands_of_links_finds_the_last() {
        let mut html = String::from("<html><body>\n");
        for i in 0..5000 {
            html.push_str(&format!("<a href=\"/f/pkg-{i}.whl#sha256={SHA}\" data-requires-python=\"&gt;=3.8\">pkg-{i}-py3-none-any.whl</a><br/>\n"));
        }
        let e = parse_simple_page(
            &page(),
            "text/html",
            html.as_bytes(),
            "pkg-4999-py3-none-any.whl",
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.url.as_str(), "https://mirror.example/f/pkg-4999.whl");
    }

    #[test]
    fn html_yanked_attribute_without_value() {
        let html = "<a href=\"a.whl\" data-yanked>a-1-py3-none-any.whl</a>";
        let e = parse_simple_page(
            &page(),
            "text/html",
            html.as_bytes(),
            "a-1-py3-none-any.whl",
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.yanked.as_deref(), Some(""));
    }
}
