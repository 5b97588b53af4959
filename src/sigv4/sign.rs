use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderName, HeaderValue, Request};

use crate::error::ProxyError;
use crate::upstream::S3Backend;

fn settings() -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings
}

/// Signs `request` in place for `backend` (no-op for anonymous buckets).
///
/// The request must already carry every header that will be sent (`Host`
/// included); headers added afterwards are not covered by the signature.
pub fn sign_request<B>(
    request: &mut Request<B>,
    backend: &S3Backend,
    time: SystemTime,
) -> Result<(), ProxyError> {
    let Some(identity) = &backend.identity else {
        return Ok(());
    };
    let failed = |e: &dyn std::fmt::Display| ProxyError::Signing(e.to_string());
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(&backend.region)
        .name("s3")
        .time(time)
        .settings(settings())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let uri = request.uri().to_string();
    let mut headers = Vec::with_capacity(request.headers().len());
    for (name, value) in request.headers() {
        let value = value
            .to_str()
            .map_err(|_| ProxyError::Signing(format!("header {name} is not visible ASCII")))?;
        headers.push((name.as_str(), value));
    }
    let signable = SignableRequest::new(
        request.method().as_str(),
        &uri,
        headers.into_iter(),
        SignableBody::Bytes(&[]),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    let (new_headers, _params) = instructions.into_parts();
    for header in new_headers {
        let name = HeaderName::from_bytes(header.name().as_bytes()).map_err(|e| failed(&e))?;
        let mut value = HeaderValue::from_str(header.value()).map_err(|e| failed(&e))?;
        value.set_sensitive(header.sensitive());
        request.headers_mut().insert(name, value);
    }
    Ok(())
}
