//! Whom a rule applies to: the who-selectors of NanoMQ's ACL file (`username`, `clientid`,
//! `ipaddr`, `ipaddrs`, `and`, `or`), matched against a client's [`Identity`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use crate::AclError;

/// The client an ACL decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    /// MQTT client identifier.
    pub client_id: &'a str,
    /// Username from CONNECT, if any.
    pub username: Option<&'a str>,
    /// Client IP address, if known.
    pub ip: Option<IpAddr>,
}

/// A rule's who-selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Every client (no selector, or a selector whose value is `"#"`).
    Any,
    /// Clients with exactly this username.
    Username(String),
    /// Clients with exactly this client identifier.
    ClientId(String),
    /// Clients whose address is this one or in this network.
    Ip(IpMatch),
    /// Clients matching every one of these.
    And(Vec<Who>),
    /// Clients matching at least one of these.
    Or(Vec<Who>),
}

impl Who {
    /// Whether the client `who` is selected.
    pub fn matches(&self, who: &Identity<'_>) -> bool {
        match self {
            Who::Any => true,
            Who::Username(name) => who.username == Some(name.as_str()),
            Who::ClientId(id) => who.client_id == id,
            Who::Ip(net) => who.ip.is_some_and(|ip| net.contains(ip)),
            Who::And(all) => all.iter().all(|w| w.matches(who)),
            Who::Or(any) => any.iter().any(|w| w.matches(who)),
        }
    }

    /// Converts a parsed selector. `ipaddr` values may be CIDR networks; `ipaddrs` becomes
    /// [`Who::Or`] of its addresses (a `"#"` among them means anyone).
    pub fn from_config(who: &tern_config::Who) -> Result<Self, AclError> {
        use tern_config::Who as C;
        Ok(match who {
            C::Any => Who::Any,
            C::Username(name) => Who::Username(name.clone()),
            C::ClientId(id) => Who::ClientId(id.clone()),
            C::IpAddr(ip) => ip_selector(ip)?,
            C::IpAddrs(ips) => {
                Who::Or(ips.iter().map(|ip| ip_selector(ip)).collect::<Result<_, _>>()?)
            }
            C::And(all) => Who::And(all.iter().map(Who::from_config).collect::<Result<_, _>>()?),
            C::Or(any) => Who::Or(any.iter().map(Who::from_config).collect::<Result<_, _>>()?),
        })
    }
}

fn ip_selector(value: &str) -> Result<Who, AclError> {
    if value.trim() == "#" { Ok(Who::Any) } else { Ok(Who::Ip(value.parse()?)) }
}

/// An IP address (`10.0.0.7`, `::1`) or network in CIDR notation (`10.0.0.0/8`, `fd00::/8`).
///
/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.7`, as a dual-stack listener reports IPv4 clients)
/// are compared as the IPv4 address they carry, on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpMatch {
    /// The network address, host bits cleared.
    network: IpAddr,
    /// Prefix length: 32 (IPv4) or 128 (IPv6) for one address.
    prefix: u8,
}

impl IpMatch {
    /// Exactly this address.
    pub fn exact(ip: IpAddr) -> Self {
        let ip = ip.to_canonical();
        Self { network: ip, prefix: max_prefix(ip) }
    }

    /// The network `network/prefix` (host bits are cleared).
    pub fn network(network: IpAddr, prefix: u8) -> Result<Self, AclError> {
        let (network, prefix) = match network {
            IpAddr::V6(v6) if prefix >= 96 && v6.to_ipv4_mapped().is_some() => {
                (network.to_canonical(), prefix - 96)
            }
            _ => (network, prefix),
        };
        if prefix > max_prefix(network) {
            return Err(AclError::InvalidIp {
                value: format!("{network}/{prefix}"),
                reason: format!("the prefix length is at most {}", max_prefix(network)),
            });
        }
        Ok(Self { network: mask(network, prefix), prefix })
    }

    /// Whether `ip` is this address or inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.network
            }
            _ => false,
        }
    }
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() { 32 } else { 128 }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

impl FromStr for IpMatch {
    type Err = AclError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = s.trim();
        let invalid = |reason: &str| AclError::InvalidIp {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        match value.split_once('/') {
            None => {
                let ip: IpAddr =
                    value.parse().map_err(|_| invalid("not an IPv4 or IPv6 address"))?;
                Ok(Self::exact(ip))
            }
            Some((addr, prefix)) => {
                let ip: IpAddr =
                    addr.parse().map_err(|_| invalid("not an IPv4 or IPv6 network address"))?;
                let prefix: u8 = prefix.parse().map_err(|_| invalid("bad prefix length"))?;
                Self::network(ip, prefix)
            }
        }
    }
}

impl fmt::Display for IpMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix == max_prefix(self.network) {
            write!(f, "{}", self.network)
        } else {
            write!(f, "{}/{}", self.network, self.prefix)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn exact_and_cidr() {
        let one: IpMatch = "10.0.0.7".parse().unwrap();
        assert!(one.contains(ip("10.0.0.7")));
        assert!(!one.contains(ip("10.0.0.8")));
        assert!(one.contains(ip("::ffff:10.0.0.7")));
        let net: IpMatch = "10.1.2.3/8".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(ip("10.200.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::1")));
        let all: IpMatch = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("192.168.1.1")));
        let v6: IpMatch = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let mapped: IpMatch = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped.to_string(), "10.0.0.0/8");
        assert!(mapped.contains(ip("10.9.9.9")));
        let lo: IpMatch = "::1".parse().unwrap();
        assert!(lo.contains(ip("::1")));
        for bad in ["10.0.0", "10.0.0.0/33", "::/129", "x", "10.0.0.0/", ""] {
            assert!(bad.parse::<IpMatch>().is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors() {
        let id = Identity { client_id: "c1", username: Some("u1"), ip: Some(ip("10.0.0.1")) };
        assert!(Who::Any.matches(&id));
        assert!(Who::Username("u1".into()).matches(&id));
        assert!(!Who::Username("c1".into()).matches(&id));
        assert!(Who::ClientId("c1".into()).matches(&id));
        assert!(
            Who::And(vec![Who::Username("u1".into()), Who::ClientId("c1".into())]).matches(&id)
        );
        assert!(
            !Who::And(vec![Who::Username("u1".into()), Who::ClientId("c2".into())]).matches(&id)
        );
        assert!(Who::Or(vec![Who::Username("u2".into()), Who::ClientId("c1".into())]).matches(&id));
        let anon = Identity { client_id: "c1", username: None, ip: None };
        assert!(!Who::Username("u1".into()).matches(&anon));
        assert!(!Who::Ip("0.0.0.0/0".parse().unwrap()).matches(&anon));
    }
}
