use std::future::Future;
use std::pin::Pin;

use aws_config::default_provider::credentials::DefaultCredentialsChain;
use aws_config::ecs::EcsCredentialsProvider;
use aws_config::imds::credentials::ImdsCredentialsProvider;
use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::web_identity_token::{StaticConfiguration, WebIdentityTokenCredentialsProvider};
use aws_config::{BehaviorVersion, Region};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;

use crate::config::{CredentialSource, Provider};

/// The role session name when the configuration gives none: shows up in
/// CloudTrail, so an operator can tell the proxy's calls apart.
const SESSION_NAME: &str = "yatagarasu";

/// The SDK provider for `source`. Endpoints, the IMDS address, the ECS URI
/// and the token file follow the SDK's documented environment variables
/// (`AWS_ENDPOINT_URL_STS`, `AWS_EC2_METADATA_SERVICE_ENDPOINT`,
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI`, `AWS_WEB_IDENTITY_TOKEN_FILE`, …).
pub(super) async fn build(source: &CredentialSource) -> SharedCredentialsProvider {
    let http = http_client();
    provider(&source.provider, Region::new(source.region.clone()), &http).await
}

/// The SDK's hyper client over rustls with ring (the proxy's one crypto
/// provider for TLS), trusting the system's root certificates.
fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

type Building<'a> = Pin<Box<dyn Future<Output = SharedCredentialsProvider> + Send + 'a>>;

/// Boxed because `assume_role` recurses into its `base`.
fn provider<'a>(source: &'a Provider, region: Region, http: &'a SharedHttpClient) -> Building<'a> {
    Box::pin(async move {
        let conf = ProviderConfig::without_region()
            .with_region(Some(region.clone()))
            .with_http_client(http.clone());
        match source {
            Provider::DefaultChain => SharedCredentialsProvider::new(
                DefaultCredentialsChain::builder()
                    .configure(conf)
                    .region(region)
                    .build()
                    .await,
            ),
            Provider::WebIdentity {
                role_arn,
                token_file,
                session_name,
            } => {
                let mut builder = WebIdentityTokenCredentialsProvider::builder().configure(&conf);
                if let (Some(role_arn), Some(token_file)) = (role_arn, token_file) {
                    builder = builder.static_configuration(StaticConfiguration {
                        web_identity_token_file: token_file.clone(),
                        role_arn: role_arn.clone(),
                        session_name: session_name.as_deref().unwrap_or(SESSION_NAME).to_owned(),
                    });
                }
                SharedCredentialsProvider::new(builder.build())
            }
            Provider::Imds => SharedCredentialsProvider::new(
                ImdsCredentialsProvider::builder().configure(&conf).build(),
            ),
            Provider::Ecs => SharedCredentialsProvider::new(
                EcsCredentialsProvider::builder().configure(&conf).build(),
            ),
            Provider::Profile { profile } => {
                let mut builder = ProfileFileCredentialsProvider::builder().configure(&conf);
                if let Some(profile) = profile {
                    builder = builder.profile_name(profile);
                }
                SharedCredentialsProvider::new(builder.build())
            }
            Provider::AssumeRole {
                role_arn,
                external_id,
                session_name,
                base,
            } => {
                let base = provider(base, region.clone(), http).await;
                let options = (external_id.as_deref(), session_name.as_deref());
                assume_role(role_arn, options, base, region, http).await
            }
        }
    })
}

/// STS `AssumeRole` signed with `base`'s credentials; the STS client is
/// configured like any SDK client (region, `AWS_ENDPOINT_URL_STS`).
/// `options` are the external id and the session name.
async fn assume_role(
    role_arn: &str,
    (external_id, session_name): (Option<&str>, Option<&str>),
    base: SharedCredentialsProvider,
    region: Region,
    http: &SharedHttpClient,
) -> SharedCredentialsProvider {
    let sdk = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .http_client(http.clone())
        .credentials_provider(base.clone())
        .load()
        .await;
    let mut builder = AssumeRoleProvider::builder(role_arn)
        .configure(&sdk)
        .session_name(session_name.unwrap_or(SESSION_NAME));
    if let Some(external_id) = external_id {
        builder = builder.external_id(external_id);
    }
    SharedCredentialsProvider::new(builder.build_from_provider(base).await)
}
