/// The n-th Fibonacci number; panics on overflow past n = 93.
pub fn fibonacci(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        let next = a.checked_add(b).expect("overflow");
        a = b;
        b = next;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_values() {
        let values: Vec<u64> = (0..8).map(fibonacci).collect();
        assert_eq!(values, vec![0, 1, 1, 2, 3, 5, 8, 13]);
    }
}
