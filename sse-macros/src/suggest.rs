//! "Did you mean" hints: the closest known name by edit distance.

/// The candidate closest to `input`, if it is close enough to be what the user meant: at most
/// one edit for short names, at most a third of the length for longer ones.
pub(crate) fn closest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let input = input.to_ascii_lowercase().replace('-', "_");
    let limit = (input.chars().count() / 3).max(1);
    candidates
        .iter()
        .map(|candidate| (edit_distance(&input, candidate), *candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The Levenshtein distance between `a` and `b`, counting an adjacent transposition as one edit
/// (so `pign` is one edit from `ping`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // rows[i][j]: distance between a[..i] and b[..j].
    let mut rows = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + substitution);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[&str] = &[
        "ping",
        "ping_message",
        "send_timeout",
        "sep",
        "status",
        "retry",
    ];

    #[test]
    fn a_transposition_is_one_edit() {
        assert_eq!(edit_distance("pign", "ping"), 1);
        assert_eq!(closest("pign", OPTIONS), Some("ping"));
    }

    #[test]
    fn dashes_and_case_are_forgiven() {
        assert_eq!(closest("send-timeout", OPTIONS), Some("send_timeout"));
        assert_eq!(closest("Send_Timeout", OPTIONS), Some("send_timeout"));
    }

    #[test]
    fn a_name_far_from_every_option_gets_no_hint() {
        assert_eq!(closest("compression", OPTIONS), None);
        assert_eq!(closest("x", OPTIONS), None);
    }

    #[test]
    fn the_nearest_candidate_wins() {
        assert_eq!(closest("sep_", OPTIONS), Some("sep"));
        assert_eq!(closest("ping_mesage", OPTIONS), Some("ping_message"));
    }
}
