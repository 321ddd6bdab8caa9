//! Judging an RFC 7662 introspection response with the same rules as a JWT: `active`, then
//! `iss`, the token type, `cnf`, `aud` (canonically), `exp`/`nbf`/`iat` within leeway, the
//! required members, the scopes.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::Duration;

use super::Introspection;
use crate::token::claims::{self, ClaimsView, audience_matches};
use crate::token::{
    Claim, Identity, Names, TokenError, Verification, VerifiedToken, check_not_before, is_expired,
    read_issued_at, read_scopes,
};

/// Token kinds that an introspection response may name and that are never access tokens.
const NOT_ACCESS_TOKENS: [&str; 6] = [
    "refresh_token",
    "refresh",
    "offline",
    "id",
    "id_token",
    "logout",
];

/// What an introspection response says about a token.
pub(crate) enum Judgement {
    /// Active and acceptable: the identity, and the clock time past which it must not be
    /// served from a cache (`exp`, or now plus the configured lifetime when `exp` is absent).
    Valid {
        token: VerifiedToken,
        valid_until: Duration,
    },
    /// Inactive, or active but refused by our checks.
    Invalid(TokenError),
    /// Not an RFC 7662 response: the token was not judged.
    Garbage(&'static str),
}

/// Judges `body`, the response for the token whose SHA-256 is `token_hash`, at `now`.
pub(crate) fn judge(
    body: &[u8],
    config: &Introspection,
    now: Duration,
    token_hash: &[u8; 32],
) -> Judgement {
    let Ok(view) = ClaimsView::parse(body) else {
        return Judgement::Garbage("the response is not one JSON object");
    };
    let active = match view.get("active") {
        None => return Judgement::Garbage("the response has no `active` member"),
        Some(raw) => match serde_json::from_str::<bool>(raw.get()) {
            Ok(active) => active,
            Err(_) => return Judgement::Garbage("`active` is not a boolean"),
        },
    };
    if !active {
        return Judgement::Invalid(TokenError::Inactive);
    }
    match judge_active(&view, body, config, now, token_hash) {
        Ok((token, valid_until)) => Judgement::Valid { token, valid_until },
        Err(error) => Judgement::Invalid(error),
    }
}

fn judge_active(
    view: &ClaimsView<'_>,
    body: &[u8],
    config: &Introspection,
    now: Duration,
    token_hash: &[u8; 32],
) -> Result<(VerifiedToken, Duration), TokenError> {
    let registered = &view.registered;
    match claims::string(registered.iss)? {
        Some(iss) if iss != config.issuer => return Err(TokenError::UnknownIssuer),
        Some(_) => {}
        None if config.required.contains(Claim::Issuer) => {
            return Err(TokenError::MissingClaim(Claim::Issuer));
        }
        None => {}
    }
    // A refresh (or ID) token is not an access token, whatever the endpoint says about its
    // activity: `token_type` (the dev server, several others), `token_use` (Ory Hydra), `typ`
    // (Keycloak: `Refresh`, `Offline`, `ID`).
    for member in ["token_type", "token_use", "typ"] {
        if let Ok(Some(kind)) = view.string(member)
            && NOT_ACCESS_TOKENS
                .iter()
                .any(|other| kind.eq_ignore_ascii_case(other))
        {
            return Err(TokenError::InvalidType);
        }
    }
    // RFC 7662 §2.2 via RFC 9449 §6.2: an introspected DPoP token's `cnf.jkt`, enforced like
    // a JWT's.
    let dpop_jkt = claims::dpop_confirmation(registered.cnf)?;
    // A DPoP token whose answer lost its binding must not become a bearer token.
    if dpop_jkt.is_none()
        && let Ok(Some(kind)) = view.string("token_type")
        && kind.eq_ignore_ascii_case("DPoP")
    {
        return Err(TokenError::SenderConstrained);
    }

    let audiences = claims::audiences(registered.aud)?.unwrap_or_default();
    if audiences.is_empty() {
        if !config.accept_missing_audience {
            return Err(TokenError::MissingClaim(Claim::Audience));
        }
    } else {
        let ours = audiences.iter().any(|presented| {
            config
                .audiences
                .iter()
                .any(|aud| audience_matches(aud, presented))
        });
        if !ours {
            return Err(TokenError::AudienceMismatch);
        }
    }

    let now_secs = now.as_secs();
    let leeway = config.leeway.as_secs();
    let (expires_at, valid_until) = match claims::numeric_date(registered.exp)? {
        Some(exp) => {
            if is_expired(exp, now_secs, leeway) {
                return Err(TokenError::Expired);
            }
            (exp, Duration::from_secs(exp))
        }
        None => match config.max_lifetime_without_exp {
            // However long the configured lifetime, the end is a NumericDate like any `exp`.
            Some(lifetime) => {
                let until = now
                    .saturating_add(lifetime)
                    .min(Duration::from_secs(claims::MAX_NUMERIC_DATE));
                (until.as_secs(), until)
            }
            None => return Err(TokenError::MissingClaim(Claim::Expiry)),
        },
    };
    check_not_before(registered.nbf, now_secs, leeway)?;
    let issued_at = read_issued_at(registered.iat, now_secs, leeway)?;

    let subject = claims::string(registered.sub)?;
    let client_id = view.string("client_id")?;
    let jwt_id = claims::string(registered.jti)?;
    let username = claims::string(registered.username)?;
    config.required.check([
        (Claim::Subject, subject.is_some()),
        (Claim::ClientId, client_id.is_some()),
        (Claim::IssuedAt, issued_at.is_some()),
        (Claim::JwtId, jwt_id.is_some()),
    ])?;
    let scopes = read_scopes(view, std::slice::from_ref(&config.scope_claim))?;

    let token = VerifiedToken::new(Identity {
        names: Names::new(
            &config.issuer,
            subject.as_deref(),
            client_id.as_deref(),
            jwt_id.as_deref(),
            username.as_deref(),
        ),
        scopes,
        audiences: OnceLock::from(
            audiences
                .into_iter()
                .map(Cow::into_owned)
                .collect::<Box<[_]>>(),
        ),
        expires_at,
        issued_at,
        verification: Verification::Introspection,
        payload: body.into(),
        token_hash: *token_hash,
        dpop_jkt,
        principal: OnceLock::new(),
    });
    Ok((token, valid_until))
}
