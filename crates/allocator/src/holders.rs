//! Who holds each address.
//!
//! Owns [`HolderBook`]: address → the Services holding it, one ordered map per family keyed by
//! the address value. Ordered by address rather than hashed because allocation is
//! lowest-first: consecutive assignments insert at the right edge of the tree, which stays in
//! cache. Does not know pools, occupancy or sharing rules.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::address::{Family, value_of};
use crate::service::ServiceKey;

/// The Services holding one address; sorted by key, never empty.
#[derive(Clone, Debug)]
pub(crate) enum Holders {
    /// The common case, without a heap allocation of its own.
    One(ServiceKey),
    /// A boxed slice keeps the common case small (16 bytes per held address); sharing groups
    /// change rarely, so rebuilding the slice on a change is fine.
    Many(Box<[ServiceKey]>),
}

impl Holders {
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, ServiceKey> {
        match self {
            Holders::One(key) => std::slice::from_ref(key).iter(),
            Holders::Many(keys) => keys.iter(),
        }
    }

    pub(crate) fn is_only(&self, key: &ServiceKey) -> bool {
        matches!(self, Holders::One(only) if only == key)
    }

    fn insert(&mut self, key: ServiceKey) {
        match self {
            Holders::One(existing) if *existing == key => {}
            Holders::One(existing) => {
                let mut keys = vec![existing.clone(), key];
                keys.sort();
                *self = Holders::Many(keys.into_boxed_slice());
            }
            Holders::Many(keys) => {
                if let Err(position) = keys.binary_search(&key) {
                    let mut grown = keys.to_vec();
                    grown.insert(position, key);
                    *keys = grown.into_boxed_slice();
                }
            }
        }
    }

    /// Removes `key`; returns true if nobody is left.
    fn remove(&mut self, key: &ServiceKey) -> bool {
        match self {
            Holders::One(existing) => existing == key,
            Holders::Many(keys) => {
                let remaining: Vec<ServiceKey> =
                    keys.iter().filter(|held| *held != key).cloned().collect();
                match <[ServiceKey; 1]>::try_from(remaining) {
                    Ok([last]) => *self = Holders::One(last),
                    Err(remaining) => *keys = remaining.into_boxed_slice(),
                }
                // A group has two members or more, so one at least remains.
                false
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct HolderBook {
    /// `[v4, v6]`, keyed by address value.
    by_family: [BTreeMap<u128, Holders>; 2],
}

impl HolderBook {
    pub(crate) fn get(&self, address: IpAddr) -> Option<&Holders> {
        self.by_family[Family::of(address).slot()].get(&value_of(address))
    }

    /// Adds a holder; returns true if the address was free before.
    pub(crate) fn join(&mut self, address: IpAddr, key: &ServiceKey) -> bool {
        let map = &mut self.by_family[Family::of(address).slot()];
        match map.entry(value_of(address)) {
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(Holders::One(key.clone()));
                true
            }
            std::collections::btree_map::Entry::Occupied(mut slot) => {
                slot.get_mut().insert(key.clone());
                false
            }
        }
    }

    /// Removes a holder; returns true if the address is free now.
    pub(crate) fn leave(&mut self, address: IpAddr, key: &ServiceKey) -> bool {
        let map = &mut self.by_family[Family::of(address).slot()];
        let value = value_of(address);
        let now_free = map
            .get_mut(&value)
            .is_some_and(|holders| holders.remove(key));
        if now_free {
            map.remove(&value);
        }
        now_free
    }

    /// Every held address, IPv4 first, ascending.
    pub(crate) fn addresses(&self) -> impl Iterator<Item = IpAddr> + '_ {
        Family::ALL.into_iter().flat_map(move |family| {
            self.by_family[family.slot()]
                .keys()
                .map(move |&value| crate::address::address_at(family, value))
        })
    }
}
