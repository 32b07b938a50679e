//! mod_wsgi 6.1's latency histogram: 65 buckets over milliseconds, four per power of two,
//! from under 1 ms (bucket 0) to 65.536 s and over (bucket 64). The buckets are part of the
//! telemetry wire format (`mod-wsgi-telemetry` draws them as they come), so they are computed
//! exactly as mod_wsgi does: `m, e = frexp(ms); (e - 1) * 4 + min(3, int((2m - 1) * 4))`.

/// How many buckets a histogram has.
pub const BUCKETS: usize = 65;

/// The bucket of a duration of `seconds`.
pub fn bucket(seconds: f64) -> usize {
    let ms = seconds * 1000.0;
    // NaN and negative durations (a clock step) count as the shortest.
    if ms.is_nan() || ms < 1.0 {
        return 0;
    }
    if ms >= 65536.0 {
        return BUCKETS - 1;
    }
    // ms = (1 + f) * 2^exp with exp in 0..16: frexp's e is exp + 1 and its 2m - 1 is f.
    let exp = ((ms.to_bits() >> 52) & 0x7ff) as i64 - 1023;
    let fraction = ms / (2f64).powi(exp as i32) - 1.0;
    exp as usize * 4 + ((fraction * 4.0) as usize).min(3)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lower bound of `bucket`, in seconds.
    fn lower_bound(bucket: usize) -> f64 {
        if bucket == 0 {
            return 0.0;
        }
        let power = (2f64).powi((bucket / 4) as i32);
        power * (1.0 + (bucket % 4) as f64 / 4.0) / 1000.0
    }

    /// mod_wsgi's formula, with a real frexp.
    fn reference(seconds: f64) -> usize {
        let ms = seconds * 1000.0;
        if ms < 1.0 {
            return 0;
        }
        if ms >= 65536.0 {
            return 64;
        }
        let e = ms.log2().floor() as i32 + 1;
        let m = ms / (2f64).powi(e);
        ((e - 1) * 4) as usize + (((2.0 * m - 1.0) * 4.0) as usize).min(3)
    }

    #[test]
    fn edges() {
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(0.0009), 0);
        assert_eq!(bucket(0.001), 0);
        assert_eq!(bucket(0.00125), 1);
        assert_eq!(bucket(0.002), 4);
        assert_eq!(bucket(0.0034), 6);
        assert_eq!(bucket(0.0035), 7);
        assert_eq!(bucket(65.535), 63);
        assert_eq!(bucket(65.536), 64);
        assert_eq!(bucket(1e9), 64);
        assert_eq!(bucket(-1.0), 0);
        assert_eq!(bucket(f64::NAN), 0);
    }

    proptest::proptest! {
        #[test]
        fn as_mod_wsgi_computes_it(ms in 0.0f64..70000.0) {
            proptest::prop_assert_eq!(bucket(ms / 1000.0), reference(ms / 1000.0));
        }

        #[test]
        fn a_duration_is_at_least_its_buckets_lower_bound(ms in 1.0f64..65000.0) {
            let b = bucket(ms / 1000.0);
            proptest::prop_assert!(lower_bound(b) <= ms / 1000.0 + 1e-12);
            proptest::prop_assert!(b == 64 || ms / 1000.0 < lower_bound(b + 1) + 1e-12);
        }
    }
}
