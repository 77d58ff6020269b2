//! gRPC server plumbing every service uses: health, reflection, listeners.

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub use tonic_health::server::HealthReporter;

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(suite_proto::FILE_DESCRIPTOR_SET)
        // Health is served too, so describe it (grpcurl can then call it by name).
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// The reflection service (v1) over the whole contract, so `grpcurl` and
/// other generic clients can list and call every service.
pub fn reflection_service() -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    reflection_builder().build_v1()
}

/// The same on the older v1alpha protocol, which many clients (Python's
/// grpcio-reflection, older grpcurl) still speak.
pub fn reflection_service_v1alpha() -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    reflection_builder().build_v1alpha()
}

/// The incoming-connection stream of a bound listener, for
/// `serve_with_incoming_shutdown` (tests bind port 0 and read the address first).
pub fn incoming(listener: TcpListener) -> TcpListenerStream {
    TcpListenerStream::new(listener)
}

/// Binds a TCP listener, naming the address in the error.
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
