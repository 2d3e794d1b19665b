//! Registered clients, kept in memory once read.
//!
//! Every token, introspection and authorization request looks its client up. Clients are
//! immutable once created (the store has no operation that changes or removes one), so a client
//! read once stays exact for the life of the process, on every node. Only clients that exist are
//! kept, so requests naming made-up client IDs cannot grow the cache; its size is bounded anyway.
//!
//! Architecture Invariant: a store operation that ever changes or removes a client must evict it
//! here, and with several nodes tell the others.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use crate::Client;

/// More registered clients than any deployment has; beyond it, look-ups simply go to the
/// database.
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub(crate) struct ClientCache {
    clients: RwLock<HashMap<String, Client>>,
}

impl ClientCache {
    pub(crate) fn get(&self, client_id: &str) -> Option<Client> {
        self.clients
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(client_id)
            .cloned()
    }

    pub(crate) fn keep(&self, client: &Client) {
        let mut clients = self.clients.write().unwrap_or_else(PoisonError::into_inner);
        if clients.len() < CAPACITY {
            clients.insert(client.client_id.clone(), client.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn client(id: &str) -> Client {
        Client {
            client_id: id.to_owned(),
            secret_hash: None,
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            grant_types: vec![],
            scopes: vec![],
            backchannel_logout_uri: None,
            signing_alg: "ES256".to_owned(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn keeps_clients_up_to_its_capacity() {
        let cache = ClientCache::default();
        assert_eq!(cache.get("rp"), None);
        cache.keep(&client("rp"));
        assert_eq!(cache.get("rp"), Some(client("rp")));
        for i in 0..CAPACITY + 10 {
            cache.keep(&client(&format!("c{i}")));
        }
        assert_eq!(cache.clients.read().unwrap().len(), CAPACITY);
        assert_eq!(cache.get("rp"), Some(client("rp")));
    }
}
