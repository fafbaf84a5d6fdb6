//! The trivial objective of the benchmarks: the sum of `x0`, `x1`, `x2`. It uses plain
//! wit-bindgen and the `pure-objective` world (no `job` import), with no SDK.

wit_bindgen::generate!({ path: "../../../../wit", world: "pure-objective" });

struct Sum;

impl Guest for Sum {
    fn run(config: String) -> Result<String, String> {
        let v: serde_json::Value = serde_json::from_str(&config).map_err(|e| e.to_string())?;
        let sum: f64 = ["x0", "x1", "x2"].iter().filter_map(|k| v[k].as_f64()).sum();
        Ok(sum.to_string())
    }
}

export!(Sum);
