//! OTLP trace export: spans encoded by [`encode`] as they end, batched by
//! [`processor`], and sent over gRPC (tonic) or HTTP/protobuf (hyper) with
//! the standard settings: endpoint, protocol, headers and timeout
//! (`OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT,PROTOCOL,HEADERS,TIMEOUT}`).
//!
//! It stands in for `opentelemetry-otlp` and the SDK's batch processor for
//! cost only (see [`encode`] and [`processor`]); what goes on the wire is the
//! same OTLP.

pub mod encode;
pub mod processor;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use http_body_util::Full;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};
use suite_proto::codec::BytesCodec;

const GRPC_EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// How spans travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

#[derive(Debug, Clone)]
enum Transport {
    Grpc {
        channel: tonic::transport::Channel,
        metadata: tonic::metadata::MetadataMap,
    },
    Http(Box<HttpTransport>),
}

#[derive(Debug, Clone)]
struct HttpTransport {
    client: Client<HttpConnector, Full<Bytes>>,
    url: Uri,
    headers: HeaderMap,
}

/// Sends span batches to one OTLP endpoint.
#[derive(Debug)]
pub struct OtlpExporter {
    transport: Transport,
    timeout: Duration,
    /// Whether the last export failed: failures are logged when they start
    /// and when they end, not once per batch.
    failing: AtomicBool,
}

impl OtlpExporter {
    /// An exporter to `url` (for HTTP, the full URL of the traces path),
    /// sending `headers` with each batch and giving up on one after
    /// `timeout`. Connects lazily: a collector that is down is no error here.
    pub fn new(
        protocol: Protocol,
        url: &str,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<Self, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("endpoint {url:?} is not a URL: {e}"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some("https") => {
                return Err(format!(
                    "endpoint {url:?}: this build sends OTLP without TLS; \
                     point it at a collector (or agent) over http"
                ));
            }
            _ => return Err(format!("endpoint {url:?}: use an http:// URL")),
        }
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = HeaderName::try_from(name.as_str())
                .map_err(|_| format!("header name {name:?} is not valid"))?;
            let value = HeaderValue::try_from(value.as_str())
                .map_err(|_| format!("the value of header {name} is not valid"))?;
            map.append(name, value);
        }
        let transport = match protocol {
            Protocol::Grpc => Transport::Grpc {
                channel: tonic::transport::Endpoint::from(uri)
                    .connect_timeout(timeout)
                    .connect_lazy(),
                metadata: tonic::metadata::MetadataMap::from_headers(map),
            },
            Protocol::HttpProtobuf => Transport::Http(Box::new(HttpTransport {
                client: Client::builder(TokioExecutor::new()).build_http(),
                url: uri,
                headers: map,
            })),
        };
        Ok(Self {
            transport,
            timeout,
            failing: AtomicBool::new(false),
        })
    }

    /// Sends one encoded `ExportTraceServiceRequest` of `spans` spans.
    /// Failures are logged when they start and when they end, not once per
    /// batch.
    pub async fn send(&self, body: Vec<u8>, spans: usize) -> Result<(), String> {
        let sent = match &self.transport {
            Transport::Grpc { channel, metadata } => {
                send_grpc(channel.clone(), metadata.clone(), body, self.timeout).await
            }
            Transport::Http(http) => tokio::time::timeout(
                self.timeout,
                send_http(
                    http.client.clone(),
                    http.url.clone(),
                    http.headers.clone(),
                    body,
                ),
            )
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", self.timeout))),
        };
        match &sent {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!("exporting spans again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, spans, "exporting spans failed; dropping them until it works again");
                }
            }
        }
        sent
    }
}

async fn send_grpc(
    channel: tonic::transport::Channel,
    metadata: tonic::metadata::MetadataMap,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<(), String> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| e.to_string())?;
    let mut request = tonic::Request::new(Bytes::from(body));
    *request.metadata_mut() = metadata;
    request.set_timeout(timeout);
    grpc.unary(
        request,
        http::uri::PathAndQuery::from_static(GRPC_EXPORT_PATH),
        BytesCodec,
    )
    .await
    .map(drop)
    .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

async fn send_http(
    client: Client<HttpConnector, Full<Bytes>>,
    url: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<(), String> {
    let mut request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    request.headers_mut().extend(headers);
    let response = client.request(request).await.map_err(|e| e.to_string())?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", response.status()))
    }
}

/// `OTEL_EXPORTER_OTLP_HEADERS`: `name=value` pairs separated by commas,
/// values percent-encoded (W3C Baggage syntax, as the specification says).
pub fn parse_headers(s: &str) -> Result<Vec<(String, String)>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} is not name=value"))?;
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .map_err(|_| format!("the value of {:?} is not UTF-8", name.trim()))?;
            Ok((name.trim().to_ascii_lowercase(), value.into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_pairs_with_percent_encoded_values() {
        assert_eq!(
            parse_headers("api-key=a%20b%2Cc, X-Tenant = blue ,,").expect("valid"),
            vec![
                ("api-key".to_owned(), "a b,c".to_owned()),
                ("x-tenant".to_owned(), "blue".to_owned()),
            ]
        );
        assert_eq!(parse_headers("").expect("empty"), vec![]);
        assert!(
            parse_headers("novalue")
                .expect_err("no =")
                .contains("novalue")
        );
        assert!(parse_headers("k=%FF").expect_err("not UTF-8").contains("k"));
    }

    #[test]
    fn only_plain_http_endpoints_are_taken() {
        let t = Duration::from_secs(1);
        for (url, why) in [
            ("https://collector:4317", "without TLS"),
            ("collector:4317", "http://"),
            ("not a url", "not a URL"),
        ] {
            let e = OtlpExporter::new(Protocol::Grpc, url, &[], t).expect_err(url);
            assert!(e.contains(why), "{url}: {e}");
        }
        let bad_header = [("bad header".to_owned(), "x".to_owned())];
        assert!(OtlpExporter::new(Protocol::Grpc, "http://c:4317", &bad_header, t).is_err());
    }
}
