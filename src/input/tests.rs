use super::*;

fn errs(text: &str) -> String {
    parse_configs("cfg", text).unwrap_err().to_string()
}

#[test]
fn json_lines() {
    let c = parse_configs("f", "\n{\"a\":1}\n\n{\"a\":2}\n").unwrap();
    assert_eq!(c.len(), 2);
}

#[test]
fn json_lines_errors_name_the_line() {
    assert_eq!(
        errs("{\"a\":1}\n[1]\n"),
        "cfg:2: expected a JSON object, found [1]"
    );
    assert!(errs("{\"a\":1}\n\n{oops\n").starts_with("cfg:3: invalid JSON"));
    // The position is a column of the line, never serde_json's "line 2" past its end.
    assert_eq!(
        errs("{\"a\":1}\n\n{oops\n"),
        "cfg:3: invalid JSON at column 2: key must be a string"
    );
    assert_eq!(
        errs("{\"a\": 1\n"),
        "cfg:1: invalid JSON at the end of the line: EOF while parsing an object"
    );
    let lines: Vec<usize> =
        Configs::from_reader("f", std::io::Cursor::new(b"\n\n{}\n{}".to_vec()), false)
            .unwrap()
            .map(|c| c.unwrap().0)
            .collect();
    assert_eq!(lines, [3, 4]);
}

#[test]
fn json_arrays_stream_with_lines() {
    let text = "[\n  {\"a\": 1},\n  {\"a\": [2,\n 3]},\n{}\n]\n";
    let c: Vec<Config> =
        Configs::from_reader("f", std::io::Cursor::new(text.as_bytes().to_vec()), false)
            .unwrap()
            .map(Result::unwrap)
            .collect();
    assert_eq!(c.iter().map(|c| c.0).collect::<Vec<_>>(), [2, 3, 5]);
    assert_eq!(c[1].1["a"], serde_json::json!([2, 3]));
    assert_eq!(parse_configs("f", " [ ] ").unwrap().len(), 0);
    assert_eq!(errs("[{},\n 7]"), "cfg:2: expected a JSON object, found 7");
    assert_eq!(
        errs("[{}\n{}]"),
        "cfg:2: expected `,` or `]` after an item, found `{`"
    );
    assert_eq!(errs("[{},\n{}"), "cfg:2: the array is not closed with `]`");
    assert_eq!(errs("[{}] {}"), "cfg:1: text after the end of the array");
    assert!(errs("[{},\n{\"a\":}]").starts_with("cfg:2: invalid JSON"));
}

#[test]
fn csv_with_header() {
    let text = "x,name,flag,list\n1.5,a,true,\"[1, 2]\"\n-2,\"b,c\",False,\n\n3e2,7x,,\n";
    let c = parse_configs("f", text).unwrap();
    assert_eq!(c.len(), 3);
    assert_eq!(
        Value::Object(c[0].clone()),
        serde_json::json!({"x": 1.5, "name": "a", "flag": true, "list": [1, 2]})
    );
    assert_eq!(
        Value::Object(c[1].clone()),
        serde_json::json!({"x": -2, "name": "b,c", "flag": false})
    );
    assert_eq!(
        Value::Object(c[2].clone()),
        serde_json::json!({"x": 300.0, "name": "7x"})
    );
    assert_eq!(
        errs("x,y\n1,2\n3\n"),
        "cfg:3: the row has 1 fields, the header has 2"
    );
    assert_eq!(errs("x,x\n1,2\n"), "cfg:1: the header names `x` twice");
}

#[test]
fn csv_from_a_results_file_reads_the_parameters() {
    let text = "p:x,p:y,objective,job_id,job_status\n1,2,3.5,0,DONE\n";
    let c = parse_configs("results.csv", text).unwrap();
    assert_eq!(
        Value::Object(c[0].clone()),
        serde_json::json!({"x": 1, "y": 2})
    );
}

#[test]
fn csv_extension_forces_csv() {
    let r = std::io::Cursor::new(b"{a}\n1\n".to_vec());
    let c: Vec<_> = Configs::from_reader("f.csv", r, true).unwrap().collect();
    assert_eq!(c.len(), 1);
    assert_eq!(
        Value::Object(c[0].as_ref().unwrap().1.clone()),
        serde_json::json!({"{a}": 1})
    );
}

#[test]
fn validation_counts_and_reports_like_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    std::fs::write(&path, "{\"a\": {\"b\": [1, 2]}}\n\n{}\n").unwrap();
    assert_eq!(validate(&path).unwrap(), 2);
    // Values the reader refuses, the check refuses too: numbers out of range, invalid UTF-8.
    let bads: [&[u8]; 7] = [
        b"[1]",
        b"{\"a\": 1",
        b"7",
        b"{\"a\" 1}",
        b"{\"a\": 1e400}",
        b"{\"a\": [{\"b\": -1e999}]}",
        b"{\"a\": \"\xff\xfe\"}",
    ];
    for bad in bads {
        std::fs::write(&path, [&b"{}\n"[..], bad, b"\n"].concat()).unwrap();
        let full = read_configs(&path).unwrap_err().to_string();
        assert_eq!(validate(&path).unwrap_err().to_string(), full);
        assert!(full.contains(":2: "), "{full}");
    }
}

/// Reads like a terminal: a Ctrl-D makes one read return 0, and reading again waits for more.
struct Terminal(Vec<&'static [u8]>);

impl Read for Terminal {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let chunk = self.0.remove(0);
        buf[..chunk.len()].copy_from_slice(chunk);
        Ok(chunk.len())
    }
}

#[test]
fn the_first_end_of_a_terminal_ends_the_input() {
    // Without `Ended`, the reader reads past the first end (the second line here, or, on a
    // real terminal, a wait for a second Ctrl-D).
    let terminal = Terminal(vec![b"{\"x\":1}\n", b"", b"{\"x\":2}\n"]);
    let reader = BufReader::new(Ended::new(terminal));
    let configs: Vec<_> = Configs::from_reader("-", reader, false)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(configs.len(), 1);
}
