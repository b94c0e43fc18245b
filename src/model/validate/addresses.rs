//! Subnets and fixed addresses that the engine would refuse at deploy time (a gateway
//! outside its range, two networks on overlapping ranges, an address no subnet holds, two
//! containers on one address), said at the user's field instead.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::super::net::Cidr;
use super::super::{Network, Service, Stack};
use crate::error::Diagnostic;

/// Problems with the stack's subnets and its services' fixed addresses.
pub fn addresses(stack: &Stack, found: &mut Vec<Diagnostic>) {
    for (key, network) in &stack.networks {
        subnets(key, network, found);
    }
    overlapping_networks(stack, found);
    let mut taken: BTreeMap<(&str, IpAddr), &str> = BTreeMap::new();
    for (name, service) in &stack.services {
        joined_only(name, service, found);
        for (network, address) in &service.network_addresses {
            let field = format!("services.{name}.network_addresses.{network}");
            if service.replicas != 1 || service.global {
                found.push(
                    Diagnostic::new(
                        &field,
                        "a fixed address belongs to one container; this service runs several",
                    )
                    .with_hint("leave out `replicas` and `global`, or the fixed address"),
                );
            }
            let settings = stack.networks.get(network).cloned().unwrap_or_default();
            for (family, ip) in [("ipv4", address.ipv4), ("ipv6", address.ipv6)] {
                let Some(ip) = ip else { continue };
                let at = format!("{field}.{family}");
                if let Some(problem) = misplaced(network, &settings, family, ip) {
                    found.push(problem(at.clone()));
                } else if let Some(other) = taken.insert((network.as_str(), ip), name.as_str()) {
                    found.push(Diagnostic::new(
                        at,
                        format!("{ip} on `{network}` is also the address of `{other}`"),
                    ));
                }
            }
        }
    }
}

/// A network's own ranges: inside each other as they must be, and not on a network berth
/// does not create.
fn subnets(key: &str, network: &Network, found: &mut Vec<Diagnostic>) {
    let field = format!("networks.{key}");
    if network.external && (!network.subnets.is_empty() || network.enable_ipv6) {
        found.push(
            Diagnostic::new(
                &field,
                "an external network is made outside berth; its subnets and IPv6 are set where it is made",
            )
            .with_hint("leave out `subnets` and `enable_ipv6`, or `external`"),
        );
    }
    for (index, subnet) in network.subnets.iter().enumerate() {
        let at = format!("{field}.subnets[{index}]");
        if subnet.subnet.is_ipv6() && !network.enable_ipv6 {
            found.push(
                Diagnostic::new(
                    format!("{at}.subnet"),
                    format!(
                        "{} is an IPv6 range on a network without IPv6",
                        subnet.subnet
                    ),
                )
                .with_hint(format!("set networks.{key}.enable_ipv6 = true")),
            );
        }
        if let Some(gateway) = subnet.gateway
            && !subnet.subnet.contains(gateway)
        {
            found.push(Diagnostic::new(
                format!("{at}.gateway"),
                format!("the gateway {gateway} lies outside {}", subnet.subnet),
            ));
        }
        if let Some(range) = subnet.ip_range
            && !subnet.subnet.covers(&range)
        {
            found.push(Diagnostic::new(
                format!("{at}.ip_range"),
                format!("{range} does not lie within {}", subnet.subnet),
            ));
        }
    }
}

/// Two ranges that share addresses, in one network or two: the engine refuses the second
/// ("Pool overlaps with other one on this address space").
fn overlapping_networks(stack: &Stack, found: &mut Vec<Diagnostic>) {
    let ranges: Vec<(String, Cidr)> = stack
        .networks
        .iter()
        .filter(|(_, network)| !network.external)
        .flat_map(|(key, network)| {
            network.subnets.iter().enumerate().map(move |(index, s)| {
                (format!("networks.{key}.subnets[{index}].subnet"), s.subnet)
            })
        })
        .collect();
    for (later, (field, range)) in ranges.iter().enumerate() {
        if let Some((other, _)) = ranges[..later]
            .iter()
            .find(|(_, earlier)| earlier.covers(range) || range.covers(earlier))
        {
            found.push(Diagnostic::new(
                field,
                format!("{range} overlaps the range of {other}"),
            ));
        }
    }
}

/// Aliases and addresses only on networks the service joins: every backend would
/// otherwise read them differently (join that network too, or drop them).
fn joined_only(name: &str, service: &Service, found: &mut Vec<Diagnostic>) {
    let joins = |network: &str| {
        if service.networks.is_empty() {
            network == "default"
        } else {
            service.networks.iter().any(|n| n == network)
        }
    };
    let keyed = service
        .network_aliases
        .keys()
        .map(|k| ("network_aliases", k))
        .chain(
            service
                .network_addresses
                .keys()
                .map(|k| ("network_addresses", k)),
        );
    for (field, network) in keyed {
        if !joins(network) {
            let joined = if service.networks.is_empty() {
                "`default` (it lists no networks)".to_string()
            } else {
                service.networks.join(", ")
            };
            found.push(
                Diagnostic::new(
                    format!("services.{name}.{field}.{network}"),
                    format!("`{network}` is not a network this service joins: {joined}"),
                )
                .with_hint(format!("add \"{network}\" to services.{name}.networks")),
            );
        }
    }
}

type Problem = Box<dyn FnOnce(String) -> Diagnostic>;

/// Why `ip` cannot be a fixed address of the `family` on `network`, if it cannot.
fn misplaced(
    network: &str,
    settings: &Network,
    family: &'static str,
    ip: IpAddr,
) -> Option<Problem> {
    let network = network.to_string();
    if (family == "ipv4") != ip.is_ipv4() {
        return Some(Box::new(move |at| {
            Diagnostic::new(at, format!("{ip} is not an {family} address"))
        }));
    }
    if ip.is_ipv6() && !settings.enable_ipv6 {
        return Some(Box::new(move |at| {
            Diagnostic::new(at, format!("`{network}` has no IPv6")).with_hint(format!(
                "set networks.{network}.enable_ipv6 = true and give it an IPv6 subnet"
            ))
        }));
    }
    let Some(subnet) = settings.subnets.iter().find(|s| s.subnet.contains(ip)) else {
        let ranges: Vec<String> = settings
            .subnets
            .iter()
            .map(|s| s.subnet.to_string())
            .collect();
        return Some(Box::new(move |at| {
            let diagnostic = Diagnostic::new(
                at,
                format!(
                    "{ip} lies in no subnet of `{network}`; the engine gives fixed addresses only from a network's own subnets"
                ),
            );
            if ranges.is_empty() {
                diagnostic.with_hint(format!(
                    "declare one: networks.{network}.subnets = [{{ subnet = \"…/24\" }}]"
                ))
            } else {
                diagnostic.with_hint(format!("its subnets: {}", ranges.join(", ")))
            }
        }));
    };
    if subnet.gateway == Some(ip) {
        return Some(Box::new(move |at| {
            Diagnostic::new(at, format!("{ip} is the gateway of `{network}`"))
        }));
    }
    None
}
