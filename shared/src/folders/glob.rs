//! Shell-style folder patterns, as `--include-folder`, `--exclude-folder` and the upload's
//! `--exclude` take them. Written here rather than with a glob crate because folder names
//! are not paths: `*` must cross the hierarchy delimiter, and `[`, `{` and `\` are ordinary
//! characters in folder names.

/// Shell-style matching: `*` any run of characters (delimiters included), `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((bp, bt)) = backtrack {
            pi = bp + 1;
            ti = bt + 1;
            backtrack = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("Archive/*", "Archive/2024/Q1"));
        assert!(glob_match("*Spam*", "Junk/Spam"));
        assert!(glob_match("Q?", "Q1") && !glob_match("Q?", "Q10"));
        assert!(!glob_match("Archive/*", "Archive"));
        assert!(
            glob_match("*", "") && glob_match("a*b*c", "aXbYc") && !glob_match("a*b*c", "aXbY")
        );
    }
}
