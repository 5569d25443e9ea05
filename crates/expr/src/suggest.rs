//! "Did you mean …?" hints: the closest of some known names to a misspelt one. One
//! implementation for the whole project (function names here; configuration keys, mailbox
//! properties and naming contexts in the other crates).

/// The candidate closest to `name` (case-insensitive edit distance), if it is close enough
/// to be a likely typo: at most 2 edits, or a quarter of the candidate's length.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|n| (edit_distance(&lower, &n.to_ascii_lowercase()), n))
        .filter(|(d, n)| *d <= 2.max(n.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_takes_near_names_only() {
        let names = ["bind_dn", "base_dn", "url", "threshold"];
        assert_eq!(closest("bind_db", names), Some("bind_dn"));
        assert_eq!(closest("TRESHOLD", names), Some("threshold"));
        assert_eq!(closest("colour", names), None);
        assert_eq!(closest("x", []), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
