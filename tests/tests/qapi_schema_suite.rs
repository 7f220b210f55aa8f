//! QEMU's own schema test suite (`tests/fixtures/qapi-schema`, copied from
//! QEMU): every case must give exactly QEMU's error (`X.err`) or, for a
//! valid schema, exactly QEMU's model dump (`X.out`).

use std::path::{Path, PathBuf};

use qapi_gen::{Schema, dump::dump};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/qapi-schema")
}

/// Runs one case like QEMU's test-qapi.py: (actual stdout, actual stderr).
fn run_case(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(format!("{name}.json"));
    match Schema::load(&path) {
        Ok(schema) => (dump(&schema), String::new()),
        Err(e) => {
            let prefix = format!("{}/", dir.display());
            (String::new(), format!("{e}\n").replace(&prefix, ""))
        }
    }
}

/// The `FILE:LINE[:COL]` of the last line of an error (where QEMU puts the
/// location proper; earlier lines are include and definition context).
fn location(err: &str) -> Option<String> {
    let line = err
        .lines()
        .rev()
        .find(|l| !l.starts_with("Valid keys") && l.contains(".json:"))?;
    let mut parts = line.splitn(4, ':');
    let file = parts.next()?;
    let lineno = parts.next()?;
    let col = parts
        .next()
        .filter(|c| c.chars().all(|c| c.is_ascii_digit()));
    Some(match col {
        Some(c) => format!("{file}:{lineno}:{c}"),
        None => format!("{file}:{lineno}"),
    })
}

/// Cases whose `.err` in the shared copy of QEMU's suite is stale: left
/// from an older QEMU and no longer what QEMU says. For these the error
/// must still be at the same line and column (and file, ignoring the old
/// `tests/qapi-schema/` prefix).
const STALE: &[(&str, &str)] = &[
    (
        "escape-outside-string",
        "QEMU deleted this case (its .json is gone; we restored it from QEMU's \
         history); its .err predates the lexer showing the stray text up to the \
         next delimiter, which current QEMU and we do: stray '\\u003a'",
    ),
    (
        "event-args-if-unboxed",
        "the .err carries an old message and a tests/qapi-schema/ prefix no \
         other case has; current QEMU words it like args-if-unboxed.err: \
         conditional event arguments require 'boxed': true",
    ),
];

#[test]
fn every_case_matches_qemu() {
    let dir = fixtures();
    let mut cases: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures directory")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".err").map(str::to_string)
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 160,
        "expected QEMU's ~160 cases, found {}",
        cases.len()
    );

    let mut exact = 0;
    let mut stale = 0;
    let mut failures = Vec::new();
    for name in &cases {
        let expected_err =
            std::fs::read_to_string(dir.join(format!("{name}.err"))).unwrap_or_default();
        let expected_out = std::fs::read_to_string(dir.join(format!("{name}.out"))).ok();
        let (out, err) = run_case(&dir, name);
        let out_ok = expected_out.as_ref().is_none_or(|o| *o == out);
        if err == expected_err && out_ok {
            exact += 1;
            continue;
        }
        // Same location at least?
        let same_place = !expected_err.is_empty()
            && location(&err) == location(&expected_err.replace("tests/qapi-schema/", ""));
        if same_place && STALE.iter().any(|(n, _)| n == name) {
            stale += 1;
            continue;
        }
        failures.push(format!(
            "{name}: {}\n  expected: {}\n  actual:   {}{}",
            if same_place {
                "same location, different text"
            } else {
                "MISMATCH"
            },
            expected_err.trim_end().replace('\n', "\n            "),
            err.trim_end().replace('\n', "\n            "),
            if out_ok {
                String::new()
            } else {
                format!(
                    "\n  dump differs:\n{}",
                    diff(expected_out.as_deref().unwrap_or(""), &out)
                )
            }
        ));
    }
    eprintln!(
        "qapi-schema suite: {exact}/{} cases exactly as QEMU, {stale} stale .err at the same location",
        cases.len()
    );
    assert_eq!(
        stale,
        STALE.len(),
        "a stale case now matches exactly: drop it from STALE"
    );
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let lo = first.saturating_sub(2);
    format!(
        "    first difference at line {}\n    expected: {:?}\n    actual:   {:?}",
        first + 1,
        &e[lo..(first + 3).min(e.len())],
        &a[lo..(first + 3).min(a.len())]
    )
}
