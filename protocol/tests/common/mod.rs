//! Golden wire bytes shared by the wire-format tests.
#![allow(dead_code)] // each test binary uses what it needs

/// Compares `bytes` with `tests/golden/<name>.hex`. `QUBIX_BLESS=1` writes the file instead.
pub(crate) fn golden(name: &str, bytes: &[u8]) {
    let path = format!("{}/tests/golden/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let actual = hex::encode(bytes);
    if std::env::var("QUBIX_BLESS").is_ok() {
        std::fs::write(&path, format!("{actual}\n")).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{path} missing; run with QUBIX_BLESS=1 once to create it"));
    assert_eq!(
        actual,
        expected.trim(),
        "wire format of {name} changed: a changed shape needs a new version"
    );
}

/// The bytes of `tests/golden/<name>.hex`.
pub(crate) fn read_golden(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/golden/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    hex::decode(std::fs::read_to_string(path).unwrap().trim()).unwrap()
}
