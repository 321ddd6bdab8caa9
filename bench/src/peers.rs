//! The comparisons (feature `peers`): raw `jsonwebtoken::decode` over its aws-lc-rs provider,
//! `jwt-authorizer` (through `Authorizer::check_auth`, its validation entry point) and
//! `tower-oauth2-resource-server` (whose validation is crate-private: only reachable through its
//! tower service, so it is measured with an in-memory request, as is mcp-oauth's layer).

use std::convert::Infallible;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use tower::util::BoxCloneService;
use tower::{Layer, ServiceExt};

use crate::{Alg, Issuer, get_mcp, ok_service};

/// The claims every comparison deserializes: what mcp-oauth's `VerifiedToken` holds
/// (issuer, subject, audience, client, times, id, scopes), owned.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    /// `iss`.
    pub iss: String,
    /// `sub`.
    pub sub: String,
    /// `aud` (the benchmark tokens carry one string).
    pub aud: String,
    /// `client_id`.
    pub client_id: String,
    /// `exp`.
    pub exp: u64,
    /// `iat`.
    pub iat: u64,
    /// `jti`.
    pub jti: String,
    /// `scope`.
    pub scope: String,
}

fn jsonwebtoken_algorithm(alg: Alg) -> jsonwebtoken::Algorithm {
    match alg {
        Alg::RS256 => jsonwebtoken::Algorithm::RS256,
        Alg::PS256 => jsonwebtoken::Algorithm::PS256,
        Alg::ES256 => jsonwebtoken::Algorithm::ES256,
        Alg::EdDSA => jsonwebtoken::Algorithm::EdDSA,
    }
}

/// Raw `jsonwebtoken::decode`: a `DecodingKey` built once from the JWK, a `Validation` with
/// the algorithm, `aud`, `iss` and `exp` (60 s leeway, as mcp-oauth).
pub struct JsonWebToken {
    key: DecodingKey,
    validation: Validation,
}

impl JsonWebToken {
    /// The decoder for `alg`'s key of `issuer`.
    pub fn new(issuer: &Issuer, alg: Alg) -> JsonWebToken {
        let jwk: Jwk = serde_json::from_value(issuer.key(alg).public_jwk()).expect("JWK");
        let key = DecodingKey::from_jwk(&jwk).expect("decoding key");
        let mut validation = Validation::new(jsonwebtoken_algorithm(alg));
        validation.set_audience(&[issuer.issuer.audience()]);
        validation.set_issuer(&[issuer.issuer.issuer()]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.leeway = 60;
        JsonWebToken { key, validation }
    }

    /// One validation.
    pub fn decode(&self, token: &str) -> Result<Claims, jsonwebtoken::errors::Error> {
        jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map(|data| data.claims)
    }
}

/// jwt-authorizer configured as its docs recommend for a remote issuer: keys from the JWKS
/// URL (loaded on first use, refreshed when a kid is unknown), `iss` and `aud` checked,
/// `exp` with its default 60 s leeway. Call inside a tokio runtime (the first use fetches).
pub async fn jwt_authorizer(issuer: &Issuer) -> jwt_authorizer::Authorizer<Claims> {
    let authorizer =
        jwt_authorizer::JwtAuthorizer::<Claims>::from_jwks_url(issuer.issuer.jwks_uri())
            .validation(
                jwt_authorizer::Validation::new()
                    .iss(&[issuer.issuer.issuer()])
                    .aud(&[issuer.issuer.audience()]),
            )
            .build()
            .await
            .expect("jwt-authorizer builds");
    for alg in Alg::ALL {
        authorizer
            .check_auth(&issuer.token(alg))
            .await
            .expect("jwt-authorizer accepts the benchmark tokens");
    }
    authorizer
}

/// A request through a peer's layer: `GET /mcp` with the token, answered by [`ok_service`].
pub type LayerService = BoxCloneService<Request<Full<Bytes>>, Response<Full<Bytes>>, Infallible>;

/// tower-oauth2-resource-server for the issuer: keys from the JWKS URL (its timer producer),
/// `iss`, `exp` and `aud` checked, wrapped around [`ok_service`].
/// Call inside a tokio runtime; returns once the keys have loaded.
pub async fn tower_oauth2(issuer: &Issuer) -> LayerService {
    use tower_oauth2_resource_server::server::OAuth2ResourceServer;
    use tower_oauth2_resource_server::tenant::TenantConfiguration;
    use tower_oauth2_resource_server::validation::ClaimsValidationSpec;

    let audiences = vec![issuer.issuer.audience().to_owned()];
    let tenant = TenantConfiguration::builder(issuer.issuer.issuer())
        .jwks_url(issuer.issuer.jwks_uri())
        .audiences(&audiences)
        // Its `recommended` spec also requires `nbf`, which the benchmark tokens (like most
        // access tokens) do not carry: the same checks as the others instead.
        .claims_validation(
            ClaimsValidationSpec::new()
                .iss(issuer.issuer.issuer())
                .exp(true)
                .aud(&audiences),
        )
        .build()
        .await
        .expect("tenant");
    let server = OAuth2ResourceServer::<Claims>::builder()
        .add_tenant(tenant)
        .build()
        .await
        .expect("tower-oauth2-resource-server builds");
    let layer = server.into_layer::<Full<Bytes>>();
    let service = BoxCloneService::new(layer.layer(ok_service()));
    // Its JWKS producer runs in the background: wait until every token is accepted.
    for _ in 0..500 {
        let mut all = true;
        for alg in Alg::ALL {
            let response = service
                .clone()
                .oneshot(get_mcp(&issuer.token(alg)))
                .await
                .expect("infallible");
            all &= response.status().is_success();
        }
        if all {
            return service;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("tower-oauth2-resource-server never accepted the benchmark tokens");
}
