//! Server reflection: the whole contract described, only the services a
//! server really serves listed, so `grpcurl` and grpcio clients find them.

/// A reflection builder that describes the whole contract (and health) but
/// lists only `services` and the standard ones this server really serves.
fn reflection_builder(services: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(suite_proto::FILE_DESCRIPTOR_SET)
        // Health is served too, so describe it (grpcurl can then call it by name).
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for name in services.iter().chain(&[
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]) {
        builder = builder.with_service_name(*name);
    }
    builder
}

/// The reflection service (v1), listing `services` (plus health and
/// reflection), so `grpcurl` and other generic clients can find and call them.
pub fn reflection_service(
    services: &[&str],
) -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    reflection_builder(services).build_v1()
}

/// The same on the older v1alpha protocol, which many clients (Python's
/// grpcio-reflection, older grpcurl) still speak.
pub fn reflection_service_v1alpha(
    services: &[&str],
) -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    reflection_builder(services).build_v1alpha()
}
