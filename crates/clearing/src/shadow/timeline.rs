//! One sequence's transactions as the other sequence sees them: which of them lie between two
//! transactions of the other counter, decided by time within [`CLOCK_SKEW_S_MAX`].
//!
//! The clocks of gates, top-up terminals and the platform agree within the tolerance, so a
//! transaction truly before another is never stamped more than the tolerance after it. A
//! transaction of this sequence is then *surely outside* the window from `a` to `b` (`a` truly
//! before `b`) when it is stamped more than the tolerance before `a` or after `b`, *surely
//! inside* when more than the tolerance after `a` and before `b`, and ambiguous otherwise. A counter of this
//! sequence with no committed record may hide a transaction: it lies (by counter) after the
//! record of the counter below and before the one above, so it is surely outside only when one
//! of those bounds is.

use super::CLOCK_SKEW_S_MAX;

/// A committed transaction of the sequence: one per counter.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Point {
    pub(crate) counter: u16,
    pub(crate) at_s: i64,
    pub(crate) delta_fen: i64,
}

/// What the sequence did between two transactions of the other one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Between {
    /// Exactly these transactions, moving the balance by this much (0 when none).
    Known(i64),
    /// A transaction of the sequence may lie between: its stamp is within the tolerance of the
    /// window's ends, or it is unseen, or it may not have committed.
    Unknown,
}

/// Counters with no committed record: their transactions come after the record stamped
/// `after_s` and before the one stamped `before_s` (`None`: the card's history before the first
/// record seen, or after the last).
#[derive(Clone, Copy, Debug)]
struct Hole {
    after_s: Option<i64>,
    before_s: Option<i64>,
}

#[derive(Clone, Debug)]
pub(crate) struct Timeline {
    /// Committed transactions as (stamp, balance change), by stamp.
    by_time: Vec<(i64, i64)>,
    /// `sums[i]`: the balance change of `by_time[..i]`.
    sums: Vec<i64>,
    /// Stamps of records that may or may not have committed, sorted.
    uncertain: Vec<i64>,
    holes: Vec<Hole>,
}

impl Timeline {
    /// `committed` by counter, one per counter; `uncertain` the stamps of records not known to
    /// have committed or not.
    pub(crate) fn new(committed: &[Point], mut uncertain: Vec<i64>) -> Self {
        assert!(committed.windows(2).all(|w| w[0].counter < w[1].counter), "one point per counter, by counter");
        let mut holes = Vec::new();
        match (committed.first(), committed.last()) {
            (Some(first), Some(last)) => {
                // Counter 1 is the card's first transaction (INITIALIZE returned 0): nothing before.
                if first.counter > 1 {
                    holes.push(Hole { after_s: None, before_s: Some(first.at_s) });
                }
                for w in committed.windows(2) {
                    if w[1].counter > w[0].counter + 1 {
                        holes.push(Hole { after_s: Some(w[0].at_s), before_s: Some(w[1].at_s) });
                    }
                }
                // The card may have done more since its last record seen.
                holes.push(Hole { after_s: Some(last.at_s), before_s: None });
            }
            _ => holes.push(Hole { after_s: None, before_s: None }),
        }
        let mut by_time: Vec<(i64, i64)> = committed.iter().map(|p| (p.at_s, p.delta_fen)).collect();
        by_time.sort_unstable();
        let mut sums = Vec::with_capacity(by_time.len() + 1);
        sums.push(0);
        for (_, delta) in &by_time {
            sums.push(sums.last().copied().unwrap_or(0) + delta);
        }
        uncertain.sort_unstable();
        Timeline { by_time, sums, uncertain, holes }
    }

    /// What the sequence did between `a_s` and `b_s`, the stamps of two transactions of the other
    /// sequence with `a` truly before `b` (by counter, or by time beyond the tolerance).
    pub(crate) fn between(&self, a_s: i64, b_s: i64) -> Between {
        let tolerance = CLOCK_SKEW_S_MAX;
        if a_s > b_s + tolerance {
            // The stamps contradict the order: the clocks are off by more than the tolerance.
            return Between::Unknown;
        }
        // Stamps not surely outside: from a − tolerance to b + tolerance.
        let (near_lo, near_hi) = (a_s - tolerance, b_s + tolerance);
        // Stamps surely inside: from a + tolerance + 1 to b − tolerance − 1.
        let (inside_lo, inside_hi) = (a_s + tolerance + 1, b_s - tolerance - 1);
        let uncertain_near =
            self.uncertain.partition_point(|&t| t <= near_hi) - self.uncertain.partition_point(|&t| t < near_lo);
        if uncertain_near > 0 {
            return Between::Unknown;
        }
        let hidden = self.holes.iter().any(|h| {
            let surely_before = h.before_s.is_some_and(|t| t + tolerance < a_s);
            let surely_after = h.after_s.is_some_and(|t| t > b_s + tolerance);
            !(surely_before || surely_after)
        });
        if hidden {
            return Between::Unknown;
        }
        let index = |t: i64| self.by_time.partition_point(|&(at, _)| at < t);
        let near = index(near_hi + 1) - index(near_lo);
        let (first, end) = if inside_lo <= inside_hi { (index(inside_lo), index(inside_hi + 1)) } else { (0, 0) };
        if end - first != near {
            return Between::Unknown;
        }
        Between::Known(self.sums[end] - self.sums[first])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = CLOCK_SKEW_S_MAX;
    const HOUR: i64 = 3_600;

    fn point(counter: u16, at_s: i64, delta_fen: i64) -> Point {
        Point { counter, at_s, delta_fen }
    }

    #[test]
    fn nothing_seen_hides_everything() {
        assert_eq!(Timeline::new(&[], vec![]).between(0, 10 * HOUR), Between::Unknown);
    }

    #[test]
    fn transactions_surely_between_are_summed_once_the_sequence_is_closed_on_both_sides() {
        // Loads 1, 2, 3 at hours 0, 5, 10; purchases at hours 2 and 7 see load 2 between them.
        let loads = [point(1, 0, 100), point(2, 5 * HOUR, 200), point(3, 10 * HOUR, 400)];
        let timeline = Timeline::new(&loads, vec![]);
        assert_eq!(timeline.between(2 * HOUR, 7 * HOUR), Between::Known(200));
        assert_eq!(timeline.between(HOUR, 2 * HOUR), Between::Known(0));
        // After the last load seen the card may have loaded again.
        assert_eq!(timeline.between(11 * HOUR, 12 * HOUR), Between::Unknown);
    }

    #[test]
    fn a_stamp_within_the_tolerance_of_either_end_is_ambiguous() {
        let loads = [point(1, 0, 100), point(2, 5 * HOUR, 200), point(3, 10 * HOUR, 400)];
        let timeline = Timeline::new(&loads, vec![]);
        assert_eq!(timeline.between(5 * HOUR - T, 7 * HOUR), Between::Unknown);
        assert_eq!(timeline.between(5 * HOUR - T - 1, 7 * HOUR), Between::Known(200));
        assert_eq!(timeline.between(2 * HOUR, 5 * HOUR + T), Between::Unknown);
        assert_eq!(timeline.between(2 * HOUR, 5 * HOUR + T + 1), Between::Known(200));
    }

    #[test]
    fn a_missing_counter_hides_a_transaction_between_its_neighbours() {
        // Loads 1 and 3 seen: load 2 lies between hours 0 and 10, anywhere.
        let timeline = Timeline::new(&[point(1, 0, 100), point(3, 10 * HOUR, 400)], vec![]);
        assert_eq!(timeline.between(2 * HOUR, 7 * HOUR), Between::Unknown);
        // A first record of counter 5: loads 1 to 4 came before it, perhaps between.
        let timeline = Timeline::new(&[point(5, 10 * HOUR, 100), point(6, 20 * HOUR, 100)], vec![]);
        assert_eq!(timeline.between(2 * HOUR, 7 * HOUR), Between::Unknown);
        assert_eq!(timeline.between(12 * HOUR, 17 * HOUR), Between::Known(0));
    }

    #[test]
    fn an_uncertain_record_near_the_window_makes_it_unknown() {
        let loads = [point(1, 0, 100), point(2, 10 * HOUR, 400)];
        assert_eq!(Timeline::new(&loads, vec![5 * HOUR]).between(2 * HOUR, 7 * HOUR), Between::Unknown);
        assert_eq!(Timeline::new(&loads, vec![8 * HOUR]).between(2 * HOUR, 7 * HOUR), Between::Known(0));
    }

    #[test]
    fn stamps_against_the_counters_decide_nothing() {
        let loads = [point(1, 0, 100), point(2, 10 * HOUR, 400)];
        assert_eq!(Timeline::new(&loads, vec![]).between(7 * HOUR, 2 * HOUR), Between::Unknown);
    }
}
