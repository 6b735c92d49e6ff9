use super::*;

#[test]
fn paths_split_into_service_and_method() {
    assert_eq!(
        split_path(b"/demo.v1.Echo/Say"),
        Some((&b"demo.v1.Echo"[..], &b"Say"[..]))
    );
}
