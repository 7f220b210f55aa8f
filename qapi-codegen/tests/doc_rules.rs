//! Doc-comment rules of QEMU 10.0 that older QEMUs did not have
//! (`tests/doc-rules/`: each `X.json` with its expected error in `X.err`,
//! as in QEMU's own test suite): refused by default
//! (`DocRules::Qemu10`), accepted by `DocRules::Legacy`, which reads the
//! schemas of QEMU 7.2. A case without `.err` is valid under QEMU 10's
//! rules.

use std::path::{Path, PathBuf};

use qapi_gen::{DocRules, Schema};

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/doc-rules");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    v.sort();
    v
}

#[test]
fn qemu10_rules_refuse_what_qemu_10_refuses() {
    let mut refused = 0;
    for json in cases() {
        let err = json.with_extension("err");
        let got = Schema::load(&json);
        match std::fs::read_to_string(&err) {
            Ok(want) => {
                let e = got.map(|_| ()).expect_err(&json.display().to_string());
                let want = want.trim();
                assert!(
                    e.to_string().contains(want),
                    "{}: want `{want}`, got `{e}`",
                    json.display()
                );
                refused += 1;
            }
            Err(_) => {
                got.unwrap_or_else(|e| panic!("{}: {e}", json.display()));
            }
        }
    }
    assert!(refused >= 6, "only {refused} cases");
}

#[test]
fn legacy_rules_accept_what_qemu_before_9_1_accepted() {
    for json in cases() {
        if !json.with_extension("err").exists() {
            continue;
        }
        Schema::load_with_rules(&json, DocRules::Legacy)
            .unwrap_or_else(|e| panic!("{}: {e}", json.display()));
    }
}
