use std::sync::Arc;

use super::*;
use crate::backend::KvMap;

fn render(src: &str, data: &[(&str, &str)]) -> Result<String, GoError> {
    let out = render_bytes(src, data)?;
    Ok(String::from_utf8(out).expect("UTF-8 output"))
}

fn render_bytes(src: &str, data: &[(&str, &str)]) -> Result<Vec<u8>, GoError> {
    let kvs: KvMap = data
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let view = View::new(Arc::new(kvs), "", &["/".to_string()]);
    GoTemplate::parse("t.tmpl", src.to_string())?.render(&view)
}

#[test]
fn renders_servers() {
    let out = render(
        "{{range gets \"/app/servers/*\"}}server {{base .Key}} {{.Value}}\n{{end}}",
        &[("/app/servers/a", "1"), ("/app/servers/b", "2")],
    )
    .unwrap();
    assert_eq!(out, "server a 1\nserver b 2\n");
}
