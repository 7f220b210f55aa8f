//! `qapi-codegen conform` against a real `qemu-storage-daemon` (10.0.2):
//! from its socket, and from a saved `query-qmp-schema` checked against
//! the wrong version, which must fail.

use std::process::Command;

use qmp_client::launch::Launcher;

fn schema_dir() -> String {
    format!("{}/../schema", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qapi-gen"))
        .args(args)
        .output()
        .expect("runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn conform_from_a_socket_and_from_a_file() {
    let qsd = Launcher::storage_daemon()
        .start_blocking()
        .expect("start qemu-storage-daemon");
    let socket = qsd.socket().to_string_lossy().into_owned();
    let dir = schema_dir();
    let (code, text) = run(&["conform", &dir, "--socket", &socket, "--storage-daemon"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(", 0 unexplained"), "{text}");

    // The same reply, saved, checked as if it came from QEMU 7.2.
    let (_, intro) = qapi_gen::conform::introspect(qsd.socket()).expect("introspect");
    let file = qsd.dir().join("intro.json");
    std::fs::write(&file, intro.to_string()).expect("write");
    let file = file.to_string_lossy().into_owned();
    let (code, text) = run(&[
        "conform",
        &dir,
        "--introspection",
        &file,
        "--version",
        "7.2.0",
        "--storage-daemon",
    ]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("only the server has command `blockdev-set-active`"),
        "{text}"
    );

    // Bindings of QEMU 7.2 alone, and a server newer than them: every
    // difference is explained by the versions (exit 0), and what 10.0.2
    // adds is listed, grouped, as the to-do list of a regen.
    let old = qsd.dir().join("schema-7.2");
    std::fs::create_dir_all(&old).expect("mkdir");
    std::fs::write(old.join("manifest.txt"), "7.2.0\n").expect("write");
    std::os::unix::fs::symlink(format!("{dir}/7.2.0"), old.join("7.2.0")).expect("symlink");
    let old = old.to_string_lossy().into_owned();
    let (code, text) = run(&[
        "conform",
        &old,
        "--introspection",
        &file,
        "--version",
        "10.0.2",
        "--storage-daemon",
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(", 0 unexplained"), "{text}");
    assert!(
        text.contains("newer than the bindings' newest, 7.2.0"),
        "{text}"
    );
    assert!(
        text.contains("# To do: what the server has beyond"),
        "{text}"
    );
    let todo = &text[text.find("# To do").unwrap_or(0)..];
    let commands = &todo[todo.find("## Commands").expect("a Commands group")..];
    assert!(
        commands.contains("- added: command `blockdev-set-active`"),
        "{todo}"
    );
    assert!(todo.contains("## Members ("), "{todo}");
    assert!(todo.contains("## Enum values ("), "{todo}");

    // Bad input: a clear message, exit 1 or 2, no panic.
    let (code, text) = run(&["conform", &dir, "--socket", "/nonexistent/qmp.sock"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("/nonexistent/qmp.sock"), "{text}");
    let (code, _) = run(&["conform", &dir]);
    assert_eq!(code, Some(2));
    std::fs::write(qsd.dir().join("bad.json"), "{\"not\": \"a list\"}").expect("write");
    let bad = qsd.dir().join("bad.json").to_string_lossy().into_owned();
    let (code, text) = run(&["conform", &dir, "--introspection", &bad]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("not a list"), "{text}");
}
