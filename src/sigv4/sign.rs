use std::sync::LazyLock;
use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request};

use crate::backend::S3Backend;
use crate::error::ProxyError;

/// The signing settings, built once: `SigningSettings::default()` allocates
/// its list of excluded headers on every call.
static SETTINGS: LazyLock<SigningSettings> = LazyLock::new(settings);

fn settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    // Only signed headers are handed to the signer (see `is_signed`), so
    // there is nothing to exclude, and no list to allocate per request.
    settings.excluded_headers = None;
    settings
}

/// The headers the signature covers: `Host` and every `x-amz-*` header, the
/// set S3 requires. The others (`Range`, the conditionals) travel unsigned,
/// which S3 accepts; each signed header costs the signer a normalise-and-sort
/// on every request.
pub(crate) fn is_signed(name: &HeaderName) -> bool {
    name == http::header::HOST || name.as_str().starts_with("x-amz-")
}

/// The headers that sign one request: `Authorization`, `x-amz-date`,
/// `x-amz-content-sha256` and, with a session token,
/// `x-amz-security-token`.
pub(crate) type SigningHeaders = Vec<(HeaderName, HeaderValue)>;

/// Signs `request` in place for `backend` (no-op for anonymous buckets);
/// with run-time credentials, fails when none are valid at `time`.
///
/// The request must already carry every header that will be sent (`Host`
/// included); headers added afterwards are not covered by the signature.
pub fn sign_request<B>(
    request: &mut Request<B>,
    backend: &S3Backend,
    time: SystemTime,
) -> Result<(), ProxyError> {
    if let Some(live) = &backend.credentials {
        return live.with_current(time, |current| {
            sign_with(request, &current.identity, &backend.region, time)
        })?;
    }
    match &backend.identity {
        Some(identity) => sign_with(request, identity, &backend.region, time),
        None => Ok(()),
    }
}

fn sign_with<B>(
    request: &mut Request<B>,
    identity: &Identity,
    region: &str,
    time: SystemTime,
) -> Result<(), ProxyError> {
    let uri = request.uri().to_string();
    let signing = signing_headers(
        identity,
        region,
        request.method(),
        &uri,
        request.headers(),
        time,
    )?;
    apply(request, &signing);
    Ok(())
}

/// Runs the signer over the request's signed headers ([`is_signed`]).
pub(crate) fn signing_headers(
    identity: &Identity,
    region: &str,
    method: &Method,
    uri: &str,
    headers: &HeaderMap,
    time: SystemTime,
) -> Result<SigningHeaders, ProxyError> {
    let failed = |e: &dyn std::fmt::Display| ProxyError::Signing(e.to_string());
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("s3")
        .time(time)
        .settings(SETTINGS.clone())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let mut signed = Vec::with_capacity(4);
    for (name, value) in headers.iter().filter(|(n, _)| is_signed(n)) {
        let value = value
            .to_str()
            .map_err(|_| ProxyError::Signing(format!("header {name} is not visible ASCII")))?;
        signed.push((name.as_str(), value));
    }
    let signable = SignableRequest::new(
        method.as_str(),
        uri,
        signed.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    let (new_headers, _params) = instructions.into_parts();
    let mut signing = Vec::with_capacity(new_headers.len());
    for header in new_headers {
        let name = HeaderName::from_bytes(header.name().as_bytes()).map_err(|e| failed(&e))?;
        let mut value = HeaderValue::from_str(header.value()).map_err(|e| failed(&e))?;
        // The signature too: kept out of `Debug` output and HPACK tables.
        value.set_sensitive(header.sensitive() || name == http::header::AUTHORIZATION);
        signing.push((name, value));
    }
    Ok(signing)
}

/// Puts the signing headers on the request.
pub(crate) fn apply<B>(request: &mut Request<B>, signing: &[(HeaderName, HeaderValue)]) {
    let headers = request.headers_mut();
    for (name, value) in signing {
        headers.insert(name.clone(), value.clone());
    }
}

#[cfg(test)]
mod tests {
    use http::header;

    use super::*;

    #[test]
    fn host_and_amz_headers_are_signed_the_others_travel_unsigned() {
        let backend = super::super::backend_for_tests(None);
        let mut request = Request::get(backend.object_uri("a/b.txt", "").unwrap())
            .body(())
            .unwrap();
        let headers = request.headers_mut();
        headers.insert(header::HOST, backend.host().clone());
        headers.insert(header::RANGE, HeaderValue::from_static("bytes=0-9"));
        headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"e\""));
        headers.insert(
            "x-amz-server-side-encryption-customer-algorithm",
            HeaderValue::from_static("AES256"),
        );
        sign_request(&mut request, &backend, SystemTime::now()).unwrap();
        let authorization = request.headers()[header::AUTHORIZATION].to_str().unwrap();
        assert!(
            authorization.contains(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;\
                 x-amz-server-side-encryption-customer-algorithm,"
            ),
            "{authorization}"
        );
        assert!(request.headers()[header::AUTHORIZATION].is_sensitive());
        assert_eq!(request.headers()[header::RANGE], "bytes=0-9");
    }
}
