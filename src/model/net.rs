//! Addresses and address ranges of user networks (`subnets`, `network_addresses`): parsed
//! once here, so validation can say that a fixed address lies outside its network and
//! every backend writes the same text back.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

/// An address range, `172.16.238.0/24` or `fd00:1::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub address: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Whether `address` lies in the range (an IPv4 address never lies in an IPv6 range).
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address) {
            (IpAddr::V4(range), IpAddr::V4(address)) => {
                prefix_bits(&range.octets(), self.prefix)
                    == prefix_bits(&address.octets(), self.prefix)
            }
            (IpAddr::V6(range), IpAddr::V6(address)) => {
                prefix_bits(&range.octets(), self.prefix)
                    == prefix_bits(&address.octets(), self.prefix)
            }
            _ => false,
        }
    }

    /// Whether `other` lies wholly in this range.
    pub fn covers(&self, other: &Cidr) -> bool {
        other.prefix >= self.prefix && self.contains(other.address)
    }

    pub fn is_ipv6(&self) -> bool {
        self.address.is_ipv6()
    }
}

/// The first `prefix` bits of `octets`, the rest zeroed.
fn prefix_bits<const N: usize>(octets: &[u8; N], prefix: u8) -> [u8; N] {
    let mut kept = *octets;
    for (index, octet) in kept.iter_mut().enumerate() {
        let start = index * 8;
        let bits = usize::from(prefix).saturating_sub(start).min(8);
        *octet &= if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
    }
    kept
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} has no `/prefix`"))?;
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("{address:?} is no IP address"))?;
        let longest = if address.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|prefix| *prefix <= longest)
            .ok_or_else(|| format!("{prefix:?} is no prefix length (0 to {longest})"))?;
        Ok(Cidr { address, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

/// Starts the message of a value the contract let through and the parser refused (an
/// octet past 255, a prefix past 32): the user's mistake, said at the field as it is.
pub const ADDRESS_ERROR: &str = "malformed address: ";

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse()
            .map_err(|reason| serde::de::Error::custom(format!("{ADDRESS_ERROR}{reason}")))
    }
}

/// An optional IP address, refused in the words of [`ADDRESS_ERROR`].
fn optional_address<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<IpAddr>, D::Error> {
    let Some(text) = Option::<String>::deserialize(deserializer)? else {
        return Ok(None);
    };
    text.parse()
        .map(Some)
        .map_err(|_| serde::de::Error::custom(format!("{ADDRESS_ERROR}{text:?} is no IP address")))
}

/// One address range of a network.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub subnet: Cidr,
    #[serde(default, deserialize_with = "optional_address")]
    pub gateway: Option<IpAddr>,
    pub ip_range: Option<Cidr>,
}

/// A service's fixed addresses on one network.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NetworkAddress {
    #[serde(default, deserialize_with = "optional_address")]
    pub ipv4: Option<IpAddr>,
    #[serde(default, deserialize_with = "optional_address")]
    pub ipv6: Option<IpAddr>,
}

impl NetworkAddress {
    /// The addresses given, IPv4 first.
    pub fn addresses(&self) -> impl Iterator<Item = IpAddr> {
        self.ipv4.into_iter().chain(self.ipv6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().expect("a range")
    }

    #[test]
    fn ranges_hold_their_addresses_only() {
        let range = cidr("172.16.238.0/24");
        assert!(range.contains("172.16.238.10".parse().unwrap()));
        assert!(!range.contains("172.16.239.10".parse().unwrap()));
        assert!(!range.contains("fd00::1".parse().unwrap()));
        assert!(cidr("10.0.0.0/8").covers(&cidr("10.1.0.0/16")));
        assert!(!cidr("10.1.0.0/16").covers(&cidr("10.0.0.0/8")));
        let odd = cidr("10.0.0.0/13");
        assert!(odd.contains("10.7.255.255".parse().unwrap()));
        assert!(!odd.contains("10.8.0.0".parse().unwrap()));
        let v6 = cidr("fd00:1::/64");
        assert!(v6.contains("fd00:1::10".parse().unwrap()));
        assert!(!v6.contains("fd00:2::10".parse().unwrap()));
        assert!(cidr("0.0.0.0/0").contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn malformed_ranges_say_why() {
        assert_eq!(
            "10.0.0.0".parse::<Cidr>().unwrap_err(),
            "\"10.0.0.0\" has no `/prefix`"
        );
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>().unwrap_err(),
            "\"33\" is no prefix length (0 to 32)"
        );
        assert_eq!(
            "300.0.0.0/8".parse::<Cidr>().unwrap_err(),
            "\"300.0.0.0\" is no IP address"
        );
        assert_eq!(cidr("fd00:1::/64").to_string(), "fd00:1::/64");
    }
}
