//! "Did you mean …?": the nearest known name by edit distance.

/// The candidate nearest to `input`, if it is near enough to be a plausible typo.
pub fn nearest<'a>(input: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (input.chars().count() / 4).max(1);
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(input, candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// The candidate equal to `input` but for ASCII case, else [`nearest`]: for names that are
/// case-sensitive (`"es256"` → `"ES256"`, which is too far by edit distance).
pub fn nearest_or_case<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> Option<&'a str> {
    candidates
        .clone()
        .into_iter()
        .find(|candidate| candidate.eq_ignore_ascii_case(input))
        .or_else(|| nearest(input, candidates))
}

/// The Levenshtein distance between `a` and `b` (insertions, deletions, substitutions).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("scope", "scopes"), 1);
        assert_eq!(edit_distance("scopes", "scoeps"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
    }

    #[test]
    fn nearest_suggests_a_plausible_typo_only() {
        let known = ["resource", "scopes", "authorization_servers"];
        assert_eq!(nearest("scope", known), Some("scopes"));
        assert_eq!(
            nearest("authorisation_servers", known),
            Some("authorization_servers")
        );
        assert_eq!(nearest("resuorce", known), Some("resource"));
        assert_eq!(nearest("crate", known), None);
    }

    #[test]
    fn a_different_case_is_suggested_before_any_edit() {
        let known = ["ES256", "ES384", "EdDSA"];
        assert_eq!(nearest("es256", known), None);
        assert_eq!(nearest_or_case("es256", known), Some("ES256"));
        assert_eq!(nearest_or_case("ES-256", known), Some("ES256"));
        assert_eq!(nearest_or_case("RSA", known), None);
    }
}
