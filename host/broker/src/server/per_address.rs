//! Open connections per client address: one host cannot take every slot of the connection cap.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// The count of open connections per peer address (canonical: an IPv4-mapped IPv6 peer counts
/// as its IPv4 address).
#[derive(Debug, Default)]
pub struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection from an address; the count goes down when it is dropped.
#[derive(Debug)]
pub struct AddressSlot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    /// Counts one more connection from `ip`, unless `cap` are already open from it.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<AddressSlot> {
        let ip = ip.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self
            .table
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_counts_per_canonical_address_and_frees_on_drop() {
        let table = Arc::new(PerAddress::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = table.try_take(a, 2).unwrap();
        let _second = table.try_take(mapped, 2).unwrap();
        assert!(table.try_take(a, 2).is_none(), "a third from one address");
        assert!(
            table.try_take(b, 2).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert_eq!(table.open_from(a), 1);
        assert!(table.try_take(a, 2).is_some());
    }
}
