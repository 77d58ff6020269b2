//! Whose word to take for the client's address. A throttle per address is
//! only as good as the address: `x-forwarded-for` is believed from the
//! gateway (which proves itself with the forwarding secret) and from
//! configured peers, and otherwise the peer's own address counts, so a
//! direct gRPC caller cannot name a fresh address for every guess.
//!
//! A forwarding list (`x-forwarded-for`, each proxy appending the address
//! it received the request from) is read by one rule, here and in the
//! gateway ([`client_behind`]): walking from the right, the first entry
//! that is not a trusted proxy is the client, and an entry that is not an
//! address stops the walk at the last trusted hop. Everything left of an
//! untrusted or unreadable entry was written by someone nobody vouches for,
//! so it never counts.

use secrecy::{ExposeSecret, SecretString};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
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
    /// The client's address of a call from `peer` with `metadata`: if the
    /// caller is trusted, the client its `x-forwarded-for` names by
    /// [`client_behind`]'s walk (past `TRUSTED_FORWARDERS`), else the peer.
    pub fn client_address(&self, metadata: &MetadataMap, peer: Option<IpAddr>) -> Option<IpAddr> {
        if !self.trusts(metadata, peer) {
            return peer;
        }
        let values = metadata
            .get_all(FORWARDED_FOR)
            .iter()
            .map(|v| v.as_encoded_bytes());
        client_behind(values, |ip| self.trusted_forwarders.contains(ip)).or(peer)
    }

    /// The client's address of `req` (see [`Self::client_address`]), as
    /// the services' throttles and session lists record it: empty if
    /// neither the metadata nor the connection tells.
    pub fn client_of<T>(&self, req: &tonic::Request<T>) -> String {
        let peer = req.remote_addr().map(|a| a.ip());
        self.client_address(req.metadata(), peer)
            .map(|ip| ip.to_string())
            .unwrap_or_default()
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

/// The client named by a forwarding list that a trusted hop handed us:
/// `values` are the header's (or metadata's) values in the order received,
/// each a comma-separated list of hops, the nearest last.
///
/// Walking from the right, a hop that `is_trusted` is passed over, and the
/// first one that is not is the client. An entry that is not an address
/// (`unknown`, an RFC 7239 obfuscated identifier such as `_hidden`, an
/// empty entry, garbage) stops the walk: the request then counts as coming
/// from the last trusted hop, the one that wrote that entry, and never from
/// an entry further left, which its sender could have chosen. The last
/// trusted hop is also the answer when every entry is trusted.
///
/// `None` when the walk ends before any entry counted (no list, or its
/// rightmost entry unreadable): the answer is then the address the caller
/// walked from, the peer.
pub fn client_behind<'a>(
    values: impl DoubleEndedIterator<Item = &'a [u8]>,
    is_trusted: impl Fn(&IpAddr) -> bool,
) -> Option<IpAddr> {
    let mut last_trusted = None;
    for entry in values.rev().flat_map(|v| v.rsplit(|b| *b == b',')) {
        match parse_hop(entry) {
            Some(ip) if is_trusted(&ip) => last_trusted = Some(ip),
            Some(ip) => return Some(ip),
            None => return last_trusted,
        }
    }
    last_trusted
}

/// One hop of a forwarding list as an address, in any form proxies write
/// it: `ip`, `ip:port` (IPv4), `[ipv6]`, `[ipv6]:port`, with whitespace
/// around it. `None` for anything else, which ends a walk.
pub fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry.trim_ascii()).ok()?;
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(v6) = entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    entry.parse::<SocketAddr>().ok().map(|a| a.ip())
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

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn only_trusted_callers_name_the_client() {
        let peer = ip("10.0.0.9");
        let secret = SecretString::from("s3cret-of-the-gateway");
        let args = ForwardedArgs {
            forwarding_secret: Some(secret.clone()),
            trusted_forwarders: vec![ip("10.0.0.1"), ip("10.0.0.2")],
        };
        let claim = [(FORWARDED_FOR, "198.51.100.4, 203.0.113.7, 10.0.0.2")];
        // A stranger's claim is ignored.
        assert_eq!(args.client_address(&md(&claim), Some(peer)), Some(peer));
        // A wrong secret is a stranger.
        let wrong = [claim[0], (SECRET_KEY, "s3cret-of-the-gatewaX")];
        assert_eq!(args.client_address(&md(&wrong), Some(peer)), Some(peer));
        // The gateway's secret, or a configured peer, is believed: the
        // rightmost hop that is not a trusted forwarder is the client.
        let mut proved = md(&claim);
        prove(&mut proved, &secret);
        let client = ip("203.0.113.7");
        assert_eq!(args.client_address(&proved, Some(peer)), Some(client));
        let trusted_peer = Some(ip("10.0.0.1"));
        assert_eq!(args.client_address(&md(&claim), trusted_peer), Some(client));
        // Trusted but no usable claim: the peer.
        let junk = [(FORWARDED_FOR, "not-an-ip")];
        assert_eq!(args.client_address(&md(&junk), trusted_peer), trusted_peer);
        assert_eq!(args.client_address(&md(&[]), trusted_peer), trusted_peer);
        // Nothing configured: nobody is believed.
        let none = ForwardedArgs::default();
        assert_eq!(none.client_address(&proved, Some(peer)), Some(peer));
    }

    #[test]
    fn an_unreadable_hop_stops_the_walk_at_the_last_trusted_one() {
        let proxy = ip("10.0.0.1");
        let args = ForwardedArgs {
            forwarding_secret: None,
            trusted_forwarders: vec![proxy, ip("10.0.0.2")],
        };
        for list in [
            "203.0.113.9, unknown",
            "203.0.113.9, _hidden",
            "203.0.113.9, ",
            "203.0.113.9,,",
            "203.0.113.9, 10.0.0.5:notaport",
        ] {
            let claim = [(FORWARDED_FOR, list)];
            assert_eq!(
                args.client_address(&md(&claim), Some(proxy)),
                Some(proxy),
                "{list}"
            );
        }
        // Past a trusted hop, that hop (which wrote the unreadable entry).
        let claim = [(FORWARDED_FOR, "203.0.113.9, unknown, 10.0.0.2")];
        assert_eq!(
            args.client_address(&md(&claim), Some(proxy)),
            Some(ip("10.0.0.2"))
        );
        // Several metadata values are one list, in order.
        let mut m = md(&[(FORWARDED_FOR, "203.0.113.9")]);
        m.append(FORWARDED_FOR, "unknown".parse().expect("ascii"));
        assert_eq!(args.client_address(&m, Some(proxy)), Some(proxy));
        let mut m = md(&[(FORWARDED_FOR, "unknown")]);
        m.append(FORWARDED_FOR, "198.51.100.7".parse().expect("ascii"));
        assert_eq!(
            args.client_address(&m, Some(proxy)),
            Some(ip("198.51.100.7"))
        );
    }

    #[test]
    fn a_hop_is_read_in_every_form_proxies_write() {
        for (entry, expected) in [
            ("203.0.113.9", "203.0.113.9"),
            ("  203.0.113.9\t", "203.0.113.9"),
            ("203.0.113.9:4711", "203.0.113.9"),
            ("2001:db8::1", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            (" [2001:db8::1]:443 ", "2001:db8::1"),
            ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
        ] {
            assert_eq!(parse_hop(entry.as_bytes()), Some(ip(expected)), "{entry:?}");
        }
        for entry in [
            "unknown",
            "_hidden",
            "_SEVKISEK",
            "",
            "   ",
            "[203.0.113.9]",
            "[2001:db8::1",
            "203.0.113.9:",
            "203.0.113.9:65536",
            "2001:db8::1:443:x",
            "example.com",
            "\"[2001:db8::1]\"",
        ] {
            assert_eq!(parse_hop(entry.as_bytes()), None, "{entry:?}");
        }
        assert_eq!(parse_hop(b"203.0.113.9\xff"), None);
    }

    #[test]
    fn the_walk_takes_the_rightmost_untrusted_hop() {
        let trusted = [ip("10.0.0.1"), ip("2001:db8::10")];
        let walk = |values: &[&str]| {
            client_behind(values.iter().map(|v| v.as_bytes()), |ip| {
                trusted.contains(ip)
            })
        };
        // A client-chosen entry on the left never counts.
        assert_eq!(
            walk(&["198.51.100.1, 203.0.113.9:4711"]),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            walk(&["198.51.100.1, [2001:db8::1]:443, 10.0.0.1"]),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            walk(&["198.51.100.1", "[2001:db8::10], 10.0.0.1:80"]),
            Some(ip("198.51.100.1"))
        );
        // Unreadable: the last trusted hop walked, or none (the peer).
        assert_eq!(walk(&["198.51.100.1, unknown"]), None);
        assert_eq!(
            walk(&["198.51.100.1, unknown, [2001:db8::10]"]),
            Some(ip("2001:db8::10"))
        );
        // Every hop trusted: the leftmost of them, the first proxy.
        assert_eq!(walk(&["10.0.0.1, [2001:db8::10]"]), Some(ip("10.0.0.1")));
        assert_eq!(walk(&[]), None);
    }
}
