//! Are the pinned wheels complete? Each wheel's `Requires-Dist` (PEP 508), with its markers
//! evaluated for the target (CPython X.Y on Windows) and extras followed, must be met by a
//! pinned wheel of a matching version. The manifest pins a closed set by hand; this catches
//! the pin that was bumped without the dependency it now needs.
//!
//! Only what wheel metadata uses is read (names, extras, version specifiers, markers), and a
//! finding is a warning, never a refusal. The pep508_rs crate would parse all of PEP 508 but
//! brings regex and a dozen other crates for this one check.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use crate::manifest::{Platform, PythonVersion, normalize_name};

/// A requirement as a wheel's metadata states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirement {
    /// Normalized project name.
    pub name: String,
    /// Requested extras, normalized.
    pub extras: Vec<String>,
    /// Version specifiers (`>=2.0,<3`), empty for any.
    pub specifiers: Vec<(String, String)>,
    /// The marker, if any.
    pub marker: Option<Marker>,
    /// The text as written.
    pub text: String,
}

/// A PEP 508 environment marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Marker {
    /// Both.
    And(Box<Marker>, Box<Marker>),
    /// Either.
    Or(Box<Marker>, Box<Marker>),
    /// `lhs op rhs`, each a variable name or a quoted string.
    Compare(Operand, String, Operand),
}

/// One side of a marker comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Operand {
    /// A marker variable (`python_version`).
    Variable(String),
    /// A quoted string.
    Literal(String),
}

/// The environment a marker is evaluated in: the target, not this machine.
#[derive(Debug, Clone)]
pub(crate) struct Environment {
    vars: BTreeMap<&'static str, String>,
}

impl Environment {
    /// CPython `python` on Windows `platform`.
    pub(crate) fn target(python: PythonVersion, platform: Platform) -> Self {
        let machine = match platform {
            Platform::WinAmd64 => "AMD64",
            Platform::Win32 => "x86",
            Platform::WinArm64 => "ARM64",
        };
        let vars = BTreeMap::from([
            (
                "python_version",
                format!("{}.{}", python.major, python.minor),
            ),
            ("python_full_version", python.to_string()),
            ("implementation_version", python.to_string()),
            ("sys_platform", "win32".to_string()),
            ("platform_system", "Windows".to_string()),
            ("os_name", "nt".to_string()),
            ("platform_machine", machine.to_string()),
            ("implementation_name", "cpython".to_string()),
            ("platform_python_implementation", "CPython".to_string()),
        ]);
        Self { vars }
    }
}

/// Parses one `Requires-Dist` value.
pub(crate) fn parse_requirement(text: &str) -> Result<Requirement, String> {
    let (spec, marker) = match text.split_once(';') {
        Some((s, m)) => (s.trim(), Some(parse_marker(m.trim())?)),
        None => (text.trim(), None),
    };
    let name_end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || "._-".contains(c)))
        .unwrap_or(spec.len());
    let name = &spec[..name_end];
    if name.is_empty() {
        return Err(format!("{text:?} names no project"));
    }
    let mut rest = spec[name_end..].trim_start();
    let mut extras = Vec::new();
    if let Some(after) = rest.strip_prefix('[') {
        let close = after
            .find(']')
            .ok_or_else(|| format!("{text:?}: unclosed extras"))?;
        extras = after[..close]
            .split(',')
            .map(|e| normalize_name(e.trim()))
            .filter(|e| !e.is_empty())
            .collect();
        rest = after[close + 1..].trim_start();
    }
    let rest = rest
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    let mut specifiers = Vec::new();
    if !rest.is_empty() {
        for part in rest.split(',') {
            let part = part.trim();
            let op_len = part
                .find(|c: char| !"<>=!~".contains(c))
                .unwrap_or(part.len());
            let (op, version) = (part[..op_len].trim(), part[op_len..].trim());
            if !["==", "!=", ">=", "<=", ">", "<", "~=", "==="].contains(&op) || version.is_empty()
            {
                return Err(format!(
                    "{text:?}: cannot read the version specifier {part:?}"
                ));
            }
            specifiers.push((op.to_string(), version.to_string()));
        }
    }
    Ok(Requirement {
        name: normalize_name(name),
        extras,
        specifiers,
        marker,
        text: text.trim().to_string(),
    })
}

/// Parses a marker expression (`python_version < "3.11" and extra == 'socks'`).
pub(crate) fn parse_marker(text: &str) -> Result<Marker, String> {
    let tokens = tokenize(text)?;
    let mut pos = 0;
    let m =
        parse_or(&tokens, &mut pos).ok_or_else(|| format!("cannot read the marker {text:?}"))?;
    if pos != tokens.len() {
        return Err(format!("cannot read the marker {text:?}"));
    }
    Ok(m)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Quoted(String),
    Op(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            '\'' | '"' => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&x| x == c)
                    .ok_or_else(|| format!("unclosed quote in {text:?}"))?;
                out.push(Token::Quoted(chars[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            '<' | '>' | '=' | '!' | '~' => {
                let start = i;
                while i < chars.len() && "<>=!~".contains(chars[i]) {
                    i += 1;
                }
                out.push(Token::Op(chars[start..i].iter().collect()));
            }
            _ => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.')
                {
                    i += 1;
                }
                if start == i {
                    return Err(format!("unexpected {c:?} in the marker {text:?}"));
                }
                out.push(Token::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

fn parse_or(t: &[Token], pos: &mut usize) -> Option<Marker> {
    let mut left = parse_and(t, pos)?;
    while t.get(*pos) == Some(&Token::Word("or".into())) {
        *pos += 1;
        left = Marker::Or(Box::new(left), Box::new(parse_and(t, pos)?));
    }
    Some(left)
}

fn parse_and(t: &[Token], pos: &mut usize) -> Option<Marker> {
    let mut left = parse_atom(t, pos)?;
    while t.get(*pos) == Some(&Token::Word("and".into())) {
        *pos += 1;
        left = Marker::And(Box::new(left), Box::new(parse_atom(t, pos)?));
    }
    Some(left)
}

fn parse_atom(t: &[Token], pos: &mut usize) -> Option<Marker> {
    if t.get(*pos) == Some(&Token::Open) {
        *pos += 1;
        let m = parse_or(t, pos)?;
        if t.get(*pos) != Some(&Token::Close) {
            return None;
        }
        *pos += 1;
        return Some(m);
    }
    let lhs = operand(t.get(*pos)?)?;
    *pos += 1;
    let op = match t.get(*pos)? {
        Token::Op(o) => o.clone(),
        Token::Word(w) if w == "in" => "in".into(),
        Token::Word(w) if w == "not" && t.get(*pos + 1) == Some(&Token::Word("in".into())) => {
            *pos += 1;
            "not in".into()
        }
        _ => return None,
    };
    *pos += 1;
    let rhs = operand(t.get(*pos)?)?;
    *pos += 1;
    Some(Marker::Compare(lhs, op, rhs))
}

fn operand(t: &Token) -> Option<Operand> {
    match t {
        Token::Word(w) => Some(Operand::Variable(w.clone())),
        Token::Quoted(q) => Some(Operand::Literal(q.clone())),
        _ => None,
    }
}

impl Marker {
    /// True in `env` for a package installed with `extra` (or none).
    pub(crate) fn evaluate(&self, env: &Environment, extra: Option<&str>) -> bool {
        match self {
            Marker::And(a, b) => a.evaluate(env, extra) && b.evaluate(env, extra),
            Marker::Or(a, b) => a.evaluate(env, extra) || b.evaluate(env, extra),
            Marker::Compare(l, op, r) => {
                let value = |o: &Operand| -> Option<String> {
                    match o {
                        Operand::Literal(s) => Some(s.clone()),
                        Operand::Variable(v) if v == "extra" => extra.map(normalize_name),
                        Operand::Variable(v) => env.vars.get(v.as_str()).cloned(),
                    }
                };
                let is_extra = |o: &Operand| matches!(o, Operand::Variable(v) if v == "extra");
                let (Some(mut a), Some(mut b)) = (value(l), value(r)) else {
                    return false;
                };
                if is_extra(l) || is_extra(r) {
                    a = normalize_name(&a);
                    b = normalize_name(&b);
                }
                let versioned =
                    |o: &Operand| matches!(o, Operand::Variable(v) if v.ends_with("version"));
                match op.as_str() {
                    "in" => b.contains(&a),
                    "not in" => !b.contains(&a),
                    _ if versioned(l) || versioned(r) => matches_specifier(&a, op, &b),
                    "==" | "===" => a == b,
                    "!=" => a != b,
                    _ => false,
                }
            }
        }
    }
}

/// A version as PEP 440 orders it, simplified: release numbers, then pre/post/dev.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Version {
    release: Vec<u64>,
    // dev < a < b < rc < final < post, each with its number
    phase: (u8, u64),
}

fn parse_version(v: &str) -> Option<Version> {
    let v = v.trim().trim_start_matches(['v', 'V']);
    let v = v.split('+').next()?.to_ascii_lowercase();
    let digits_end = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let release: Vec<u64> = v[..digits_end]
        .trim_end_matches('.')
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let suffix = v[digits_end..].trim_start_matches(['.', '-', '_']);
    let number = |s: &str| {
        s.trim_start_matches(['.', '-', '_'])
            .parse::<u64>()
            .unwrap_or(0)
    };
    let phase = if suffix.is_empty() {
        (4, 0)
    } else if let Some(n) = suffix.strip_prefix("post") {
        (5, number(n))
    } else if let Some(n) = suffix.strip_prefix("dev") {
        (0, number(n))
    } else if let Some(n) = suffix
        .strip_prefix("rc")
        .or_else(|| suffix.strip_prefix('c'))
    {
        (3, number(n))
    } else if let Some(n) = suffix.strip_prefix('b') {
        (2, number(n))
    } else if let Some(n) = suffix.strip_prefix('a') {
        (1, number(n))
    } else {
        return None;
    };
    Some(Version { release, phase })
}

fn compare(a: &Version, b: &Version) -> Ordering {
    let len = a.release.len().max(b.release.len());
    for i in 0..len {
        let (x, y) = (
            a.release.get(i).copied().unwrap_or(0),
            b.release.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x.cmp(&y);
        }
    }
    a.phase.cmp(&b.phase)
}

/// True when `version` satisfies `op spec` (PEP 440, simplified to what wheel metadata uses).
pub(crate) fn matches_specifier(version: &str, op: &str, spec: &str) -> bool {
    if op == "===" {
        return version == spec;
    }
    if let Some(prefix) = spec.strip_suffix(".*") {
        let (Some(v), Some(p)) = (parse_version(version), parse_version(prefix)) else {
            return false;
        };
        let same = v.release.iter().take(p.release.len()).eq(p.release.iter())
            && v.release.len() >= p.release.len();
        return if op == "!=" {
            !same
        } else {
            op == "==" && same
        };
    }
    let (Some(v), Some(s)) = (parse_version(version), parse_version(spec)) else {
        return false;
    };
    let ord = compare(&v, &s);
    match op {
        "==" => ord == Ordering::Equal,
        "!=" => ord != Ordering::Equal,
        ">=" => ord != Ordering::Less,
        "<=" => ord != Ordering::Greater,
        ">" => ord == Ordering::Greater,
        "<" => ord == Ordering::Less,
        "~=" => {
            let keep = s.release.len().saturating_sub(1).max(1);
            ord != Ordering::Less && v.release.iter().take(keep).eq(s.release.iter().take(keep))
        }
        _ => false,
    }
}

/// A pinned package and what its metadata requires.
#[derive(Debug, Clone)]
pub(crate) struct Package {
    /// Project name as in its metadata.
    pub name: String,
    /// Version.
    pub version: String,
    /// `Requires-Dist` values.
    pub requires: Vec<String>,
}

/// What the pinned set's metadata says about itself, for the target.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    /// Per package (normalized name): the pinned packages its requirements name, with the
    /// markers true for the target and the extras asked of it followed.
    pub edges: BTreeMap<String, BTreeSet<String>>,
    /// Requirements that no pinned wheel meets, in words.
    pub unmet: Vec<String>,
}

/// Every requirement of `packages` that no pinned wheel meets, in words.
pub(crate) fn unmet(packages: &[Package], env: &Environment) -> Vec<String> {
    graph(packages, env).unmet
}

/// Evaluates every `Requires-Dist` of `packages` for `env`: which pinned package needs
/// which, and which requirements no pin meets.
pub(crate) fn graph(packages: &[Package], env: &Environment) -> Graph {
    let by_name: BTreeMap<String, &Package> = packages
        .iter()
        .map(|p| (normalize_name(&p.name), p))
        .collect();
    let mut problems = BTreeSet::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = by_name
        .keys()
        .map(|k| (k.clone(), BTreeSet::new()))
        .collect();
    // Extras asked of each package by the others, followed until nothing new is asked.
    let mut extras: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    loop {
        let mut asked: Vec<(String, String)> = Vec::new();
        for p in packages {
            let key = normalize_name(&p.name);
            let mine: Vec<Option<&str>> = std::iter::once(None)
                .chain(
                    extras
                        .get(&key)
                        .into_iter()
                        .flatten()
                        .map(|e| Some(e.as_str())),
                )
                .collect();
            for text in &p.requires {
                let r = match parse_requirement(text) {
                    Ok(r) => r,
                    Err(e) => {
                        problems.insert(format!("{} {}: {e}", p.name, p.version));
                        continue;
                    }
                };
                let applies = mine
                    .iter()
                    .any(|x| r.marker.as_ref().is_none_or(|m| m.evaluate(env, *x)));
                if !applies {
                    continue;
                }
                match by_name.get(&r.name) {
                    None => {
                        problems.insert(format!(
                            "{} {} requires {}, which the manifest does not pin",
                            p.name, p.version, r.text
                        ));
                    }
                    Some(dep) => {
                        if r.name != key {
                            edges.entry(key.clone()).or_default().insert(r.name.clone());
                        }
                        if !r
                            .specifiers
                            .iter()
                            .all(|(op, v)| matches_specifier(&dep.version, op, v))
                        {
                            problems.insert(format!(
                                "{} {} requires {}, but the manifest pins {} {}",
                                p.name, p.version, r.text, dep.name, dep.version
                            ));
                        }
                        for e in &r.extras {
                            if !extras.get(&r.name).is_some_and(|s| s.contains(e)) {
                                asked.push((r.name.clone(), e.clone()));
                            }
                        }
                    }
                }
            }
        }
        if asked.is_empty() {
            break;
        }
        for (name, extra) in asked {
            extras.entry(name).or_default().insert(extra);
        }
    }
    Graph {
        edges,
        unmet: problems.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment::target("3.12.10".parse().unwrap(), Platform::WinAmd64)
    }

    #[test]
    fn requirements_as_wheels_write_them() {
        let r = parse_requirement("PyJWT[crypto] <3,>=1.0.0").unwrap();
        assert_eq!(r.name, "pyjwt");
        assert_eq!(r.extras, vec!["crypto"]);
        assert_eq!(
            r.specifiers,
            vec![
                ("<".to_string(), "3".to_string()),
                (">=".to_string(), "1.0.0".to_string())
            ]
        );
        let r =
            parse_requirement("cffi>=2.0.0 ; platform_python_implementation != 'PyPy'").unwrap();
        assert!(r.marker.unwrap().evaluate(&env(), None));
        let r = parse_requirement("foo (>=1.0, <2)").unwrap();
        assert_eq!(r.specifiers.len(), 2);
        assert!(parse_requirement(">=1").is_err());
        assert!(parse_requirement("foo >>1").is_err());
    }

    #[test]
    fn markers_for_cpython_on_windows() {
        let yes = [
            "python_version >= \"3.9\" and platform_system == \"Windows\"",
            "sys_platform == 'win32'",
            "python_full_version >= '3.12.1'",
            "(python_version < '3.11') or os_name == 'nt'",
            "implementation_name != \"PyPy\"",
            "'win' in sys_platform",
        ];
        for m in yes {
            assert!(parse_marker(m).unwrap().evaluate(&env(), None), "{m}");
        }
        let no = [
            "python_full_version < '3.11'",
            "platform_system == \"Linux\"",
            "(python_version < '3.14') and extra == 'zstd'",
            "platform_python_implementation != 'CPython'",
        ];
        for m in no {
            assert!(!parse_marker(m).unwrap().evaluate(&env(), None), "{m}");
        }
        let with_extra = parse_marker("extra == \"use-chardet-on-py3\"").unwrap();
        assert!(with_extra.evaluate(&env(), Some("use_chardet_on_py3")));
        assert!(parse_marker("python_version <").is_err());
    }

    #[test]
    fn version_specifiers() {
        assert!(matches_specifier("2026.10.19.post1", ">=", "2023.5.7"));
        assert!(matches_specifier("50.0.2", "<", "51"));
        assert!(!matches_specifier("51.0", "<", "51"));
        assert!(matches_specifier("1.0", "==", "1.0.0"));
        assert!(matches_specifier("1.5.8", "!=", "1.5.7"));
        assert!(matches_specifier("2.4.1", "~=", "2.4"));
        assert!(!matches_specifier("3.0", "~=", "2.4"));
        assert!(matches_specifier("3.12.4", "==", "3.12.*"));
        assert!(!matches_specifier("3.13.0", "==", "3.12.*"));
        assert!(matches_specifier("2.0.0rc1", "<", "2.0.0"));
        assert!(matches_specifier("2.0.0b2", "<", "2.0.0rc1"));
        assert!(matches_specifier("2.0.0a9", "<", "2.0.0b1"));
        assert!(matches_specifier("2.0.0.dev1", "<", "2.0.0a1"));
        assert!(matches_specifier("2.0.0.post1", ">", "2.0.0"));
    }

    fn pkg(name: &str, version: &str, requires: &[&str]) -> Package {
        Package {
            name: name.into(),
            version: version.into(),
            requires: requires.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_shipped_set_is_complete() {
        let set = [
            pkg(
                "msal",
                "1.39.0",
                &[
                    "requests <3,>=2.0.0",
                    "PyJWT[crypto] <3,>=1.0.0",
                    "cryptography <51,>=2.5",
                    "pymsalruntime <0.21,>=0.20 ; (python_version >= \"3.9\" and platform_system == \"Windows\") and extra == 'broker'",
                ],
            ),
            pkg(
                "requests",
                "2.34.2",
                &[
                    "charset_normalizer<4,>=2",
                    "idna<4,>=2.5",
                    "urllib3<3,>=1.26",
                    "certifi>=2023.5.7",
                    "PySocks!=1.5.7,>=1.5.6; extra == \"socks\"",
                ],
            ),
            pkg(
                "PyJWT",
                "2.15.1",
                &[
                    "typing_extensions>=4.0; python_version < \"3.11\"",
                    "cryptography>=3.4.0; extra == \"crypto\"",
                ],
            ),
            pkg(
                "cryptography",
                "50.0.2",
                &["cffi>=2.0.0 ; platform_python_implementation != 'PyPy'"],
            ),
            pkg(
                "cffi",
                "2.1.1",
                &["pycparser; implementation_name != \"PyPy\""],
            ),
            pkg("pycparser", "3.12", &[]),
            pkg("charset-normalizer", "3.5.3", &[]),
            pkg("idna", "3.20", &[]),
            pkg("urllib3", "2.8.0", &[]),
            pkg("certifi", "2026.10.19.post1", &[]),
        ];
        assert_eq!(unmet(&set, &env()), Vec::<String>::new());
    }

    #[test]
    fn missing_and_mismatched_pins_are_named() {
        let set = [
            pkg(
                "msal",
                "1.39.0",
                &["PyJWT[crypto] <3,>=1.0.0", "requests<3"],
            ),
            pkg(
                "PyJWT",
                "2.15.1",
                &["cryptography>=3.4.0; extra == \"crypto\""],
            ),
            pkg("requests", "3.0.0", &[]),
        ];
        assert_eq!(
            unmet(&set, &env()),
            vec![
                "PyJWT 2.15.1 requires cryptography>=3.4.0; extra == \"crypto\", which the manifest does not pin".to_string(),
                "msal 1.39.0 requires requests<3, but the manifest pins requests 3.0.0".to_string(),
            ]
        );
    }
}
