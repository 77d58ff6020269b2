//! Whose word to take for the client's address. A throttle per address is
//! only as good as the address: `x-forwarded-for` is believed from the
//! gateway (which proves itself with the forwarding secret) and from
//! configured peers, and otherwise the peer's own address counts, so a
//! direct gRPC caller cannot name a fresh address for every guess.

use secrecy::{ExposeSecret, SecretString};
use std::net::IpAddr;
use subtle::ConstantTimeEq;
use tonic::metadata::{MetadataMap, MetadataValue};

/// The metadata key the gateway proves itself with.
pub const SECRET_KEY: &str = "x-suite-forwarding-secret";
/// The client's address, as the gateway saw it.
pub const FORWARDED_FOR: &str = "x-forwarded-for";

/// Who may tell a service the client's address.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ForwardedArgs {
    /// A secret shared with the gateway: a call carrying it (as
    /// `x-suite-forwarding-secret`) is believed about the client's address
    /// (`x-forwarded-for`). Unset: only `TRUSTED_FORWARDERS` are.
    #[arg(long, env = "FORWARDING_SECRET", hide_env_values = true)]
    pub forwarding_secret: Option<SecretString>,

    /// Peer addresses whose `x-forwarded-for` is believed (comma-separated
    /// IPs), e.g. a proxy in front of the gRPC port.
    #[arg(long, env = "TRUSTED_FORWARDERS", value_delimiter = ',')]
    pub trusted_forwarders: Vec<IpAddr>,
}

impl ForwardedArgs {
    /// The client's address of a call from `peer` with `metadata`: the first
    /// `x-forwarded-for` hop if the caller is trusted, else the peer.
    pub fn client_address(&self, metadata: &MetadataMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        if self.trusts(metadata, peer)
            && let Some(forwarded) = forwarded_for(metadata)
        {
            return Some(forwarded);
        }
        peer
    }

    fn trusts(&self, metadata: &MetadataMap, peer: Option<IpAddr>) -> bool {
        if peer.is_some_and(|p| self.trusted_forwarders.contains(&p)) {
            return true;
        }
        let (Some(secret), Some(given)) = (&self.forwarding_secret, metadata.get(SECRET_KEY))
        else {
            return false;
        };
        // Constant time: the comparison must not tell a prober how much of
        // a guess was right.
        bool::from(secret.expose_secret().as_bytes().ct_eq(given.as_bytes()))
    }
}

/// The first hop of `x-forwarded-for`, if it is an address.
fn forwarded_for(metadata: &MetadataMap) -> Option<IpAddr> {
    metadata
        .get(FORWARDED_FOR)?
        .to_str()
        .ok()?
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// Adds the gateway's proof to a call's metadata (it is never logged:
/// sensitive values stay out of HPACK's table and of debug output).
pub fn prove(metadata: &mut MetadataMap, secret: &SecretString) {
    if let Ok(mut v) = MetadataValue::try_from(secret.expose_secret()) {
        v.set_sensitive(true);
        metadata.insert(SECRET_KEY, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().expect("ascii"));
        }
        m
    }

    #[test]
    fn only_trusted_callers_name_the_client() {
        let peer: IpAddr = "10.0.0.9".parse().expect("ip");
        let secret = SecretString::from("s3cret-of-the-gateway");
        let args = ForwardedArgs {
            forwarding_secret: Some(secret.clone()),
            trusted_forwarders: vec!["10.0.0.1".parse().expect("ip")],
        };
        let claim = [(FORWARDED_FOR, "203.0.113.7, 10.0.0.2")];
        // A stranger's claim is ignored.
        assert_eq!(args.client_address(&md(&claim), Some(peer)), Some(peer));
        // A wrong secret is a stranger.
        let wrong = [claim[0], (SECRET_KEY, "s3cret-of-the-gatewaX")];
        assert_eq!(args.client_address(&md(&wrong), Some(peer)), Some(peer));
        // The gateway's secret, or a configured peer, is believed.
        let mut proved = md(&claim);
        prove(&mut proved, &secret);
        let client: IpAddr = "203.0.113.7".parse().expect("ip");
        assert_eq!(args.client_address(&proved, Some(peer)), Some(client));
        let trusted_peer = "10.0.0.1".parse().ok();
        assert_eq!(args.client_address(&md(&claim), trusted_peer), Some(client));
        // Trusted but no usable claim: the peer.
        let junk = [(FORWARDED_FOR, "not-an-ip")];
        assert_eq!(args.client_address(&md(&junk), trusted_peer), trusted_peer);
        // Nothing configured: nobody is believed.
        let none = ForwardedArgs::default();
        assert_eq!(none.client_address(&proved, Some(peer)), Some(peer));
    }
}
