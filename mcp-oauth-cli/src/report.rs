//! What a command found, one line per check, in three forms: a readable report (colour on a
//! terminal, plain when piped), one JSON document (`--json`), JUnit XML (`--junit`, for CI).

use std::fmt::Write as _;
use std::io::IsTerminal as _;

use serde::Serialize;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The server does what the specification says.
    Pass,
    /// It does not: the report says what it did instead.
    Fail,
    /// Not checked, and why (no token given, not applicable, …).
    Skip,
    /// Not what a SHOULD, MAY or OPTIONAL rule recommends (or a rule outside the normative
    /// text): worth knowing, but not a failure (the exit status stays 0).
    Warn,
}

/// One check: what was checked, the verdict, why, and where the rule is written.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// A stable identifier (`metadata.path_inserted`, `challenge.no_error`, …).
    pub id: String,
    /// What was checked, in words.
    pub title: String,
    /// The verdict.
    pub status: Status,
    /// Why: what was seen (never token material).
    pub detail: String,
    /// The specification section (`RFC 9728 §3`, `MCP 2025-06-18 authorization`, …).
    pub spec: String,
}

impl Check {
    /// A check with its verdict.
    pub fn new(
        id: impl Into<String>,
        title: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
        spec: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            title: title.into(),
            status,
            detail: detail.into(),
            spec: spec.into(),
        }
    }
}

/// Everything a command checked against one target.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was checked (the MCP endpoint URL, a token's fingerprint…).
    pub target: String,
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// An empty report for `target`.
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            target: target.into(),
            checks: Vec::new(),
        }
    }

    /// Adds a check.
    pub fn push(&mut self, check: Check) {
        self.checks.push(check);
    }

    /// Whether any check failed (the process then exits with status 1).
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// (passed, failed, skipped).
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.count(Status::Pass),
            self.count(Status::Fail),
            self.count(Status::Skip),
        )
    }

    /// How many checks have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The readable report: one line per check, then the counts.
    pub fn human(&self, colour: bool) -> String {
        let paint = |code: &str, text: &str| {
            if colour {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text.to_owned()
            }
        };
        let mut out = format!("{}\n", self.target);
        for check in &self.checks {
            let mark = match check.status {
                Status::Pass => paint("32", "pass"),
                Status::Fail => paint("31;1", "FAIL"),
                Status::Skip => paint("33", "skip"),
                Status::Warn => paint("35", "warn"),
            };
            let _ = write!(out, "  {mark}  {}", check.title);
            if !check.detail.is_empty() {
                let _ = write!(out, ": {}", check.detail);
            }
            if !check.spec.is_empty() {
                let _ = write!(out, " {}", paint("2", &format!("[{}]", check.spec)));
            }
            out.push('\n');
        }
        let (pass, fail, skip) = self.counts();
        let warn = self.count(Status::Warn);
        if warn > 0 {
            let _ = writeln!(
                out,
                "{pass} passed, {fail} failed, {skip} skipped, {warn} warnings"
            );
        } else {
            let _ = writeln!(out, "{pass} passed, {fail} failed, {skip} skipped");
        }
        out
    }

    /// The report as one JSON document.
    pub fn json(&self) -> String {
        let (passed, failed, skipped) = self.counts();
        serde_json::to_string_pretty(&serde_json::json!({
            "target": self.target,
            "passed": passed,
            "failed": failed,
            "skipped": skipped,
            "warnings": self.count(Status::Warn),
            "checks": self.checks,
        }))
        .unwrap_or_else(|_| "{}".to_owned())
    }

    /// The report as JUnit XML: one test case per check.
    pub fn junit(&self, suite: &str) -> String {
        let (_, failed, skipped) = self.counts();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let _ = writeln!(
            out,
            "<testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" skipped=\"{skipped}\">",
            xml(suite),
            self.checks.len()
        );
        for check in &self.checks {
            let _ = write!(
                out,
                "  <testcase classname=\"{}\" name=\"{}\">",
                xml(&self.target),
                xml(&check.id)
            );
            match check.status {
                Status::Pass => {}
                Status::Fail => {
                    let _ = write!(
                        out,
                        "<failure message=\"{}\">{} [{}]</failure>",
                        xml(&check.title),
                        xml(&check.detail),
                        xml(&check.spec)
                    );
                }
                Status::Skip => {
                    let _ = write!(out, "<skipped message=\"{}\"/>", xml(&check.detail));
                }
                Status::Warn => {
                    // A passing test case, with the note for whoever reads the log.
                    let _ = write!(
                        out,
                        "<system-out>warning: {}: {} [{}]</system-out>",
                        xml(&check.title),
                        xml(&check.detail),
                        xml(&check.spec)
                    );
                }
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("</testsuite>\n");
        out
    }
}

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Readable, coloured on a terminal.
    Human,
    /// One JSON document on standard output.
    Json,
    /// JUnit XML.
    Junit,
}

/// Prints `report` on standard output in `format`.
pub fn print(report: &Report, format: Format, suite: &str) {
    let text = match format {
        Format::Human => report.human(std::io::stdout().is_terminal()),
        Format::Json => report.json(),
        Format::Junit => report.junit(suite),
    };
    println!("{}", text.trim_end());
}

/// `text` escaped for an XML 1.0 attribute or element: markup characters as entities, and
/// characters XML 1.0 does not allow (most C0 controls, U+FFFE, U+FFFF; a lone surrogate
/// cannot occur in a `str`) written as `\u{…}` text; tab, line feed and carriage return are
/// kept as character references so attributes keep them.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#x{:X};", u32::from(c));
            }
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// `text` with each of `secrets` (tokens, client secrets) replaced by `[token <fingerprint>]`
/// (the fingerprint the audit log uses: a token is named, never shown), a secret cut short
/// by a clipped quotation replaced as well (its first 16 characters or more), and control
/// characters escaped (`\u{1b}`), so a server's reply can put no terminal escape in the
/// readable report and nothing XML 1.0 forbids in the JUnit one.
pub fn sanitize(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        let label = format!(
            "[token {}]",
            mcp_oauth::validation::TokenFingerprint::of(secret)
        );
        text = redact(&text, secret, &label);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` with every occurrence of `secret`, or of a prefix of it at least 16 characters
/// long (a clipped quotation), replaced by `label`.
fn redact(text: &str, secret: &str, label: &str) -> String {
    const MIN: usize = 16;
    let head: String = secret.chars().take(MIN).collect();
    if head.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(head.as_str()) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        // The longest common prefix of the tail and the secret.
        let matched: usize = tail
            .char_indices()
            .zip(secret.chars())
            .take_while(|((_, a), b)| a == b)
            .map(|((_, a), _)| a.len_utf8())
            .sum();
        out.push_str(label);
        rest = &tail[matched..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_say_the_same() {
        let mut report = Report::new("http://127.0.0.1:1/mcp");
        report.push(Check::new("a", "first", Status::Pass, "", "RFC 9728 §3"));
        report.push(Check::new(
            "b",
            "second <x>",
            Status::Fail,
            "got \"401\"",
            "RFC 6750 §3",
        ));
        report.push(Check::new("c", "third", Status::Skip, "no token", ""));
        assert!(report.failed());
        assert_eq!(report.counts(), (1, 1, 1));
        let human = report.human(false);
        assert!(human.contains("FAIL  second <x>: got \"401\" [RFC 6750 §3]"));
        assert!(!human.contains('\x1b'), "plain when not a terminal");
        let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["failed"], 1);
        assert_eq!(json["checks"][1]["status"], "fail");
        let junit = report.junit("probe");
        assert!(junit.contains("failures=\"1\" skipped=\"1\""));
        assert!(junit.contains("name=\"b\"><failure message=\"second &lt;x&gt;\">"));
    }

    #[test]
    fn a_warning_is_counted_apart_and_fails_nothing() {
        let mut report = Report::new("http://127.0.0.1:1/mcp");
        report.push(Check::new("a", "first", Status::Pass, "", ""));
        report.push(Check::new("w", "cors", Status::Warn, "no ACAO", "Fetch"));
        assert!(!report.failed());
        assert_eq!(report.counts(), (1, 0, 0));
        let human = report.human(false);
        assert!(human.contains("warn  cors: no ACAO [Fetch]"), "{human}");
        assert!(
            human.contains("1 passed, 0 failed, 0 skipped, 1 warnings"),
            "{human}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(json["warnings"], 1);
        assert_eq!(json["checks"][1]["status"], "warn");
        let junit = report.junit("probe");
        assert!(junit.contains("failures=\"0\" skipped=\"0\""), "{junit}");
        assert!(
            junit.contains("name=\"w\"><system-out>warning: cors: no ACAO [Fetch]</system-out>"),
            "{junit}"
        );
    }

    #[test]
    fn secrets_are_named_by_fingerprint_and_controls_escaped() {
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl";
        let fingerprint = mcp_oauth::validation::TokenFingerprint::of(token);
        let secrets = vec![token.to_owned()];
        let text = format!("401 body: bad token {token}\x1b[2J\u{7}");
        let clean = sanitize(&text, &secrets);
        assert_eq!(
            clean,
            format!("401 body: bad token [token {fingerprint}]\\u{{1b}}[2J\\u{{7}}")
        );
        // A quotation clipped in the middle of the token is redacted too.
        let clipped = format!("echo: {}…", &token[..30]);
        assert_eq!(
            sanitize(&clipped, &secrets),
            format!("echo: [token {fingerprint}]…")
        );
        // XML 1.0 has no place for most control characters.
        assert_eq!(xml("a\u{1}b\tc<"), "a\\u{1}b&#x9;c&lt;");
    }
}
