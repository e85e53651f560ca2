//! Splitting a batch of received messages into chains that keep the order of FIFO message
//! groups: shared by the daemon and by runners that receive their own way (AWS Lambda).

use std::collections::HashMap;
use std::hash::Hash;

/// The indices of `items`, as chains to handle one item after another: one chain per FIFO
/// message group, holding the group's items in the order of `items`, and one chain per item
/// without a group (`group` returns `None`). Chains come in the order of their first item;
/// different chains may run in parallel.
///
/// A runner handles each chain in order and, when an item fails, leaves the rest of its chain
/// unhandled (to come back after it), so that a group's order holds on redelivery.
///
/// ```
/// use pubsub_core::handlers::fifo_chains;
///
/// let groups = [Some("a"), Some("b"), None, Some("a"), None, Some("b")];
/// let chains = fifo_chains(&groups, |group| *group);
/// assert_eq!(chains, vec![vec![0, 3], vec![1, 5], vec![2], vec![4]]);
/// ```
pub fn fifo_chains<'a, T, K: Eq + Hash>(
    items: &'a [T],
    mut group: impl FnMut(&'a T) -> Option<K>,
) -> Vec<Vec<usize>> {
    let mut chains: Vec<Vec<usize>> = Vec::new();
    let mut chain_of_group: HashMap<K, usize> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let Some(key) = group(item) else {
            chains.push(vec![index]);
            continue;
        };
        match chain_of_group.get(&key) {
            Some(&chain) => chains[chain].push(index),
            None => {
                chain_of_group.insert(key, chains.len());
                chains.push(vec![index]);
            }
        }
    }
    chains
}

#[cfg(test)]
mod tests {
    use super::fifo_chains;

    #[test]
    fn items_without_a_group_each_make_a_chain() {
        let items = [None::<&str>, None, None];
        assert_eq!(fifo_chains(&items, |group| *group), vec![vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn a_group_keeps_its_items_in_order_wherever_they_stand() {
        let items = ["x", "y", "x", "z", "y", "x"];
        assert_eq!(fifo_chains(&items, |group| Some(*group)), vec![vec![0, 2, 5], vec![1, 4], vec![3]]);
    }

    #[test]
    fn the_key_may_borrow_from_the_items() {
        let items =
            [Some(("queue-1".to_owned(), "g".to_owned())), Some(("queue-2".to_owned(), "g".to_owned()))];
        // One group id on two queues is two groups.
        assert_eq!(fifo_chains(&items, Option::as_ref), vec![vec![0], vec![1]]);
    }

    #[test]
    fn no_items_no_chains() {
        assert!(fifo_chains(&[] as &[Option<u8>], |group| *group).is_empty());
    }
}
