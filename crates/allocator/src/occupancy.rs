//! Which indexes of one pool family are taken, as maximal runs, so that "lowest free index" is
//! one ordered-map lookup.
//!
//! Owns: [`Occupancy`], an ordered map `run start → run end` over `u128` indexes (see
//! `address::Numbering`). Memory is proportional to the number of runs, never to the size of
//! the pool: a /64 filled from its start is a single entry. Does not know who holds an index.
//!
//! Costs, with `r` runs: insert, remove, contains and lowest-free are O(log r).

use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub(crate) struct Occupancy {
    /// Maximal runs of taken indexes: no two runs touch or overlap.
    runs: BTreeMap<u128, u128>,
    taken: u128,
}

impl Occupancy {
    /// How many indexes are taken.
    pub(crate) fn taken(&self) -> u128 {
        self.taken
    }

    /// The run containing `index`, if any.
    fn run_containing(&self, index: u128) -> Option<(u128, u128)> {
        self.runs
            .range(..=index)
            .next_back()
            .filter(|&(_, &end)| end >= index)
            .map(|(&start, &end)| (start, end))
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, index: u128) -> bool {
        self.run_containing(index).is_some()
    }

    /// Marks `index` taken. Returns false if it already was.
    pub(crate) fn insert(&mut self, index: u128) -> bool {
        let left = self.runs.range(..=index).next_back().map(|(&s, &e)| (s, e));
        if let Some((_, end)) = left
            && end >= index
        {
            return false;
        }
        let joins_left = left.filter(|&(_, end)| end.checked_add(1) == Some(index));
        let right = index
            .checked_add(1)
            .and_then(|next| self.runs.get(&next).map(|&end| (next, end)));
        match (joins_left, right) {
            (Some((start, _)), Some((right_start, right_end))) => {
                self.runs.remove(&right_start);
                self.runs.insert(start, right_end);
            }
            (Some((start, _)), None) => {
                self.runs.insert(start, index);
            }
            (None, Some((right_start, right_end))) => {
                self.runs.remove(&right_start);
                self.runs.insert(index, right_end);
            }
            (None, None) => {
                self.runs.insert(index, index);
            }
        }
        self.taken += 1;
        true
    }

    /// Marks `index` free. Returns false if it was not taken.
    pub(crate) fn remove(&mut self, index: u128) -> bool {
        let Some((start, end)) = self.run_containing(index) else {
            return false;
        };
        // Split the run around `index`; the arithmetic cannot overflow because
        // start <= index <= end.
        if start == index {
            self.runs.remove(&start);
        } else {
            self.runs.insert(start, index - 1);
        }
        if end > index {
            self.runs.insert(index + 1, end);
        }
        self.taken -= 1;
        true
    }

    /// The lowest free index in `first..=last`.
    pub(crate) fn lowest_free_in(&self, first: u128, last: u128) -> Option<u128> {
        // Runs are maximal, so the index right after the run covering `first` is free.
        let candidate = match self.run_containing(first) {
            Some((_, end)) => end.checked_add(1)?,
            None => first,
        };
        (candidate <= last).then_some(candidate)
    }

    /// How many runs are stored (for memory accounting in tests and docs).
    #[cfg(test)]
    pub(crate) fn runs(&self) -> usize {
        self.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_fill_is_one_run() {
        let mut occupancy = Occupancy::default();
        for index in 0..1000 {
            assert_eq!(occupancy.lowest_free_in(0, 2000), Some(index));
            assert!(occupancy.insert(index));
        }
        assert_eq!(occupancy.runs(), 1);
        assert_eq!(occupancy.taken(), 1000);
    }

    #[test]
    fn freeing_inside_a_run_splits_it_and_the_hole_is_the_lowest_free() {
        let mut occupancy = Occupancy::default();
        for index in 10..20 {
            occupancy.insert(index);
        }
        assert!(occupancy.remove(15));
        assert!(!occupancy.remove(15));
        assert_eq!(occupancy.runs(), 2);
        assert_eq!(occupancy.lowest_free_in(10, 30), Some(15));
        assert_eq!(occupancy.lowest_free_in(0, 30), Some(0));
        assert!(occupancy.insert(15));
        assert_eq!(occupancy.runs(), 1);
        assert_eq!(occupancy.lowest_free_in(10, 19), None);
        assert_eq!(occupancy.lowest_free_in(10, 20), Some(20));
    }

    #[test]
    fn inserting_between_two_runs_merges_them() {
        let mut occupancy = Occupancy::default();
        occupancy.insert(1);
        occupancy.insert(3);
        assert_eq!(occupancy.runs(), 2);
        occupancy.insert(2);
        assert_eq!(occupancy.runs(), 1);
        assert!(occupancy.contains(2));
        assert!(!occupancy.insert(2));
    }

    #[test]
    fn the_top_of_the_index_space_does_not_overflow() {
        let mut occupancy = Occupancy::default();
        assert!(occupancy.insert(u128::MAX));
        assert!(occupancy.insert(u128::MAX - 1));
        assert_eq!(occupancy.lowest_free_in(u128::MAX - 1, u128::MAX), None);
        assert!(occupancy.remove(u128::MAX));
        assert_eq!(
            occupancy.lowest_free_in(u128::MAX - 1, u128::MAX),
            Some(u128::MAX)
        );
    }
}
