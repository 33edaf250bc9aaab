//! Who may connect to `crdt serve`, and as which replicas.
//!
//! Three modes: open (no token), one shared token (`--token`: its holder
//! may act as any replica), or a tokens file (`--tokens FILE`: each token
//! may only introduce the dots of the replica ids its patterns allow). The
//! trust model is in `docs/protocol.md` ("Trust and limits"). Pure: the
//! server reads the file and hands its text here.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::clock::ReplicaId;

/// The replica ids one connection may speak for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Any replica (open mode, or the shared `--token`).
    Any,
    /// Replica ids matching one of these patterns (`*` any run of
    /// characters, `?` one character, everything else itself).
    Patterns(Arc<[String]>),
}

impl Grant {
    pub fn allows(&self, replica: &ReplicaId) -> bool {
        match self {
            Grant::Any => true,
            Grant::Patterns(ps) => ps.iter().any(|p| glob(p, replica.as_str())),
        }
    }

    /// The patterns, for messages (`"any replica"` for [`Grant::Any`]).
    pub fn describe(&self) -> String {
        match self {
            Grant::Any => "any replica".into(),
            Grant::Patterns(ps) => ps.join(", "),
        }
    }
}

/// How the endpoint checks its clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    Open,
    Token(String),
    Tokens(Tokens),
}

impl Auth {
    /// True when a client must present a token.
    pub fn required(&self) -> bool {
        !matches!(self, Auth::Open)
    }

    /// The grant of a request's `Authorization` header value, or `None`
    /// when it must be refused (no token, a wrong one). The scheme is
    /// matched case-insensitively (RFC 7235), the token in constant time.
    pub fn grant(&self, authorization: Option<&str>) -> Option<Grant> {
        let presented = || bearer(authorization?);
        match self {
            Auth::Open => Some(Grant::Any),
            Auth::Token(t) => {
                presented().filter(|p| same(p.as_bytes(), t.as_bytes()))?;
                Some(Grant::Any)
            }
            Auth::Tokens(tokens) => tokens.grant(presented()?),
        }
    }
}

/// The token in `Bearer TOKEN` (any case of the scheme, spaces around).
pub fn bearer(value: &str) -> Option<&str> {
    let value = value.trim();
    let (scheme, rest) = value.split_once([' ', '\t'])?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Equal, in time that depends on the lengths only (`subtle`'s comparison).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// The parsed tokens file: token -> the patterns its lines give it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tokens {
    by_token: BTreeMap<String, Arc<[String]>>,
}

/// A tokens file line that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct TokensError {
    pub line: usize,
    pub message: String,
}

impl Tokens {
    /// Parses `TOKEN REPLICA-PATTERN` lines (`#` starts a comment; blank
    /// lines are skipped; a token on several lines gets every pattern).
    pub fn parse(text: &str) -> Result<Tokens, TokensError> {
        let mut by_token: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let err = |message: String| TokensError {
                line: i + 1,
                message,
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [token, pattern] = fields[..] else {
                return Err(err(format!(
                    "expected TOKEN REPLICA-PATTERN (two fields), found {}",
                    fields.len()
                )));
            };
            if token.len() < 8 {
                return Err(err("a token needs at least 8 characters".into()));
            }
            let ok = |c: char| c.is_ascii_alphanumeric() || ".-_:@*?".contains(c);
            if pattern.len() > 128 || !pattern.chars().all(ok) {
                return Err(err(format!(
                    "{pattern:?} is not a replica pattern (A-Z a-z 0-9 . _ - : @, with * and ?)"
                )));
            }
            by_token
                .entry(token.to_string())
                .or_default()
                .push(pattern.to_string());
        }
        Ok(Tokens {
            by_token: by_token.into_iter().map(|(t, ps)| (t, ps.into())).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }

    /// The grant of `presented`, comparing it with every token in constant time.
    pub fn grant(&self, presented: &str) -> Option<Grant> {
        let mut found = None;
        for (token, patterns) in &self.by_token {
            if same(token.as_bytes(), presented.as_bytes()) {
                found = Some(Grant::Patterns(patterns.clone()));
            }
        }
        found
    }
}

/// `*` matches any run of characters, `?` one; the rest matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Two pointers and one backtrack point: at most len(p) * len(t) steps,
    // and both are at most 128 characters.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod test {
    use super::*;

    fn id(s: &str) -> ReplicaId {
        ReplicaId::new(s).unwrap()
    }

    #[test]
    fn patterns_match_like_shell_globs() {
        assert!(glob("agent-*", "agent-1"));
        assert!(glob("agent-*", "agent-"));
        assert!(!glob("agent-*", "mallory"));
        assert!(glob("a?c", "abc") && !glob("a?c", "abbc"));
        assert!(glob("*", "anything") && glob("*-1", "agent-1"));
        assert!(glob("exact", "exact") && !glob("exact", "exact2"));
    }

    #[test]
    fn the_tokens_file_binds_tokens_to_replicas() {
        let text = "# agents\ns3cret-agents agent-*\n\ns3cret-agents ops-?  # and ops\nmallory-token mallory\n";
        let tokens = Tokens::parse(text).unwrap();
        assert_eq!(tokens.len(), 2);
        let auth = Auth::Tokens(tokens);
        let g = auth.grant(Some("Bearer s3cret-agents")).unwrap();
        assert!(g.allows(&id("agent-7")) && g.allows(&id("ops-1")) && !g.allows(&id("mallory")));
        // The scheme is case-insensitive; the token is not.
        assert!(auth.grant(Some("bearer s3cret-agents")).is_some());
        assert!(auth.grant(Some("BEARER  mallory-token ")).is_some());
        assert!(auth.grant(Some("Bearer S3CRET-AGENTS")).is_none());
        assert!(auth.grant(Some("Basic s3cret-agents")).is_none());
        assert!(auth.grant(None).is_none());
        let e = Tokens::parse("ok-token-1 a\nonly-one-field\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(Tokens::parse("short a\n").is_err());
        assert!(Tokens::parse("long-enough a/b\n").is_err());
    }

    #[test]
    fn one_shared_token_allows_any_replica() {
        let auth = Auth::Token("t0ken".into());
        assert_eq!(auth.grant(Some("Bearer t0ken")), Some(Grant::Any));
        assert_eq!(auth.grant(Some("Bearer t0ke")), None);
        assert_eq!(Auth::Open.grant(None), Some(Grant::Any));
    }
}
