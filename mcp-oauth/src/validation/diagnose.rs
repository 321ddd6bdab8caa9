//! Why a token would be refused: every check of the validator, each with its verdict and the
//! values it judged, for people (the `mcp-oauth token inspect` command), never for requests.
//!
//! [`Validator::validate`] stops at the first refusal, and its [`TokenError`] carries a fixed
//! description with no claim value in it, as a `WWW-Authenticate` header must. [`diagnose`]
//! goes on past failures and says, for each check, what it saw: `exp` and the time it was
//! judged at, the audiences against the policy's, the `typ` and the ID-token claims, the `kid`
//! against the issuer's published keys. It applies the rule functions the validator applies
//! (`validation/jwt.rs`, `token/rules.rs`, `token/claims.rs`, `token/jws.rs`): no rule is
//! written twice, so a diagnosis cannot disagree with a verdict on a rule. Last, it asks the
//! validator itself ([`Finding::check`] `"validator"`), which also covers what only the
//! validator knows (the revocation list, the verified-token cache).
//!
//! Details quote claim values and the `kid`, which are untrusted input: print them for the
//! person who asked, never put them in a response header or a log line.
//!
//! ```no_run
//! # async fn demo(token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_oauth::validation::{IssuerPolicy, Validator, diagnose};
//!
//! let validator = Validator::new(
//!     IssuerPolicy::builder("https://auth.example.com")
//!         .audience("https://calendar.example.com/mcp")
//!         .build()?,
//! )?;
//! for finding in diagnose(&validator, token).await.failures() {
//!     println!("{}: {}", finding.title, finding.detail);
//! }
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::Duration;

use super::jwt::{
    Issuer, check_algorithm_allowed, check_audience, check_expiry, check_issuer_match,
    check_signature, check_typ, header_algorithm, key_error, read_audiences, read_client_id,
    read_expiry, read_issuer,
};
use super::policy::{IssuerMatch, TypPolicy};
use super::{Validator, check_bearer_binding};
use crate::clock::rfc3339;
use crate::crypto::{Algorithm, PrefixSha256};
use crate::token::claims::{self, ClaimsView, ID_TOKEN_CLAIMS};
use crate::token::jws::{self, Header};
use crate::token::{Claim, TokenError, check_not_before, read_issued_at, read_scopes};

/// The verdict of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The token satisfies the rule.
    Passed,
    /// It does not: the refusal the validator answers for this rule.
    Failed(TokenError),
    /// The rule could not be judged (what it reads could not be decoded); the detail says why.
    NotChecked,
}

/// One check of a [`Diagnosis`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// A stable identifier: `size`, `format`, `header`, `alg`, `payload`, `iss`, `tenant`,
    /// `alg_allowed`, `typ`, `aud`, `exp`, `nbf`, `iat`, `cnf`, `required_claims`, `scopes`,
    /// `key`, `signature`, `binding`, `introspection`, `validator`.
    pub check: &'static str,
    /// What is checked, in words.
    pub title: &'static str,
    /// The verdict.
    pub outcome: Outcome,
    /// What was seen, in words, with the values judged (claim values quoted: untrusted).
    pub detail: String,
    /// Where the rule is written.
    pub spec: &'static str,
}

impl Finding {
    /// Whether the check passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    /// Whether the check failed.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_))
    }
}

/// Every check [`diagnose`] made, in the validator's order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Diagnosis {
    /// The checks, in order.
    pub findings: Vec<Finding>,
}

impl Diagnosis {
    /// Whether no check failed (then the validator accepted the token).
    pub fn passed(&self) -> bool {
        !self.findings.iter().any(Finding::failed)
    }

    /// The checks that failed.
    pub fn failures(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.failed())
    }

    /// The finding of check `check`, if it was made.
    pub fn finding(&self, check: &str) -> Option<&Finding> {
        self.findings.iter().find(|f| f.check == check)
    }
}

const RFC_9068: &str = "RFC 9068 §4";
const RFC_8725: &str = "RFC 8725 §3";
const RFC_7519: &str = "RFC 7519 §4.1";

struct Findings(Vec<Finding>);

impl Findings {
    fn push(
        &mut self,
        check: &'static str,
        title: &'static str,
        outcome: Outcome,
        detail: impl Into<String>,
        spec: &'static str,
    ) {
        self.0.push(Finding {
            check,
            title,
            outcome,
            detail: detail.into(),
            spec,
        });
    }

    /// Records `result` of a rule: passed with `pass`, failed with `fail(error)`.
    fn rule<T>(
        &mut self,
        check: &'static str,
        title: &'static str,
        spec: &'static str,
        result: Result<T, TokenError>,
        pass: impl FnOnce(&T) -> String,
        fail: impl FnOnce(&TokenError) -> String,
    ) -> Option<T> {
        match result {
            Ok(value) => {
                let detail = pass(&value);
                self.push(check, title, Outcome::Passed, detail, spec);
                Some(value)
            }
            Err(error) => {
                let detail = fail(&error);
                self.push(check, title, Outcome::Failed(error), detail, spec);
                None
            }
        }
    }

    fn not_checked(
        &mut self,
        check: &'static str,
        title: &'static str,
        spec: &'static str,
        why: &str,
    ) {
        self.push(check, title, Outcome::NotChecked, why, spec);
    }
}

/// Judges `token` (the credential after `Bearer `) by every check of `validator`, going on
/// past failures, then asks the validator itself; see the [module](self) documentation.
///
/// Like validation, it may fetch the issuer's keys (an unknown `kid` causes the one refresh
/// validation would cause), and the final call of [`Validator::validate`] counts in the
/// validator's statistics. A token that the validator sends to introspection is judged by the
/// validator alone (one finding).
pub async fn diagnose(validator: &Validator, token: &str) -> Diagnosis {
    let mut out = Findings(Vec::new());
    judge(validator, token, &mut out).await;
    let verdict = validator.validate(token).await;
    let detail = match &verdict {
        Ok(identity) => format!(
            "accepted: subject {}, client {}, scopes [{}]",
            quote_opt(identity.subject()),
            quote_opt(identity.client_id()),
            identity.scopes()
        ),
        Err(error) => format!(
            "refused with {} ({}): \"{}\"{}",
            error.error_code().status(),
            error.error_code().as_str(),
            error.description(),
            if out.0.iter().any(Finding::failed) {
                ""
            } else {
                " (a rule only the validator applies: the revocation list)"
            }
        ),
    };
    out.rule(
        "validator",
        "the validator's verdict",
        "",
        verdict.map(drop),
        |()| detail.clone(),
        |_| detail.clone(),
    );
    Diagnosis { findings: out.0 }
}

async fn judge(validator: &Validator, token: &str, out: &mut Findings) {
    let inner = &validator.inner;
    let jwt = &inner.jwt;
    let now = jwt.now();
    let now_secs = now.as_secs();

    let size_ok = token.len() <= inner.max_token_bytes;
    out.rule(
        "size",
        "size",
        "",
        if size_ok {
            Ok(())
        } else {
            Err(TokenError::TooLarge)
        },
        |()| {
            format!(
                "{} bytes (the cap is {})",
                token.len(),
                inner.max_token_bytes
            )
        },
        |_| {
            format!(
                "{} bytes, over the cap of {}: refused before decoding",
                token.len(),
                inner.max_token_bytes
            )
        },
    );
    if token.is_empty() {
        out.push(
            "format",
            "compact JWS",
            Outcome::Failed(TokenError::Malformed),
            "the token is empty",
            "RFC 7515 §7.1",
        );
        return;
    }
    if let Some(introspector) = &inner.introspector
        && introspector.handles(token)
    {
        out.not_checked(
            "introspection",
            "introspection",
            "RFC 7662",
            &format!(
                "not judged locally: the validator sends this token to the introspection \
                 endpoint of {} (its verdict follows)",
                introspector.issuer()
            ),
        );
        return;
    }

    // The compact JWS and its header.
    let Some(parts) = out.rule(
        "format",
        "compact JWS",
        "RFC 7515 §7.1",
        jws::split(token),
        |_| "three base64url segments: header.payload.signature".to_owned(),
        |error| match error {
            TokenError::Encrypted => "five segments: an encrypted JWT (JWE), not accepted".into(),
            _ => format!(
                "{} dot-separated segments, not three: not a JWT",
                token.split('.').count()
            ),
        },
    ) else {
        return;
    };
    let header_bytes = jws::decode(parts.header);
    let header = match &header_bytes {
        Ok(bytes) => out.rule(
            "header",
            "protected header",
            RFC_8725,
            Header::parse(bytes),
            |_| "no `crit`, `jku`, `x5u`, `jwk`, `enc`, `zip` or nested `cty`".to_owned(),
            |error| header_refusal(error).to_owned(),
        ),
        Err(error) => {
            out.push(
                "header",
                "protected header",
                Outcome::Failed(error.clone()),
                "the header segment is not base64url (without padding)",
                "RFC 7515 §7.1",
            );
            None
        }
    };
    let algorithm = match &header {
        Some(header) => out.rule(
            "alg",
            "signature algorithm",
            RFC_8725,
            header_algorithm(header),
            |alg| format!("`alg` is `{alg}`"),
            |_| {
                format!(
                    "`alg` is {:?}: not an asymmetric signature algorithm (`none` and HMAC are \
                     never accepted)",
                    &*header.alg
                )
            },
        ),
        None => {
            out.not_checked(
                "alg",
                "signature algorithm",
                RFC_8725,
                "the header is unreadable",
            );
            None
        }
    };

    // The claims.
    let payload = jws::decode(parts.payload);
    let claims = payload
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|payload| ClaimsView::parse(payload));
    let claims = match claims {
        Ok(claims) => {
            out.push(
                "payload",
                "claims",
                Outcome::Passed,
                "a JSON object, no claim twice",
                "RFC 7519 §7.2",
            );
            claims
        }
        Err(error) => {
            out.push(
                "payload",
                "claims",
                Outcome::Failed(error),
                "the payload is not base64url JSON object without duplicate members: no claim \
                 can be judged",
                "RFC 7519 §7.2",
            );
            return;
        }
    };
    let registered = &claims.registered;

    // The issuer and its policy. A token naming no trusted issuer is judged on by the first
    // policy, so that its other faults are told too.
    let issuers = jwt.issuers();
    let trusted = || {
        issuers
            .iter()
            .map(|i| format!("`{}`", i.policy.issuer))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let iss = read_issuer(registered);
    let routed = iss.as_ref().ok().and_then(|iss| jwt.route(iss));
    let issuer_detail = match (&iss, routed) {
        (Ok(iss), Some(_)) => Ok(format!("`iss` is `{iss}`, a trusted issuer")),
        (Ok(iss), None) => Err((
            TokenError::UnknownIssuer,
            format!(
                "`iss` is `{iss}`, which is not a trusted issuer (trusted: {})",
                trusted()
            ),
        )),
        (Err(TokenError::MissingClaim(_)), _) => Err((
            TokenError::MissingClaim(Claim::Issuer),
            "the token has no `iss`".to_owned(),
        )),
        (Err(error), _) => Err((error.clone(), "`iss` is not a string".to_owned())),
    };
    let index = match issuer_detail {
        Ok(detail) => {
            out.push("iss", "issuer", Outcome::Passed, detail, RFC_9068);
            routed
        }
        Err((error, mut detail)) => {
            if let Some(first) = issuers.first() {
                let _ = write!(
                    detail,
                    "; the checks below judge it by the policy of `{}`",
                    first.policy.issuer
                );
            }
            out.push("iss", "issuer", Outcome::Failed(error), detail, RFC_9068);
            (!issuers.is_empty()).then_some(0)
        }
    };
    let Some(index) = index else {
        return;
    };
    let issuer = &issuers[index];
    let policy = &issuer.policy;
    if let (IssuerMatch::Template { tenant_claim, .. }, Ok(iss)) = (&policy.issuer_match, &iss) {
        let tenant = claims.string(tenant_claim).ok().flatten();
        out.rule(
            "tenant",
            "tenant",
            "",
            check_issuer_match(policy, &claims, iss),
            |()| {
                format!(
                    "`{tenant_claim}` is {}, an allowed tenant",
                    quote_cow(&tenant)
                )
            },
            |error| match error {
                TokenError::TenantNotAllowed => {
                    format!(
                        "`{tenant_claim}` is {}, not an allowed tenant",
                        quote_cow(&tenant)
                    )
                }
                _ => format!(
                    "`{tenant_claim}` is {}, which is not the tenant of `iss` `{iss}`",
                    quote_cow(&tenant)
                ),
            },
        );
    }

    // The header's rules under the policy.
    match (&header, algorithm) {
        (Some(_), Some(algorithm)) => {
            out.rule(
                "alg_allowed",
                "algorithm allowed",
                RFC_8725,
                check_algorithm_allowed(policy, algorithm),
                |()| format!("`{algorithm}` is on the issuer's allow-list"),
                |_| {
                    format!(
                        "`{algorithm}` is not on the issuer's allow-list ({})",
                        policy
                            .algorithms
                            .iter()
                            .map(|a| a.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            );
        }
        _ => out.not_checked(
            "alg_allowed",
            "algorithm allowed",
            RFC_8725,
            "no usable `alg`",
        ),
    }
    match &header {
        Some(header) => {
            let typ = header.typ.as_deref();
            let shown = typ.map_or_else(|| "absent".to_owned(), |t| format!("`{t}`"));
            let id_claims: Vec<&str> = ID_TOKEN_CLAIMS
                .into_iter()
                .filter(|name| claims.get(name).is_some())
                .collect();
            let wanted = match policy.typ {
                TypPolicy::Strict => "`at+jwt` (or `application/at+jwt`)",
                TypPolicy::Lenient => {
                    "`at+jwt`, `JWT`, `application/jwt` or none, without ID-token claims"
                }
            };
            out.rule(
                "typ",
                "token type",
                "RFC 9068 §2.1, §4",
                check_typ(policy.typ, typ, registered),
                |()| format!("`typ` is {shown}"),
                |_| {
                    let mut detail = format!("`typ` is {shown}, not {wanted}");
                    if !id_claims.is_empty() {
                        let _ = write!(
                            detail,
                            " — an OpenID Connect ID token (it carries {}), not an access token",
                            id_claims
                                .iter()
                                .map(|c| format!("`{c}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        );
                    }
                    detail
                },
            );
        }
        None => out.not_checked("typ", "token type", RFC_9068, "the header is unreadable"),
    }

    // The audience.
    let audiences = read_audiences(registered);
    let shown_audiences = match &audiences {
        Ok(list) => format!(
            "[{}]",
            list.iter()
                .map(|a| format!("{:?}", &**a))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(_) => String::new(),
    };
    let ours = policy
        .audiences
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    out.rule(
        "aud",
        "audience",
        "RFC 8707, RFC 9068 §4",
        audiences.and_then(|list| check_audience(policy, &list)),
        |()| format!("`aud` {shown_audiences} names {ours}"),
        |error| match error {
            TokenError::MissingClaim(_) => "the token has no `aud`".to_owned(),
            TokenError::InvalidClaim => "`aud` is neither a string nor an array of strings".into(),
            _ => format!(
                "`aud` {shown_audiences} does not name {ours}: a token for another resource"
            ),
        },
    );

    // The time window.
    let leeway = policy.leeway.as_secs();
    let at = |secs: u64| rfc3339_secs(secs);
    let now_text = at(now_secs);
    let expiry = read_expiry(registered);
    match expiry {
        Ok(expires_at) => {
            out.rule(
                "exp",
                "expiry",
                RFC_7519,
                check_expiry(expires_at, now_secs, leeway),
                |()| {
                    format!(
                        "expires at {} (exp {expires_at}), in {}; now {now_text}",
                        at(expires_at),
                        crate::clock::span_in_words(expires_at.saturating_sub(now_secs))
                    )
                },
                |_| {
                    format!(
                        "expired at {} (exp {expires_at}), {} ago; now {now_text}, leeway {leeway} s",
                        at(expires_at),
                        crate::clock::span_in_words(now_secs.saturating_sub(expires_at))
                    )
                },
            );
        }
        Err(error) => {
            let detail = match error {
                TokenError::MissingClaim(_) => "the token has no `exp`",
                _ => "`exp` is not a NumericDate (seconds since 1970, up to year 9999)",
            };
            out.push("exp", "expiry", Outcome::Failed(error), detail, RFC_7519);
        }
    }
    let nbf = claims::numeric_date(registered.nbf).ok().flatten();
    out.rule(
        "nbf",
        "not before",
        RFC_7519,
        check_not_before(registered.nbf, now_secs, leeway),
        |()| match nbf {
            Some(nbf) => format!("valid from {} (nbf {nbf})", at(nbf)),
            None => "no `nbf`".to_owned(),
        },
        |error| match (error, nbf) {
            (TokenError::NotYetValid, Some(nbf)) => format!(
                "not valid before {} (nbf {nbf}), in {}; now {now_text}, leeway {leeway} s",
                at(nbf),
                crate::clock::span_in_words(nbf.saturating_sub(now_secs))
            ),
            _ => "`nbf` is not a NumericDate".to_owned(),
        },
    );
    let iat = claims::numeric_date(registered.iat).ok().flatten();
    out.rule(
        "iat",
        "issued at",
        RFC_7519,
        read_issued_at(registered.iat, now_secs, leeway),
        |_| match iat {
            Some(iat) => format!("issued at {} (iat {iat})", at(iat)),
            None => "no `iat`".to_owned(),
        },
        |error| match (error, iat) {
            (TokenError::IssuedInFuture, Some(iat)) => format!(
                "issued in the future: {} (iat {iat}), {} from now; now {now_text}, leeway {leeway} s",
                at(iat),
                crate::clock::span_in_words(iat.saturating_sub(now_secs))
            ),
            _ => "`iat` is not a NumericDate".to_owned(),
        },
    );

    // The confirmation claim's shape, where the validator reads it; a DPoP binding is
    // judged after the signature, as the validator does (`check_bearer_binding`).
    let binding = out.rule(
        "cnf",
        "confirmation claim",
        "RFC 9449 §6, RFC 7800 §3.1",
        claims::dpop_confirmation(registered.cnf),
        |jkt| match jkt {
            None => "no `cnf`: a bearer token".to_owned(),
            Some(_) => "`cnf.jkt`: bound to a DPoP key (judged after the signature)".to_owned(),
        },
        |error| match error {
            TokenError::SenderConstrained => "`cnf` names a confirmation method other than \
                `jkt` (mTLS?): never accepted"
                .to_owned(),
            _ => "`cnf` is not an object with a base64url SHA-256 `jkt`".to_owned(),
        },
    );

    // The required claims, and their types.
    let subject = claims::string(registered.sub);
    let jwt_id = claims::string(registered.jti);
    let client_id = read_client_id(policy, &claims);
    let mut mistyped = Vec::new();
    if subject.is_err() {
        mistyped.push("`sub`".to_owned());
    }
    if jwt_id.is_err() {
        mistyped.push("`jti`".to_owned());
    }
    if client_id.is_err() {
        mistyped.push(format!("`{}`", policy.client_id_claims.join("`/`")));
    }
    if mistyped.is_empty() {
        let present =
            |r: &Result<Option<Cow<'_, str>>, TokenError>| r.as_ref().is_ok_and(Option::is_some);
        let missing: Vec<Claim> = policy
            .required
            .missing([
                (Claim::Subject, present(&subject)),
                (Claim::ClientId, present(&client_id)),
                (Claim::IssuedAt, registered.iat.is_some()),
                (Claim::JwtId, present(&jwt_id)),
            ])
            .collect();
        let name = |claim: Claim| match claim {
            Claim::ClientId => format!("`{}`", policy.client_id_claims.join("` or `")),
            other => format!("`{}`", other.name()),
        };
        match missing.first() {
            None => out.push(
                "required_claims",
                "required claims",
                Outcome::Passed,
                "every claim the policy requires is present",
                "RFC 9068 §2.2",
            ),
            Some(&first) => out.push(
                "required_claims",
                "required claims",
                Outcome::Failed(TokenError::MissingClaim(first)),
                format!(
                    "missing: {}",
                    missing
                        .iter()
                        .map(|&c| name(c))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "RFC 9068 §2.2",
            ),
        }
    } else {
        out.push(
            "required_claims",
            "required claims",
            Outcome::Failed(TokenError::InvalidClaim),
            format!("not a string: {}", mistyped.join(", ")),
            "RFC 9068 §2.2",
        );
    }
    let scope_names = policy
        .scope_claims
        .iter()
        .map(|c| format!("`{}`", c.name()))
        .collect::<Vec<_>>()
        .join(", then ");
    out.rule(
        "scopes",
        "scopes",
        "RFC 9068 §2.2.3",
        read_scopes(&claims, &policy.scope_claims),
        |scopes| {
            if scopes.is_empty() {
                format!("none (read from {scope_names})")
            } else {
                format!("[{scopes}] (read from {scope_names})")
            }
        },
        |_| format!("the scope claim ({scope_names}) has the wrong shape"),
    );

    // The key and the signature, then the binding (the validator's last rule of the token).
    judge_signature(out, issuer, header.as_ref(), algorithm, &parts, now).await;
    match binding {
        Some(jkt) => {
            out.rule(
                "binding",
                "not sender-constrained",
                "RFC 9449 §7.1",
                check_bearer_binding(jkt.as_ref(), false),
                |()| "no DPoP binding: usable as a bearer token".to_owned(),
                |_| {
                    "bound to a DPoP key (`cnf.jkt`): accepted only with `Authorization: DPoP` \
                     and a proof by that key, never as a bearer token"
                        .to_owned()
                },
            );
        }
        None => out.not_checked(
            "binding",
            "not sender-constrained",
            "RFC 9449 §7.1",
            "`cnf` is unreadable",
        ),
    }
}

/// The key and the signature of the token, judged as the JWT verifier's `verify` does.
async fn judge_signature(
    out: &mut Findings,
    issuer: &Issuer,
    header: Option<&Header<'_>>,
    algorithm: Option<Algorithm>,
    parts: &jws::Compact<'_>,
    now: Duration,
) {
    let policy = &issuer.policy;
    let (Some(header), Some(algorithm)) = (header, algorithm) else {
        out.not_checked("key", "signing key", RFC_8725, "no usable header");
        out.not_checked("signature", "signature", RFC_8725, "no usable header");
        return;
    };
    let (mut stack, mut heap) = ([0; 512], Vec::new());
    let signature = match jws::decode_into(parts.signature, &mut stack, &mut heap) {
        Ok(signature) => signature,
        Err(error) => {
            out.not_checked(
                "key",
                "signing key",
                RFC_8725,
                "the signature is unreadable",
            );
            out.push(
                "signature",
                "signature",
                Outcome::Failed(error),
                "the signature segment is not base64url (without padding)",
                "RFC 7515 §7.1",
            );
            return;
        }
    };
    let kid = header.kid.as_deref();
    let shown_kid = kid.map_or_else(|| "no `kid`".to_owned(), |k| format!("`kid` {k:?}"));
    let published = || {
        issuer.keys.current().map_or_else(
            || "none loaded".to_owned(),
            |set| {
                let mut kids: Vec<String> = set.kids().map(|k| format!("{k:?}")).collect();
                kids.sort();
                if kids.is_empty() {
                    format!("{} key(s) without kid", set.len())
                } else {
                    kids.join(", ")
                }
            },
        )
    };
    let key = out.rule(
        "key",
        "signing key",
        "RFC 7515 §4.1.4, RFC 8725 §3.1",
        issuer
            .keys
            .key_for_at(kid, algorithm, now)
            .await
            .map_err(key_error),
        |_| format!("{shown_kid} names a key of `{}` bound to `{algorithm}`", policy.issuer),
        |error| match error {
            TokenError::UnknownKey => format!(
                "unknown kid: {shown_kid} is not among the keys of `{}` (published: {})",
                policy.issuer,
                published()
            ),
            TokenError::KeyAlgorithmMismatch => format!(
                "the key with {shown_kid} is bound to another algorithm than `{algorithm}`"
            ),
            TokenError::UnknownKeyRetryLater { retry_after } => format!(
                "{shown_kid} is unknown and the issuer's key set could not be refreshed (retry in {} s)",
                retry_after.as_secs()
            ),
            TokenError::KeysUnavailable { retry_after } => format!(
                "the keys of `{}` could not be loaded (retry in {} s): is its discovery or JWKS reachable?",
                policy.issuer,
                retry_after.as_secs()
            ),
            other => other.description().to_owned(),
        },
    );
    match key {
        Some(key) => {
            out.rule(
                "signature",
                "signature",
                "RFC 7515 §5.2",
                check_signature(
                    &key,
                    parts,
                    &PrefixSha256::new(parts.signing_input.as_bytes()),
                    signature,
                ),
                |()| format!("verifies with the key of `{}` ({shown_kid})", policy.issuer),
                |_| {
                    format!(
                        "does not verify with the key of `{}` ({shown_kid}): signed by another \
                         key, or altered",
                        policy.issuer
                    )
                },
            );
        }
        None => out.not_checked(
            "signature",
            "signature",
            "RFC 7515 §5.2",
            "no key of the issuer to verify it with",
        ),
    }
}

fn header_refusal(error: &TokenError) -> &'static str {
    match error {
        TokenError::Encrypted => "`enc` or `zip` in the header: an encrypted token, not accepted",
        TokenError::EmbeddedKeyReference => {
            "the header names its own key (`jku`, `x5u` or `jwk`): never trusted"
        }
        TokenError::UnknownCriticalHeader => {
            "`crit` lists an extension this validator does not know"
        }
        TokenError::Nested => "`cty: JWT`: a nested token, not accepted",
        _ => {
            "not a JSON object of well-typed members (no `alg`, a member twice, a `null`, a `kid` \
             empty or over 256 bytes, or a malformed `crit`)"
        }
    }
}

fn rfc3339_secs(secs: u64) -> String {
    let text = rfc3339(Duration::from_secs(secs));
    text.strip_suffix(".000Z")
        .map_or(text.clone(), |t| format!("{t}Z"))
}

fn quote_opt(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| format!("{v:?}"))
}

fn quote_cow(value: &Option<Cow<'_, str>>) -> String {
    quote_opt(value.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_times_read_as_words() {
        assert_eq!(crate::clock::span_in_words(0), "0 s");
        assert_eq!(crate::clock::span_in_words(3725), "1 h 2 min 5 s");
        assert_eq!(crate::clock::span_in_words(90_061), "1 d 1 h 1 min 1 s");
        assert_eq!(rfc3339_secs(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
