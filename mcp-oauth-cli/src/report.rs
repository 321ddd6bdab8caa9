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
        let count = |s| self.checks.iter().filter(|c| c.status == s).count();
        (
            count(Status::Pass),
            count(Status::Fail),
            count(Status::Skip),
        )
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
        let _ = writeln!(out, "{pass} passed, {fail} failed, {skip} skipped");
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

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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
}
