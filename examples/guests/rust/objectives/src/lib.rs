//! Classic optimization test functions (all minimized; run functions return their negation,
//! since DeepHyper maximizes).

use std::f64::consts::{E, PI};

/// Ackley's function in any dimension; its minimum is 0 at the origin.
pub fn ackley(x: &[f64]) -> f64 {
    let n = x.len().max(1) as f64;
    let sum_sq: f64 = x.iter().map(|v| v * v).sum();
    let sum_cos: f64 = x.iter().map(|v| (2.0 * PI * v).cos()).sum();
    -20.0 * (-0.2 * (sum_sq / n).sqrt()).exp() - (sum_cos / n).exp() + 20.0 + E
}

/// Rastrigin's function in any dimension; its minimum is 0 at the origin.
pub fn rastrigin(x: &[f64]) -> f64 {
    10.0 * x.len() as f64
        + x.iter()
            .map(|v| v * v - 10.0 * (2.0 * PI * v).cos())
            .sum::<f64>()
}

/// Evaluates Rastrigin `repeat` times on shifted copies of `x` (a compute-bound job) and
/// returns the smallest value seen.
pub fn rastrigin_repeated(x: &[f64], repeat: u64) -> f64 {
    let mut y = x.to_vec();
    let mut best = f64::INFINITY;
    for i in 0..repeat {
        let shift = (i % 1000) as f64 * 1e-6;
        for (yi, xi) in y.iter_mut().zip(x) {
            *yi = xi + shift;
        }
        best = best.min(rastrigin(&y));
    }
    best
}
