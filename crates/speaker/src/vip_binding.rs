//! Binding announced service addresses to a local interface (`--bind-vips IFACE`), so that a
//! plain host accepts the traffic its announcements attract, and unbinding them on withdraw.
//!
//! It only ever removes addresses it added itself: an address that was already on the
//! interface (put there by an operator, say) is left alone when it stops being announced.

use std::collections::BTreeSet;
use std::net::IpAddr;

use futures_util::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::LinkAttribute;
use tracing::{debug, info};

#[derive(Debug, thiserror::Error)]
pub enum VipBindError {
    #[error("cannot open a netlink socket: {0}")]
    Netlink(#[source] std::io::Error),
    #[error("interface {0} not found")]
    NoSuchInterface(String),
    #[error("cannot {action} {address} on {interface}: {source}")]
    Address {
        action: &'static str,
        address: IpAddr,
        interface: String,
        source: rtnetlink::Error,
    },
    #[error("cannot list addresses of {interface}: {source}")]
    List {
        interface: String,
        source: rtnetlink::Error,
    },
}

/// What one [`VipBinder::sync`] changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BindChanges {
    pub added: Vec<IpAddr>,
    pub removed: Vec<IpAddr>,
}

/// Keeps the service addresses on one interface equal to the announced set.
pub struct VipBinder {
    handle: rtnetlink::Handle,
    interface: String,
    index: u32,
    /// Addresses we added and are responsible for removing.
    ours: BTreeSet<IpAddr>,
    connection: tokio::task::JoinHandle<()>,
}

impl VipBinder {
    /// Opens a netlink connection and finds `interface`. Must run inside a tokio runtime.
    pub async fn new(interface: &str) -> Result<VipBinder, VipBindError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(VipBindError::Netlink)?;
        let connection = tokio::spawn(connection);
        let mut links = handle
            .link()
            .get()
            .match_name(interface.to_string())
            .execute();
        let index = match links.try_next().await {
            Ok(Some(link)) if link_name(&link).as_deref() == Some(interface) => link.header.index,
            _ => return Err(VipBindError::NoSuchInterface(interface.to_string())),
        };
        Ok(VipBinder {
            handle,
            interface: interface.to_string(),
            index,
            ours: BTreeSet::new(),
            connection,
        })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The addresses this binder added and still holds.
    pub fn bound(&self) -> &BTreeSet<IpAddr> {
        &self.ours
    }

    /// Adds the addresses of `wanted` that are missing (as /32 or /128) and removes the ones we
    /// added that are no longer wanted. Stops at the first error; what succeeded stays recorded.
    pub async fn sync(&mut self, wanted: &BTreeSet<IpAddr>) -> Result<BindChanges, VipBindError> {
        let present = self.present().await?;
        let mut changes = BindChanges::default();
        for address in wanted.iter().filter(|a| !present.contains(a)) {
            let prefix_len = if address.is_ipv4() { 32 } else { 128 };
            let mut request = self.handle.address().add(self.index, *address, prefix_len);
            // A service address must answer at once, not after IPv6 duplicate detection.
            request
                .message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
            request
                .execute()
                .await
                .map_err(|source| VipBindError::Address {
                    action: "add",
                    address: *address,
                    interface: self.interface.clone(),
                    source,
                })?;
            debug!(%address, interface = %self.interface, "service address bound");
            self.ours.insert(*address);
            changes.added.push(*address);
        }
        let stale: Vec<IpAddr> = self
            .ours
            .iter()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        for address in stale {
            self.remove(address, &present).await?;
            changes.removed.push(address);
        }
        if !changes.added.is_empty() || !changes.removed.is_empty() {
            info!(interface = %self.interface, added = ?changes.added, removed = ?changes.removed,
                "service addresses changed");
        }
        Ok(changes)
    }

    /// Removes every address this binder added.
    pub async fn clear(&mut self) -> Result<BindChanges, VipBindError> {
        self.sync(&BTreeSet::new()).await
    }

    async fn remove(
        &mut self,
        address: IpAddr,
        present: &BTreeSet<IpAddr>,
    ) -> Result<(), VipBindError> {
        if present.contains(&address) {
            for message in self.address_messages(Some(address)).await? {
                self.handle
                    .address()
                    .del(message)
                    .execute()
                    .await
                    .map_err(|source| VipBindError::Address {
                        action: "remove",
                        address,
                        interface: self.interface.clone(),
                        source,
                    })?;
            }
        }
        debug!(%address, interface = %self.interface, "service address unbound");
        self.ours.remove(&address);
        Ok(())
    }

    /// Every address on the interface.
    async fn present(&self) -> Result<BTreeSet<IpAddr>, VipBindError> {
        let messages = self.address_messages(None).await?;
        Ok(messages
            .iter()
            .flat_map(|m| &m.attributes)
            .filter_map(|attr| match attr {
                AddressAttribute::Address(a) => Some(*a),
                _ => None,
            })
            .collect())
    }

    /// The kernel's address messages for the interface, optionally for one address only.
    async fn address_messages(
        &self,
        only: Option<IpAddr>,
    ) -> Result<Vec<AddressMessage>, VipBindError> {
        let mut request = self
            .handle
            .address()
            .get()
            .set_link_index_filter(self.index);
        if let Some(address) = only {
            request = request.set_address_filter(address);
        }
        let list_error = |source| VipBindError::List {
            interface: self.interface.clone(),
            source,
        };
        request.execute().try_collect().await.map_err(list_error)
    }
}

impl Drop for VipBinder {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

fn link_name(link: &netlink_packet_route::link::LinkMessage) -> Option<String> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(name) => Some(name.clone()),
        _ => None,
    })
}
