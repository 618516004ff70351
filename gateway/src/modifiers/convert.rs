//! Converting between the gateway's HTTP types and the plain data that
//! crosses the ABI, refusing what HTTP does not allow.

use abi_stable::std_types::{RString, RVec};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use sepia_plugin_api::{Header, PluginError, Response as PluginResponse};

use crate::{
    body::{full, ResponseBody},
    error::ProxyError,
    forwarding::strip_hop_by_hop,
};

/// A plugin's error, attributed.
pub fn plugin_error(plugin: &str, error: PluginError) -> ProxyError {
    ProxyError::Plugin {
        plugin: plugin.to_owned(),
        error,
    }
}

/// Headers as ABI data.
pub fn to_plugin_headers(headers: &HeaderMap) -> RVec<Header> {
    headers
        .iter()
        .map(|(name, value)| Header {
            name: RString::from(name.as_str()),
            value: RVec::from(value.as_bytes().to_vec()),
        })
        .collect()
}

/// ABI headers back, refusing names or values HTTP does not allow.
pub fn from_plugin_headers(
    headers: &[Header],
    what: &str,
    plugin: &str,
) -> Result<HeaderMap, ProxyError> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for header in headers {
        let name = HeaderName::from_bytes(header.name.as_bytes());
        let value = HeaderValue::from_bytes(&header.value);
        match (name, value) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => {
                return Err(plugin_error(
                    plugin,
                    PluginError::internal(format!(
                        "the plugin set an invalid {what} header \"{}\"",
                        header.name
                    )),
                ))
            }
        }
    }
    Ok(map)
}

/// A plugin's response as plain HTTP parts, refusing a status or headers
/// HTTP does not allow.
pub fn plugin_reply(
    response: PluginResponse,
    plugin: &str,
) -> Result<(StatusCode, HeaderMap, Bytes), ProxyError> {
    let status = StatusCode::from_u16(response.status).map_err(|_| {
        plugin_error(
            plugin,
            PluginError::internal(format!(
                "the plugin set an invalid status {}",
                response.status
            )),
        )
    })?;
    let headers = from_plugin_headers(&response.headers, "response", plugin)?;
    Ok((status, headers, Bytes::from(response.body.into_vec())))
}

/// A buffered answer for the client: connection-level headers and a stale
/// `content-length` dropped (the server sets its own).
pub fn buffered_response(
    status: StatusCode,
    mut headers: HeaderMap,
    body: Bytes,
) -> Response<ResponseBody> {
    headers.remove(header::CONTENT_LENGTH);
    strip_hop_by_hop(&mut headers);
    let mut out = Response::new(full(body));
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    out
}

/// A plugin's response as the client's.
pub fn from_plugin_response(
    response: PluginResponse,
    plugin: &str,
) -> Result<Response<ResponseBody>, ProxyError> {
    let (status, headers, body) = plugin_reply(response, plugin)?;
    Ok(buffered_response(status, headers, body))
}
