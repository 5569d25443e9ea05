//! RandomString and Guid, from the seed the context gives (deterministic per seed).

use crate::value::Value;

use super::call::Call;
use super::{Evaluator, R};

/// SplitMix64: a small, well-distributed generator; deterministic from the seed.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const SPECIAL_CHARACTERS: &str = "~!@#$%^&*_-+=`|\\(){}[]:;\"'<>,.?/";

impl Evaluator<'_> {
    pub(super) fn random_string(&mut self, c: &Call) -> R<Value> {
        let length = self.int(c, 0)?;
        let mins = [
            self.int(c, 1)?,
            self.int(c, 2)?,
            self.int(c, 3)?,
            self.int(c, 4)?,
        ];
        let avoid = match c.args.get(5) {
            Some(Some(_)) => self.text_or(c, 5, "")?,
            _ => String::new(),
        };
        if !(1..=256).contains(&length) {
            return Err(c.fail(0, &format!("the length must be 1 to 256, got {length}")));
        }
        if let Some(i) = mins.iter().position(|m| *m < 0) {
            return Err(c.fail(i + 1, "a minimum can't be negative"));
        }
        let total: i64 = mins.iter().fold(0i64, |a, m| a.saturating_add(*m));
        if total > length {
            return Err(c.fail(
                0,
                &format!("the length {length} is less than the sum of the minimums ({total})"),
            ));
        }
        let pools: Vec<Vec<char>> = [
            "0123456789",
            SPECIAL_CHARACTERS,
            "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
            "abcdefghijklmnopqrstuvwxyz",
        ]
        .iter()
        .map(|p| p.chars().filter(|ch| !avoid.contains(*ch)).collect())
        .collect();
        const NAMES: [&str; 4] = [
            "numbers",
            "special characters",
            "capitals",
            "lower case letters",
        ];
        let mut out: Vec<char> = Vec::with_capacity(length as usize);
        for (i, min) in mins.iter().enumerate() {
            if *min > 0 && pools[i].is_empty() {
                return Err(c.fail(
                    5,
                    &format!("charactersToAvoid excludes every one of the {}", NAMES[i]),
                ));
            }
            for _ in 0..*min {
                out.push(pools[i][self.rng.below(pools[i].len())]);
            }
        }
        // The rest comes from the kinds of character asked for (all kinds when none is).
        let asked: Vec<char> = if total > 0 {
            (0..4)
                .filter(|i| mins[*i] > 0)
                .flat_map(|i| pools[i].clone())
                .collect()
        } else {
            pools.concat()
        };
        if asked.is_empty() {
            return Err(c.fail(5, "charactersToAvoid excludes every character"));
        }
        while out.len() < length as usize {
            out.push(asked[self.rng.below(asked.len())]);
        }
        for i in (1..out.len()).rev() {
            let j = self.rng.below(i + 1);
            out.swap(i, j);
        }
        Ok(Value::Str(out.into_iter().collect()))
    }
}

pub(super) fn guid(this: &mut Evaluator) -> R<Value> {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&this.rng.next().to_le_bytes());
    bytes[8..].copy_from_slice(&this.rng.next().to_le_bytes());
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    Ok(Value::Str(id.hyphenated().to_string()))
}
