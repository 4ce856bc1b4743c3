//! Docker's remote network driver protocol (moby's `libnetwork/drivers/remote/api`): the
//! requests Docker POSTs as JSON and the answers it reads. Field names are Docker's
//! (PascalCase); fields Docker adds that l2sw does not use are ignored, and missing ones take
//! their defaults, so a newer Docker still talks to this driver.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The option key under which Docker passes `docker network create -o KEY=VALUE`.
pub const GENERIC_OPTIONS: &str = "com.docker.network.generic";
/// The option key Docker sets for `docker network create --internal`.
pub const INTERNAL: &str = "com.docker.network.internal";

/// An error answer: every call answers `{"Err": "..."}` when it fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorResponse {
    /// What went wrong; Docker shows it to the user.
    pub err: String,
}

/// `Plugin.Activate`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ActivateResponse {
    /// The plugin kinds this plugin implements (`NetworkDriver`).
    pub implements: Vec<String>,
}

/// `NetworkDriver.GetCapabilities`' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CapabilitiesResponse {
    /// `local`: networks exist on this host only.
    pub scope: String,
    /// `local`: endpoints reach this host's networks only.
    pub connectivity_scope: String,
}

/// One address pool of a network, from Docker's IPAM.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamData {
    /// The pool (`--subnet`), e.g. `10.1.0.0/24`.
    pub pool: String,
    /// The gateway with the pool's prefix length, e.g. `10.1.0.1/24`.
    pub gateway: String,
    /// `--aux-address` entries: name to address with the pool's prefix length.
    pub aux_addresses: BTreeMap<String, String>,
}

/// `NetworkDriver.CreateNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateNetworkRequest {
    /// Docker's id of the network (64 hex digits).
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// Options: [`GENERIC_OPTIONS`] holds the user's `-o`, [`INTERNAL`] `--internal`.
    pub options: BTreeMap<String, Value>,
    /// IPv4 pools.
    #[serde(rename = "IPv4Data", deserialize_with = "null_as_default")]
    pub ipv4_data: Vec<IpamData>,
    /// IPv6 pools.
    #[serde(rename = "IPv6Data", deserialize_with = "null_as_default")]
    pub ipv6_data: Vec<IpamData>,
}

/// `NetworkDriver.DeleteNetwork`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkRequest {
    /// Docker's id of the network.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

/// An endpoint's addresses: what Docker's IPAM handed out (in a request) or what the driver
/// chose where Docker gave nothing (in an answer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointInterface {
    /// IPv4 address with prefix length, e.g. `10.1.0.2/24`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    /// IPv6 address with prefix length.
    #[serde(rename = "AddressIPv6", skip_serializing_if = "String::is_empty")]
    pub address_ipv6: String,
    /// The MAC, e.g. `02:42:0a:01:00:02`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

/// `NetworkDriver.CreateEndpoint`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateEndpointRequest {
    /// The network's id.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// Docker's id of the endpoint (64 hex digits).
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The addresses Docker's IPAM handed out (`docker run --ip` among them).
    #[serde(deserialize_with = "null_as_default")]
    pub interface: EndpointInterface,
    /// Endpoint options (published ports and the like; l2sw uses none).
    pub options: BTreeMap<String, Value>,
}

/// `NetworkDriver.CreateEndpoint`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEndpointResponse {
    /// Only what Docker did not give: Docker refuses an answer that changes its addresses.
    pub interface: EndpointInterface,
}

/// `NetworkDriver.EndpointOperInfo`, `DeleteEndpoint` and `Leave`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointRequest {
    /// The network's id.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

/// `NetworkDriver.EndpointOperInfo`'s answer: free-form facts `docker inspect` may show.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointInfoResponse {
    /// The facts.
    pub value: BTreeMap<String, String>,
}

/// `NetworkDriver.Join`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct JoinRequest {
    /// The network's id.
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// The endpoint's id.
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    /// The container's namespace file, e.g. `/var/run/docker/netns/0123456789ab`.
    pub sandbox_key: String,
}

/// The link Docker moves into the container: `SrcName` from the host namespace, renamed
/// `DstPrefix` and an index (`eth0`, `eth1`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InterfaceName {
    /// The link's name in the host namespace.
    pub src_name: String,
    /// The prefix of its name in the container.
    pub dst_prefix: String,
}

/// `NetworkDriver.Join`'s answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinResponse {
    /// The link to move.
    pub interface_name: InterfaceName,
    /// The IPv4 default gateway (empty: no default route from this network).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    /// The IPv6 default gateway.
    #[serde(rename = "GatewayIPv6", skip_serializing_if = "String::is_empty")]
    pub gateway_ipv6: String,
}

/// Treats JSON `null` as the type's default (Docker's Go encoder writes nil slices and
/// pointers as `null`).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn create_network_reads_docker_json_and_ignores_unknown_fields() {
        let r: CreateNetworkRequest = serde_json::from_str(
            r#"{"NetworkID":"ab12","Options":{"com.docker.network.enable_ipv6":false,
               "com.docker.network.generic":{"parent":"eth1","type":"macvlan"}},
               "IPv4Data":[{"AddressSpace":"LocalDefault","Gateway":"10.1.0.1/24",
                 "Pool":"10.1.0.0/24","AuxAddresses":{"r":"10.1.0.9/24"}}],
               "IPv6Data":null,"Future":1}"#,
        )
        .unwrap();
        assert_eq!(r.network_id, "ab12");
        assert_eq!(r.ipv4_data[0].gateway, "10.1.0.1/24");
        assert_eq!(r.ipv4_data[0].aux_addresses["r"], "10.1.0.9/24");
        assert!(r.ipv6_data.is_empty());
        assert_eq!(r.options[GENERIC_OPTIONS]["parent"], "eth1");
    }

    #[test]
    fn endpoint_and_join_requests_read_with_null_and_missing_fields() {
        let e: CreateEndpointRequest = serde_json::from_str(
            r#"{"NetworkID":"n","EndpointID":"e","Interface":null,"Options":{}}"#,
        )
        .unwrap();
        assert_eq!(e.interface, EndpointInterface::default());
        let e: CreateEndpointRequest = serde_json::from_str(
            r#"{"NetworkID":"n","EndpointID":"e","Interface":{"Address":"10.0.0.2/24","AddressIPv6":"","MacAddress":""}}"#,
        )
        .unwrap();
        assert_eq!(e.interface.address, "10.0.0.2/24");
        let j: JoinRequest = serde_json::from_str(
            r#"{"NetworkID":"n","EndpointID":"e","SandboxKey":"/x","Options":null}"#,
        )
        .unwrap();
        assert_eq!(j.sandbox_key, "/x");
    }

    #[test]
    fn answers_are_written_as_docker_reads_them() {
        let j = JoinResponse {
            interface_name: InterfaceName {
                src_name: "l2w-1".into(),
                dst_prefix: "eth".into(),
            },
            gateway: "10.0.0.1".into(),
            gateway_ipv6: String::new(),
        };
        assert_eq!(
            serde_json::to_string(&j).unwrap(),
            r#"{"InterfaceName":{"SrcName":"l2w-1","DstPrefix":"eth"},"Gateway":"10.0.0.1"}"#
        );
        let c = CreateEndpointResponse {
            interface: EndpointInterface {
                mac_address: "02:42:0a:00:00:02".into(),
                ..Default::default()
            },
        };
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"Interface":{"MacAddress":"02:42:0a:00:00:02"}}"#
        );
        let caps = CapabilitiesResponse {
            scope: "local".into(),
            connectivity_scope: "local".into(),
        };
        assert_eq!(
            serde_json::to_string(&caps).unwrap(),
            r#"{"Scope":"local","ConnectivityScope":"local"}"#
        );
    }
}
